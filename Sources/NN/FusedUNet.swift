// The U-Net's inference executor made by the fusion pass: channel-blocked activations from
// the first convolution to the head.
import Autograd

/// A `UNet` for inference: each [conv, batch norm, ReLU] folded into one `FusedConv2D`, the
/// up-convolutions as `FusedConvTranspose2D`, and, when every width is a multiple of 16 and
/// oneDNN runs, the whole pass on `BlockedFeatureMap`s (nChw16c): no reorders between layers,
/// pooling and concatenation on blocks, 2×2 up-convolutions as a 1×1 convolution and a pixel
/// shuffle. Otherwise (gradients on, the im2col backend, other widths) the same layers run
/// on NCHW tensors, in `UNet.forward`'s order.
///
/// - `input`: `[N, inputChannels, H, W]` with `H`, `W` divisible by `2^depth`;
///   returns logits `[N, classCount, H, W]`.
/// - Keys: as `UNet`'s, with the folded batch norms and ReLUs as `Identity` placeholders.
public final class FusedUNet: Layer {
    public let widths: [Int]
    public let bottleneckWidth: Int
    public let inputChannels: Int
    public let classCount: Int
    public let down: Sequential
    public let bottleneck: Sequential
    public let up: Sequential
    public let upConv: Sequential
    public let head: FusedConv2D
    /// The convolutions of each fused double convolution, in order.
    private let downConvolutions: [[FusedConv2D]], bottleneckConvolutions: [FusedConv2D], upConvolutions: [[FusedConv2D]]
    private let upSampling: [FusedConvTranspose2D]
    /// Every width blocks (a multiple of 16): the blocked pass may run.
    private let blockable: Bool

    public init(_ u: UNet) {
        widths = u.widths; bottleneckWidth = u.bottleneckWidth; inputChannels = u.inputChannels; classCount = u.classCount
        func fused(_ s: Sequential) -> Sequential { s.fusedForInference() as! Sequential }
        func convolutions(_ s: Sequential) -> [FusedConv2D] { s.layers.compactMap { $0 as? FusedConv2D } }
        let downs = u.down.layers.map { fused($0 as! Sequential) }
        let convs = u.upConv.layers.map { fused($0 as! Sequential) }
        upSampling = u.up.layers.map { FusedConvTranspose2D($0 as! ConvTranspose2D) }
        down = Sequential(downs); bottleneck = fused(u.bottleneck); up = Sequential(upSampling); upConv = Sequential(convs)
        head = FusedConv2D(u.head)
        downConvolutions = downs.map(convolutions)
        bottleneckConvolutions = convolutions(bottleneck)
        upConvolutions = convs.map(convolutions)
        blockable = (widths + [bottleneckWidth]).allSatisfy(BlockedFeatureMap.supports(channels:))
        down.isTraining = false; up.isTraining = false; upConv.isTraining = false
    }

    /// Inference only (see `FusedConv2D.isTraining`).
    public var isTraining: Bool {
        get { false }
        set { precondition(!newValue, "\(layerDescription) is inference-only; train the model it was fused from") }
    }

    public func forward(_ input: Tensor) -> Tensor {
        let factor = 1 << widths.count
        precondition(input.rank == 4 && input.shape[1] == inputChannels && input.shape[2] % factor == 0 && input.shape[3] % factor == 0,
                     "FusedUNet: input \(input.shape) must be [N, \(inputChannels), H, W] with H and W divisible by \(factor)")
        if blockable, !GradMode.isEnabled, BlockedFeatureMap.isAvailable, let output = blockedForward(input) { return output }
        return UNet.encodeDecode(input, down: down.layers, bottleneck: bottleneck, up: up.layers, upConv: upConv.layers, head: head)
    }

    /// The pass on channel-blocked maps; nil when oneDNN declines a layer.
    private func blockedForward(_ input: Tensor) -> Tensor? {
        func chain(_ convolutions: ArraySlice<FusedConv2D>, _ x: BlockedFeatureMap) -> BlockedFeatureMap? {
            var x = x
            for conv in convolutions { guard let y = conv.forward(blocked: x) else { return nil }; x = y }
            return x
        }
        var skips: [BlockedFeatureMap] = []
        var x: BlockedFeatureMap? = nil
        for (level, convolutions) in downConvolutions.enumerated() {
            let start = level == 0 ? convolutions[0].blocked(input) : x
            guard let start, let y = chain(convolutions[(level == 0 ? 1 : 0)...], start) else { return nil }
            skips.append(y)
            x = y.maxPool2d(kernelSize: 2)
        }
        guard var h = chain(bottleneckConvolutions[...], x!) else { return nil }
        for (k, skip) in skips.reversed().enumerated() {
            guard let upsampled = upSampling[k].forward(blocked: h),
                  let next = chain(upConvolutions[k][...], upsampled.concatenated(with: skip)) else { return nil }
            h = next
        }
        return head.plain(h)
    }

    public var children: [(key: String, layer: any Layer)] {
        [("down", down), ("bottleneck", bottleneck), ("up", up), ("up_conv", upConv), ("head", head)]
    }

    public var layerDescription: String {
        "FusedUNet(\(inputChannels) bands → \(classCount) classes, widths \(widths), bottleneck \(bottleneckWidth)"
            + "\(blockable ? ", channel-blocked" : ""))"
    }
}

extension UNet {
    /// `FusedUNet` (eval mode only).
    public func fusedForInference() -> any Layer { FusedUNet(self) }
}
