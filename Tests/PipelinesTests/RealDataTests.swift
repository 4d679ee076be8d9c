import FITS
import Foundation
import NN
@testable import Pipelines
import Preprocessing
import TestSupport
import Training
import XCTest

/// Real survey images through the shipped models: headers of other conventions (DSS plate
/// solutions), missing keywords, other zero points and sizes; assumptions said and recorded.
final class RealDataTests: XCTestCase {
    let root = repositoryRoot

    /// Writes a pipeline (`task`, the shipped model `weights`, then `extra` YAML) into `folder`
    /// and runs it over `input` into `output` (a name in `folder`).
    func runPipeline(_ task: String, weights: String, extra: String, in folder: URL, input: URL, output: String) throws -> InferenceRun {
        let pipeline = folder.appendingPathComponent("\(task).yaml")
        try "task: \(task)\nmodel: {weights: \(root.path)/samples/models/\(weights).safetensors}\n\(extra)\n"
            .write(to: pipeline, atomically: true, encoding: .utf8)
        return try PipelineRunner(pipelinePath: pipeline.path, options: RunOptions(
            input: input.path, output: folder.appendingPathComponent(output).path, quiet: true)).predictAll()
    }

    /// A DSS-style header: plate solution, no FITS-WCS CD matrix, no SKYSIG, a sky pedestal.
    func dssHeader() -> FITSHeader {
        FITSHeader([
            HeaderRecord("OBJECT", .string("field"), comment: "name"),
            HeaderRecord("BUNIT", .string("ADU")),
            HeaderRecord("PLTRAH", .integer(0)), HeaderRecord("PLTRAM", .integer(42)), HeaderRecord("PLTRAS", .float(44.3)),
            HeaderRecord("PLTDECSN", .string("+")), HeaderRecord("PLTDECD", .integer(41)), HeaderRecord("PLTDECM", .integer(16)),
            HeaderRecord("PLTDECS", .float(9.0)), HeaderRecord("PLTSCALE", .float(67.2)),
            HeaderRecord("XPIXELSZ", .float(25.0)), HeaderRecord("YPIXELSZ", .float(25.0)),
            HeaderRecord("PPO3", .float(29_000.0)), HeaderRecord("PPO6", .float(29_000.0)),
            HeaderRecord("AMDX1", .float(67.18)), HeaderRecord("AMDX2", .float(0.0012)), HeaderRecord("AMDX3", .float(-391.3)),
            HeaderRecord("AMDY1", .float(67.19)), HeaderRecord("AMDY2", .float(-0.0009)), HeaderRecord("AMDY3", .float(408.1)),
            HeaderRecord("CNPIX1", .integer(11_000)), HeaderRecord("CNPIX2", .integer(9_000)),
            HeaderRecord("CTYPE1", .string("RA---TAN")), HeaderRecord("CTYPE2", .string("DEC--TAN")),
            HeaderRecord("CRVAL1", .float(10.68)), HeaderRecord("CRVAL2", .float(41.27)),
            HeaderRecord("CRPIX1", .float(32.5)), HeaderRecord("CRPIX2", .float(32.5)),
        ])
    }

    func testSegmentationKeepsEveryHeaderCardAndSaysWhatItAssumed() throws {
        let folder = try makeTemporaryDirectory("dss")
        var rng = SeededGenerator(seed: 4)
        let map = folder.appendingPathComponent("maps/plate.fits")
        try FileManager.default.createDirectory(at: map.deletingLastPathComponent(), withIntermediateDirectories: true)
        let writer = try FITSWriter(path: map.path)
        try writer.appendImage((0..<(96 * 80)).map { _ in Float(3000 + 12 * rng.normal()) }, shape: [80, 96], header: dssHeader())
        try writer.commit()
        let run = try runPipeline("segment", weights: "segmentation", extra: "tiling: {tile: 64, overlap: 16}", in: folder,
                          input: folder.appendingPathComponent("maps"), output: "out")
        XCTAssertEqual(run.summary.failed, 0)
        let header = try FITSFile(path: folder.appendingPathComponent("out/plate.fits").path).header()
        for record in dssHeader().records where record.keyword != "BUNIT" {
            XCTAssertEqual(header[record.keyword], record.value, record.keyword)
        }
        XCTAssertNil(header["BUNIT"], "the class map is not in ADU")
        let comments = header.comments.joined(separator: " ")
        XCTAssert(comments.contains("SKYSIG not in the header: noise estimated from the data"), comments)
        XCTAssert(comments.contains("so a 64-pixel mesh background was subtracted"), comments)
        // The run record beside the output keeps the per-file assumptions.
        let record = try String(contentsOf: folder.appendingPathComponent("out.runs.jsonl"), encoding: .utf8)
        XCTAssert(record.contains("plate.fits") && record.contains("noise estimated from the data"), record)
    }

