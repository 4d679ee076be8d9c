import Autograd
import CSV
import FITS
import Foundation
import NN
import Preprocessing
import SkySim
import TestSupport
import Training
import XCTest
@testable import Pipelines

/// Posterior regression models: the logit target transform, percentiles from draws, the
/// model file's round trip, the run's percentile columns and draws table, and evaluate's
/// calibration outputs.
final class PosteriorTests: XCTestCase {
    let samples = repositoryRoot.appendingPathComponent("samples/regression")
    let bounds: [[Double]] = [[0.5, 6], [0.3, 3], [0.2, 1], [17, 22]]

    func testBoundedTargetsRoundTripThroughTheLogit() throws {
        let catalog = Catalog(entries: [
            CatalogEntry(url: URL(fileURLWithPath: "/a"), name: "a", targets: [1, 0.5, 0.3, 18]),
            CatalogEntry(url: URL(fileURLWithPath: "/b"), name: "b", targets: [5.5, 2.5, 1.0, 21.5])])
        let scaling = try TargetScaling(fitting: catalog, names: ["sersic_n", "r_e", "q", "mag"], logTargets: ["r_e"],
                                        bounds: bounds)
        // The learned value of n = 1 is logit((1 − 0.5) / 5.5); of r_e = 0.5 the logit of its log10's fraction.
        let learned = try scaling.learnedValues([1, 0.5, 0.3, 18], file: "a")
        XCTAssertEqual(learned[0], Foundation.log(0.5 / 5.5 / (1 - 0.5 / 5.5)), accuracy: 1e-12)
        let f = (Foundation.log10(0.5) - Foundation.log10(0.3)) / 1
        XCTAssertEqual(learned[1], Foundation.log(f / (1 - f)), accuracy: 1e-12)
        for entry in catalog.entries {
            let z = try scaling.standardized(entry.targets, file: entry.name)
            for k in 0..<4 {
                // q = 1 sits on its bound: clamped to a fraction 1 − 1e-6, so back within 1e-6 of the range.
                XCTAssertEqual(scaling.catalogValue(z[k], target: k), entry.targets[k], accuracy: 1e-5 * Swift.max(1, entry.targets[k]))
            }
        }
        XCTAssertThrowsError(try scaling.learnedValues([7, 1, 0.5, 18], file: "x.fits")) {
            XCTAssert($0.localizedDescription.contains("x.fits: sersic_n = 7.0 is outside its prior range [0.5, 6.0]"), "\($0)")
        }
    }

    /// A posterior piled on a bound of its prior (an object beyond the training range) is
    /// flagged in the quality columns; one near but inside the bound is not.
    func testPosteriorsOnTheirPriorsBoundAreFlagged() {
        let scaling = TargetScaling(names: ["sersic_n", "r_e", "q", "mag"], mean: [0, 0, 0, 0], std: [1, 1, 1, 1],
                                    logTargets: ["r_e"], bounds: bounds)
        func estimate(_ p16: [Double], _ p84: [Double]) -> PosteriorEstimate {
            PosteriorEstimate(medians: zip(p16, p84).map { ($0 + $1) / 2 }, p16: p16, p84: p84, p025: p16, p975: p84)
        }
        // A galaxy brighter than mag 17 (the BCG of docs/real-data.md: 17.00 [17.00, 17.00]) and
        // an r_e pinned at 3" (within 1 % of the log10 range: 0.01 dex).
        let pinned = estimate([2, 2.95, 0.5, 17.0], [3, 2.999, 0.6, 17.004])
        XCTAssertEqual(scaling.targetsAtRangeEdge(pinned), ["r_e", "mag"])
        // Near the bounds but with the 68 % interval reaching inside: a measurement.
        let inside = estimate([0.5, 0.3, 0.2, 17.0], [0.7, 0.35, 0.25, 17.2])
        XCTAssertEqual(scaling.targetsAtRangeEdge(inside), [])
        var table = ResultTable(.posterior(targets: scaling.names))
        table.domains = ["a.fits": DomainCheck(outside: [], unknown: []), "b.fits": DomainCheck(outside: ["depth"], unknown: [])]
        table.scaling = scaling
        XCTAssertEqual(table.qualityText(file: "a.fits", .posterior(inside)), ["yes", "", "network"])
        XCTAssertEqual(table.qualityText(file: "a.fits", .posterior(pinned)), ["no", "r_e_range;mag_range", "network"])
        XCTAssertEqual(table.qualityText(file: "b.fits", .posterior(pinned)), ["no", "depth;r_e_range;mag_range", "network"])
        var fitted = pinned
        fitted.source = ProfileRefinement.source
        XCTAssertEqual(table.qualityText(file: "a.fits", .posterior(fitted)).last, "profile_fit")
    }

