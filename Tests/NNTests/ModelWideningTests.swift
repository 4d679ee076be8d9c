// scripts/widen_model.py against the engine: a widened model file computes what the original did.
import Autograd
import Foundation
import NN
import TestSupport
import XCTest

final class ModelWideningTests: XCTestCase {
    /// A ResNet-18 classifier and a posterior model with every tensor random (batch-norm
    /// statistics too, so a channel whose statistics were not copied shows), widened 1.5× with
    /// no noise: the same logits / contexts and log-probabilities, wider stages in the file; with
    /// noise the outputs move. Skipped where python3 with numpy is missing.
    func testWidenedModelFileComputesTheSame() throws {
        guard runProcess("/usr/bin/env", ["python3", "-c", "import numpy"]).status == 0 else {
            throw XCTSkip("python3 with numpy is not installed")
        }
        let directory = try makeTemporaryDirectory("widen")
        defer { try? FileManager.default.removeItem(at: directory) }
        let script = repositoryRoot.appendingPathComponent("scripts/widen_model.py").path
        let flow = FlowSettings(features: 4, layers: 2, hidden: [8], bins: 4)
        let architectures = [
            Architecture(name: .resnet18, inChannels: 2, classes: 3, widths: [4, 6, 8, 8], stemPool: false),
            Architecture(name: .resnet18Flow, inChannels: 2, classes: 6, widths: [4, 6, 8, 8], stemPool: false,
                         flow: flow, contextChannels: 1),
        ]
        var g = SeededGenerator(seed: 21)
        for architecture in architectures {
            let model = try architecture.makeModel(seed: 5)
            var state: [String: Tensor] = [:]
            for (key, tensor) in model.stateDict().sorted(by: { $0.key < $1.key }) {
                let noise = Tensor.randomNormal(tensor.shape, generator: &g)
                state[key] = key.hasSuffix("running_var") ? noise.abs() + 0.5 : noise * 0.3
            }
            try model.load(stateDict: state, mode: .strict)
            model.eval()
            let original = directory.appendingPathComponent("\(architecture.name.rawValue).safetensors")
            try ModelFile(model: model, architecture: architecture).write(to: original)

            let images = Tensor.randomNormal([3, 1, 32, 32], generator: &g)
            let planes = Tensor(shape: [3, 1, 32, 32], data: [0.5, -1, 0.25].flatMap { [Float](repeating: $0, count: 32 * 32) })
            let input = Tensor.concatenate([images, planes], axis: 1)
            let targets = Tensor.randomNormal([3, 4], generator: &g) * 0.5
            func outputs(_ layer: any Layer) -> [Float] {
                let out = withNoGrad { layer(input) }
                guard let posterior = layer as? PosteriorRegressor else { return out.scalars }
                return out.scalars + withNoGrad { posterior.logProbability(targets, context: out) }.scalars
            }
            let reference = outputs(model)

            for noise in ["0", "0.5"] {
                let widened = directory.appendingPathComponent("\(architecture.name.rawValue)-\(noise).safetensors")
                let run = runProcess("/usr/bin/env", ["python3", script, original.path, widened.path,
                                                      "--factor", "1.5", "--noise", noise, "--seed", "3"])
                XCTAssertEqual(run.status, 0, run.output)
                let file = try ModelFile(contentsOf: widened)
                XCTAssertEqual(file.architecture.widths, [6, 9, 12, 12])
                let wide = outputs(file.model)
                XCTAssertEqual(wide.count, reference.count)
                let difference = zip(wide, reference).map { abs($0 - $1) / Swift.max(1, abs($1)) }.max() ?? .infinity
                if noise == "0" {
                    XCTAssertLessThan(difference, 1e-4, "\(architecture.name.rawValue): widened without noise")
                } else {
                    XCTAssertGreaterThan(difference, 1e-3, "\(architecture.name.rawValue): the copies' noise changes nothing")
                }
            }
        }
        // Not a ResNet: refused with the reason.
        let mlp = Architecture(name: .mlp, inChannels: 4, classes: 2, widths: [8])
        let path = directory.appendingPathComponent("mlp.safetensors")
        try ModelFile(model: try mlp.makeModel(seed: 1), architecture: mlp).write(to: path)
        let refused = runProcess("/usr/bin/env", ["python3", script, path.path, path.path + ".wide", "--factor", "2"])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssert(refused.output.contains("not a ResNet model file"), refused.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path.path + ".wide"))
        let missing = runProcess("/usr/bin/env", ["python3", script, path.path + ".absent", path.path + ".wide", "--factor", "2"])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssert(missing.output.contains("no such model file"), missing.output)
        let text = directory.appendingPathComponent("notes.safetensors")
        try Data("not a model file, just text".utf8).write(to: text)
        let garbage = runProcess("/usr/bin/env", ["python3", script, text.path, path.path + ".wide", "--factor", "2"])
        XCTAssertNotEqual(garbage.status, 0)
        XCTAssert(garbage.output.contains("not a safetensors model file"), garbage.output)
        let original = directory.appendingPathComponent("resnet18.safetensors")
        let narrowing = runProcess("/usr/bin/env", ["python3", script, original.path, path.path + ".wide", "--factor", "0.5"])
        XCTAssertNotEqual(narrowing.status, 0)
        XCTAssert(narrowing.output.contains("--factor must be above 1"), narrowing.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path.path + ".wide"))
    }
}