    /// A map in other units (zero point 25, pixels 100× fainter, no SKYSIG) is segmented as
    /// the same map at the model's zero point: the noise settled on the central rows is kept in
    /// the input's units, so each band of rows is rescaled once.
    func testMapsAtAnotherZeroPointGetTheSameClasses() throws {
        let folder = try makeTemporaryDirectory("zp-map")
        let original = try FITSFile(path: root.appendingPathComponent("samples/segmentation/segmentation_000001.fits").path)
            .readImage(0, as: Float.self)
        var header = FITSHeader(original.header.records.filter { $0.keyword != "SKYSIG" })
        let maps = folder.appendingPathComponent("maps")
        try FileManager.default.createDirectory(at: maps, withIntermediateDirectories: true)
        for (name, zp, factor) in [("at30.fits", 30.0, Float(1)), ("at25.fits", 25.0, Float(0.01))] {
            header.set("MAGZERO", .float(zp))
            let writer = try FITSWriter(path: maps.appendingPathComponent(name).path)
            try writer.appendImage(original.pixels.map { $0 * factor }, shape: original.shape, header: header)
            try writer.commit()
        }
        let run = try runPipeline("segment", weights: "segmentation", extra: "tiling: {tile: 128, overlap: 16}", in: folder,
                          input: maps, output: "out")
        XCTAssertEqual(run.summary.failed, 0)
        let classes = try ["at30.fits", "at25.fits"].map {
            try FITSFile(path: folder.appendingPathComponent("out/\($0)").path).readImage(0, as: Float.self).pixels
        }
        XCTAssertGreaterThan(classes[0].filter { $0 == 1 }.count, 20, "stars found")
        XCTAssertGreaterThan(classes[0].filter { $0 == 2 }.count, 200, "galaxies found")
        let differing = zip(classes[0], classes[1]).filter { $0 != $1 }.count
        XCTAssertLessThan(differing, classes[0].count / 1000, "\(differing) pixels differ")
    }

    func testClassifierBringsAnotherObservationToTheModels() throws {
        // A star at 0.1"/px and zero point 25 in a 100 × 100 cutout with a sky pedestal and no SKYSIG.
        let folder = try makeTemporaryDirectory("real-star")
        var rng = SeededGenerator(seed: 8)
        let (size, fwhm) = (100, 7.0) // 0.7" at 0.1"/px
        let sigma = fwhm / 2.3548, flux = 200.0
        let pixels: [Float] = (0..<(size * size)).map { i in
            let y = Double(i / size) - 49.5, x = Double(i % size) - 49.5
            return Float(4 + flux / (2 * .pi * sigma * sigma) * exp(-(x * x + y * y) / (2 * sigma * sigma)) + 0.05 * rng.normal())
        }
        let file = folder.appendingPathComponent("in/star.fits")
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        let writer = try FITSWriter(path: file.path)
        try writer.appendImage(pixels, shape: [size, size], header: FITSHeader([
            HeaderRecord("PIXSCALE", .float(0.1)), HeaderRecord("PHOTZP", .float(25)), HeaderRecord("SEEING", .float(0.7))]))
        try writer.commit()
        let predictor = try Predictor(contentsOf: root.appendingPathComponent("samples/models/morphology.safetensors"))
        XCTAssertEqual(predictor.matchingStages.map(\.name), ["match_zero_point", "subtract_mesh_background", "estimate_noise",
                                                             "match_pixel_scale", "match_psf", "fit_size"])
        let sample = try predictor.prepared(CatalogEntry(url: file, name: "star.fits"))
        XCTAssertEqual(sample.image.shape, [1, 64, 64])
        XCTAssertEqual(sample.header["PIXSCALE"], 0.2)
        // 100 px at 0.1"/px are 50 px at 0.2"/px: padded to 64, and said.
        XCTAssertEqual(Set(sample.assumptions.map(\.subject)), ["sky", "SKYSIG", "size"])
        guard case let .classes(p) = predictor.predict([sample.image])[0] else { return XCTFail("classes expected") }
        XCTAssertEqual(p.predicted, 4, "the star is a star once matched: \(p.probabilities)")
    }