    /// Intervals of rows with masked neighbours widened about the median in the flow's
    /// standardised space: by the factors, inside the prior range, the median kept; the shipped
    /// model's factors (fitted by scripts/record_observation.py) reach runs of its rows.
    func testIntervalsOfMaskedRowsAreWidenedInTheFlowSpace() throws {
        let scaling = TargetScaling(names: ["sersic_n", "r_e", "q", "mag"], mean: [0.1, -0.2, 0, 0.3], std: [1.8, 1.7, 1.8, 1.8],
                                    logTargets: ["r_e"], bounds: bounds)
        let p = PosteriorEstimate(medians: [2, 1, 0.6, 20], p16: [1.5, 0.8, 0.5, 19.8], p84: [2.8, 1.3, 0.7, 20.3],
                                  p025: [1.0, 0.6, 0.4, 19.5], p975: [3.5, 1.6, 0.8, 20.6], samples: [2.2, 1.1, 0.65, 20.1])
        let scales = [[2.0, 3.0], [2.0, 3.0], [1.0, 1.0], [3.0, 5.0]]
        let w = scaling.widened(p, by: scales)
        XCTAssertEqual(w.medians, p.medians)
        for k in 0..<4 {
            let z = { (v: Double) in scaling.standardizedValue(v, target: k) }
            let m = z(p.medians[k])
            XCTAssertEqual(z(w.p16[k]) - m, scales[k][0] * (z(p.p16[k]) - m), accuracy: 1e-9)
            XCTAssertEqual(z(w.p84[k]) - m, scales[k][0] * (z(p.p84[k]) - m), accuracy: 1e-9)
            XCTAssertEqual(z(w.p975[k]) - m, scales[k][1] * (z(p.p975[k]) - m), accuracy: 1e-9)
            XCTAssertEqual(z(w.samples![k]) - m, scales[k][0] * (z(p.samples![k]) - m), accuracy: 1e-9)
            XCTAssert(bounds[k][0] < w.p025[k] && w.p975[k] < bounds[k][1], "inside the prior range: \(w)")
        }
        XCTAssertEqual(w.p16[2], p.p16[2], accuracy: 1e-12, "a factor 1 changes nothing")
        XCTAssertLessThan(w.p16[3], p.p16[3])
        // Only rows whose neighbours were masked, and only when the model records factors.
        let model = try TrainedModel(contentsOf: repositoryRoot.appendingPathComponent("samples/models/posterior.safetensors"))
        let scales4 = try XCTUnwrap(model.recipe.intervalScales?["neighbours"])
        XCTAssertEqual(scales4.count, 4)
        for pair in scales4 {
            XCTAssertEqual(pair.count, 2)
            XCTAssertGreaterThan(pair[0], 1)
            XCTAssertGreaterThan(pair[1], pair[0])
        }
        let predictor = Predictor(network: model.network, architecture: model.architecture, recipe: model.recipe, path: model.path)
        let row = Prediction.posterior(p)
        // Rows without a widening flag take the recalibration fitted on clean held-out data (`none`).
        let none = try XCTUnwrap(model.recipe.intervalScales?[ModelRecipe.unflagged])
        XCTAssertEqual(predictor.reported(row, domain: DomainCheck(outside: ["depth"], unknown: [])),
                       .posterior(model.recipe.targetScaling.widened(p, by: none)))
        // Trained on the contexts inference sees, the clean rows' intervals need little recalibration.
        for pair in none { for factor in pair { XCTAssert((0.9...1.1).contains(factor), "\(none)") } }
        XCTAssertEqual(predictor.reported(row, domain: nil), row)
        guard case let .posterior(masked) = predictor.reported(row, domain: DomainCheck(outside: ["neighbours"], unknown: [])) else {
            return XCTFail("a posterior stays a posterior")
        }
        XCTAssert(masked.p16[0] < p.p16[0] && masked.p84[0] > p.p84[0], "wider: \(masked)")
        // A fitted sky has its own factors, and a row with both flags those fitted for both.
        let recorded = try XCTUnwrap(model.recipe.intervalScales)
        let sky = try XCTUnwrap(recorded["sky"]), both = try XCTUnwrap(recorded["neighbours+sky"])
        let shipped = model.recipe.targetScaling
        XCTAssertEqual(predictor.reported(row, domain: DomainCheck(outside: ["sky"], unknown: [])),
                       .posterior(shipped.widened(p, by: sky)))
        XCTAssertEqual(predictor.reported(row, domain: DomainCheck(outside: ["sky", "depth", "neighbours"], unknown: [])),
                       .posterior(shipped.widened(p, by: both)))
        // Without factors for the pair, the larger of the two per target.
        var recipe = model.recipe
        recipe.intervalScales = ["neighbours": [[2, 3], [1, 1], [1.5, 2], [1, 4]], "sky": [[1, 5], [2, 2], [1, 1], [3, 3]]]
        let larger = [[2.0, 5], [2, 2], [1.5, 2], [3, 4]]
        let fallback = Predictor(network: model.network, architecture: model.architecture, recipe: recipe, path: model.path)
        XCTAssertEqual(fallback.reported(row, domain: DomainCheck(outside: ["neighbours", "sky"], unknown: [])),
                       .posterior(shipped.widened(p, by: larger)))
    }

