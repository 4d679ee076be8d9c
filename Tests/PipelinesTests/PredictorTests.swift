import Autograd
import CSV
import FITS
import Foundation
import NN
import Preprocessing
import TestSupport
import XCTest
@testable import Pipelines

/// The one inference path: typed results from the shipped model files, the same
/// numbers as the tables written from them, and the target scaling both ways.
final class PredictorTests: XCTestCase {
    let models = repositoryRoot.appendingPathComponent("samples/models")

    func testShippedModelFilesDecodeIntoTypedRecipes() throws {
        let expected: [(String, PipelineTask)] = [("morphology", .classify), ("lens", .lens), ("regression", .regress),
                                                  ("segmentation", .segment)]
        for (name, task) in expected {
            let model = try TrainedModel(contentsOf: models.appendingPathComponent("\(name).safetensors"))
            XCTAssertEqual(model.recipe.task, task, name)
            // The on-disk spelling is kept when the recipe is written again.
            XCTAssert(model.recipe.json.contains(#""task":"\#(task.rawValue)""#), model.recipe.json)
        }
        XCTAssertThrowsError(try ModelRecipe.decode(#"{"task":"clasify"}"#, path: "m.safetensors")) {
            XCTAssert($0.localizedDescription.hasPrefix("m.safetensors: its 'astrolabe.preprocessing' metadata"), "\($0)")
        }
    }

    /// `views: 4` on a class model: the logits (so the probabilities and the energy) and the
    /// pooled features are averaged over the image's four rotations, so a rotated image gets the
    /// same row; the average is that of the single-view logits, and one view alone is not invariant.
    func testClassModelViewsAverageTheRotations() throws {
        let model = try TrainedModel(contentsOf: models.appendingPathComponent("morphology.safetensors"))
        var architecture = model.architecture, one = model.architecture
        architecture.views = 4
        one.views = nil
        let averaged = Predictor(network: model.network, architecture: architecture, recipe: model.recipe, path: model.path)
        let single = Predictor(network: model.network, architecture: one, recipe: model.recipe, path: model.path)
        var pixels = [Float](repeating: 0, count: 64 * 64)
        var generator = SeededGenerator(seed: 12)
        for y in 0..<64 { for x in 0..<64 {
            let (dx, dy) = (Float(x) - 30, Float(y) - 35)
            pixels[y * 64 + x] = 3 * Foundation.exp(-(dx * dx / 40 + dy * dy / 12 + dx * dy / 30)) + Float(generator.normal()) * 0.1
        } }
        let image = Tensor(shape: [1, 1, 64, 64], data: pixels)
        let views = [0, 3, 5, 6].map { image.dihedralView($0) }
        func classes(_ p: Prediction) throws -> ClassProbabilities {
            guard case let .classes(c) = p else { throw XCTSkip("not a class result") }
            return c
        }
        let rows = try views.map { try classes(averaged.predict(batch: $0)[0]) }
        for row in rows.dropFirst() {
            for (a, b) in zip(row.probabilities, rows[0].probabilities) { XCTAssertEqual(a, b, accuracy: 1e-5) }
            XCTAssertEqual(try XCTUnwrap(row.energy), try XCTUnwrap(rows[0].energy), accuracy: 1e-4)
            XCTAssertEqual(try XCTUnwrap(row.featureDistance), try XCTUnwrap(rows[0].featureDistance), accuracy: 1e-3)
        }
        let logits = withNoGrad { views.map { single.network($0).scalars } }
        let mean = (0..<5).map { k in logits.map { Double($0[k]) }.reduce(0, +) / 4 }
        let expected = ClassProbabilities(logits: mean.map(Float.init), temperature: model.recipe.temperature ?? 1)
        for (a, b) in zip(rows[0].probabilities, expected.probabilities) { XCTAssertEqual(a, b, accuracy: 1e-5) }
        let alone = try views.map { try classes(single.predict(batch: $0)[0]).probabilities }
        XCTAssertGreaterThan(zip(alone[0], alone[2]).map { abs($0 - $1) }.max()!, 1e-4, "one view alone depends on the orientation")
        architecture.views = 3
        XCTAssertThrowsError(try architecture.makeModel()) { XCTAssert("\($0)".contains("views 3"), "\($0)") }
    }

    /// Regression results against the formula worked by hand from the raw network
    /// outputs: value = out · std + mean (then 10^value for log10 targets),
    /// σ = exp(logvar / 2) · std (times value · ln 10 for log10 targets).
    func testRegressionResultsUnstandardiseAndBackTransform() throws {
        let url = models.appendingPathComponent("regression.safetensors")
        let predictor = try Predictor(contentsOf: url)
        let raw = try Predictor(contentsOf: url, raw: true)
        let recipe = try XCTUnwrap(predictor.recipe)
        let entries = try Catalog.resolve(repositoryRoot.appendingPathComponent("samples/regression").path).entries.prefix(3)
        let images = try entries.map { try predictor.prepared($0).image }
        let results = predictor.predict(images)
        let outputs = raw.predict(images)
        XCTAssertEqual(results.count, 3)
        for (result, output) in zip(results, outputs) {
            guard case let .regression(estimate) = result, case let .logits(o) = output else {
                return XCTFail("expected regression and logits, got \(result), \(output)")
            }
            let k = recipe.targetNames.count
            XCTAssertEqual(o.count, 2 * k)
            for t in 0..<k {
                var value = o[t] * recipe.targetStd[t] + recipe.targetMean[t]
                var sigma = Foundation.exp(o[k + t] / 2) * recipe.targetStd[t]
                if recipe.targetNames[t] == "r_e" {
                    value = Foundation.pow(10, value)
                    sigma *= value * Foundation.log(10)
                }
                XCTAssertEqual(estimate.values[t], value, accuracy: 1e-9 * Swift.max(1, abs(value)))
                XCTAssertEqual(estimate.sigmas![t], sigma, accuracy: 1e-9 * Swift.max(1, abs(sigma)))
            }
        }
    }

    func testClassProbabilitiesAreTheSoftmaxOfTheLogits() {
        let p = ClassProbabilities(logits: [Float(1000), 999, -5])
        XCTAssertEqual(p.probabilities.reduce(0, +), 1, accuracy: 1e-12)
        XCTAssertEqual(p.probabilities[0] / p.probabilities[1], Foundation.exp(1), accuracy: 1e-9, "no overflow")
        XCTAssertEqual(p.predicted, 0)
        XCTAssertEqual(ClassProbabilities(logits: [Float(0), 2, 2]).predicted, 1, "the first of equal maxima")
    }

    func testTargetScalingRoundTrips() throws {
        let catalog = Catalog(entries: [CatalogEntry(url: URL(fileURLWithPath: "/a"), name: "a", targets: [1, 0.5]),
                                        CatalogEntry(url: URL(fileURLWithPath: "/b"), name: "b", targets: [3, 5])])
        let scaling = try TargetScaling(fitting: catalog, names: ["n", "r_e"], logTargets: ["r_e"])
        XCTAssertEqual(scaling.mean[0], 2, accuracy: 1e-12)
        XCTAssertEqual(scaling.mean[1], (Foundation.log10(0.5) + Foundation.log10(5)) / 2, accuracy: 1e-12)
        for entry in catalog.entries {
            let learned = try scaling.standardized(entry.targets, file: entry.name).map(Float.init)
            let back = scaling.estimate(learned, uncertainty: false)
            XCTAssertNil(back.sigmas)
            for (a, b) in zip(back.values, entry.targets) { XCTAssertEqual(a, b, accuracy: 1e-5 * b) }
        }
        let bad = Catalog(entries: [CatalogEntry(url: URL(fileURLWithPath: "/c"), name: "c.fits", targets: [1, -2])])
        XCTAssertThrowsError(try TargetScaling(fitting: bad, names: ["n", "r_e"], logTargets: ["r_e"])) {
            XCTAssert($0.localizedDescription.contains("c.fits: r_e = -2.0 cannot be learned as log10"), "\($0)")
        }
    }

    /// Writes `folder/p.yaml`: the shipped Gaussian regressor on the sample cutouts.
    func writeSampleRegressionPipeline(in folder: URL, outputs: String) throws {
        try """
        task: regress
        input: {path: \(repositoryRoot.path)/samples/regression}
        model: {weights: \(models.path)/regression.safetensors}
        outputs: \(outputs)
        """.write(to: folder.appendingPathComponent("p.yaml"), atomically: true, encoding: .utf8)
    }

    /// `evaluate` of a Gaussian regressor reports, per target, the fraction of truths below the
    /// estimates and the median error, as computed by hand from the run's own results.
    func testRegressionEvaluationReportsTheEstimatesBias() throws {
        let folder = try makeTemporaryDirectory("regression-bias-metrics")
        try writeSampleRegressionPipeline(in: folder, outputs: "{csv: out.csv}")
        let runner = try PipelineRunner(pipelinePath: folder.appendingPathComponent("p.yaml").path,
                                        options: RunOptions(input: repositoryRoot.appendingPathComponent("samples/regression/catalog.csv").path,
                                                            quiet: true, fresh: true))
        let result = try runner.evaluate(into: folder.appendingPathComponent("eval"))
        let catalog = try Catalog.resolve(repositoryRoot.appendingPathComponent("samples/regression/catalog.csv").path,
                                          targetColumns: ["sersic_n", "r_e", "q", "mag"])
        let run = try PipelineRunner(pipelinePath: folder.appendingPathComponent("p.yaml").path, options: RunOptions(quiet: true)).predictAll()
        var estimates = [String: Double]()
        for (entry, prediction) in run.results {
            guard case let .regression(r) = prediction else { return XCTFail("\(prediction)") }
            estimates[entry.url.lastPathComponent] = r.values[3]
        }
        var below = 0.0, errors = [Double]()
        for entry in catalog.entries {
            let estimate = try XCTUnwrap(estimates[entry.url.lastPathComponent], entry.name)
            below += entry.targets[3] < estimate ? 1 : 0
            errors.append(estimate - entry.targets[3])
        }
        XCTAssertEqual(errors.count, 30)
        XCTAssertEqual(try XCTUnwrap(result.metrics["truth_below_estimate_mag"]), below / 30, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(result.metrics["median_error_mag"]), PixelStatistics.median(errors), accuracy: 1e-12)
    }

    /// A run's typed results are what its CSV and FITS table hold: the CSV to its 6
    /// significant digits, the FITS columns as doubles, equal to the numbers.
    func testRunResultsAreTheNumbersOfItsTables() throws {
        let folder = try makeTemporaryDirectory("typed")
        try writeSampleRegressionPipeline(in: folder, outputs: "{csv: out.csv, fits_table: out.fits}")
        let run = try PipelineRunner(pipelinePath: folder.appendingPathComponent("p.yaml").path,
                                     options: RunOptions(quiet: true)).predictAll()
        XCTAssertEqual(run.results.count, 30)
        let csv = try CSVReader(string: try String(contentsOf: folder.appendingPathComponent("out.csv"), encoding: .utf8),
                                hasHeaderRow: true)
        XCTAssertEqual(csv.headerRow, ["file", "sersic_n", "r_e", "q", "mag", "sersic_n_p16", "sersic_n_p84", "sersic_n_p025", "sersic_n_p975",
                                       "r_e_p16", "r_e_p84", "r_e_p025", "r_e_p975", "q_p16", "q_p84", "q_p025", "q_p975",
                                       "mag_p16", "mag_p84", "mag_p025", "mag_p975",
                                       "in_domain", "outside_domain", "ood_features"])
        let table = try FITSFile(path: folder.appendingPathComponent("out.fits").path).readTable("RESULTS")
        guard case let .double(fitsR)? = table["r_e"]?.values else { return XCTFail("r_e is not a double column") }
        guard case let .double(fitsDistance)? = table["ood_features"]?.values else { return XCTFail("ood_features is not a double column") }
        let threshold = try XCTUnwrap(run.predictor.recipe?.featureDensity?.threshold)
        for (i, (entry, prediction)) in run.results.enumerated() {
            let row = try XCTUnwrap(csv.next())
            XCTAssertEqual(row[0], entry.name)
            guard case let .regression(estimate) = prediction else { return XCTFail("\(prediction)") }
            let numbers = estimate.values + estimate.percentiles!.flatMap { $0 }
            // The Gaussian's percentiles: p16 < value < p84, p025 < p16, p84 < p975; for r_e (log10
            // learned) the 68 % interval is centred in log, so value = sqrt(p16 · p84).
            for (t, p) in estimate.percentiles!.enumerated() {
                XCTAssert(p[2] < p[0] && p[0] < estimate.values[t] && estimate.values[t] < p[1] && p[1] < p[3], "\(p)")
            }
            XCTAssertEqual((estimate.percentiles![1][0] * estimate.percentiles![1][1]).squareRoot(), estimate.values[1],
                           accuracy: 1e-9 * estimate.values[1])
            // sersic_n is learned linearly: p84 − p16 = 2 · 0.99446 σ (the 84th percentile is 0.99446 σ out).
            XCTAssertEqual((estimate.percentiles![0][1] - estimate.percentiles![0][0]) / 2, 0.994457883 * estimate.sigmas![0],
                           accuracy: 1e-6 * estimate.sigmas![0])
            // The samples follow the model's observation; a row whose feature distance is above the
            // density's threshold says so (by construction about 5 % of TASKS.md cutouts).
            let distance = try XCTUnwrap(prediction.featureDistance)
            XCTAssertEqual(Double(row[row.count - 1])!, distance, accuracy: 5e-6 * distance)
            XCTAssertEqual(fitsDistance[i], distance)
            XCTAssertEqual(Array(row.suffix(3).prefix(2)), distance > threshold ? ["no", "unfamiliar"] : ["yes", ""], entry.name)
            for (text, value) in zip(row.dropFirst(), numbers) {
                XCTAssertEqual(Double(text)!, value, accuracy: 5e-6 * abs(value), "\(entry.name)")
            }
            XCTAssertEqual(fitsR[i], estimate.values[1], "FITS columns hold the numbers, not parsed text")
        }
    }

    /// The first file, checked against the model before the batch run, is read once:
    /// its result is kept and the batch run starts after it.
    func testEveryFileIsReadOnceFirstIncluded() throws {
        let folder = try makeTemporaryDirectory("read-once")
        try "task: classify\nmodel: {weights: \(models.path)/morphology.safetensors}\nrun: {batch_size: 4}\n"
            .write(to: folder.appendingPathComponent("p.yaml"), atomically: true, encoding: .utf8)
        let runner = try PipelineRunner(pipelinePath: folder.appendingPathComponent("p.yaml").path,
                                        options: RunOptions(input: repositoryRoot.appendingPathComponent("samples/morphology").path,
                                                            quiet: true))
        let predictor = try runner.makePredictor()
        let entries = try runner.inputCatalog().entries
        let url = folder.appendingPathComponent(".out.csv.journal")
        let journal = try RunJournal(url: url, resume: false)
        let rest = try runner.predictOneByOne(entries, predictor, journal: journal, progress: nil, untilFirstResult: true)
        XCTAssertEqual(rest.map(\.name), entries.dropFirst().map(\.name))
        try runner.tabulate(rest, predictor: predictor, journal: journal, progress: nil)
        XCTAssertEqual(Set(journal.finished.keys), Set(entries.map(\.name)))
        try journal.close()
        let reads = try String(contentsOf: url, encoding: .utf8).split(separator: "\n").filter { $0.contains(#""reading":true"#) }
        XCTAssertEqual(reads.count, entries.count, "one read per file")
        XCTAssertEqual(Set(reads).count, entries.count)
    }
}
