// The fusion pass: fused models give the eval model's outputs (both convolution backends,
// gradients on or off), hold only inference layers, are snapshots, and the training layers
// keep one `forward` each.
import Autograd
import Foundation
import NN
import XCTest

final class FusionTests: XCTestCase {
    /// Non-trivial batch-norm statistics and affine parameters, so that folding matters.
    func randomizeBatchNorms(_ model: any Layer, seed: UInt64) {
        var seed = seed
        for (_, layer) in model.namedLayers() {
            guard let bn = layer as? BatchNorm else { continue }
            for (tensor, lower, upper) in [(bn.weight, 0.5, 1.5), (bn.bias, -0.5, 0.5), (bn.runningMean, -0.5, 0.5),
                                           (bn.runningVariance, 0.5, 1.5)] as [(Tensor, Float, Float)] {
                seed += 1
                tensor.assign(Tensor.randomUniform(tensor.shape, lower: lower, upper: upper, seed: seed))
            }
        }
    }

    /// The eval model and its fused form agree on `input` under every available backend,
    /// with gradient recording off (oneDNN post-ops, blocked maps) and on (composed ops).
    func assertFusedMatches(_ model: any Layer, _ input: Tensor, _ name: String,
                            file: StaticString = #filePath, line: UInt = #line) -> any Layer {
        model.eval()
        let fused = model.fusedForInference()
        let saved = ConvolutionBackend.current
        defer { ConvolutionBackend.current = saved }
        let backends: [ConvolutionBackend] = ConvolutionBackend.isOneDNNAvailable ? [.oneDNN, .im2col] : [.im2col]
        for backend in backends {
            ConvolutionBackend.current = backend
            let expected = withNoGrad { model(input) }
            XCTAssertGreaterThan(expected.scalars.map(abs).max()!, 0, "\(name): non-trivial output", file: file, line: line)
            assertMatches(withNoGrad { fused(input) }, expected, relative: 1e-4, scaleFloor: 1,
                          "\(name) fused, \(backend)", file: file, line: line)
            assertMatches(fused(input), expected, relative: 1e-4, scaleFloor: 1,
                          "\(name) fused with gradients on, \(backend)", file: file, line: line)
        }
        return fused
    }

    /// What the fused tree is made of: no training convolution or batch norm is left.
    func assertOnlyInferenceLayers(_ fused: any Layer, _ name: String, file: StaticString = #filePath, line: UInt = #line) {
        for (path, layer) in fused.namedLayers() {
            XCTAssertFalse(layer is Conv2D || layer is ConvTranspose2D || layer is BatchNorm || layer is BasicBlock,
                           "\(name): \(path) is a training layer (\(layer.layerDescription))", file: file, line: line)
            XCTAssertFalse(layer.isTraining, "\(name): \(path) in inference mode", file: file, line: line)
        }
        for (key, tensor, _) in fused.namedTensors() where key.hasSuffix("weight") && tensor.rank == 4 {
            XCTAssertTrue(tensor.isFrozen, "\(name): \(key) frozen (packed once by oneDNN)", file: file, line: line)
        }
    }

    func testFusedCNNMatchesTheEvalModel() {
        let model = SimpleCNN.make(inputChannels: 2, classCount: 5, imageSize: 16, seed: 1)
        let fused = assertFusedMatches(model, Tensor.randomNormal([3, 2, 16, 16], seed: 2), "cnn")
        assertOnlyInferenceLayers(fused, "cnn")
        let convolutions = fused.namedLayers().compactMap { $0.layer as? FusedConv2D }
        XCTAssertEqual(convolutions.count, 3)
        XCTAssertTrue(convolutions.allSatisfy(\.relu), "each ReLU fused into its convolution")
        XCTAssertEqual(fused.namedTensors().map(\.key), model.namedTensors().map(\.key), "keys do not shift")
    }

    func testFusedResNet18MatchesTheEvalModel() {
        let variants: [(String, ResNet)] = [
            ("standard stem", ResNet.resnet18(inputChannels: 2, classCount: 4, widths: [16, 16, 32, 32], seed: 3)),
            ("small stem", ResNet.resnet18(inputChannels: 2, classCount: 4, widths: [8, 16, 16, 32], smallImageStem: true, seed: 4)),
            ("no stem pool", ResNet.resnet18(inputChannels: 2, classCount: 4, widths: [16, 16, 32, 32], stemPool: false, seed: 5)),
        ]
        for (name, model) in variants {
            randomizeBatchNorms(model, seed: 100)
            let fused = assertFusedMatches(model, Tensor.randomNormal([3, 2, 32, 32], seed: 6), "resnet18 \(name)")
            assertOnlyInferenceLayers(fused, "resnet18 \(name)")
            XCTAssertTrue(fused is FusedResNet, name)
            let blocks = fused.namedLayers().compactMap { $0.layer as? FusedBasicBlock }
            XCTAssertEqual(blocks.count, 8, name)
            XCTAssertEqual(blocks.filter { $0.downsample != nil }.count, 3, "\(name): projection shortcuts")
            let keys = Set(fused.namedTensors().map(\.key))
            for key in ["conv1.weight", "layer1.0.conv2.weight", "layer2.0.downsample.0.weight", "fc.weight"] {
                XCTAssertTrue(keys.contains(key), "\(name): fused model keeps \(key)")
            }
            XCTAssertFalse(keys.contains { $0.contains("running_") }, "\(name): batch norms folded away")
        }
    }

