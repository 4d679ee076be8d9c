// Discriminators and generators for adversarial training.
import Autograd

/// pix2pix's PatchGAN discriminator (BENCH.md's `pix2pix`, `reference_models.PatchDiscriminator`):
/// conv4×4/2 (→ width) LeakyReLU 0.2, conv4×4/2 (→ 2·width, no bias) BN LeakyReLU,
/// conv4×4/1 (→ 4·width, no bias) BN LeakyReLU, conv4×4/1 (→ 1), padding 1 each: one logit per
/// overlapping patch (a 64 × 64 input gives 14 × 14 logits, as PyTorch's, each seeing 34 × 34 pixels).
///
/// - `input`: `[N, inputChannels, H, W]` (conditional: the condition and the image
///   concatenated); returns logits `[N, 1, H/4 - 2, W/4 - 2]`.
/// - Keys: `net.0`, `net.2`, `net.3`, `net.5`, `net.6`, `net.8` as PyTorch's `nn.Sequential`;
///   with `spectralNorm` every convolution is a `SpectralNorm` (PyTorch's parametrisation keys).
public final class PatchDiscriminator: Layer {
    public let net: Sequential
    public let inputChannels: Int
    public var isTraining = true

    public init(inputChannels: Int = 2, width: Int = 64, spectralNorm: Bool = false, seed: UInt64? = nil) {
        self.inputChannels = inputChannels
        var seeds = LayerSeeds(seed)
        func conv(_ cin: Int, _ cout: Int, stride: Int, bias: Bool) -> any Layer {
            let c = Conv2D(inputChannels: cin, outputChannels: cout, kernelSize: 4, stride: Size2(stride, stride), padding: 1,
                           useBias: bias, seed: seeds.next())
            return spectralNorm ? SpectralNorm(c, seed: seeds.next()) : c
        }
        let leaky = { Activation(.leakyReLU(negativeSlope: 0.2)) }
        net = Sequential([
            conv(inputChannels, width, stride: 2, bias: true), leaky(),
            conv(width, 2 * width, stride: 2, bias: false), BatchNorm(features: 2 * width), leaky(),
            conv(2 * width, 4 * width, stride: 1, bias: false), BatchNorm(features: 4 * width), leaky(),
            conv(4 * width, 1, stride: 1, bias: true),
        ])
    }

    public func forward(_ input: Tensor) -> Tensor {
        precondition(input.rank == 4 && input.shape[1] == inputChannels,
                     "PatchDiscriminator: input \(input.shape) must be [N, \(inputChannels), H, W]")
        return net(input)
    }

    public var children: [(key: String, layer: any Layer)] { [("net", net)] }
    public var layerDescription: String { "PatchDiscriminator(\(inputChannels) channels → patch logits)" }
}

/// The DCGAN generator (Radford et al. 2016, as PyTorch's DCGAN example; the defaults are its
/// 64 × 64 network, 3,576,704 parameters for 3 bands):
/// noise `[N, latent]` seen as `[N, latent, 1, 1]`, a 4×4 transposed convolution to
/// `widths[0]` channels at 4 × 4, then transposed convolutions 4×4/2 (padding 1) that double
/// the size through `widths[1...]`, each followed by batch norm and ReLU, and a last one to
/// `outputChannels` with tanh: images in [-1, 1] of side `4 · 2^widths.count`. No convolution
/// before a batch norm has a bias.
///
/// With `upsampling: .nearest` each doubling is instead a nearest-neighbour ×2 up-sampling and
/// a 3×3 convolution (padding 1; "resize-convolution", Odena et al. 2016, Distill): every
/// output pixel then sees the same number of kernel taps, so the images carry no checkerboard.
///
/// - `input`: `[N, latentDimension]`; returns `[N, outputChannels, size, size]`.
/// - Keys: `net.0` (convolution), `net.1` (batch norm), `net.3`, `net.4`, ... as PyTorch's
///   `nn.Sequential` with ReLUs at `net.2`, `net.5`, ...; the last convolution at `net.<3·widths.count>`.
///   With `.nearest` each doubling takes four places (up-sampling, convolution, batch norm,
///   ReLU): convolutions at `net.0`, `net.4`, `net.8`, ..., the last at `net.<4·widths.count>`.
public final class DCGANGenerator: Layer {
    /// How each level doubles the image size.
    public enum Upsampling: String, CaseIterable, Sendable {
        /// 4×4 transposed convolutions with stride 2 (DCGAN's).
        case transposed
        /// Nearest-neighbour ×2, then a 3×3 convolution.
        case nearest
    }