    /// A class model with an energy threshold flags rows whose energy score is above it.
    func testClassRowsAboveTheEnergyThresholdAreAtypical() {
        var table = ResultTable(.classes(names: ["a", "b"], probabilities: true))
        table.domains = ["x.fits": DomainCheck(outside: [], unknown: [])]
        let typical = Prediction.classes(ClassProbabilities(probabilities: [0.9, 0.1], energy: -5))
        let odd = Prediction.classes(ClassProbabilities(probabilities: [0.6, 0.4], energy: -1))
        XCTAssertEqual(table.qualityText(file: "x.fits", odd), ["yes", "", "-1"], "no threshold, no flag")
        table.energyThreshold = -3.18
        XCTAssertEqual(table.qualityText(file: "x.fits", typical), ["yes", "", "-5"])
        XCTAssertEqual(table.qualityText(file: "x.fits", odd), ["no", "atypical", "-1"])
    }

    /// A feature density whose dimension is not the network's is refused when the file is read.
    func testAFeatureDensityOfTheWrongDimensionIsRefused() throws {
        let url = root.appendingPathComponent("samples/models/morphology.safetensors")
        let model = try TrainedModel(contentsOf: url)
        var recipe = model.recipe
        recipe.featureDensity = try FeatureDensity.fit(features: [[1, 2, 3], [2, 1, 0], [0, 1, 1], [3, 3, 1]], labels: [0, 0, 1, 1])
        let bad = try makeTemporaryDirectory("density").appendingPathComponent("bad.safetensors")
        try ModelFile(model: model.network, architecture: model.architecture, preprocessing: recipe.json).write(to: bad)
        XCTAssertThrowsError(try TrainedModel(contentsOf: bad)) {
            XCTAssert("\($0)".contains("feature density has dimension 3, but the network has 128 penultimate features"), "\($0)")
        }
        // A damaged density (a whitening matrix cut short) is named where it is in the recipe.
        var json = try JSONSerialization.jsonObject(with: Data(recipe.json.utf8)) as! [String: Any]
        var density = json["featureDensity"] as! [String: Any]
        density["whitening"] = [1.0, 2.0]
        json["featureDensity"] = density
        let text = String(decoding: try JSONSerialization.data(withJSONObject: json), as: UTF8.self)
        try ModelFile(model: model.network, architecture: model.architecture, preprocessing: text).write(to: bad)
        XCTAssertThrowsError(try TrainedModel(contentsOf: bad)) {
            XCTAssert($0.localizedDescription.contains("at 'featureDensity.whitening': a feature density of dimension 3 needs 3x3 "
                                                       + "finite whitening values (got 2)"), $0.localizedDescription)
        }
    }

    func testRowsCarryQualityFlagsAndTheEnergyScore() throws {
        let folder = try makeTemporaryDirectory("quality")
        let inputs = folder.appendingPathComponent("in")
        try FileManager.default.createDirectory(at: inputs, withIntermediateDirectories: true)
        let sample = root.appendingPathComponent("samples/morphology/morphology_000000.fits")
        try FileManager.default.copyItem(at: sample, to: inputs.appendingPathComponent("a_typical.fits"))
        // The same pixels claimed to have a 2" PSF and 40 counts of noise: outside the training domain.
        let image = try FITSFile(path: sample.path).readImage(0, as: Float.self)
        var header = image.header
        header.set("PSF_FWHM", .float(2.0))
        header.set("SKYSIG", .float(40))
        let writer = try FITSWriter(path: inputs.appendingPathComponent("b_blurred.fits").path)
        try writer.appendImage(image.pixels, shape: image.shape, header: header)
        try writer.commit()
        let run = try runPipeline("classify", weights: "morphology", extra: "outputs: {fits_table: t.fits}", in: folder,
                          input: inputs, output: "out.csv")
        XCTAssertEqual(run.summary.failed, 0)
        let lines = try String(contentsOf: folder.appendingPathComponent("out.csv"), encoding: .utf8).split(separator: "\n")
        XCTAssert(lines[0].hasSuffix(",p_star,in_domain,outside_domain,ood_energy,ood_features"), String(lines[0]))
        let typical = lines[1].split(separator: ",", omittingEmptySubsequences: false)
        let blurred = lines[2].split(separator: ",", omittingEmptySubsequences: false)
        XCTAssertEqual(typical[7...8], ["yes", ""])
        // Its features are far from the training data's too (noise scaled by 40, not ~10); it is
        // `atypical` exactly when its energy is above the recipe's threshold.
        let threshold = try XCTUnwrap(run.predictor.recipe?.oodEnergyThreshold)
        let atypical = Double(blurred[9])! > threshold
        XCTAssertEqual(blurred[7...8], ["no", atypical ? "psf;depth;atypical;unfamiliar" : "psf;depth;unfamiliar"])
        XCTAssertLessThanOrEqual(Double(typical[9])!, threshold)
        // The energy is −log Σ exp(logits): recomputed from the network's own outputs.
        let entry = CatalogEntry(url: inputs.appendingPathComponent("a_typical.fits"), name: "a_typical.fits")
        let logits = try Predictor(contentsOf: root.appendingPathComponent("samples/models/morphology.safetensors"), raw: true)
        let prepared = try run.predictor.prepared(entry)
        guard case let .logits(values) = logits.predict([prepared.image])[0] else { return XCTFail("logits expected") }
        let top = values.max()!
        XCTAssertEqual(Double(typical[9])!, -(top + log(values.map { exp($0 - top) }.reduce(0, +))), accuracy: 1e-4)
        // The feature distance: the recipe's density on the penultimate features of the prepared image.
        let features = try ClassifierFeatures(contentsOf: root.appendingPathComponent("samples/models/morphology.safetensors"))
        let density = try XCTUnwrap(run.predictor.recipe?.featureDensity)
        let distance = try density.distance(try features.features(Catalog(entries: [entry])).features[0].map(Float.init))
        XCTAssertEqual(Double(typical[10])!, distance, accuracy: 1e-4 * distance)
        let table = try FITSFile(path: folder.appendingPathComponent("t.fits").path).readTable("RESULTS")
        XCTAssertEqual(table.columns.map(\.name).suffix(4), ["in_domain", "outside_domain", "ood_energy", "ood_features"])
    }

