import Explain
import FITS
import Foundation
import Preprocessing
import TestSupport
import XCTest
@testable import Pipelines

/// `outputs.explain`: strict decoding, and a run that writes maps beside its predictions.
final class ExplanationTests: XCTestCase {
    func pipeline(_ explain: String, weights: String = "../samples/models/morphology.safetensors") -> String {
        """
        name: explain-test
        task: classify
        model:
          weights: \(weights)
        outputs:
          csv: predictions.csv
          explain:
        \(explain.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n"))
        """
    }

    func testExplainKeysDecodeStrictly() throws {
        let config = try PipelineLoader.parse(pipeline("""
            folder: maps
            methods: [integrated_gradients, gradcam, occlusion]
            target: spiral
            layer: layer3
            steps: 64
            integration: riemann_trapezoid
            window: 6
            stride: 3
            relu: true
            interpolation: bilinear
            overlay: contours
            """), file: "p.yaml")
        let explain = try XCTUnwrap(config.outputs.explain)
        XCTAssertEqual(explain.folder, "maps")
        XCTAssertEqual(explain.methods, [.integratedGradients, .gradCAM, .occlusion])
        XCTAssertEqual(explain.target, .name("spiral"))
        XCTAssertEqual(explain.options.layer, "layer3")
        XCTAssertEqual(explain.options.steps, 64)
        XCTAssertEqual(explain.options.integration, .riemannTrapezoid)
        XCTAssertEqual(explain.options.window, [6])
        XCTAssertEqual(explain.options.strides, [3])
        XCTAssertTrue(explain.options.relu)
        XCTAssertEqual(explain.options.interpolation, .bilinear)
        XCTAssertEqual(explain.overlay, .contours)
        XCTAssertNil(explain.options.tolerance)
        XCTAssertFalse(explain.saveInputs)
        let adaptive = try XCTUnwrap(try PipelineLoader.parse(pipeline("tolerance: 0.01\nmax_steps: 512\nsave_inputs: true"),
                                                              file: "p.yaml").outputs.explain)
        XCTAssertEqual(adaptive.options.tolerance, 0.01)
        XCTAssertEqual(adaptive.options.maxSteps, 512)
        XCTAssertTrue(adaptive.saveInputs)

        let cases: [(String, [String])] = [
            ("metods: [saliency]", ["metods"]),
            ("methods: [saliency, gradcamm]", ["gradcamm", "gradcam", "integrated_gradients", "occlusion"]),
            ("integration: simpson", ["simpson", "gausslegendre", "riemann_trapezoid"]),
            ("overlay: heat", ["heat", "colour", "contours"]),
            ("steps: 0", ["positive"]),
            ("tolerance: 1.5", ["tolerance", "0.01 = 1 %"]),
            ("tolerance: 0.01\nsteps: 64\nmax_steps: 32", ["max_steps", "64", "32"]),
            ("save_input: true", ["save_input", "save_inputs"]),
        ]
        for (text, words) in cases {
            XCTAssertThrowsError(try PipelineLoader.parse(pipeline(text), file: "p.yaml"), text) { error in
                for word in words { XCTAssertTrue(error.localizedDescription.contains(word), "\(text): \(error.localizedDescription)") }
            }
        }
    }