    public let net: Sequential
    public let latentDimension: Int
    /// Classes of a class-conditional generator (0: unconditional): a one-hot code of the class
    /// follows the noise in the input (Mirza & Osindero 2014).
    public let classCount: Int
    public let outputChannels: Int
    public let widths: [Int]
    public let upsampling: Upsampling
    public var isTraining = true

    /// The input's width: the noise, then the one-hot class code.
    public var inputDimension: Int { latentDimension + classCount }

    /// The side of the images: 4 · 2^widths.count (64 for four widths).
    public var imageSize: Int { 4 << widths.count }

    /// The widths for images of side `imageSize` (a power of two ≥ 8) with `width` channels in
    /// the last hidden layer: `[width · 2^(k-1), ..., 2 · width, width]`, halving as the size doubles.
    public static func widths(imageSize: Int, width: Int) -> [Int] {
        precondition(imageSize >= 8 && imageSize & (imageSize - 1) == 0, "DCGANGenerator: image size \(imageSize) must be a power of two ≥ 8")
        let levels = imageSize.trailingZeroBitCount - 2
        return (0..<levels).map { width << (levels - 1 - $0) }
    }

    public init(latentDimension: Int = 100, outputChannels: Int = 1, widths: [Int] = [512, 256, 128, 64],
                upsampling: Upsampling = .transposed, classCount: Int = 0, seed: UInt64? = nil) {
        precondition(latentDimension > 0 && outputChannels > 0 && !widths.isEmpty && widths.allSatisfy { $0 > 0 } && classCount >= 0,
                     "DCGANGenerator: latent \(latentDimension), channels \(outputChannels) and widths \(widths) must be positive, "
                     + "classes \(classCount) not negative")
        self.latentDimension = latentDimension
        self.classCount = classCount
        self.outputChannels = outputChannels
        self.widths = widths
        self.upsampling = upsampling
        var seeds = LayerSeeds(seed)
        func doubling(_ cin: Int, _ cout: Int) -> [any Layer] {
            switch upsampling {
            case .transposed:
                return [ConvTranspose2D(inputChannels: cin, outputChannels: cout, kernelSize: 4, stride: 2, padding: 1, useBias: false,
                                        seed: seeds.next())]
            case .nearest:
                return [Upsample(scale: 2),
                        Conv2D(inputChannels: cin, outputChannels: cout, kernelSize: 3, padding: 1, useBias: false, seed: seeds.next())]
            }
        }
        var layers: [any Layer] = [
            ConvTranspose2D(inputChannels: latentDimension + classCount, outputChannels: widths[0], kernelSize: 4, useBias: false,
                            seed: seeds.next()),
            BatchNorm(features: widths[0]), Activation.relu(),
        ]
        for (cin, cout) in zip(widths, widths.dropFirst()) {
            layers += doubling(cin, cout) + [BatchNorm(features: cout), Activation.relu()]
        }
        layers += doubling(widths.last!, outputChannels) + [Activation(.tanh)]
        net = Sequential(layers)
    }

    public func forward(_ input: Tensor) -> Tensor {
        precondition(input.rank == 2 && input.shape[1] == inputDimension,
                     "DCGANGenerator: input \(input.shape) must be noise [N, \(latentDimension)]"
                     + (classCount > 0 ? " followed by a one-hot class code [N, \(classCount)]" : ""))
        return net(input.reshaped(to: [input.shape[0], inputDimension, 1, 1]))
    }

    public var children: [(key: String, layer: any Layer)] { [("net", net)] }
    public var layerDescription: String {
        "DCGANGenerator(latent \(latentDimension)\(classCount > 0 ? " + \(classCount) classes" : "") → "
            + "\(outputChannels)×\(imageSize)×\(imageSize), widths \(widths)"
            + (upsampling == .transposed ? ")" : ", \(upsampling.rawValue) up-sampling)")
    }
}

