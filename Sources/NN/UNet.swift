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

    /// - `widths`: encoder channels per level (their count is the depth);
    /// - `bottleneckWidth`: channels at the bottom (default: twice the last width);
    /// - `seed`: the initial weights' seed (nil: random); the same seed builds the same weights.
    public init(inputChannels: Int = 1, classCount: Int = 3, widths: [Int] = [16, 32, 64, 128], bottleneckWidth: Int? = nil,
                seed: UInt64? = nil) {
        precondition(!widths.isEmpty, "UNet: needs at least one level")
        self.widths = widths
        self.bottleneckWidth = bottleneckWidth ?? 2 * widths.last!
        self.inputChannels = inputChannels
        self.classCount = classCount
        var seeds = LayerSeeds(seed)
        var c = inputChannels
        var downs: [any Layer] = []
        for w in widths { downs.append(UNet.doubleConv(c, w, seeds: &seeds)); c = w }
        down = Sequential(downs)
        bottleneck = UNet.doubleConv(c, self.bottleneckWidth, seeds: &seeds)
        c = self.bottleneckWidth
        var ups: [any Layer] = [], convs: [any Layer] = []
        for w in widths.reversed() {
            ups.append(ConvTranspose2D(inputChannels: c, outputChannels: w, kernelSize: 2, stride: 2, seed: seeds.next()))
            convs.append(UNet.doubleConv(2 * w, w, seeds: &seeds))
            c = w
        }
        up = Sequential(ups)
        upConv = Sequential(convs)
        head = Conv2D(inputChannels: c, outputChannels: classCount, kernelSize: 1, seed: seeds.next())
    }

    /// A U-Net of `depth` levels whose widths double from `baseWidth`
    /// (`baseWidth` 16, `depth` 4: 16/32/64/128, bottleneck 256 — BENCH.md's `unet`).
    public convenience init(inputChannels: Int, classCount: Int, baseWidth: Int, depth: Int, seed: UInt64? = nil) {
        precondition(depth >= 1 && baseWidth >= 1, "UNet: depth \(depth) and baseWidth \(baseWidth) must be positive")
        self.init(inputChannels: inputChannels, classCount: classCount, widths: (0..<depth).map { baseWidth << $0 }, seed: seed)
    }

    /// BENCH.md's `unet`: 1 band, 3 classes, widths 16/32/64/128, bottleneck 256.
    public static func bench(inputChannels: Int = 1, classCount: Int = 3, seed: UInt64? = nil) -> UNet {
        UNet(inputChannels: inputChannels, classCount: classCount, widths: [16, 32, 64, 128], bottleneckWidth: 256, seed: seed)
    }

    static func doubleConv(_ cin: Int, _ cout: Int, seeds: inout LayerSeeds) -> Sequential {
        let (first, second) = (seeds.next(), seeds.next())
        return Sequential {
            Conv2D(inputChannels: cin, outputChannels: cout, kernelSize: 3, padding: 1, useBias: false, seed: first)
            BatchNorm(features: cout)
            Activation.relu()
            Conv2D(inputChannels: cout, outputChannels: cout, kernelSize: 3, padding: 1, useBias: false, seed: second)
            BatchNorm(features: cout)
            Activation.relu()
        }
    }

    public func forward(_ input: Tensor) -> Tensor {
        let factor = 1 << widths.count
        precondition(input.rank == 4 && input.shape[1] == inputChannels && input.shape[2] % factor == 0 && input.shape[3] % factor == 0,
                     "UNet: input \(input.shape) must be [N, \(inputChannels), H, W] with H and W divisible by \(factor)")
        return UNet.encodeDecode(input, down: down.layers, bottleneck: bottleneck, up: up.layers, upConv: upConv.layers, head: head)
    }

    /// The U: each encoder level's output kept as a skip and max-pooled, the bottleneck, then
    /// per level an up-convolution, concatenation with the skip and a double convolution.
    /// Shared with `FusedUNet`'s tensor path.
    static func encodeDecode(_ input: Tensor, down: [any Layer], bottleneck: any Layer, up: [any Layer], upConv: [any Layer],
                        head: any Layer) -> Tensor {
        var x = input
        var skips: [Tensor] = []
        for block in down {
            x = block(x)
            skips.append(x)
            x = x.maxPool2d(kernelSize: 2)
        }
        x = bottleneck(x)
        for (k, skip) in skips.reversed().enumerated() {
            x = upConv[k](Tensor.concatenate([up[k](x), skip], axis: 1))
        }
        return head(x)
    }

    public var children: [(key: String, layer: any Layer)] {
        [("down", down), ("bottleneck", bottleneck), ("up", up), ("up_conv", upConv), ("head", head)]
    }

    public var layerDescription: String {
        "UNet(\(inputChannels) bands → \(classCount) classes, widths \(widths), bottleneck \(bottleneckWidth))"
    }
}
