// Gradients of layers against central differences, and convergence on tiny problems.
import Autograd
import NN
import TestSupport
import XCTest

final class TrainingTests: XCTestCase {
    /// Every parameter and the input of small layers against central differences (the
    /// models' gradients are checked against PyTorch in PyTorchModelTests).
    func testLayerGradientsMatchCentralDifferences() {
        let cases: [(String, any Layer, [Int])] = [
            ("Dense", Dense(inputFeatures: 3, outputFeatures: 2, seed: 3), [2, 3]),
            ("Conv2D", Conv2D(inputChannels: 2, outputChannels: 2, kernelSize: 3, stride: 2, padding: 1, seed: 4), [1, 2, 5, 5]),
            ("ConvTranspose2D", ConvTranspose2D(inputChannels: 2, outputChannels: 1, kernelSize: 2, stride: 2, seed: 5), [1, 2, 3, 3]),
            ("BatchNorm", BatchNorm(features: 2), [3, 2, 2, 2]),
            ("LSTM", LSTM(inputFeatures: 2, hiddenSize: 2, seed: 6), [2, 4, 2]),
            ("BasicBlock", BasicBlock(inputChannels: 1, outputChannels: 2, stride: 2, seed: 7), [4, 1, 6, 6]),
        ]
        for (name, layer, shape) in cases {
            // BasicBlock: eval mode and a small step, because its final ReLU has outputs within
            // 1e-2 of the kink, where central differences with a larger step are meaningless
            // (train mode is checked against PyTorch in PyTorchModelTests).
            let isBlock = name == "BasicBlock"
            if isBlock { layer.eval() } else { layer.train() }
            let x = Tensor.randomNormal(shape, seed: 4)
            let params = layer.parameters
            let failures = gradientMismatches([x] + params, epsilon: isBlock ? 1e-3 : 1e-2, relativeTolerance: 2e-2, absoluteTolerance: 2e-3) { _ in layer(x) }
            XCTAssertEqual(failures, [], name)
        }
    }

    func testMLPLearnsXOR() {
        let model = MLP.make(inputFeatures: 2, widths: [16, 2], activation: .tanh, seed: 7)
        let x = Tensor(shape: [4, 2], data: [0, 0, 0, 1, 1, 0, 1, 1])
        let labels = [0, 1, 1, 0]
        let optimizer = ModelOptimizer(.adam(), tensors: model.parameters, learningRate: 0.05)
        var loss: Float = .infinity
        for _ in 0..<200 {
            optimizer.zeroGrad()
            let l = Loss.crossEntropy(logits: model(x), labels: labels)
            l.backward()
            optimizer.step()
            loss = l.item
        }
        XCTAssertLessThan(loss, 0.05)
        XCTAssertEqual(withNoGrad { model(x) }.argmaxIndices(axis: 1), labels)
    }

    func testFineTuningANewHeadOnAFrozenBackbone() throws {
        let pretrained = ResNet.resnet18(inputChannels: 1, classCount: 10, widths: [4, 4, 8, 8], smallImageStem: true, seed: 8)
        let model = ResNet.resnet18(inputChannels: 1, classCount: 2, widths: [4, 4, 8, 8], smallImageStem: true, seed: 9)
        try model.load(stateDict: pretrained.stateDict(), mode: .partial)
        model.setRequiresGrad(false)
        model.fc.setRequiresGrad(true)
        let trainable = model.parameters.filter(\.requiresGrad)
        XCTAssertEqual(trainable.count, 2)
        let backbone = model.conv1.weight.scalars
        let x = Tensor.randomNormal([4, 1, 8, 8], seed: 9)
        let optimizer = ModelOptimizer(.sgd(), tensors: trainable, learningRate: 0.1)
        model.eval()
        let before = Loss.crossEntropy(logits: model(x), labels: [0, 1, 0, 1])
        before.backward()
        optimizer.step()
        let after = withNoGrad { Loss.crossEntropy(logits: model(x), labels: [0, 1, 0, 1]) }
        XCTAssertLessThan(after.item, before.item)
        XCTAssertEqual(model.conv1.weight.scalars, backbone)
    }
}
