// Every BENCH.md model against PyTorch (Fixtures/make_fixtures.py): weights saved by torch load
// unchanged; eval outputs agree to 1e-4 relative and train-mode gradients to 1e-3.
import Autograd
import Foundation
import NN
import XCTest

final class PyTorchModelTests: XCTestCase {
    /// Loads `<name>.weights.safetensors` strictly, compares eval output, then train-mode
    /// gradients of `sum(output * direction)` for the input and every parameter.
    func check(_ name: String, _ model: any Layer, gradients: Bool = true,
               file: StaticString = #filePath, line: UInt = #line) throws {
        let report = try model.load(contentsOf: Fixtures.url("\(name).weights.safetensors"))
        XCTAssertTrue(report.isComplete, file: file, line: line)
        let io = Fixtures.file("\(name).io.safetensors")
        XCTAssertNotNil(io.metadata["torch"], "fixture header records the torch version", file: file, line: line)

        model.eval()
        let output = withNoGrad { model(io.tensors["input"]!) }
        assertMatches(output, io.tensors["output"]!, relative: 1e-4, "\(name) eval output", file: file, line: line)

        // Folded batch norm + fused ReLU: same outputs within 1e-5 (relative to the logits' scale).
        let fused = model.fusedForInference()
        let fusedOutput = withNoGrad { fused(io.tensors["input"]!) }
        assertMatches(fusedOutput, output, relative: 1e-5, scaleFloor: 1, "\(name) fused output", file: file, line: line)

        guard gradients else { return }
        model.train()
        model.zeroGrad()
        let x = io.tensors["input"]!.copy()
        x.requiresGrad = true
        let y = model(x)
        assertMatches(y, io.tensors["output_train"]!, relative: 1e-4, "\(name) train output", file: file, line: line)
        y.backward(gradient: io.tensors["direction"]!)
        assertMatches(x.grad!, io.tensors["grad.input"]!, relative: 1e-3, "\(name) grad.input", file: file, line: line)
        let parameters = model.namedParameters()
        XCTAssertEqual(Set(parameters.map(\.key)), Set(io.tensors.keys.filter { $0.hasPrefix("grad.") && $0 != "grad.input" }
            .map { String($0.dropFirst(5)) }), "\(name): parameter names", file: file, line: line)
        for (key, p) in parameters {
            guard let expected = io.tensors["grad.\(key)"] else { continue }
            assertMatches(p.grad ?? Tensor.zeros(p.shape), expected, relative: 1e-3, "\(name) grad.\(key)", file: file, line: line)
        }
    }

    func testCNN() throws {
        try check("cnn", SimpleCNN.make(inputChannels: 1, classCount: 5, imageSize: 16))
    }

    func testResNet18FromTorchvision() throws {
        try check("resnet18_torchvision", ResNet.resnet18(inputChannels: 3, classCount: 5, widths: [8, 16, 32, 64]))
    }

    func testResNet18FromTimm() throws {
        try check("resnet18_timm", ResNet.resnet18(inputChannels: 3, classCount: 5, widths: [8, 16, 32, 64]), gradients: false)
    }

    func testUNet() throws {
        try check("unet", UNet(inputChannels: 1, classCount: 3, widths: [4, 8, 16, 32], bottleneckWidth: 64))
    }

    func testLightCurveLSTM() throws {
        try check("lstm", LightCurveLSTM(features: 2, hiddenSize: 64, classCount: 4))
    }

    /// Full-size models produce exactly the `state_dict()` keys and shapes of torchvision,
    /// timm and reference_models.py (BN's `num_batches_tracked` aside, which we do not keep).
    func testFullSizeStateDictNames() throws {
        let data = try Data(contentsOf: Fixtures.url("keys.json"))
        let json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        let models = json["models"] as! [String: [String: [Int]]]
        let ours: [String: any Layer] = [
            "torchvision_resnet18": ResNet.resnet18(inputChannels: 3, classCount: 5),
            "torchvision_resnet34": ResNet.resnet34(inputChannels: 3, classCount: 5),
            "timm_resnet18": ResNet.resnet18(inputChannels: 3, classCount: 5),
            "timm_resnet34": ResNet.resnet34(inputChannels: 3, classCount: 5),
            "bench_cnn": SimpleCNN.make(),
            "bench_unet": UNet.bench(),
            "bench_lstm": LightCurveLSTM(),
        ]
        XCTAssertEqual(Set(models.keys), Set(ours.keys))
        for (name, expected) in models {
            guard let model = ours[name] else { continue }
            let theirs = expected.filter { !$0.key.hasSuffix("num_batches_tracked") }
            let mine = Dictionary(uniqueKeysWithValues: model.namedTensors().map { ($0.key, $0.tensor.shape) })
            XCTAssertEqual(mine.keys.sorted(), theirs.keys.sorted(), name)
            for (k, shape) in theirs where mine[k] != nil { XCTAssertEqual(mine[k], shape, "\(name): \(k)") }
            // Every num_batches_tracked belongs to one of our batch norms.
            for k in expected.keys where k.hasSuffix("num_batches_tracked") {
                XCTAssertNotNil(mine[k.replacingOccurrences(of: "num_batches_tracked", with: "running_mean")], "\(name): \(k)")
            }
        }
        XCTAssertEqual(ResNet.resnet18(inputChannels: 3, classCount: 1000).parameterCount, 11_689_512) // torchvision's count
    }
}