/// Minibatch standard deviation (Karras et al. 2018, ProGAN, §3): the batch is split into groups
/// of `groupSize` images (sample `n` in group position `n / M`, subgroup `n % M`, `M = N / G`, as
/// ProGAN's code), the standard deviation of every feature over each subgroup's `G` images is
/// averaged into one number, and that number is appended to each of the subgroup's images as a
/// constant extra channel. A discriminator then sees how varied a batch is, and a generator that
/// makes too alike images is found out. `G` is the largest divisor of `N` not above `groupSize`
/// (1 for a single image: the channel is then √ε).
///
/// - `input`: `[N, C, H, W]`; returns `[N, C + 1, H, W]`. No parameters.
public final class MinibatchStdDev: Layer {
    public let groupSize: Int
    public let epsilon: Float
    public var isTraining = true

    public init(groupSize: Int = 4, epsilon: Float = 1e-8) {
        precondition(groupSize >= 1, "MinibatchStdDev: group size \(groupSize) must be positive")
        self.groupSize = groupSize
        self.epsilon = epsilon
    }

    public func forward(_ input: Tensor) -> Tensor {
        precondition(input.rank == 4, "MinibatchStdDev: input \(input.shape) must be [N, C, H, W]")
        let n = input.shape[0], c = input.shape[1], h = input.shape[2], w = input.shape[3]
        let g = (1...min(groupSize, max(n, 1))).last { n % $0 == 0 } ?? 1
        let m = n / g
        let grouped = input.reshaped(to: [g, m, c * h * w])
        let centred = grouped - grouped.mean(axes: [0], keepDims: true)
        let deviation = (centred.squared().mean(axes: [0]) + epsilon).sqrt().mean(axes: [1])      // [M]
        let channel = deviation.reshaped(to: [1, m, 1]).expanded(to: [g, m, h * w]).reshaped(to: [n, 1, h, w])
        return Tensor.concatenate([input, channel], axis: 1)
    }

    public var layerDescription: String { "MinibatchStdDev(group \(groupSize))" }
}

/// The DCGAN discriminator (Radford et al. 2016, as PyTorch's DCGAN example): convolutions
/// 4×4/2 (padding 1, no bias) through `widths` with LeakyReLU 0.2 and batch norm after all but
/// the first (with `spectralNorm`: biases instead of the batch norms, below), halving the size
/// down to 4 × 4, then a 4×4 convolution to one logit per image (the example's sigmoid is left
/// to the loss: BCE with logits).
///
/// - `input`: `[N, inputChannels, size, size]` with `size = 4 · 2^widths.count`; returns logits `[N, 1]`.
/// - Keys: `net.0` (convolution), `net.2`, `net.3` (convolution, batch norm), ... as PyTorch's
///   `nn.Sequential`; with `spectralNorm` every convolution is a `SpectralNorm` (PyTorch's
///   parametrisation keys) and, as in SNGAN's discriminators (Miyato et al. 2018), the batch
///   norms give way to biases (keys `net.0`, `net.2`, `net.4`, ...): a batch norm would
///   rescale away the Lipschitz bound the normalisation sets.
/// - `minibatchStdDevGroup`: above 0, a `MinibatchStdDev` layer over groups of that many images
///   before the last convolution, which then reads `widths.last + 1` channels (ProGAN's place).
public final class DCGANDiscriminator: Layer {
    public let net: Sequential
    public let inputChannels: Int
    public let widths: [Int]
    public var isTraining = true

    public var imageSize: Int { 4 << widths.count }

