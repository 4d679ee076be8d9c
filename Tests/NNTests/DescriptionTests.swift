// One-line descriptions, the architecture tree, and the Keras-style summary.
import Autograd
import NN
import XCTest

final class DescriptionTests: XCTestCase {
    func testOneLineDescriptions() {
        XCTAssertEqual(Conv2D(inputChannels: 1, outputChannels: 32, kernelSize: 3, padding: 1).description,
                       "Conv2D(1 → 32, kernel 3×3, stride 1, padding 1)")
        XCTAssertEqual(Dense(inputFeatures: 8192, outputFeatures: 256).description, "Dense(8192 → 256)")
        XCTAssertEqual(BatchNorm(features: 64).description, "BatchNorm2D(64, momentum 0.1, epsilon 1e-05)")
        XCTAssertEqual(Activation.relu().description, "ReLU()")
        XCTAssertEqual(LSTM(inputFeatures: 2, hiddenSize: 64).description, "LSTM(2 → hidden 64, batch first)")
        XCTAssertEqual(ResNet.resnet18(inputChannels: 3, classCount: 5).layerDescription,
                       "ResNet-18(3 bands → 5 classes, widths [64, 128, 256, 512])")
    }

    func testPrintingAModelShowsTheArchitecture() {
        let tree = "\(ResNet.resnet18(inputChannels: 1, classCount: 5))"
        XCTAssertTrue(tree.hasPrefix("ResNet-18(1 bands → 5 classes, widths [64, 128, 256, 512])\n  (conv1): Conv2D(1 → 64, kernel 7×7, stride 2, padding 3, no bias)\n"), tree)
        XCTAssertTrue(tree.contains("  (layer2): Sequential(2 layers)"))
        XCTAssertTrue(tree.contains("      (downsample): Sequential(2 layers)"))
        XCTAssertTrue(tree.contains("(fc): Dense(512 → 5)"))
    }

    func testSummaryListsOutputShapesAndParameters() {
        let model = SimpleCNN.make()
        model.train()
        let summary = model.summary(inputShape: [1, 64, 64])
        XCTAssertTrue(summary.contains("0  Conv2D(1 → 32, kernel 3×3, stride 1, padding 1)"), summary)
        XCTAssertTrue(summary.contains("[1, 32, 64, 64]"), summary)
        XCTAssertTrue(summary.contains("[1, 8192]"), summary)
        XCTAssertTrue(summary.contains("2097408"), summary)   // 8192 * 256 + 256
        XCTAssertTrue(summary.contains("Trainable parameters: \(model.parameterCount)"))
        XCTAssertTrue(model.isTraining, "summary restores the mode")

        let resnet = ResNet.resnet18(inputChannels: 3, classCount: 5).summary(inputShape: [3, 64, 64], depth: 1)
        XCTAssertTrue(resnet.contains("layer4"), resnet)
        XCTAssertTrue(resnet.contains("[1, 512, 2, 2]"), resnet)
        XCTAssertTrue(resnet.contains("Non-trainable (buffers): 9600"), resnet)
    }

    func testFamilyOptions() {
        let unet = UNet(inputChannels: 2, classCount: 4, baseWidth: 16, depth: 4)
        XCTAssertEqual(unet.widths, [16, 32, 64, 128])
        XCTAssertEqual(unet.bottleneckWidth, 256)
        XCTAssertEqual(unet.parameterCount, UNet.bench(inputChannels: 2, classCount: 4).parameterCount)
        XCTAssertEqual(ResNet.stageWidths(base: 16), [16, 32, 64, 128])
        let small = ResNet.resnet34(inputChannels: 1, classCount: 3, widths: ResNet.stageWidths(base: 8), smallImageStem: true)
        XCTAssertNil(small.maxpool)
        XCTAssertEqual(small.conv1.kernelSize, 3)
        XCTAssertEqual(withNoGrad { small(Tensor.zeros([1, 1, 32, 32])) }.shape, [1, 3])
    }

    func testStandardStemWithoutMaxPool() {
        // Default: torchvision's stem, max-pool included.
        let standard = ResNet.resnet18(inputChannels: 1, classCount: 8, widths: ResNet.stageWidths(base: 4))
        XCTAssertNotNil(standard.maxpool)
        XCTAssertTrue(standard.configuration.stemPool)
        let unpooled = ResNet.resnet18(inputChannels: 1, classCount: 8, widths: ResNet.stageWidths(base: 4), stemPool: false)
        XCTAssertNil(unpooled.maxpool)
        XCTAssertEqual(unpooled.conv1.kernelSize, 7)
        XCTAssertEqual(unpooled.conv1.stride.height, 2)
        // Same parameter names and shapes: torchvision weights load either way.
        let a = standard.stateDict(), b = unpooled.stateDict()
        XCTAssertEqual(Set(a.keys), Set(b.keys))
        for (key, tensor) in a { XCTAssertEqual(b[key]?.shape, tensor.shape, key) }
        XCTAssertNoThrow(try unpooled.load(stateDict: a, mode: .strict))
        // The first stage runs at half the input size instead of a quarter.
        let x = Tensor.zeros([1, 1, 64, 64])
        XCTAssertEqual(withNoGrad { unpooled(x) }.shape, [1, 8])
        let summary = unpooled.summary(inputShape: [1, 64, 64], depth: 1)
        XCTAssertTrue(summary.contains("[1, 4, 32, 32]") && !summary.contains("[1, 4, 16, 16]"), summary)
        XCTAssertTrue(standard.summary(inputShape: [1, 64, 64], depth: 1).contains("[1, 4, 16, 16]"))
        XCTAssertTrue(unpooled.layerDescription.contains("no stem max-pool"), unpooled.layerDescription)
        XCTAssertFalse(standard.layerDescription.contains("max-pool"), standard.layerDescription)
    }
}
