// One contract run over every layer and model (Keras' run_layer_test): output shape,
// parameter counts, one optimiser step lowers a loss, save/load round trip, train vs eval.
import Autograd
import Foundation
import NN
import TestSupport
import XCTest

struct LayerCase {
    let name: String
    /// Builds the layer from a seed (layers without weights ignore it).
    let make: (UInt64) -> any Layer
    let input: [Int]
    let output: [Int]
    let parameters: Int
    /// Whether train and eval modes give different outputs (batch norm, dropout).
    let modesDiffer: Bool

    init(_ name: String, _ make: @escaping (UInt64) -> any Layer, input: [Int], output: [Int], parameters: Int,
         modesDiffer: Bool = false) {
        self.name = name; self.make = make; self.input = input; self.output = output
        self.parameters = parameters; self.modesDiffer = modesDiffer
    }
}

let layerCases: [LayerCase] = [
    LayerCase("Dense", { Dense(inputFeatures: 6, outputFeatures: 4, seed: $0) }, input: [3, 6], output: [3, 4], parameters: 28),
    LayerCase("Dense 3-D input", { Dense(inputFeatures: 6, outputFeatures: 4, useBias: false, seed: $0) }, input: [2, 5, 6], output: [2, 5, 4], parameters: 24),
    LayerCase("Conv2D", { Conv2D(inputChannels: 2, outputChannels: 3, kernelSize: 3, stride: 2, padding: 1, seed: $0) },
              input: [2, 2, 9, 9], output: [2, 3, 5, 5], parameters: 57),
    LayerCase("Conv2D same dilated", { Conv2D(inputChannels: 2, outputChannels: 3, kernelSize: 3, padding: .same, dilation: 2, useBias: false, seed: $0) },
              input: [2, 2, 8, 8], output: [2, 3, 8, 8], parameters: 54),
    LayerCase("ConvTranspose2D", { ConvTranspose2D(inputChannels: 3, outputChannels: 2, kernelSize: 2, stride: 2, seed: $0) },
              input: [2, 3, 4, 4], output: [2, 2, 8, 8], parameters: 26),
    LayerCase("MaxPool2D", { _ in MaxPool2D(kernelSize: 3, stride: 2, padding: 1) }, input: [2, 2, 8, 8], output: [2, 2, 4, 4], parameters: 0),
    LayerCase("AvgPool2D", { _ in AvgPool2D(kernelSize: 2) }, input: [2, 2, 8, 8], output: [2, 2, 4, 4], parameters: 0),
    LayerCase("GlobalAvgPool", { _ in GlobalAvgPool() }, input: [2, 3, 5, 5], output: [2, 3], parameters: 0),
    LayerCase("BatchNorm2D", { _ in BatchNorm(features: 3) }, input: [4, 3, 5, 5], output: [4, 3, 5, 5], parameters: 6, modesDiffer: true),
    LayerCase("BatchNorm1D", { _ in BatchNorm.oneDimensional(features: 5) }, input: [8, 5], output: [8, 5], parameters: 10, modesDiffer: true),
    LayerCase("Dropout", { Dropout(probability: 0.5, seed: $0) }, input: [4, 10], output: [4, 10], parameters: 0, modesDiffer: true),
    LayerCase("Flatten", { _ in Flatten() }, input: [2, 3, 4, 5], output: [2, 60], parameters: 0),
    LayerCase("Upsample nearest", { _ in Upsample(scale: 2) }, input: [2, 2, 3, 3], output: [2, 2, 6, 6], parameters: 0),
    LayerCase("Upsample bilinear", { _ in Upsample(scale: 3, mode: .bilinear) }, input: [2, 2, 3, 3], output: [2, 2, 9, 9], parameters: 0),
    LayerCase("ReLU", { _ in Activation.relu() }, input: [3, 7], output: [3, 7], parameters: 0),
    LayerCase("GELU", { _ in Activation.gelu() }, input: [3, 7], output: [3, 7], parameters: 0),
    LayerCase("Sigmoid", { _ in Activation.sigmoid() }, input: [3, 7], output: [3, 7], parameters: 0),
    LayerCase("Tanh", { _ in Activation.tanh() }, input: [3, 7], output: [3, 7], parameters: 0),
    LayerCase("LeakyReLU", { _ in Activation(.leakyReLU(negativeSlope: 0.1)) }, input: [3, 7], output: [3, 7], parameters: 0),
    LayerCase("ELU", { _ in Activation(.elu(alpha: 1)) }, input: [3, 7], output: [3, 7], parameters: 0),
    LayerCase("Softplus", { _ in Activation(.softplus) }, input: [3, 7], output: [3, 7], parameters: 0),
    LayerCase("LSTM", { LSTM(inputFeatures: 3, hiddenSize: 5, seed: $0) }, input: [2, 7, 3], output: [2, 7, 5], parameters: 4 * 5 * (3 + 5 + 2)),
    LayerCase("LSTM one step", { LSTM(inputFeatures: 3, hiddenSize: 5, seed: $0) }, input: [2, 1, 3], output: [2, 1, 5], parameters: 200),
    LayerCase("LSTM two layers bidirectional", { LSTM(inputFeatures: 3, hiddenSize: 5, layerCount: 2, bidirectional: true, seed: $0) },
              input: [2, 7, 3], output: [2, 7, 10], parameters: 2 * 4 * 5 * (3 + 5 + 2) + 2 * 4 * 5 * (10 + 5 + 2)),
    LayerCase("GRU", { GRU(inputFeatures: 3, hiddenSize: 5, seed: $0) }, input: [2, 7, 3], output: [2, 7, 5], parameters: 3 * 5 * (3 + 5 + 2)),
    LayerCase("GRU two layers bidirectional", { GRU(inputFeatures: 3, hiddenSize: 5, layerCount: 2, bidirectional: true, seed: $0) },
              input: [2, 7, 3], output: [2, 7, 10], parameters: 2 * 3 * 5 * (3 + 5 + 2) + 2 * 3 * 5 * (10 + 5 + 2)),
    LayerCase("Sequential", { seed in
        Sequential {
            Conv2D(inputChannels: 1, outputChannels: 4, kernelSize: 3, padding: 1, seed: seed)
            BatchNorm(features: 4)
            Activation.relu()
            GlobalAvgPool()
            Dense(inputFeatures: 4, outputFeatures: 2, seed: seed &+ 1)
        }
    }, input: [3, 1, 6, 6], output: [3, 2], parameters: 40 + 8 + 10, modesDiffer: true),
    LayerCase("BasicBlock", { BasicBlock(inputChannels: 2, outputChannels: 4, stride: 2, seed: $0) }, input: [2, 2, 8, 8], output: [2, 4, 4, 4],
              parameters: 72 + 8 + 144 + 8 + 8 + 8, modesDiffer: true),
    LayerCase("MLP", { MLP.make(inputFeatures: 4, widths: [8, 8, 3], activation: .tanh, dropout: 0.1, seed: $0) }, input: [5, 4], output: [5, 3],
              parameters: 40 + 72 + 27, modesDiffer: true),
    LayerCase("cnn", { SimpleCNN.make(inputChannels: 1, classCount: 5, imageSize: 8, seed: $0) }, input: [2, 1, 8, 8], output: [2, 5],
              parameters: 320 + 18_496 + 73_856 + 128 * 256 + 256 + 1285),
    LayerCase("ResNet-18 small stem", { ResNet.resnet18(inputChannels: 2, classCount: 3, widths: [4, 4, 8, 8], smallImageStem: true, seed: $0) },
              input: [2, 2, 16, 16], output: [2, 3], parameters: -1, modesDiffer: true),
    LayerCase("UNet", { UNet(inputChannels: 2, classCount: 3, widths: [4, 8], bottleneckWidth: 8, seed: $0) }, input: [2, 2, 8, 8],
              output: [2, 3, 8, 8], parameters: -1, modesDiffer: true),
    LayerCase("LightCurveLSTM", { LightCurveLSTM(features: 2, hiddenSize: 6, classCount: 4, seed: $0) }, input: [3, 9, 2], output: [3, 4],
              parameters: 4 * 6 * (2 + 6 + 2) + 28),
    LayerCase("LightCurveGRU", { LightCurveGRU(features: 8, hiddenSize: 6, classCount: 7, seed: $0) }, input: [3, 9, 8], output: [3, 7],
              parameters: 3 * 6 * (8 + 6 + 2) + 49),
]

