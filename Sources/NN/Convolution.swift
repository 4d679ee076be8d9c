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
    /// Applies ReLU to the output (set by `fusedForInference` when a ReLU followed).
    public let fusedReLU: Bool
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
        let s = seed ?? WeightInitialization.nextSeed()
        weight = WeightInitialization.uniform([outputChannels, inputChannels, kernelSize.height, kernelSize.width], fanIn: fanIn, seed: s)
        bias = useBias ? WeightInitialization.uniform([outputChannels], fanIn: fanIn, seed: s &+ 1) : nil
        fusedReLU = false
    }

    /// A convolution with the given weights (used by batch-norm folding).
    init(like other: Conv2D, weight: Tensor, bias: Tensor?, fusedReLU: Bool) {
        inputChannels = other.inputChannels; outputChannels = other.outputChannels
        kernelSize = other.kernelSize; stride = other.stride; padding = other.padding; dilation = other.dilation
        self.weight = weight; self.bias = bias; self.fusedReLU = fusedReLU
        isTraining = false
    }

    public func forward(_ input: Tensor) -> Tensor {
        precondition(input.rank == 4 && input.shape[1] == inputChannels,
                     "\(layerDescription): input \(input.shape) must be [N, \(inputChannels), H, W]")
        guard fusedReLU else {
            return input.conv2d(weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation)
        }
        // In inference oneDNN applies the ReLU as a post-op; with gradients on, the recorded ops.
        return input.conv2d(weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation,
                            adding: nil, relu: true)
    }

    /// `relu?(self(input) + residual)`, fused into the convolution in inference (a ResNet
    /// block's second convolution and its shortcut). `residual` has the output's shape.
    public func forward(_ input: Tensor, adding residual: Tensor, relu: Bool) -> Tensor {
        precondition(input.rank == 4 && input.shape[1] == inputChannels,
                     "\(layerDescription): input \(input.shape) must be [N, \(inputChannels), H, W]")
        return input.conv2d(weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation,
                            adding: residual, relu: relu || fusedReLU)
    }

    /// Inference on a channel-blocked map (see `BlockedFeatureMap`), output blocked; nil when
    /// the blocked path cannot run (the caller falls back to tensors).
    public func forward(blocked input: BlockedFeatureMap) -> BlockedFeatureMap? {
        guard input.shape[1] == inputChannels else { return nil }
        return input.conv2d(weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation, relu: fusedReLU)
    }

    /// Inference from an NCHW tensor to a channel-blocked map (the first layer of a blocked chain).
    public func forwardToBlocked(_ input: Tensor) -> BlockedFeatureMap? {
        guard input.rank == 4, input.shape[1] == inputChannels else { return nil }
        return BlockedFeatureMap.conv2d(input, weight: weight, bias: bias, stride: stride, padding: padding,
                                        dilation: dilation, relu: fusedReLU)
    }

    /// Inference from a channel-blocked map to an NCHW tensor (the last layer of a blocked chain).
    public func forwardToPlain(blocked input: BlockedFeatureMap) -> Tensor? {
        guard input.shape[1] == inputChannels else { return nil }
        return input.conv2dToPlain(weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation,
                                   relu: fusedReLU)
    }

    /// A frozen snapshot (weights copied, so oneDNN may keep them pre-packed).
    public func fusedForInference() -> any Layer {
        let w = weight.copy(), b = bias?.copy()
        w.freeze(); b?.freeze()
        return Conv2D(like: self, weight: w, bias: b, fusedReLU: fusedReLU)
    }

    public var ownTensors: [NamedTensor] {
        [NamedTensor("weight", weight)] + (bias.map { [NamedTensor("bias", $0)] } ?? [])
    }

    public var layerDescription: String {
        var s = "Conv2D(\(inputChannels) → \(outputChannels), kernel \(kernelSize.height)×\(kernelSize.width), "
            + "stride \(stride.height == stride.width ? "\(stride.height)" : "\(stride.height)×\(stride.width)"), "
            + "padding \(paddingText(padding))"
        if dilation != 1 { s += ", dilation \(dilation.height)×\(dilation.width)" }
        if bias == nil { s += ", no bias" }
        if fusedReLU { s += ", fused ReLU" }
        return s + ")"
    }
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
        let s = seed ?? WeightInitialization.nextSeed()
        weight = WeightInitialization.uniform([inputChannels, outputChannels, kernelSize.height, kernelSize.width], fanIn: fanIn, seed: s)
        bias = useBias ? WeightInitialization.uniform([outputChannels], fanIn: fanIn, seed: s &+ 1) : nil
    }

    public func forward(_ input: Tensor) -> Tensor {
        precondition(input.rank == 4 && input.shape[1] == inputChannels,
                     "\(layerDescription): input \(input.shape) must be [N, \(inputChannels), H, W]")
        return input.transposedConv2d(weight: weight, bias: bias, stride: stride, padding: padding,
                                      outputPadding: outputPadding)
    }

    /// Inference on a channel-blocked map (see `BlockedFeatureMap`); nil when it cannot run.
    /// A frozen 2×2 stride-2 snapshot runs as a 1×1 convolution and a pixel shuffle.
    public func forward(blocked input: BlockedFeatureMap) -> BlockedFeatureMap? {
        guard input.shape[1] == inputChannels else { return nil }
        if let (w, b) = pointwise { return input.upsampled2x2(pointwiseWeight: w, pointwiseBias: b) }
        return input.transposedConv2d(weight: weight, bias: bias, stride: stride, padding: padding, outputPadding: outputPadding)
    }

    /// For a 2×2 stride-2 snapshot: the weights as a 1×1 convolution to `4 Cout` channels.
    private var pointwise: (Tensor, Tensor?)? = nil

    /// A frozen snapshot for inference (weights copied; see `forward(blocked:)`).
    public func fusedForInference() -> any Layer {
        let copy = ConvTranspose2D(inputChannels: inputChannels, outputChannels: outputChannels, kernelSize: kernelSize,
                                   stride: stride, padding: padding, outputPadding: outputPadding, weight: weight.copy(),
                                   bias: bias?.copy())
        copy.weight.freeze(); copy.bias?.freeze()
        if kernelSize == Size2(2, 2) && stride == Size2(2, 2) && padding == Size2(0, 0) && outputPadding == Size2(0, 0) {
            let (cin, cout) = (inputChannels, outputChannels)
            let source = weight.scalars
            var rows = [Float](repeating: 0, count: 4 * cout * cin)
            for q in 0..<4 { for co in 0..<cout { for ci in 0..<cin {
                rows[(q * cout + co) * cin + ci] = source[((ci * cout) + co) * 4 + q]
            } } }
            let w = Tensor(shape: [4 * cout, cin, 1, 1], data: rows)
            let b = bias.map { Tensor(Array(repeating: $0.scalars, count: 4).flatMap { $0 }) }
            w.freeze(); b?.freeze()
            copy.pointwise = (w, b)
        }
        return copy
    }

    private init(inputChannels: Int, outputChannels: Int, kernelSize: Size2, stride: Size2, padding: Size2,
                 outputPadding: Size2, weight: Tensor, bias: Tensor?) {
        self.inputChannels = inputChannels; self.outputChannels = outputChannels; self.kernelSize = kernelSize
        self.stride = stride; self.padding = padding; self.outputPadding = outputPadding
        self.weight = weight; self.bias = bias
        isTraining = false
    }

    public var ownTensors: [NamedTensor] {
        [NamedTensor("weight", weight)] + (bias.map { [NamedTensor("bias", $0)] } ?? [])
    }

    public var layerDescription: String {
        "ConvTranspose2D(\(inputChannels) → \(outputChannels), kernel \(kernelSize.height)×\(kernelSize.width), "
            + "stride \(stride.height), padding \(padding.height)\(bias == nil ? ", no bias" : ""))"
    }
}