    /// Percentiles of known draws, mapped back to catalog units (numpy's linear interpolation).
    func testPosteriorPercentilesOfDraws() {
        let scaling = TargetScaling(names: ["a", "b"], mean: [1, 0], std: [2, 1], logTargets: ["b"])
        // 101 draws: a = 0, 0.01, ..., 1 (standardised), b = the same reversed.
        var draws = [Float]()
        for i in 0...100 { draws += [Float(i) / 100, Float(100 - i) / 100] }
        let p = draws.withUnsafeBufferPointer { scaling.posterior($0, keepSamples: 3) }
        XCTAssertEqual(p.medians[0], 0.5 * 2 + 1, accuracy: 1e-6)
        XCTAssertEqual(p.p16[0], 0.16 * 2 + 1, accuracy: 1e-6)
        XCTAssertEqual(p.p84[0], 0.84 * 2 + 1, accuracy: 1e-6)
        XCTAssertEqual(p.p025[0], 0.025 * 2 + 1, accuracy: 1e-6)
        XCTAssertEqual(p.p975[0], 0.975 * 2 + 1, accuracy: 1e-6)
        XCTAssertEqual(p.p975[1], Foundation.pow(10, 0.975), accuracy: 1e-5)
        XCTAssertEqual(p.samples?.count, 6, "3 draws of 2 targets")
        XCTAssertEqual(p.samples![1], Foundation.pow(10, 1.0), accuracy: 1e-5, "draw 0 of b in catalog units")
        // The journal keeps percentiles only.
        let json = try! JSONEncoder().encode(Prediction.posterior(p))
        let back = try! JSONDecoder().decode(Prediction.self, from: json)
        guard case let .posterior(q) = back else { return XCTFail("\(back)") }
        XCTAssertEqual(q.medians, p.medians)
        XCTAssertNil(q.samples)
    }

    /// A small posterior model with the shipped regression recipe's stages and a logit-space
    /// scaling, written as a model file.
    func makeModelFile(in folder: URL) throws -> URL {
        let shipped = try TrainedModel(contentsOf: repositoryRoot.appendingPathComponent("samples/models/regression.safetensors"))
        let architecture = Architecture(name: .resnet18Flow, inChannels: 1, classes: 6, widths: [4, 4, 4, 4], stemPool: false,
                                        flow: FlowSettings(features: 4, layers: 2, hidden: [8], transform: .spline, bins: 4, tailBound: 5))
        let model = try architecture.makeModel(seed: 3)
        var recipe = shipped.recipe
        recipe.targetBounds = bounds
        recipe.targetMean = [0, 0, 0, 0]
        recipe.targetStd = [1.8, 1.8, 1.8, 1.8]
        recipe.predictsUncertainty = false
        recipe.posteriorDraws = 200
        recipe.featureDensity = nil   // the shipped one is of the shipped network's 128 features
        let url = folder.appendingPathComponent("posterior.safetensors")
        model.eval()
        try ModelFile(model: model, architecture: architecture, preprocessing: recipe.json).write(to: url)
        return url
    }

