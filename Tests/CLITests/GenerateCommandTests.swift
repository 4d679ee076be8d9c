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
    }
}