    /// Widths that are multiples of 16 run on channel-blocked maps; others on tensors.
    func testFusedUNetMatchesTheEvalModelBlockedAndNot() {
        let cases: [(String, UNet, Bool)] = [
            ("blocked", UNet(inputChannels: 1, classCount: 3, widths: [16, 32], bottleneckWidth: 64, seed: 7), true),
            ("plain", UNet(inputChannels: 2, classCount: 3, widths: [4, 8], bottleneckWidth: 8, seed: 8), false),
        ]
        for (name, model, blocked) in cases {
            randomizeBatchNorms(model, seed: 200)
            let x = Tensor.randomNormal([3, model.inputChannels, 32, 32], seed: 9)
            let fused = assertFusedMatches(model, x, "unet \(name)")
            assertOnlyInferenceLayers(fused, "unet \(name)")
            XCTAssertTrue(fused is FusedUNet, name)
            XCTAssertEqual(fused.layerDescription.contains("channel-blocked"), blocked, fused.layerDescription)
            XCTAssertEqual(fused.namedLayers().compactMap { $0.layer as? FusedConvTranspose2D }.count, 2, name)
        }
    }

    /// `t` with every element rounded to bfloat16 (nearest, ties to even), in float32.
    func roundedToBFloat16(_ t: Tensor) -> Tensor {
        Tensor(shape: t.shape, data: t.scalars.map { v in
            let bits = v.bitPattern
            return Float(bitPattern: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) & 0xFFFF_0000)
        })
    }

    /// A bfloat16 convolution is the float32 one on the input and weights rounded to bfloat16
    /// (bias and sums in float32), and each image's output does not depend on its batch.
    func testBFloat16ConvolutionRoundsInputAndWeightsOnly() throws {
        try XCTSkipUnless(InferencePrecision.bfloat16.runsHere, "oneDNN has no bfloat16 instructions on this machine")
        let conv = Conv2D(inputChannels: 16, outputChannels: 32, kernelSize: 3, padding: .same, seed: 20)
        conv.bias?.assign(Tensor.randomUniform([32], lower: -0.5, upper: 0.5, seed: 21))
        let x = Tensor.randomNormal([5, 16, 12, 12], seed: 22)
        let fused = conv.fusedForInference()
        let float32 = withNoGrad { fused(x) }
        XCTAssertEqual(fused.setInferencePrecision(.bfloat16), 1)
        let bfloat16 = withNoGrad { fused(x) }

        let rounded = Conv2D(inputChannels: 16, outputChannels: 32, kernelSize: 3, padding: .same, seed: 20)
        rounded.weight.assign(roundedToBFloat16(conv.weight))
        rounded.bias?.assign(conv.bias!)
        let roundedFused = rounded.fusedForInference(), roundedInput = roundedToBFloat16(x)
        let reference = withNoGrad { roundedFused(roundedInput) }
        assertMatches(bfloat16, reference, relative: 1e-5, scaleFloor: 1e-2, "bfloat16 = float32 on rounded operands")
        let change = zip(bfloat16.scalars, float32.scalars).map { abs($0 - $1) }.max()!
        let scale = float32.scalars.map(abs).max()!
        XCTAssertGreaterThan(change, 1e-4 * scale, "the rounding shows (it ran in bfloat16)")
        XCTAssertLessThan(change, 2e-2 * scale, "and stays at bfloat16's precision")
        for i in [0, 3] {
            let alone = withNoGrad { fused(x.sliced(axis: 0, i..<(i + 1))) }
            XCTAssertEqual(alone.scalars, bfloat16.sliced(axis: 0, i..<(i + 1)).scalars, "image \(i) alone and in its batch of 5")
        }
        fused.setInferencePrecision(.float32)
        XCTAssertEqual(withNoGrad { fused(x) }.scalars, float32.scalars, "float32 again")
    }

    /// A fused ResNet in bfloat16 (plain and channel-blocked stages): close to float32, batch
    /// invariant; where bfloat16 cannot run (the im2col backend) it computes float32 exactly.
    func testBFloat16ResNetIsCloseToFloat32AndFallsBackWhereItCannotRun() throws {
        let model = ResNet.resnet18(inputChannels: 2, classCount: 6, widths: [24, 48, 32, 64], stemPool: false, seed: 23)
        randomizeBatchNorms(model, seed: 400)
        model.eval()
        let x = Tensor.randomNormal([4, 2, 32, 32], seed: 24)
        let saved = ConvolutionBackend.current
        defer { ConvolutionBackend.current = saved }
        ConvolutionBackend.current = .im2col
        XCTAssertFalse(InferencePrecision.bfloat16.runsHere, "im2col has no bfloat16")
        let fused = model.fusedForInference()
        let exact = withNoGrad { fused(x) }
        XCTAssertEqual(fused.setInferencePrecision(.bfloat16), 20, "every convolution of a ResNet-18")
        XCTAssertEqual(withNoGrad { fused(x) }.scalars, exact.scalars, "im2col: float32 whatever the weights ask")
        ConvolutionBackend.current = saved
        try XCTSkipUnless(InferencePrecision.bfloat16.runsHere, "oneDNN has no bfloat16 instructions on this machine")
        fused.setInferencePrecision(.float32)
        let float32 = withNoGrad { fused(x) }
        fused.setInferencePrecision(.bfloat16)
        let bfloat16 = withNoGrad { fused(x) }
        assertMatches(bfloat16, float32, relative: 5e-2, scaleFloor: 0.5, "bfloat16 ResNet near float32")
        XCTAssertNotEqual(bfloat16.scalars, float32.scalars, "it ran in bfloat16")
        XCTAssertEqual(withNoGrad { fused(x.sliced(axis: 0, 2..<3)) }.scalars, bfloat16.sliced(axis: 0, 2..<3).scalars, "batch invariant")

        // A channel-blocked U-Net: its convolutions, up-convolutions (as 1×1 convolutions) included.
        let unet = UNet(inputChannels: 1, classCount: 3, widths: [16, 32], bottleneckWidth: 64, seed: 25)
        randomizeBatchNorms(unet, seed: 500)
        unet.eval()
        let image = Tensor.randomNormal([2, 1, 32, 32], seed: 26)
        let fusedUNet = unet.fusedForInference()
        let unetFloat32 = withNoGrad { fusedUNet(image) }
        XCTAssertEqual(fusedUNet.setInferencePrecision(.bfloat16), 13, "11 convolutions and 2 up-convolutions")
        let unetBFloat16 = withNoGrad { fusedUNet(image) }
        assertMatches(unetBFloat16, unetFloat32, relative: 5e-2, scaleFloor: 0.5, "bfloat16 U-Net near float32")
        XCTAssertNotEqual(unetBFloat16.scalars, unetFloat32.scalars, "the U-Net ran in bfloat16")
    }

    /// The fused model copies its convolution weights: training the original afterwards (or
    /// loading other weights into it) leaves the fused outputs unchanged.
    func testFusedModelIsASnapshot() throws {
        let model = ResNet.resnet18(inputChannels: 1, classCount: 3, widths: [16, 16, 16, 16], seed: 10)
        randomizeBatchNorms(model, seed: 300)
        model.eval()
        let x = Tensor.randomNormal([2, 1, 32, 32], seed: 11)
        let fused = model.fusedForInference()
        let before = withNoGrad { fused(x) }.scalars
        try model.load(stateDict: ResNet.resnet18(inputChannels: 1, classCount: 3, widths: [16, 16, 16, 16], seed: 12).stateDict())
        XCTAssertNotEqual(withNoGrad { model(x) }.scalars, before, "the original changed")
        XCTAssertEqual(withNoGrad { fused(x) }.scalars, before, "the fused snapshot did not")
    }

    /// Speed stays in the fusion pass: every layer class outside the Fused*/Fusion files has
    /// exactly one `forward`, and none of them mentions blocked maps or fused epilogues.
    func testTrainingLayersHaveOneForward() throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../Sources/NN").standardizedFileURL
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".swift") }
        XCTAssertTrue(files.contains("Convolution.swift"), "found Sources/NN at \(folder.path)")
        var layerClasses = 0
        for file in files where !file.hasPrefix("Fus") {
            let text = try String(contentsOf: folder.appendingPathComponent(file), encoding: .utf8)
            XCTAssertFalse(text.contains("BlockedFeatureMap") || text.contains(" adding:") || text.contains("relu: true"),
                           "\(file): inference-only layouts and epilogues belong in the fusion pass")
            // Final layer classes and the base classes that recurrent layers and models share.
            let parts = text.components(separatedBy: "public final class ").dropFirst()
                + text.components(separatedBy: "public class ").dropFirst()
            for part in parts {
                let name = String(part.prefix { $0.isLetter || $0.isNumber })
                guard part.prefix(200).contains(": Layer") else { continue }
                layerClasses += 1
                XCTAssertEqual(part.components(separatedBy: "func forward(").count - 1, 1, "\(file): \(name) has one forward")
            }
        }
        XCTAssertGreaterThanOrEqual(layerClasses, 15)
    }
}
