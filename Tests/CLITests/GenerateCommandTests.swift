// `astrolabe generate` from the command line: the shipped noiseless generator, and --noiseless refused where it means nothing.
import Foundation
import NN
import Pipelines
import Preprocessing
import TestSupport
import XCTest

final class GenerateCommandTests: XCTestCase {
    func testNoiselessImagesAndClearRefusals() throws {
        let folder = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let clean = folder.appendingPathComponent("clean")
        let run = try runTool(["generate", "--weights", "samples/models/generator.safetensors", "--count", "2",
                               "--output", clean.path, "--noiseless"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let text = try String(contentsOf: clean.appendingPathComponent("generated_000001.fits"), encoding: .isoLatin1)
        XCTAssert(text.contains("OBSNOISE=                    F"), "the header says no noise was added")

        // A generator that draws its own noise has no noiseless images: refused, nothing written.
        let input = try PipelineLoader.parse("task: generate\nmodel: {weights: x.safetensors}", file: "g.yaml").input
        let stages: [Stage] = [.scaleByNoise(.header(keyword: "SKYSIG", bandKeywords: [])), .asinh(AsinhScaling(softening: 1, scale: 0.2))]
        let model = folder.appendingPathComponent("noisy.safetensors")
        try ModelFile(model: DCGANGenerator(latentDimension: 4, widths: [8, 4], seed: 1),
                      architecture: Architecture(name: .dcgan, inChannels: 4, classes: 1, widths: [8, 4]),
                      preprocessing: ModelRecipe(task: .generate, stages: stages, input: input, inputShape: [1, 16, 16]).json).write(to: model)
        let out = folder.appendingPathComponent("out")
        let refused = try runTool(["generate", "--weights", model.path, "--count", "2", "--output", out.path, "--noiseless"])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssert(refused.stderr.contains("not trained with observe_noise") && refused.stderr.contains(model.path), refused.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))
        let compared = try runTool(["generate", "--weights", "samples/models/generator.safetensors", "--count", "2",
                                    "--output", out.path, "--noiseless", "--compare-to", folder.path])
        XCTAssertNotEqual(compared.status, 0)
        XCTAssert(compared.stderr.contains("--noiseless"), compared.stderr)
        // A truncation that is too small or not a number is refused by name, nothing written.
        for value in ["--truncation=0.001", "--truncation=nan"] {
            let bad = try runTool(["generate", "--weights", "samples/models/generator.safetensors", "--count", "2",
                                   "--output", out.path, value])
            XCTAssertNotEqual(bad.status, 0, value)
            XCTAssert(bad.stderr.contains("--truncation must be a number of at least 0.01"), bad.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))
        }
        // A missing classifier or reference set is named before any image is written.
        for (extra, name) in [(["--compare-to", folder.path, "--classifier", "nowhere.safetensors"], "nowhere.safetensors"),
                              (["--compare-to", folder.appendingPathComponent("no-set").path], "no-set"),
                              (["--compare-to", clean.path, "--floor", folder.appendingPathComponent("no-floor").path], "no-floor")] {
            let missing = try runTool(["generate", "--weights", "samples/models/generator.safetensors", "--count", "2",
                                       "--output", out.path] + extra)
            XCTAssertNotEqual(missing.status, 0, name)
            XCTAssert(missing.stderr.contains(name), missing.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "no images written when \(name) is missing")
        }
    }

    /// `compare-images` scores images already written: two generation seeds differ, a set
    /// against itself is at zero, the JSON holds what the console says, a missing folder is named.
    func testCompareImagesScoresExistingFolders() throws {
        let folder = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let a = folder.appendingPathComponent("a"), b = folder.appendingPathComponent("b")
        for (dir, seed) in [(a, "1"), (b, "2")] {
            let run = try runTool(["generate", "--weights", "samples/models/generator.safetensors", "--count", "30",
                                   "--output", dir.path, "--seed", seed])
            XCTAssertEqual(run.status, 0, run.stderr)
        }
        let json = folder.appendingPathComponent("fd.json")
        let run = try runTool(["compare-images", a.path, "--compare-to", b.path, "--floor", a.path, "--output", json.path])
        XCTAssertEqual(run.status, 0, run.stderr)
        let numbers = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any])
        let distance = try XCTUnwrap(numbers["frechet_distance"] as? Double), floor = try XCTUnwrap(numbers["frechet_floor"] as? Double)
        XCTAssertGreaterThan(distance, 0.1)
        XCTAssertEqual(floor, distance, accuracy: 1e-6 * distance, "the floor here is b against a: the same pair")
        XCTAssert(run.stdout.contains(String(format: "%.3f", distance)), run.stdout)
        XCTAssertEqual(numbers["generated_count"] as? Int, 30)
        let same = try runTool(["compare-images", a.path, "--compare-to", a.path, "--output", json.path])
        XCTAssertEqual(same.status, 0, same.stderr)
        let zero = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any])?["frechet_distance"] as? Double)
        XCTAssertLessThan(abs(zero), 1e-3 * distance, "a set against itself")
        let missing = try runTool(["compare-images", folder.appendingPathComponent("nowhere").path, "--compare-to", a.path])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssert(missing.stderr.contains("nowhere"), missing.stderr)
        // A truncated file among the images is named with the reason, and nothing is written.
        let broken = folder.appendingPathComponent("broken")
        try FileManager.default.createDirectory(at: broken, withIntermediateDirectories: true)
        let whole = try Data(contentsOf: a.appendingPathComponent("generated_000000.fits"))
        try whole.prefix(3000).write(to: broken.appendingPathComponent("cut.fits"))
        try FileManager.default.copyItem(at: a.appendingPathComponent("generated_000001.fits"),
                                         to: broken.appendingPathComponent("whole.fits"))
        let report = folder.appendingPathComponent("broken.json")
        let truncated = try runTool(["compare-images", broken.path, "--compare-to", a.path, "--output", report.path])
        XCTAssertNotEqual(truncated.status, 0)
        XCTAssert(truncated.stderr.contains("cut.fits") && truncated.stderr.contains("truncated"), truncated.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: report.path))
        // A model that is not an image classifier is refused with its task.
        let regressor = try runTool(["compare-images", a.path, "--compare-to", b.path,
                                     "--classifier", "samples/models/posterior.safetensors"])
        XCTAssertNotEqual(regressor.status, 0)
        XCTAssert(regressor.stderr.contains("posterior.safetensors") && regressor.stderr.contains("regress"), regressor.stderr)
    }
}