    public init(inputChannels: Int = 1, widths: [Int] = [64, 128, 256, 512], spectralNorm: Bool = false,
                minibatchStdDevGroup: Int = 0, seed: UInt64? = nil) {
        precondition(inputChannels > 0 && !widths.isEmpty && widths.allSatisfy { $0 > 0 },
                     "DCGANDiscriminator: channels \(inputChannels) and widths \(widths) must be positive")
        self.inputChannels = inputChannels
        self.widths = widths
        var seeds = LayerSeeds(seed)
        func conv(_ cin: Int, _ cout: Int, stride: Int, padding: Int, bias: Bool) -> any Layer {
            let c = Conv2D(inputChannels: cin, outputChannels: cout, kernelSize: 4, stride: Size2(stride, stride),
                           padding: .explicit(Size2(padding, padding)), useBias: bias, seed: seeds.next())
            return spectralNorm ? SpectralNorm(c, seed: seeds.next()) : c
        }
        let leaky = { Activation(.leakyReLU(negativeSlope: 0.2)) }
        var layers: [any Layer] = [conv(inputChannels, widths[0], stride: 2, padding: 1, bias: false), leaky()]
        for (cin, cout) in zip(widths, widths.dropFirst()) {
            layers += spectralNorm ? [conv(cin, cout, stride: 2, padding: 1, bias: true), leaky()]
                                   : [conv(cin, cout, stride: 2, padding: 1, bias: false), BatchNorm(features: cout), leaky()]
        }
        if minibatchStdDevGroup > 0 { layers.append(MinibatchStdDev(groupSize: minibatchStdDevGroup)) }
        layers += [conv(widths.last! + (minibatchStdDevGroup > 0 ? 1 : 0), 1, stride: 1, padding: 0, bias: false), Flatten()]
        net = Sequential(layers)
    }

    public func forward(_ input: Tensor) -> Tensor {
        precondition(input.rank == 4 && input.shape[1] == inputChannels && input.shape[2] == imageSize && input.shape[3] == imageSize,
                     "DCGANDiscriminator: input \(input.shape) must be [N, \(inputChannels), \(imageSize), \(imageSize)]")
        return net(input)
    }

    public var children: [(key: String, layer: any Layer)] { [("net", net)] }
    public var layerDescription: String { "DCGANDiscriminator(\(inputChannels)×\(imageSize)×\(imageSize) → logit, widths \(widths))" }
}

/// Discriminators at several resolutions (pix2pixHD, Wang et al. 2018): scale `k` is a
/// `DCGANDiscriminator` on the image average-pooled by `2^k` (2×2 means, repeated), with the last
/// `k` of `widths` dropped so each ends at 4 × 4. Light spread too thinly to stand out of the
/// per-pixel noise, such as a galaxy's faint wings, adds up in the coarser scales, where a
/// discriminator can see it.
///
/// - `input`: `[N, inputChannels, size, size]`, `size = 4 · 2^widths.count`; returns logits
///   `[N, scaleCount]` (scale `k` in column `k`), which the GAN losses average like a patch
///   discriminator's.
/// - Keys: `d0.net.0`, ..., `d1.net.0`, ... (each scale as a `DCGANDiscriminator`).
public final class MultiScaleDiscriminator: Layer {
    public let scales: [DCGANDiscriminator]
    public var isTraining = true

    public init(inputChannels: Int = 1, widths: [Int], scaleCount: Int = 2, spectralNorm: Bool = false,
                minibatchStdDevGroup: Int = 0, seed: UInt64? = nil) {
        precondition(scaleCount >= 1 && scaleCount <= widths.count,
                     "MultiScaleDiscriminator: \(scaleCount) scales need 1 to \(widths.count) (the widths' count)")
        var seeds = LayerSeeds(seed)
        scales = (0..<scaleCount).map { k in
            DCGANDiscriminator(inputChannels: inputChannels, widths: Array(widths.dropLast(k)), spectralNorm: spectralNorm,
                               minibatchStdDevGroup: minibatchStdDevGroup, seed: seeds.next())
        }
    }

    public var imageSize: Int { scales[0].imageSize }

    public func forward(_ input: Tensor) -> Tensor {
        var image = input
        var logits: [Tensor] = []
        for (k, scale) in scales.enumerated() {
            if k > 0 { image = image.avgPool2d(kernelSize: Size2(2, 2)) }
            logits.append(scale(image))
        }
        return logits.count == 1 ? logits[0] : Tensor.concatenate(logits, axis: 1)
    }

    public var children: [(key: String, layer: any Layer)] { scales.enumerated().map { ("d\($0.offset)", $0.element) } }
    public var layerDescription: String {
        "MultiScaleDiscriminator(\(scales[0].inputChannels)×\(imageSize)×\(imageSize) → \(scales.count) logits, widths \(scales[0].widths))"
    }
}
