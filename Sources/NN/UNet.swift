// U-Net for per-pixel classification (segmentation).
import Autograd

/// U-Net with BENCH.md's topology and `reference_models.py`'s parameter names:
/// `down.K` (two [3×3 conv without bias, BN, ReLU] as `down.K.0`, `.1`, `.3`, `.4`), max-pool
/// 2 between levels, `bottleneck`, `up.K` (2×2 stride-2 transposed convolution halving the
/// channels), `up_conv.K` (two [conv, BN, ReLU] on the concatenation with the skip), `head`
/// (1×1 convolution to the classes).
///
/// - `input`: `[N, inputChannels, H, W]` with `H`, `W` divisible by `2^depth`;
///   returns logits `[N, classCount, H, W]`.
public final class UNet: Layer {
    public let widths: [Int]
    public let bottleneckWidth: Int
    public let inputChannels: Int
    public let classCount: Int
    public let down: Sequential
    public let bottleneck: Sequential
    public let up: Sequential
    public let upConv: Sequential
    public let head: Conv2D
    public var isTraining = true
    private let pool = MaxPool2D(kernelSize: 2)

    /// - `widths`: encoder channels per level (their count is the depth);
    /// - `bottleneckWidth`: channels at the bottom (default: twice the last width).
    public init(inputChannels: Int = 1, classCount: Int = 3, widths: [Int] = [16, 32, 64, 128], bottleneckWidth: Int? = nil) {
        precondition(!widths.isEmpty, "UNet: needs at least one level")
        self.widths = widths
        self.bottleneckWidth = bottleneckWidth ?? 2 * widths.last!
        self.inputChannels = inputChannels
        self.classCount = classCount
        var c = inputChannels
        var downs: [any Layer] = []
        for w in widths { downs.append(UNet.doubleConv(c, w)); c = w }
        down = Sequential(downs)
        bottleneck = UNet.doubleConv(c, self.bottleneckWidth)
        c = self.bottleneckWidth
        var ups: [any Layer] = [], convs: [any Layer] = []
        for w in widths.reversed() {
            ups.append(ConvTranspose2D(inputChannels: c, outputChannels: w, kernelSize: 2, stride: 2))
            convs.append(UNet.doubleConv(2 * w, w))
            c = w
        }
        up = Sequential(ups)
        upConv = Sequential(convs)
        head = Conv2D(inputChannels: c, outputChannels: classCount, kernelSize: 1)
    }

    private init(fusing u: UNet) {
        widths = u.widths; bottleneckWidth = u.bottleneckWidth; inputChannels = u.inputChannels; classCount = u.classCount
        down = Sequential(u.down.layers.map { $0.fusedForInference() })
        bottleneck = u.bottleneck.fusedForInference() as! Sequential
        up = Sequential(u.up.layers.map { $0.fusedForInference() })
        upConv = Sequential(u.upConv.layers.map { $0.fusedForInference() })
        head = u.head
        isTraining = false
        fusedModel = true
    }

    /// Built by `fusedForInference()` (batch norms folded): may run `blockedForward`.
    private var fusedModel = false

    /// A U-Net of `depth` levels whose widths double from `baseWidth`
    /// (`baseWidth` 16, `depth` 4: 16/32/64/128, bottleneck 256 — BENCH.md's `unet`).
    public convenience init(inputChannels: Int, classCount: Int, baseWidth: Int, depth: Int) {
        precondition(depth >= 1 && baseWidth >= 1, "UNet: depth \(depth) and baseWidth \(baseWidth) must be positive")
        self.init(inputChannels: inputChannels, classCount: classCount, widths: (0..<depth).map { baseWidth << $0 })
    }

    /// BENCH.md's `unet`: 1 band, 3 classes, widths 16/32/64/128, bottleneck 256.
    public static func bench(inputChannels: Int = 1, classCount: Int = 3) -> UNet {
        UNet(inputChannels: inputChannels, classCount: classCount, widths: [16, 32, 64, 128], bottleneckWidth: 256)
    }

