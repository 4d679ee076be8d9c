// ResNet-18 / ResNet-34 with torchvision's topology and parameter names.
import Autograd

/// torchvision's `BasicBlock`: two 3×3 convolutions with batch norm, and a 1×1 projection
/// shortcut (`downsample.0` conv, `downsample.1` batch norm) when the shape changes.
///
/// - `input`: `[N, inputChannels, H, W]`; returns `[N, outputChannels, H / stride, W / stride]`.
public final class BasicBlock: Layer {
    public let conv1: Conv2D, bn1: BatchNorm, conv2: Conv2D, bn2: BatchNorm
    public let downsample: Sequential?
    public var isTraining = true

    /// - `seed`: the initial weights' seed (nil: random).
    public init(inputChannels: Int, outputChannels: Int, stride: Int, seed: UInt64? = nil) {
        var seeds = LayerSeeds(seed)
        conv1 = Conv2D(inputChannels: inputChannels, outputChannels: outputChannels, kernelSize: 3,
                       stride: Size2(stride, stride), padding: 1, useBias: false, seed: seeds.next())
        bn1 = BatchNorm(features: outputChannels)
        conv2 = Conv2D(inputChannels: outputChannels, outputChannels: outputChannels, kernelSize: 3, padding: 1, useBias: false,
                       seed: seeds.next())
        bn2 = BatchNorm(features: outputChannels)
        if stride != 1 || inputChannels != outputChannels {
            downsample = Sequential {
                Conv2D(inputChannels: inputChannels, outputChannels: outputChannels, kernelSize: 1,
                       stride: Size2(stride, stride), useBias: false, seed: seeds.next())
                BatchNorm(features: outputChannels)
            }
        } else {
            downsample = nil
        }
    }

    public func forward(_ input: Tensor) -> Tensor {
        let shortcut = downsample.map { $0(input) } ?? input
        let y = bn2(conv2(bn1(conv1(input)).relu()))
        return (y + shortcut).relu()
    }

    public var children: [(key: String, layer: any Layer)] {
        var c: [(key: String, layer: any Layer)] = [("conv1", conv1), ("bn1", bn1), ("conv2", conv2), ("bn2", bn2)]
        if let downsample { c.append(("downsample", downsample)) }
        return c
    }

    public var layerDescription: String {
        "BasicBlock(\(conv1.inputChannels) → \(conv1.outputChannels), stride \(conv1.stride.height)"
            + "\(downsample == nil ? "" : ", projection shortcut"))"
    }
}

/// ResNet with basic blocks (ResNet-18/34), torchvision's topology and `state_dict()` names:
/// `conv1`, `bn1`, `layer1`…`layer4` (`layerK.B.conv1.weight`, `layerK.0.downsample.0.weight`),
/// `fc`. A `state_dict` from torchvision or timm (`resnet18`, `resnet34`) loads unchanged.
///
/// - `input`: `[N, inputChannels, H, W]`; returns logits `[N, classCount]`.
/// - Options: `widths` (64/128/256/512 in torchvision; smaller for compact models),
///   `smallImageStem` (a 3×3/1 stem convolution and no max-pool, for cutouts of ~32 px),
///   `stemPool` (false: torchvision's 7×7/2 stem without its max-pool, so the first stage
///   runs at 1/2 rather than 1/4 of the input size, ~4× the compute; no parameter changes,
///   so the names and shapes stay torchvision's). `stemPool` is ignored with the small stem.
public final class ResNet: Layer, FeatureClassifier {
    public let configuration: Configuration
    public let conv1: Conv2D, bn1: BatchNorm
    public let maxpool: MaxPool2D?
    public let layer1: Sequential, layer2: Sequential, layer3: Sequential, layer4: Sequential
    public let fc: Dense
    public var isTraining = true

    public struct Configuration: Equatable, Sendable {
        public var blocks: [Int]
        public var inputChannels: Int
        public var classCount: Int
        public var widths: [Int]
        public var smallImageStem: Bool
        /// The 3×3/2 max-pool after the standard stem (torchvision: true).
        public var stemPool: Bool
        public init(blocks: [Int], inputChannels: Int, classCount: Int, widths: [Int] = [64, 128, 256, 512],
                    smallImageStem: Bool = false, stemPool: Bool = true) {
            self.blocks = blocks; self.inputChannels = inputChannels; self.classCount = classCount
            self.widths = widths; self.smallImageStem = smallImageStem; self.stemPool = stemPool
        }
    }