    func testALaterMapWithOtherBandsIsItsOwnFailure() throws {
        let folder = try makeTemporaryDirectory("later-cube")
        let maps = folder.appendingPathComponent("maps")
        try FileManager.default.createDirectory(at: maps, withIntermediateDirectories: true)
        var rng = SeededGenerator(seed: 2)
        for (name, planes) in [("a.fits", 1), ("b.fits", 2)] {
            let writer = try FITSWriter(path: maps.appendingPathComponent(name).path)
            try writer.appendImage((0..<(planes * 64 * 64)).map { _ in Float(10 * rng.normal()) },
                                   shape: planes == 1 ? [64, 64] : [64, 64, planes],
                                   header: FITSHeader([HeaderRecord("SKYSIG", .float(10))]))
            try writer.commit()
        }
        let run = try runPipeline("segment", weights: "segmentation", extra: "tiling: {tile: 64, overlap: 16}", in: folder,
                          input: maps, output: "out")
        XCTAssertEqual([run.summary.done, run.summary.failed], [1, 1])
        let errors = try String(contentsOfFile: try XCTUnwrap(run.summary.errorsFile), encoding: .utf8)
        XCTAssert(errors.contains("b.fits,") && errors.contains("[2, 64, 64]"), errors)
    }

    func testTheObservationAndHeaderValuesDecodeStrictlyAndTheRecipeKeepsThem() throws {
        let config = try PipelineLoader.parse("""
            task: classify
            input: {header_values: {magzero: 27.5}, match_observation: false}
            observation: {pixel_scale: 0.262, psf_fwhm: [0.8, 1.4], sky_sigma: [3, 9], zero_point: 22.5, size: [64, 64]}
            model: {weights: x.safetensors}
            """, file: "o.yaml")
        XCTAssertEqual(config.input.headerValues, ["MAGZERO": 27.5])
        XCTAssertFalse(config.input.matchObservation)
        let observation = try XCTUnwrap(config.observation)
        XCTAssertEqual(observation.pixelScale, 0.262)
        XCTAssertEqual(observation.matchingStages().last, .fitSize(height: 64, width: 64))
        XCTAssertThrowsError(try PipelineLoader.parse("""
            task: classify
            observation: {pixel_scale: 0.2, zero_point: 30, seeing: 1}
            model: {weights: x.safetensors}
            """, file: "bad.yaml")) { XCTAssert("\($0)".contains("seeing"), "\($0)") }
        var recipe = ModelRecipe(task: .classify, stages: [], input: config.input, inputShape: [1, 64, 64],
                                 observation: observation)
        recipe.provenance = ["pipeline": "o.yaml"]
        XCTAssertEqual(try ModelRecipe.decode(recipe.json, path: "m"), recipe)
    }
}