    func testModelFileRoundTripsThePosteriorModel() throws {
        let folder = try makeTemporaryDirectory("posterior-file")
        let url = try makeModelFile(in: folder)
        let original = try XCTUnwrap(try Architecture(name: .resnet18Flow, inChannels: 1, classes: 6, widths: [4, 4, 4, 4],
                                                      stemPool: false,
                                                      flow: FlowSettings(features: 4, layers: 2, hidden: [8], bins: 4))
                                        .makeModel(seed: 3) as? PosteriorRegressor)
        original.eval()
        let loaded = try TrainedModel(contentsOf: url)
        let posterior = try XCTUnwrap(loaded.network as? PosteriorRegressor)
        XCTAssertEqual(loaded.architecture.flow?.layers, 2)
        XCTAssertEqual(loaded.recipe.targetBounds ?? [], bounds)
        let image = Tensor.randomNormal([2, 1, 64, 64], generator: &Self.generator)
        let theta = Tensor.randomNormal([2, 4], generator: &Self.generator)
        let a = withNoGrad { original.logProbability(theta, context: original(image)) }.scalars
        let b = withNoGrad { posterior.logProbability(theta, context: posterior(image)) }.scalars
        for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: 1e-4 * Swift.max(1, abs(x))) }
        // A flow without its settings is refused with the reason.
        XCTAssertThrowsError(try Architecture(name: .resnet18Flow, inChannels: 1, classes: 6).makeModel()) {
            XCTAssert($0.localizedDescription.contains("needs 'flow'"), "\($0)")
        }
    }

    static var generator = SeededGenerator(seed: 11)

    /// `regress-sersic`-style run of a posterior model: medians then the TASKS.md percentile
    /// columns, ordered p2.5 ≤ p16 ≤ median ≤ p84 ≤ p97.5; the draws table holds
    /// `posterior_sample_count` draws per file inside the prior ranges; evaluate writes the
    /// calibration numbers and pictures.
    func testRunWritesPercentileColumnsAndDrawsAndEvaluateCalibrates() throws {
        let folder = try makeTemporaryDirectory("posterior-run")
        let model = try makeModelFile(in: folder)
        try """
        task: regress
        input: {path: \(samples.path)}
        model: {weights: \(model.path)}
        outputs: {csv: out.csv, posterior_samples: draws.fits, posterior_sample_count: 7}
        run: {batch_size: 8}
        """.write(to: folder.appendingPathComponent("p.yaml"), atomically: true, encoding: .utf8)
        let run = try PipelineRunner(pipelinePath: folder.appendingPathComponent("p.yaml").path,
                                     options: RunOptions(quiet: true)).predictAll()
        XCTAssertEqual(run.results.count, 30)
        let csv = try CSVReader(string: try String(contentsOf: folder.appendingPathComponent("out.csv"), encoding: .utf8),
                                hasHeaderRow: true)
        let targets = ["sersic_n", "r_e", "q", "mag"]
        let columns = ["file"] + targets + targets.flatMap { t in ["_p16", "_p84", "_p025", "_p975"].map { t + $0 } }
        // Then the quality columns of a model that records its observation (the shipped recipe's).
        XCTAssertEqual(Array(try XCTUnwrap(csv.headerRow).prefix(columns.count)), columns)
        for (entry, prediction) in run.results {
            let row = try XCTUnwrap(csv.next()).prefix(columns.count).dropFirst().map { try XCTUnwrap(Double($0), $0) }
            guard case let .posterior(p) = prediction else { return XCTFail("\(prediction)") }
            XCTAssertEqual(p.samples?.count, 7 * 4, entry.name)
            for k in 0..<4 {
                let (median, p16, p84, p025, p975) = (row[k], row[4 + 4 * k], row[5 + 4 * k], row[6 + 4 * k], row[7 + 4 * k])
                XCTAssertEqual(median, p.medians[k], accuracy: 5e-6 * abs(median))
                XCTAssert(p025 <= p16 && p16 <= median && median <= p84 && p84 <= p975, "\(entry.name) \(targets[k]): \(row)")
                XCTAssert(p025 >= bounds[k][0] - 1e-6 && p975 <= bounds[k][1] + 1e-6, "inside the prior range: \(row)")
            }
        }
        let table = try FITSFile(path: folder.appendingPathComponent("draws.fits").path).readTable("SAMPLES")
        guard case let .string(files)? = table["file"]?.values, case let .double(q)? = table["q"]?.values,
              case let .int32(draw)? = table["draw"]?.values else { return XCTFail("columns file, draw, q") }
        XCTAssertEqual(files.count, 30 * 7)
        XCTAssertEqual(Array(draw.prefix(8)), [0, 1, 2, 3, 4, 5, 6, 0])
        XCTAssert(q.allSatisfy { $0 >= 0.2 && $0 <= 1 })
        guard case let .posterior(first) = run.results[0].prediction else { return XCTFail() }
        XCTAssertEqual(q[0], first.samples![2], "draw 0 of the first file")

        // Evaluate: every draw kept for the calibration tests; Cramér–Rao bounds of σ = 0.1
        // (0.02 for mag) for 400 galaxies in 17–22 give a bound NMAD of about that σ per bin.
        var bounds = "sersic_n,r_e,q,mag,sigma_n,sigma_log10_r_e,sigma_q,sigma_mag\n"
        for i in 0..<400 { bounds += "2,1,0.5,\(17 + Double(i) / 80),0.1,0.1,0.1,0.02\n" }
        let boundsURL = folder.appendingPathComponent("bounds.csv")
        try bounds.write(to: boundsURL, atomically: true, encoding: .utf8)
        let report = folder.appendingPathComponent("eval")
        let result = try PipelineRunner(pipelinePath: folder.appendingPathComponent("p.yaml").path,
                                        options: RunOptions(input: samples.appendingPathComponent("catalog.csv").path, quiet: true,
                                                            fresh: true)).evaluate(into: report, cramerRao: boundsURL)
        XCTAssertEqual(try XCTUnwrap(result.metrics["bound_nmad_sersic_n"]), 0.1, accuracy: 0.015)
        XCTAssertEqual(try XCTUnwrap(result.metrics["bound_nmad_mag_mag17-18"]), 0.02, accuracy: 0.007)
        for key in ["nmad_sersic_n", "nmad_log10_r_e", "coverage68_q", "coverage95_mag", "tarp_ks_p", "tarp_area_difference",
                    "sbc_p_sersic_n", "coverage68_q_mag17-18"] {
            XCTAssertNotNil(result.metrics[key], key)
        }
        for file in ["calibration.csv", "sbc_ranks.csv", "tarp.csv", "calibration.png", "sbc_ranks.png", "corner-1.png"] {
            XCTAssert(result.files.contains(file), file)
            XCTAssert(FileManager.default.fileExists(atPath: report.appendingPathComponent(file).path), file)
        }
        let calibration = try String(contentsOf: report.appendingPathComponent("calibration.csv"), encoding: .utf8)
        XCTAssert(calibration.hasPrefix("bin,count,nmad_sersic_n,coverage68_sersic_n,coverage95_sersic_n,nmad_log10_r_e"), calibration)
        XCTAssert(calibration.contains("\nall,30,"), calibration)
        XCTAssert(calibration.split(separator: "\n")[0].hasSuffix(",bound_count,bound_nmad_sersic_n,bound_nmad_log10_r_e,bound_nmad_q,bound_nmad_mag"))
        XCTAssert(calibration.contains(",coverage68_se,coverage95_se,nmad_se_sersic_n,nmad_se_log10_r_e,nmad_se_q,nmad_se_mag,"
            + "truth_below_median_sersic_n,truth_below_median_r_e,truth_below_median_q,truth_below_median_mag,"
            + "median_error_sersic_n,median_error_log10_r_e,median_error_q,median_error_mag,"))
        // The fraction below the magnitude medians, from the run's own medians.
        let magnitudes = try Catalog.resolve(samples.appendingPathComponent("catalog.csv").path, targetColumns: ["mag"]).entries
        var medians = [String: Double]()
        for (entry, prediction) in run.results { if case let .posterior(p) = prediction { medians[entry.url.lastPathComponent] = p.medians[3] } }
        let below = try magnitudes.map { try XCTUnwrap(medians[$0.url.lastPathComponent]) > $0.targets[0] ? 1.0 : 0.0 }.reduce(0, +)
        XCTAssertEqual(try XCTUnwrap(result.metrics["truth_below_median_mag"]), below / 30, accuracy: 1e-12)
        // 30 galaxies: a calibrated 68 % coverage scatters by √(0.68·0.32/30) = 0.085.
        XCTAssert(calibration.contains("\nall,30,") && calibration.split(separator: "\n")[1].contains(",0.0852,0.0398,"), calibration)
        let nmadError = try XCTUnwrap(result.metrics["nmad_se_sersic_n"])
        let nmad = try XCTUnwrap(result.metrics["nmad_sersic_n"])
        XCTAssert(nmadError > 0 && nmadError < nmad, "bootstrap error \(nmadError) of NMAD \(nmad)")
    }

    /// `evaluate --calibrate` on a posterior model fits one Gaussian to its encoder's pooled
    /// features (views averaged) on the even-numbered files and the threshold on the odd ones;
    /// runs with the copy write `ood_features` and say `unfamiliar` exactly above it; evaluate
    /// reports the flagged fraction and the NMAD with and without the flag; a model with a
    /// density of another dimension is refused, and --calibrate on a segmenter names what it needs.
    func testEvaluateCalibrateFitsARegressionFeatureDensity() throws {
        let folder = try makeTemporaryDirectory("posterior-density")
        let model = try makeModelFile(in: folder)
        let pipeline = folder.appendingPathComponent("p.yaml")
        try "task: regress\ninput: {path: \(samples.path)}\nmodel: {weights: \(model.path)}\noutputs: {csv: out.csv}\n"
            .write(to: pipeline, atomically: true, encoding: .utf8)
        let calibrated = folder.appendingPathComponent("calibrated.safetensors")
        let catalog = samples.appendingPathComponent("catalog.csv").path
        let first = try PipelineRunner(pipelinePath: pipeline.path, options: RunOptions(input: catalog, quiet: true, fresh: true))
            .evaluate(into: folder.appendingPathComponent("eval"), calibratedModel: calibrated)
        let threshold = try XCTUnwrap(first.metrics["ood_features_threshold"])
        let loaded = try TrainedModel(contentsOf: calibrated)
        let density = try XCTUnwrap(loaded.recipe.featureDensity)
        XCTAssertEqual(density.dimension, 4)
        XCTAssertEqual(density.means.count, 1, "one Gaussian")
        XCTAssertEqual(density.count, 15, "the even-numbered 15 of 30")
        XCTAssertEqual(density.threshold, threshold)
        XCTAssertNil(loaded.recipe.temperature, "a regression gets no temperature")
        XCTAssert(loaded.recipe.descriptionLines.contains { $0.contains("distance to the mean of 4 penultimate features") })

        // A run with the copy: the distance is the density's distance of the pooled, view-averaged features.
        try "task: regress\ninput: {path: \(samples.path)}\nmodel: {weights: \(calibrated.path)}\noutputs: {csv: out2.csv}\n"
            .write(to: pipeline, atomically: true, encoding: .utf8)
        let run = try PipelineRunner(pipelinePath: pipeline.path, options: RunOptions(quiet: true, fresh: true)).predictAll()
        let features = try ClassifierFeatures(predictor: run.predictor).features(Catalog(entries: run.results.map(\.entry))).features
        var flagged = 0
        for ((entry, prediction), feature) in zip(run.results, features) {
            let distance = try XCTUnwrap(prediction.featureDistance, entry.name)
            XCTAssertEqual(distance, try density.distance(feature.map(Float.init)), accuracy: 1e-4 * distance)
            flagged += distance > threshold ? 1 : 0
        }
        let csv = try CSVReader(string: try String(contentsOf: folder.appendingPathComponent("out2.csv"), encoding: .utf8),
                                hasHeaderRow: true)
        let header = try XCTUnwrap(csv.headerRow)
        XCTAssertEqual(header.suffix(4), ["in_domain", "outside_domain", "ood_features", "posterior_from"])
        var unfamiliar = 0
        while let row = csv.next() {
            let distance = try XCTUnwrap(Double(row[header.count - 2]))
            let says = row[header.count - 3].split(separator: ";").contains("unfamiliar")
            XCTAssertEqual(says, distance > threshold, "\(row)")
            if says { XCTAssertEqual(row[header.count - 4], "no"); unfamiliar += 1 }
        }
        XCTAssertEqual(unfamiliar, flagged)
        let again = try PipelineRunner(pipelinePath: pipeline.path, options: RunOptions(input: catalog, quiet: true, fresh: true))
            .evaluate(into: folder.appendingPathComponent("eval2"))
        XCTAssertEqual(try XCTUnwrap(again.metrics["flagged_unfamiliar"]), Double(flagged) / 30, accuracy: 1e-12)
        XCTAssertNotNil(again.metrics[flagged < 29 ? "nmad_sersic_n_familiar" : "nmad_sersic_n_unfamiliar"])

        // A density of another width than the encoder's features is refused when the file is read.
        var recipe = loaded.recipe
        var g = SeededGenerator(seed: 4)
        let five: [[Double]] = (0..<10).map { _ in (0..<5).map { _ in Double.random(in: -1...1, using: &g) } }
        recipe.featureDensity = try FeatureDensity.fit(features: five, labels: Array(repeating: 0, count: 10))
        let wrong = folder.appendingPathComponent("wrong.safetensors")
        try ModelFile(model: loaded.network, architecture: loaded.architecture, preprocessing: recipe.json).write(to: wrong)
        XCTAssertThrowsError(try TrainedModel(contentsOf: wrong)) {
            XCTAssert("\($0)".contains("dimension 5") && "\($0)".contains("4 penultimate features"), "\($0)")
        }
    }

    /// `--calibrate` on a regression whose network has no pooled features (a small CNN) names
    /// the model and what it needs, and writes nothing; on a segmenter it names the tasks it serves.
    func testCalibrateRefusesNetworksWithoutPooledFeatures() throws {
        let folder = try makeTemporaryDirectory("calibrate-refused")
        let shipped = try TrainedModel(contentsOf: repositoryRoot.appendingPathComponent("samples/models/regression.safetensors"))
        var recipe = shipped.recipe
        recipe.featureDensity = nil
        let architecture = Architecture(name: .cnn, inChannels: 1, classes: 8, imageSize: 64)
        let model = try architecture.makeModel(seed: 2)
        model.eval()
        let weights = folder.appendingPathComponent("cnn.safetensors")
        try ModelFile(model: model, architecture: architecture, preprocessing: recipe.json).write(to: weights)
        let pipeline = folder.appendingPathComponent("p.yaml")
        try "task: regress\ninput: {path: \(samples.path)}\nmodel: {weights: \(weights.path)}\noutputs: {csv: out.csv}\n"
            .write(to: pipeline, atomically: true, encoding: .utf8)
        let copy = folder.appendingPathComponent("copy.safetensors")
        XCTAssertThrowsError(try PipelineRunner(pipelinePath: pipeline.path, options: RunOptions(
            input: samples.appendingPathComponent("catalog.csv").path, quiet: true, fresh: true))
            .evaluate(into: folder.appendingPathComponent("eval"), calibratedModel: copy)) {
            XCTAssert("\($0)".contains(weights.path) && "\($0)".contains("has no pooled features"), "\($0)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: copy.path))
        try "task: segment\ninput: {path: \(samples.path)}\nmodel: {weights: \(weights.path)}\n".write(to: pipeline, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try PipelineRunner(pipelinePath: pipeline.path, options: RunOptions(quiet: true, fresh: true))
            .evaluate(into: folder.appendingPathComponent("eval2"), calibratedModel: copy)) {
            XCTAssert("\($0)".contains("or a regression, not segment"), "\($0)")
        }
    }

    /// The shipped regressors' magnitudes are unbiased on new simulated cutouts: about half the
    /// truths lie below each magnitude estimate and the median error is within 0.011 mag of zero
    /// (400 galaxies: its spread is ~0.004). Both models were trained on from batch norms in
    /// inference mode; before it the posterior (run 4) put 0.70 of the truths below its medians,
    /// 0.02 mag too faint, and the Gaussian regressor 0.69, 0.03 mag too faint.
    func testShippedRegressorsMagnitudesAreUnbiased() throws {
        let folder = try makeTemporaryDirectory("regression-bias")
        let data = folder.appendingPathComponent("data")
        _ = try Simulator(task: .regression, seed: 77).writeDataset(count: 400, to: data)
        let catalog = try CSVReader(string: try String(contentsOf: data.appendingPathComponent("catalog.csv"), encoding: .utf8),
                                    hasHeaderRow: true)
        var truth = [String: Double]()
        while let row = catalog.next() { truth[row[0]] = Double(row[4]) }
        for model in ["posterior", "regression"] {
            try """
            task: regress
            input: {path: \(data.path)}
            model: {weights: \(repositoryRoot.appendingPathComponent("samples/models/\(model).safetensors").path)}
            outputs: {csv: out.csv}
            """.write(to: folder.appendingPathComponent("p.yaml"), atomically: true, encoding: .utf8)
            let run = try PipelineRunner(pipelinePath: folder.appendingPathComponent("p.yaml").path,
                                         options: RunOptions(quiet: true)).predictAll()
            var errors = [Double]()
            for (entry, prediction) in run.results {
                let t = try XCTUnwrap(truth[entry.url.lastPathComponent], entry.name)
                switch prediction {
                case let .posterior(p): errors.append(p.medians[3] - t)
                case let .regression(r): errors.append(r.values[3] - t)
                default: return XCTFail("\(model): \(prediction)")
                }
            }
            XCTAssertEqual(errors.count, 400, model)
            let below = Double(errors.filter { $0 > 0 }.count) / Double(errors.count)
            XCTAssert((0.42...0.58).contains(below), "\(model): fraction of truths below the magnitude estimate: \(below)")
            XCTAssertEqual(errors.sorted()[errors.count / 2], 0, accuracy: 0.011, "\(model): median magnitude error")
        }
    }

    /// A `header_channel` stage in a posterior pipeline: the model file says one context
    /// channel (input [2, 64, 64], encoder on one band), the header's PSF_FWHM moves the
    /// posterior of the same image, and a non-finite value is an error naming the keyword
    /// (a missing one: StageTests).
    func testHeaderChannelTrainsIntoTheContextAndMovesThePosterior() throws {
        let root = try makeTemporaryDirectory("posterior-header")
        let pipeline = root.appendingPathComponent("train.yaml")
        try """
        task: regress
        input:
          target_columns: [sersic_n, r_e, q, mag]
          log_targets: [r_e]
          target_bounds: {sersic_n: [0.5, 6.0], r_e: [0.3, 3.0], q: [0.2, 1.0], mag: [17.0, 22.0]}
        stages:
          - scale_by_noise: {sigma: 10.0}
          - asinh: {softening: 3.0}
          - header_channel: {keyword: PSF_FWHM, range: [0.6, 1.0]}
        model:
          architecture: {name: resnet18_flow, widths: [4, 4, 4, 4], stem_pool: false, classes: 6,
                         flow: {layers: 2, hidden: [8], bins: 4}}
          train: {data: \(samples.appendingPathComponent("catalog.csv").path), epochs: 1, batch_size: 8,
                  loss: negative_log_likelihood, learning_rate: 0.001, seed: 3,
                  save: \(root.appendingPathComponent("m.safetensors").path)}
        """.write(to: pipeline, atomically: true, encoding: .utf8)
        _ = try PipelineRunner(pipelinePath: pipeline.path, options: RunOptions(quiet: true)).train()
        let url = root.appendingPathComponent("m.safetensors")
        let trained = try TrainedModel(contentsOf: url)
        XCTAssertEqual(trained.architecture.contextChannels, 1)
        XCTAssertEqual(trained.architecture.inChannels, 2)
        XCTAssertEqual(trained.recipe.inputShape, [2, 64, 64])
        XCTAssertEqual(trained.recipe.stages.last, .headerChannel(keyword: "PSF_FWHM", range: 0.6...1.0))
        XCTAssertEqual((trained.network as? PosteriorRegressor)?.contextFeatures, 7)

        let entry = CatalogEntry(url: samples.appendingPathComponent("regression_000000.fits"), name: "regression_000000.fits",
                                 targets: [])
        func medians(_ values: [String: Double]) throws -> (medians: [Double], sample: Sample) {
            let predictor = try Predictor(contentsOf: url, headerValues: values)
            let sample = try predictor.prepared(entry)
            guard case let .posterior(p) = predictor.predict([sample.image])[0] else { throw XCTSkip("not a posterior") }
            return (p.medians, sample)
        }
        let (sharp, sharpSample) = try medians(["PSF_FWHM": 0.6]), (broad, _) = try medians(["PSF_FWHM": 1.0])
        XCTAssertEqual(sharpSample.image.channel(1).pixels.first, -1)
        XCTAssertNotEqual(sharp, broad, "the PSF in the context changes the posterior")
        XCTAssert(sharpSample.assumptions.isEmpty)
        XCTAssertThrowsError(try medians(["PSF_FWHM": .infinity])) {
            XCTAssert($0.localizedDescription.contains("PSF_FWHM"), "\($0)")
        }
    }

    func testPipelineKeysOfPosteriorModelsAreChecked() throws {
        func decode(_ yaml: String) throws -> PipelineConfig { try PipelineLoader.parse(yaml, file: "p.yaml") }
        func assertRefused(_ yaml: String, saying text: String, line: UInt = #line) {
            XCTAssertThrowsError(try decode(yaml), line: line) {
                XCTAssert($0.localizedDescription.contains(text), "\($0)", line: line)
            }
        }
        let base = "task: regress\ninput: {target_columns: [n, r_e], log_targets: [r_e], "
        assertRefused(base + "target_bounds: {r_e: [0, 3]}}\nmodel: {weights: m.safetensors}", saying: "lo > 0 (a log10 target)")
        assertRefused(base + "target_bounds: {m: [0, 3]}}\nmodel: {weights: m.safetensors}", saying: "target_bounds names 'm'")
        let arch = base + "target_bounds: {n: [0.5, 6], r_e: [0.3, 3]}}\nmodel:\n  architecture: "
        assertRefused(arch + "{name: resnet18_flow, classes: 8}\n  train: {epochs: 1}", saying: "resnet18_flow needs a 'flow' block")
        assertRefused(arch + "{name: resnet18_flow, classes: 8, flow: {transform: splin}}\n  train: {epochs: 1}",
                      saying: "'splin' is not a valid transform")
        let config = try decode(arch + "{name: resnet18_flow, classes: 8, flow: {layers: 4, bins: 6}}\n"
                                + "  train: {epochs: 1, loss: negative_log_likelihood, save: m.safetensors}")
        XCTAssertEqual(config.model.architecture?.flow, FlowSettings(features: 0, layers: 4, hidden: [64, 64], bins: 6, tailBound: 5))
        XCTAssertEqual(config.model.train?.loss, .negativeLogLikelihood)
        XCTAssertEqual(config.input.targetBounds["r_e"], [0.3, 3])
        assertRefused(arch + "{name: resnet18_flow, classes: 8, views: 2, flow: {layers: 4}}\n  train: {epochs: 1}",
                      saying: "views must be 1, 4 (the 90° rotations) or 8")
        assertRefused(arch + "{name: resnet18, classes: 8, views: 8}\n  train: {epochs: 1}", saying: "'views' belongs to resnet18_flow")
        let invariant = try decode(arch + "{name: resnet18_flow, classes: 8, views: 8, flow: {location_scale: true}}\n"
                                   + "  train: {epochs: 1, save: m.safetensors}")
        XCTAssertEqual(invariant.model.architecture?.views, 8)
        XCTAssertEqual(invariant.model.architecture?.flow?.locationScale, true)
    }
}