    /// - `seed`: the initial weights' seed (nil: random); the same seed builds the same weights.
    public init(_ configuration: Configuration, seed: UInt64? = nil) {
        precondition(configuration.blocks.count == 4 && configuration.widths.count == 4,
                     "ResNet: needs 4 stages, got blocks \(configuration.blocks) widths \(configuration.widths)")
        self.configuration = configuration
        let w = configuration.widths
        var seeds = LayerSeeds(seed)
        if configuration.smallImageStem {
            conv1 = Conv2D(inputChannels: configuration.inputChannels, outputChannels: w[0], kernelSize: 3, padding: 1, useBias: false,
                           seed: seeds.next())
            maxpool = nil
        } else {
            conv1 = Conv2D(inputChannels: configuration.inputChannels, outputChannels: w[0], kernelSize: 7, stride: 2,
                           padding: 3, useBias: false, seed: seeds.next())
            maxpool = configuration.stemPool ? MaxPool2D(kernelSize: 3, stride: 2, padding: 1) : nil
        }
        bn1 = BatchNorm(features: w[0])
        var channels = w[0]
        var stages: [Sequential] = []
        for (stage, (width, count)) in zip(w, configuration.blocks).enumerated() {
            var blocks: [any Layer] = []
            for b in 0..<count {
                blocks.append(BasicBlock(inputChannels: channels, outputChannels: width, stride: b == 0 && stage > 0 ? 2 : 1,
                                         seed: seeds.next()))
                channels = width
            }
            stages.append(Sequential(blocks))
        }
        (layer1, layer2, layer3, layer4) = (stages[0], stages[1], stages[2], stages[3])
        fc = Dense(inputFeatures: channels, outputFeatures: configuration.classCount, seed: seeds.next())
    }

    /// Stage widths doubling from `base`: 64 gives torchvision's 64/128/256/512, 16 a compact
    /// model with 1/16 of the parameters.
    public static func stageWidths(base: Int) -> [Int] { (0..<4).map { base << $0 } }

    /// torchvision's `resnet18`: blocks 2/2/2/2.
    public static func resnet18(inputChannels: Int = 3, classCount: Int = 1000, widths: [Int] = [64, 128, 256, 512],
                                smallImageStem: Bool = false, stemPool: Bool = true, seed: UInt64? = nil) -> ResNet {
        ResNet(Configuration(blocks: [2, 2, 2, 2], inputChannels: inputChannels, classCount: classCount,
                             widths: widths, smallImageStem: smallImageStem, stemPool: stemPool), seed: seed)
    }

    /// torchvision's `resnet34`: blocks 3/4/6/3.
    public static func resnet34(inputChannels: Int = 3, classCount: Int = 1000, widths: [Int] = [64, 128, 256, 512],
                                smallImageStem: Bool = false, stemPool: Bool = true, seed: UInt64? = nil) -> ResNet {
        ResNet(Configuration(blocks: [3, 4, 6, 3], inputChannels: inputChannels, classCount: classCount,
                             widths: widths, smallImageStem: smallImageStem, stemPool: stemPool), seed: seed)
    }

    /// The pooled features `[N, widths[3]]` before `fc` (for embeddings or a new head).
    public func features(_ input: Tensor) -> Tensor {
        precondition(input.rank == 4 && input.shape[1] == configuration.inputChannels,
                     "ResNet: input \(input.shape) must be [N, \(configuration.inputChannels), H, W]")
        var x = bn1(conv1(input)).relu()
        if let maxpool { x = maxpool(x) }
        x = layer4(layer3(layer2(layer1(x))))
        return x.globalAvgPool2d().reshaped(to: [x.shape[0], x.shape[1]])
    }

    public func forward(_ input: Tensor) -> Tensor { fc(features(input)) }

    public var children: [(key: String, layer: any Layer)] {
        var c: [(key: String, layer: any Layer)] = [("conv1", conv1), ("bn1", bn1)]
        if let maxpool { c.append(("maxpool", maxpool)) }
        return c + [("layer1", layer1), ("layer2", layer2), ("layer3", layer3), ("layer4", layer4), ("fc", fc)]
    }

    public var layerDescription: String { ResNet.describe(configuration) }

    /// `ResNet-18(1 bands → 5 classes, widths [...])`, shared with `FusedResNet`.
    static func describe(_ configuration: Configuration) -> String {
        let depth = configuration.blocks == [2, 2, 2, 2] ? "ResNet-18" : configuration.blocks == [3, 4, 6, 3] ? "ResNet-34"
            : "ResNet(blocks \(configuration.blocks))"
        return "\(depth)(\(configuration.inputChannels) bands → \(configuration.classCount) classes, widths \(configuration.widths)"
            + "\(configuration.smallImageStem ? ", small-image stem" : configuration.stemPool ? "" : ", no stem max-pool"))"
    }
}
