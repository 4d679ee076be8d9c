// Convolution and transposed convolution layers.
import Autograd

/// A 2-D convolution, as PyTorch's `nn.Conv2d` (cross-correlation, zero padding).
///
/// - `input`: `[N, inputChannels, H, W]`; returns `[N, outputChannels, H', W']` with
///   `H' = (H + 2p - d(k - 1) - 1) / s + 1`.
/// - Keys: `weight` `[outputChannels, inputChannels, kh, kw]`, `bias` `[outputChannels]`.
public final class Conv2D: Layer {
    public let inputChannels: Int
    public let outputChannels: Int
    public let kernelSize: Size2
    public let stride: Size2
    public let padding: Padding
    public let dilation: Size2
    public let weight: Tensor
    public let bias: Tensor?
    public var isTraining = true

    public init(inputChannels: Int, outputChannels: Int, kernelSize: Size2, stride: Size2 = 1,
                padding: Padding = .valid, dilation: Size2 = 1, useBias: Bool = true, seed: UInt64? = nil) {
        precondition(inputChannels > 0 && outputChannels > 0, "Conv2D: channels must be positive, got \(inputChannels) → \(outputChannels)")
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        let fanIn = inputChannels * kernelSize.height * kernelSize.width
        let s = WeightInitialization.seed(seed)
        weight = WeightInitialization.uniform([outputChannels, inputChannels, kernelSize.height, kernelSize.width], fanIn: fanIn, seed: s)
        bias = useBias ? WeightInitialization.uniform([outputChannels], fanIn: fanIn, seed: s &+ 1) : nil
    }

    public func forward(_ input: Tensor) -> Tensor {
        precondition(input.rank == 4 && input.shape[1] == inputChannels,
                     "\(layerDescription): input \(input.shape) must be [N, \(inputChannels), H, W]")
        return input.conv2d(weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation)
    }

    public var ownTensors: [NamedTensor] {
        [NamedTensor("weight", weight)] + (bias.map { [NamedTensor("bias", $0)] } ?? [])
    }

    public var layerDescription: String {
        convolutionDescription("Conv2D", inputChannels, outputChannels, kernelSize, stride, padding, dilation,
                               extras: bias == nil ? ["no bias"] : [])
    }
}

/// `Conv2D(1 → 32, kernel 3×3, stride 1, padding 1, extras...)` (also `FusedConv2D`'s).
func convolutionDescription(_ name: String, _ inputChannels: Int, _ outputChannels: Int, _ kernelSize: Size2, _ stride: Size2,
                            _ padding: Padding, _ dilation: Size2, extras: [String]) -> String {
    var parts = ["\(inputChannels) → \(outputChannels)", "kernel \(kernelSize.height)×\(kernelSize.width)",
                 "stride \(stride.height == stride.width ? "\(stride.height)" : "\(stride.height)×\(stride.width)")",
                 "padding \(paddingText(padding))"]
    if dilation != 1 { parts.append("dilation \(dilation.height)×\(dilation.width)") }
    return name + "(" + (parts + extras).joined(separator: ", ") + ")"
}

func paddingText(_ p: Padding) -> String {
    switch p {
    case .valid: return "0"
    case .same: return "same"
    case .explicit(let s): return s.height == s.width ? "\(s.height)" : "\(s.height)×\(s.width)"
    }
}

/// A transposed 2-D convolution, as PyTorch's `nn.ConvTranspose2d` (e.g. U-Net up-sampling).
///
/// - `input`: `[N, inputChannels, H, W]`; returns `[N, outputChannels, H', W']` with
///   `H' = (H - 1) s - 2p + d(k - 1) + outputPadding + 1`.
/// - Keys: `weight` `[inputChannels, outputChannels, kh, kw]` (PyTorch's layout), `bias`.
public final class ConvTranspose2D: Layer {
    public let inputChannels: Int
    public let outputChannels: Int
    public let kernelSize: Size2
    public let stride: Size2
    public let padding: Size2
    public let outputPadding: Size2
    public let weight: Tensor
    public let bias: Tensor?
    public var isTraining = true

    public init(inputChannels: Int, outputChannels: Int, kernelSize: Size2, stride: Size2 = 1,
                padding: Size2 = 0, outputPadding: Size2 = 0, useBias: Bool = true, seed: UInt64? = nil) {
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        self.outputPadding = outputPadding
        // PyTorch computes fan-in from weight.shape[1] * kh * kw for transposed convolutions.
        let fanIn = outputChannels * kernelSize.height * kernelSize.width
        let s = WeightInitialization.seed(seed)
        weight = WeightInitialization.uniform([inputChannels, outputChannels, kernelSize.height, kernelSize.width], fanIn: fanIn, seed: s)
        bias = useBias ? WeightInitialization.uniform([outputChannels], fanIn: fanIn, seed: s &+ 1) : nil
    }

    public func forward(_ input: Tensor) -> Tensor {
        precondition(input.rank == 4 && input.shape[1] == inputChannels,
                     "\(layerDescription): input \(input.shape) must be [N, \(inputChannels), H, W]")
        return input.transposedConv2d(weight: weight, bias: bias, stride: stride, padding: padding,
                                      outputPadding: outputPadding)
    }

    public var ownTensors: [NamedTensor] {
        [NamedTensor("weight", weight)] + (bias.map { [NamedTensor("bias", $0)] } ?? [])
    }

    public var layerDescription: String {
        "ConvTranspose2D(\(inputChannels) → \(outputChannels), kernel \(kernelSize.height)×\(kernelSize.width), "
            + "stride \(stride.height), padding \(padding.height)\(bias == nil ? ", no bias" : ""))"
    }
}