final class LayerContractTests: XCTestCase {
    func testEveryLayerHonoursTheContract() throws {
        let dir = try makeTemporaryDirectory("nn")
        for c in layerCases {
            let layer = c.make(1)
            let x = Tensor.randomNormal(c.input, seed: 11)

            // Output shape and parameter counts (keys unique; parameters require gradients).
            layer.train()
            let y = layer(x)
            XCTAssertEqual(y.shape, c.output, "\(c.name): output shape")
            if c.parameters >= 0 { XCTAssertEqual(layer.parameterCount, c.parameters, "\(c.name): parameter count") }
            let keys = layer.namedTensors().map(\.key)
            XCTAssertEqual(Set(keys).count, keys.count, "\(c.name): duplicate keys \(keys)")
            XCTAssertTrue(layer.parameters.allSatisfy(\.requiresGrad), "\(c.name): parameters require gradients")
            XCTAssertFalse(layer.layerDescription.isEmpty || layer.layerDescription.contains("\n"), "\(c.name): one-line description")
            XCTAssertEqual("\(layer)".split(separator: "\n").count, layer.namedLayers().count, "\(c.name): print shows one line per layer")

            // One optimiser step lowers a loss (a fixed target, same mode and same dropout mask).
            if layer.parameterCount > 0 {
                let target = Tensor.randomNormal(c.output, seed: 12)
                layer.eval()   // deterministic (dropout off); BN still trains its affine parameters
                let loss0 = Loss.meanSquaredError(layer(x), target)
                loss0.backward()
                XCTAssertTrue(layer.parameters.contains { $0.grad != nil }, "\(c.name): gradients reach the parameters")
                ModelOptimizer(.sgd(), tensors: layer.parameters, learningRate: 1e-2).step()
                let loss1 = withNoGrad { Loss.meanSquaredError(layer(x), target) }
                XCTAssertLessThan(loss1.item, loss0.item, "\(c.name): SGD step lowers the loss")
                layer.zeroGrad()
            }

            // Save → load into a freshly built layer → identical eval outputs.
            layer.eval()
            let url = dir.appendingPathComponent("\(c.name).safetensors")
            try layer.save(to: url)
            let fresh = c.make(99)
            try fresh.load(contentsOf: url)
            fresh.eval()
            XCTAssertEqual(withNoGrad { fresh(x) }.scalars, withNoGrad { layer(x) }.scalars, "\(c.name): save/load round trip")

            // Train vs eval: differ exactly where the layer has mode-dependent behaviour.
            layer.eval()
            let evalOut = withNoGrad { layer(x) }
            layer.train()
            let trainOut = withNoGrad { layer(x) }
            XCTAssertEqual(evalOut.scalars != trainOut.scalars, c.modesDiffer, "\(c.name): train vs eval")
            layer.eval()
            XCTAssertTrue(layer.namedLayers().allSatisfy { !$0.layer.isTraining }, "\(c.name): eval() reaches every sub-layer")
        }
    }