    static func doubleConv(_ cin: Int, _ cout: Int) -> Sequential {
        Sequential {
            Conv2D(inputChannels: cin, outputChannels: cout, kernelSize: 3, padding: 1, useBias: false)
            BatchNorm(features: cout)
            Activation.relu()
            Conv2D(inputChannels: cout, outputChannels: cout, kernelSize: 3, padding: 1, useBias: false)
            BatchNorm(features: cout)
            Activation.relu()
        }
    }

    public func forward(_ input: Tensor) -> Tensor {
        let factor = 1 << widths.count
        precondition(input.rank == 4 && input.shape[1] == inputChannels && input.shape[2] % factor == 0 && input.shape[3] % factor == 0,
                     "UNet: input \(input.shape) must be [N, \(inputChannels), H, W] with H and W divisible by \(factor)")
        if let output = blockedForward(input) { return output }
        var x = input
        var skips: [Tensor] = []
        for block in down.layers {
            x = block(x)
            skips.append(x)
            x = pool(x)
        }
        x = bottleneck(x)
        for (k, skip) in skips.reversed().enumerated() {
            x = upConv.layers[k](Tensor.concatenate([up.layers[k](x), skip], axis: 1))
        }
        return head(x)
    }

    /// A fused U-Net's inference on channel-blocked feature maps (`BlockedFeatureMap`): no
    /// reorders between layers. nil when it cannot run (gradients on, not fused, another
    /// convolution backend, widths that are not multiples of 16); `forward` then uses tensors.
    private func blockedForward(_ input: Tensor) -> Tensor? {
        guard fusedModel, !GradMode.isEnabled, BlockedFeatureMap.isAvailable,
              widths.allSatisfy({ BlockedFeatureMap.supports(channels: $0) }),
              BlockedFeatureMap.supports(channels: bottleneckWidth) else { return nil }
        /// A fused double convolution: its convolutions, Identity placeholders skipped.
        func convolutions(_ layer: any Layer) -> [Conv2D]? {
            guard let sequence = layer as? Sequential else { return nil }
            var out: [Conv2D] = []
            for l in sequence.layers where !(l is Identity) {
                guard let conv = l as? Conv2D else { return nil }
                out.append(conv)
            }
            return out.isEmpty ? nil : out
        }
        func apply(_ layer: any Layer, _ x: BlockedFeatureMap) -> BlockedFeatureMap? {
            guard let convs = convolutions(layer) else { return nil }
            var x = x
            for conv in convs { guard let y = conv.forward(blocked: x) else { return nil }; x = y }
            return x
        }
        var skips: [BlockedFeatureMap] = []
        var x: BlockedFeatureMap? = nil
        for (level, block) in down.layers.enumerated() {
            var y: BlockedFeatureMap
            if level == 0 {
                guard let convs = convolutions(block), let first = convs[0].forwardToBlocked(input) else { return nil }
                y = first
                for conv in convs.dropFirst() { guard let next = conv.forward(blocked: y) else { return nil }; y = next }
            } else {
                guard let next = apply(block, x!) else { return nil }
                y = next
            }
            skips.append(y)
            x = y.maxPool2d(kernelSize: 2)
        }
        guard var h = apply(bottleneck, x!) else { return nil }
        for (k, skip) in skips.reversed().enumerated() {
            guard let upConvolution = up.layers[k] as? ConvTranspose2D, let upsampled = upConvolution.forward(blocked: h),
                  let next = apply(upConv.layers[k], upsampled.concatenated(with: skip)) else { return nil }
            h = next
        }
        return head.forwardToPlain(blocked: h)
    }

    public var children: [(key: String, layer: any Layer)] {
        [("down", down), ("bottleneck", bottleneck), ("up", up), ("up_conv", upConv), ("head", head)]
    }

    public func fusedForInference() -> any Layer { UNet(fusing: self) }

    public var layerDescription: String {
        "UNet(\(inputChannels) bands → \(classCount) classes, widths \(widths), bottleneck \(bottleneckWidth))"
    }
}
