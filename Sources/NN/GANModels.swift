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
