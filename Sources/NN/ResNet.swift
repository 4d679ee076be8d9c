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

    public init(inputChannels: Int, outputChannels: Int, stride: Int) {
        conv1 = Conv2D(inputChannels: inputChannels, outputChannels: outputChannels, kernelSize: 3,
                       stride: Size2(stride, stride), padding: 1, useBias: false)
        bn1 = BatchNorm(features: outputChannels)
        conv2 = Conv2D(inputChannels: outputChannels, outputChannels: outputChannels, kernelSize: 3, padding: 1, useBias: false)
        bn2 = BatchNorm(features: outputChannels)
        if stride != 1 || inputChannels != outputChannels {
            downsample = Sequential {
                Conv2D(inputChannels: inputChannels, outputChannels: outputChannels, kernelSize: 1,
                       stride: Size2(stride, stride), useBias: false)
                BatchNorm(features: outputChannels)
            }
        } else {
            downsample = nil
        }
    }

    private init(conv1: Conv2D, conv2: Conv2D, downsample: Sequential?) {
        // Fused form: bn1/bn2 are folded into conv1/conv2 and never called.
        self.conv1 = conv1; self.conv2 = conv2; self.downsample = downsample
        bn1 = BatchNorm(features: conv1.outputChannels); bn2 = BatchNorm(features: conv2.outputChannels)
        isTraining = false
        fused = true
    }

    private var fused = false

    public func forward(_ input: Tensor) -> Tensor {
        let shortcut = downsample.map { $0(input) } ?? input
        if fused { return conv2.forward(conv1(input), adding: shortcut, relu: true) }
        let y = bn2(conv2(bn1(conv1(input)).relu()))
        return (y + shortcut).relu()
    }

    public var children: [(key: String, layer: any Layer)] {
        var c: [(key: String, layer: any Layer)] = fused
            ? [("conv1", conv1), ("conv2", conv2)]
            : [("conv1", conv1), ("bn1", bn1), ("conv2", conv2), ("bn2", bn2)]
        if let downsample { c.append(("downsample", downsample)) }
        return c
    }

    public func fusedForInference() -> any Layer {
        BasicBlock(conv1: conv1.folding(bn1, relu: true), conv2: conv2.folding(bn2, relu: false),
                   downsample: downsample.map { $0.fusedForInference() as! Sequential })
    }

    public var layerDescription: String {
        "BasicBlock(\(conv1.inputChannels) → \(conv1.outputChannels), stride \(conv1.stride.height)"
            + "\(downsample == nil ? "" : ", projection shortcut")\(fused ? ", fused" : ""))"
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
public final class ResNet: Layer {
    public let configuration: Configuration
    public let conv1: Conv2D, bn1: BatchNorm
    public let maxpool: MaxPool2D?
    public let layer1: Sequential, layer2: Sequential, layer3: Sequential, layer4: Sequential
    public let fc: Dense
    public var isTraining = true
    private var fused = false

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

    public init(_ configuration: Configuration) {
        precondition(configuration.blocks.count == 4 && configuration.widths.count == 4,
                     "ResNet: needs 4 stages, got blocks \(configuration.blocks) widths \(configuration.widths)")
        self.configuration = configuration
        let w = configuration.widths
        if configuration.smallImageStem {
            conv1 = Conv2D(inputChannels: configuration.inputChannels, outputChannels: w[0], kernelSize: 3, padding: 1, useBias: false)
            maxpool = nil
        } else {
            conv1 = Conv2D(inputChannels: configuration.inputChannels, outputChannels: w[0], kernelSize: 7, stride: 2,
                           padding: 3, useBias: false)
            maxpool = configuration.stemPool ? MaxPool2D(kernelSize: 3, stride: 2, padding: 1) : nil
        }
        bn1 = BatchNorm(features: w[0])
        var channels = w[0]
        var stages: [Sequential] = []
        for (stage, (width, count)) in zip(w, configuration.blocks).enumerated() {
            var blocks: [any Layer] = []
            for b in 0..<count {
                blocks.append(BasicBlock(inputChannels: channels, outputChannels: width, stride: b == 0 && stage > 0 ? 2 : 1))
                channels = width
            }
            stages.append(Sequential(blocks))
        }
        (layer1, layer2, layer3, layer4) = (stages[0], stages[1], stages[2], stages[3])
        fc = Dense(inputFeatures: channels, outputFeatures: configuration.classCount)
    }

    private init(fusing r: ResNet) {
        configuration = r.configuration
        conv1 = r.conv1.folding(r.bn1, relu: true)
        bn1 = r.bn1
        maxpool = r.maxpool
        layer1 = r.layer1.fusedForInference() as! Sequential
        layer2 = r.layer2.fusedForInference() as! Sequential
        layer3 = r.layer3.fusedForInference() as! Sequential
        layer4 = r.layer4.fusedForInference() as! Sequential
        fc = r.fc
        isTraining = false
        fused = true
    }

    /// Stage widths doubling from `base`: 64 gives torchvision's 64/128/256/512, 16 a compact
    /// model with 1/16 of the parameters.
    public static func stageWidths(base: Int) -> [Int] { (0..<4).map { base << $0 } }

    /// torchvision's `resnet18`: blocks 2/2/2/2.
    public static func resnet18(inputChannels: Int = 3, classCount: Int = 1000, widths: [Int] = [64, 128, 256, 512],
                                smallImageStem: Bool = false, stemPool: Bool = true) -> ResNet {
        ResNet(Configuration(blocks: [2, 2, 2, 2], inputChannels: inputChannels, classCount: classCount,
                             widths: widths, smallImageStem: smallImageStem, stemPool: stemPool))
    }

    /// torchvision's `resnet34`: blocks 3/4/6/3.
    public static func resnet34(inputChannels: Int = 3, classCount: Int = 1000, widths: [Int] = [64, 128, 256, 512],
                                smallImageStem: Bool = false, stemPool: Bool = true) -> ResNet {
        ResNet(Configuration(blocks: [3, 4, 6, 3], inputChannels: inputChannels, classCount: classCount,
                             widths: widths, smallImageStem: smallImageStem, stemPool: stemPool))
    }

    /// The pooled features `[N, widths[3]]` before `fc` (for embeddings or a new head).
    public func features(_ input: Tensor) -> Tensor {
        precondition(input.rank == 4 && input.shape[1] == configuration.inputChannels,
                     "ResNet: input \(input.shape) must be [N, \(configuration.inputChannels), H, W]")
        var x = fused ? conv1(input) : bn1(conv1(input)).relu()
        if let maxpool { x = maxpool(x) }
        x = layer4(layer3(layer2(layer1(x))))
        return x.globalAvgPool2d().reshaped(to: [x.shape[0], x.shape[1]])
    }

    public func forward(_ input: Tensor) -> Tensor { fc(features(input)) }

    public var children: [(key: String, layer: any Layer)] {
        var c: [(key: String, layer: any Layer)] = [("conv1", conv1)]
        if !fused { c.append(("bn1", bn1)) }
        if let maxpool { c.append(("maxpool", maxpool)) }
        return c + [("layer1", layer1), ("layer2", layer2), ("layer3", layer3), ("layer4", layer4), ("fc", fc)]
    }

    public func fusedForInference() -> any Layer { ResNet(fusing: self) }

    public var layerDescription: String {
        let depth = configuration.blocks == [2, 2, 2, 2] ? "ResNet-18" : configuration.blocks == [3, 4, 6, 3] ? "ResNet-34"
            : "ResNet(blocks \(configuration.blocks))"
        return "\(depth)(\(configuration.inputChannels) bands → \(configuration.classCount) classes, widths \(configuration.widths)"
            + "\(configuration.smallImageStem ? ", small-image stem" : configuration.stemPool ? "" : ", no stem max-pool")"
            + "\(fused ? ", fused" : ""))"
    }
}