    /// A run with outputs.explain writes, per file, the maps as FITS (with the input's WCS),
    /// an overlay PNG, and a contact sheet; the predictions are unchanged.
    func testRunWritesMapsWithTheInputsWCS() throws {
        let folder = try makeTemporaryDirectory("explain")
        let samples = repositoryRoot.appendingPathComponent("samples/morphology")
        for i in 0..<2 {
            let source = try FITSFile(path: samples.appendingPathComponent(String(format: "morphology_%06d.fits", i)).path)
            let image = try source.readImage(0, as: Float.self)
            var header = image.header
            header.set("CTYPE1", .string("RA---TAN"))
            header.set("CTYPE2", .string("DEC--TAN"))
            header.set("CRVAL1", .float(150.1))
            header.set("CRVAL2", .float(2.2))
            header.set("CRPIX1", .float(32.5))
            header.set("CRPIX2", .float(32.5))
            header.set("CDELT1", .float(-5.5e-5))
            header.set("CDELT2", .float(5.5e-5))
            let writer = try FITSWriter(path: folder.appendingPathComponent("g\(i).fits").path)
            try writer.appendImage(image.pixels, shape: image.shape, header: header)
            try writer.commit()
        }
        let yaml = folder.appendingPathComponent("p.yaml")
        try pipeline("""
            folder: \(folder.appendingPathComponent("maps").path)
            methods: [saliency, gradcam]
            layer: layer3
            """, weights: repositoryRoot.appendingPathComponent("samples/models/morphology.safetensors").path)
            .write(to: yaml, atomically: true, encoding: .utf8)
        let runner = try PipelineRunner(pipelinePath: yaml.path, options: RunOptions(input: folder.path + "/g*.fits",
                                                                                    output: folder.appendingPathComponent("p.csv").path,
                                                                                    quiet: true))
        let run = try runner.predictAll()
        XCTAssertEqual(run.summary.done, 2)
        let maps = folder.appendingPathComponent("maps")
        for i in 0..<2 {
            let saliency = try FITSFile(path: maps.appendingPathComponent("g\(i).saliency.fits").path)
            let image = try saliency.readImage(0, as: Float.self)
            XCTAssertEqual(image.shape, [64, 64, 1].prefix(image.shape.count).map { $0 })
            XCTAssertEqual(image.header.string("CTYPE1"), "RA---TAN")
            XCTAssertEqual(image.header.double("CRVAL2"), 2.2)
            XCTAssertEqual(image.header.string("METHOD"), "saliency")
            XCTAssertGreaterThan(image.pixels.max()!, 0)
            XCTAssertGreaterThanOrEqual(image.pixels.min()!, 0)   // absolute by default
            let cam = try FITSFile(path: maps.appendingPathComponent("g\(i).gradcam.fits").path).readImage(0, as: Float.self)
            XCTAssertEqual(cam.shape, [64, 64])
            XCTAssertEqual(cam.header.string("LAYER"), "layer3")
            // The explained class is the predicted one.
            guard case let .classes(p) = run.results[i].prediction else { return XCTFail("classes expected") }
            XCTAssertEqual(cam.header.integer("TARGET"), p.probabilities.indices.max { p.probabilities[$0] < p.probabilities[$1] })
            XCTAssertTrue(FileManager.default.fileExists(atPath: maps.appendingPathComponent("g\(i).png").path))
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: maps.appendingPathComponent("contact_sheet.png").path))
        XCTAssertTrue(run.summary.outputs.contains(maps.appendingPathComponent("contact_sheet.png").path))
    }

    /// `--compare-model`: a model against itself gives ρ = 1 for every image and method; a
    /// model with another input or other outputs is refused, naming both.
    func testModelComparisonOfAModelWithItselfIsOneAndOtherRecipesAreRefused() throws {
        let folder = try makeTemporaryDirectory("explain-compare")
        let yaml = folder.appendingPathComponent("p.yaml")
        let weights = repositoryRoot.appendingPathComponent("samples/models/morphology.safetensors").path
        try pipeline("methods: [saliency, gradcam]\nlayer: layer3", weights: weights).write(to: yaml, atomically: true, encoding: .utf8)
        let runner = try PipelineRunner(pipelinePath: yaml.path, options: RunOptions(
            input: repositoryRoot.appendingPathComponent("samples/morphology").path + "/morphology_00000[0-2].fits",
            output: folder.appendingPathComponent("p.csv").path, quiet: true))
        let same = try runner.modelComparison(runner.config.outputs.explain!, otherModel: weights, folder: folder, count: 3)
        XCTAssertEqual(same.mean[.saliency]!, 1, accuracy: 1e-9)
        XCTAssertEqual(same.mean[.gradCAM]!, 1, accuracy: 1e-9)
        let csv = try String(contentsOf: folder.appendingPathComponent("model-comparison.csv"), encoding: .utf8)
        XCTAssertEqual(csv.split(separator: "\n").count, 5, csv)   // header, 3 files, mean
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder.appendingPathComponent("model-comparison.png").path))
        let regression = repositoryRoot.appendingPathComponent("samples/models/regression.safetensors").path
        XCTAssertThrowsError(try runner.modelComparison(runner.config.outputs.explain!, otherModel: regression, folder: folder,
                                                        count: 3)) { error in
            guard case let PipelineError.modelFile(path, reason) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(path.hasSuffix("regression.safetensors") && reason.contains("cannot be compared"), reason)
        }
    }

    /// With a tolerance the steps used are recorded (FITS STEPS, IGCONV; completeness.csv), a
    /// file that hits max_steps is warned about, and save_inputs writes the network input.
    func testToleranceRecordsStepsAndWarnsAtTheCap() throws {
        let folder = try makeTemporaryDirectory("explain-tolerance")
        let yaml = folder.appendingPathComponent("p.yaml")
        let weights = repositoryRoot.appendingPathComponent("samples/models/morphology.safetensors").path
        try pipeline("methods: [integrated_gradients]\nsteps: 4\ntolerance: 0.000001\nmax_steps: 10\nsave_inputs: true",
                     weights: weights).write(to: yaml, atomically: true, encoding: .utf8)
        let runner = try PipelineRunner(pipelinePath: yaml.path, options: RunOptions(
            input: repositoryRoot.appendingPathComponent("samples/morphology/morphology_000000.fits").path,
            output: folder.appendingPathComponent("p.csv").path, quiet: true))
        final class Lines { var all = [String]() }
        let lines = Lines()
        let writer = try ExplanationWriter(predictor: try runner.makePredictor(),
                                           network: try TrainedModel(contentsOf: URL(fileURLWithPath: weights)).network,
                                           config: runner.config.outputs.explain!, folder: folder, log: { lines.all.append($0) })
        let entry = try runner.inputCatalog().entries[0]
        let c = try XCTUnwrap(try writer.explain(entry).completeness)
        XCTAssertEqual(c.steps, 10)
        XCTAssertFalse(c.converged)
        XCTAssertGreaterThan(c.relative, 1e-6)
        XCTAssertEqual(lines.all.count, 1)
        XCTAssertTrue(lines.all[0].contains("not met within max_steps") && lines.all[0].contains("at 10 steps"), lines.all[0])
        let map = try FITSFile(path: folder.appendingPathComponent("morphology_000000.integrated_gradients.fits").path)
            .readImage(0, as: Float.self)
        XCTAssertEqual(map.header.integer("STEPS"), 10)
        XCTAssertEqual(map.header.string("IGRULE"), "adaptive_trapezoid")
        XCTAssertEqual(map.header.logical("IGCONV"), false)
        let input = try FITSFile(path: folder.appendingPathComponent("morphology_000000.input.fits").path).readImage(0, as: Float.self)
        XCTAssertEqual(input.pixels, try runner.makePredictor().prepared(entry).image.pixels)

        let run = try runner.explainAll(runner.config.outputs.explain!, folder: folder)
        XCTAssertEqual(run.completeness.map(\.completeness.steps), [10])
        let csv = try String(contentsOf: folder.appendingPathComponent("completeness.csv"), encoding: .utf8)
        let rows = csv.split(separator: "\n")
        XCTAssertEqual(rows.first, "file,delta,abs_output_change,relative_delta,steps,converged")
        XCTAssertTrue(rows.count == 2 && rows[1].hasSuffix(",10,false"), csv)
    }

    func testUnknownLayerNamesTheValidOnes() throws {
        let folder = try makeTemporaryDirectory("explain-layer")
        let yaml = folder.appendingPathComponent("p.yaml")
        try pipeline("methods: [gradcam]\nlayer: layer5",
                     weights: repositoryRoot.appendingPathComponent("samples/models/morphology.safetensors").path)
            .write(to: yaml, atomically: true, encoding: .utf8)
        let runner = try PipelineRunner(pipelinePath: yaml.path, options: RunOptions(
            input: repositoryRoot.appendingPathComponent("samples/morphology/morphology_000000.fits").path,
            output: folder.appendingPathComponent("p.csv").path, quiet: true))
        XCTAssertThrowsError(try runner.explainAll(runner.config.outputs.explain!, folder: folder)) { error in
            guard case let ExplainError.unknownLayer(layer, valid) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(layer, "layer5")
            XCTAssertTrue(valid.contains("layer4.1.conv2") && valid.contains("fc"), "\(valid)")
        }
    }
}