    func testLSTMAcceptsAnySequenceLengthAndMatchesItsSteps() {
        let lstm = LSTM(inputFeatures: 2, hiddenSize: 3)
        let x = Tensor.randomNormal([2, 5, 2], seed: 3)
        let full = lstm.run(x)
        let prefix = lstm.run(x.sliced(axis: 1, 0..<3))
        XCTAssertEqual(full.outputs.sliced(axis: 1, 0..<3).scalars, prefix.outputs.scalars)
        XCTAssertEqual(full.outputs.sliced(axis: 1, 4..<5).reshaped(to: [2, 3]).scalars, full.hidden.scalars)
        XCTAssertEqual(lstm.run(Tensor.randomNormal([1, 300, 2], seed: 4)).outputs.shape, [1, 300, 3])
    }

    func testBatchNormRunningStatisticsAreBuffersAndUpdateInTraining() {
        let bn = BatchNorm(features: 2)
        XCTAssertEqual(bn.namedTensors().filter { $0.role == .buffer }.map(\.key), ["running_mean", "running_var"])
        XCTAssertEqual(bn.parameterCount, 4)
        XCTAssertEqual(bn.bufferCount, 4)
        bn.train()
        _ = bn(Tensor.randomNormal([4, 2, 3, 3], mean: 5, seed: 1))
        XCTAssertGreaterThan(bn.runningMean.scalars[0], 0.3)
    }

    func testFreezingParameters() {
        let model = ResNet.resnet18(inputChannels: 1, classCount: 2, widths: [4, 4, 4, 4])
        model.setRequiresGrad(false)
        model.fc.setRequiresGrad(true)
        XCTAssertEqual(model.parameters.filter(\.requiresGrad).count, 2)
    }
}
