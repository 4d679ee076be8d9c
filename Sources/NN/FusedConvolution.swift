// Inference-only convolution layers made by the fusion pass (`fusedForInference()`).
import Autograd

/// A convolution for inference: frozen weights with any batch norm folded in, and the
/// epilogue `relu?(conv(x) + bias + residual)` in the convolution itself.
///
/// Made by the fusion pass from a `Conv2D` (and the `BatchNorm` / ReLU after it); never
/// trained. With gradients off and oneDNN available each call is one oneDNN primitive with
/// the bias, the residual sum and the ReLU as post-ops, and the frozen weights are reordered
/// to oneDNN's blocked layout once (`Tensor.freeze()`); otherwise the same result is
/// composed from recorded ops. Besides `forward`, it runs on channel-blocked maps
/// (`BlockedFeatureMap`) for executors that keep activations blocked between layers.
///
/// - `input`: `[N, inputChannels, H, W]`; returns `[N, outputChannels, H', W']` (as `Conv2D`).
/// - Keys: `weight`, `bias` (the folded values, so a fused model's state dict is not the
///   training model's).
public final class FusedConv2D: Layer {
    public let inputChannels: Int
    public let outputChannels: Int
    public let kernelSize: Size2
    public let stride: Size2
    public let padding: Padding
    public let dilation: Size2
    /// Frozen; batch norm folded in: `W' = W γ/σ`.
    public let weight: Tensor
    /// Frozen; `b' = (b − μ) γ/σ + β` (nil only for a convolution without bias and batch norm).
    public let bias: Tensor?
    /// ReLU after the bias (and the residual, when one is added).
    public let relu: Bool
    /// Whether a batch norm was folded in (for the description only).
    let foldedBatchNorm: Bool

    /// `conv`, with `batchNorm` (eval mode) folded in and a ReLU after it if `relu`.
    /// Matches `relu(bn(conv(x)))` in eval mode to float rounding.
    public init(_ conv: Conv2D, batchNorm: BatchNorm? = nil, relu: Bool = false) {
        inputChannels = conv.inputChannels; outputChannels = conv.outputChannels
        kernelSize = conv.kernelSize; stride = conv.stride; padding = conv.padding; dilation = conv.dilation
        self.relu = relu
        foldedBatchNorm = batchNorm != nil
        let w = conv.weight.copy()
        var b = conv.bias?.copy()
        if let bn = batchNorm {
            precondition(bn.features == conv.outputChannels, "FusedConv2D: \(bn.layerDescription) after \(conv.layerDescription)")
            precondition(!bn.isTraining, "FusedConv2D: batch norm is in training mode; call eval() before fusedForInference()")
            let (scale, shift) = bn.inferenceScaleShift
            let per = conv.inputChannels * conv.kernelSize.height * conv.kernelSize.width
            w.withUnsafeMutableBufferPointer { p in
                for f in 0..<conv.outputChannels { for j in 0..<per { p[f * per + j] *= scale[f] } }
            }
            let b0 = conv.bias?.scalars ?? [Float](repeating: 0, count: conv.outputChannels)
            b = Tensor((0..<conv.outputChannels).map { b0[$0] * scale[$0] + shift[$0] })
        }
        w.freeze(); b?.freeze()
        weight = w; bias = b
    }

    /// Inference only: `train()` on a fused model is a mistake (train the model it came from).
    public var isTraining: Bool {
        get { false }
        set { precondition(!newValue, "\(layerDescription) is inference-only; train the model it was fused from") }
    }

    private func checkInput(_ shape: [Int]) {
        precondition(shape.count == 4 && shape[1] == inputChannels,
                     "\(layerDescription): input \(shape) must be [N, \(inputChannels), H, W]")
    }

    public func forward(_ input: Tensor) -> Tensor {
        checkInput(input.shape)
        return input.conv2d(weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation,
                            adding: nil, relu: relu)
    }

    /// `relu?(conv(input) + bias + residual)` (a ResNet block's second convolution and its
    /// shortcut); `residual` has the output's shape.
    public func forward(_ input: Tensor, adding residual: Tensor) -> Tensor {
        checkInput(input.shape)
        return input.conv2d(weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation,
                            adding: residual, relu: relu)
    }

    // MARK: - Channel-blocked maps (nil when the blocked path cannot run; callers fall back to tensors)

    /// Blocked in, blocked out: `relu?(conv(input) + bias + residual)`; a `residual` (a ResNet
    /// block's shortcut into its second convolution) has the output's shape.
    public func forward(blocked input: BlockedFeatureMap, adding residual: BlockedFeatureMap? = nil) -> BlockedFeatureMap? {
        guard input.shape[1] == inputChannels else { return nil }
        return input.conv2d(weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation,
                            adding: residual, relu: relu)
    }

    /// NCHW in, blocked out (the first layer of a blocked chain).
    public func blocked(_ input: Tensor) -> BlockedFeatureMap? {
        guard input.rank == 4, input.shape[1] == inputChannels else { return nil }
        return BlockedFeatureMap.conv2d(input, weight: weight, bias: bias, stride: stride, padding: padding,
                                        dilation: dilation, relu: relu)
    }

    /// Blocked in, NCHW out (the last layer of a blocked chain, any output channel count).
    public func plain(_ input: BlockedFeatureMap) -> Tensor? {
        guard input.shape[1] == inputChannels else { return nil }
        return input.conv2dToPlain(weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation,
                                   relu: relu)
    }

    public var ownTensors: [NamedTensor] {
        [NamedTensor("weight", weight)] + (bias.map { [NamedTensor("bias", $0)] } ?? [])
    }

    public var layerDescription: String {
        convolutionDescription("FusedConv2D", inputChannels, outputChannels, kernelSize, stride, padding, dilation,
                               extras: (foldedBatchNorm ? ["batch norm folded"] : []) + (relu ? ["ReLU"] : []))
    }
}

/// A transposed convolution for inference: frozen weights, and on channel-blocked maps a
/// 2×2 stride-2 up-convolution run as a 1×1 convolution to `4 Cout` channels and a pixel
/// shuffle (oneDNN's deconvolution kernel for that shape ran at a small fraction of its 1×1
/// convolution's speed, docs/benchmarks.md).
///
/// - `input`: `[N, inputChannels, H, W]`; returns the `ConvTranspose2D` output.
/// - Keys: `weight` `[inputChannels, outputChannels, kh, kw]`, `bias`.
public final class FusedConvTranspose2D: Layer {
    public let inputChannels: Int
    public let outputChannels: Int
    public let kernelSize: Size2
    public let stride: Size2
    public let padding: Size2
    public let outputPadding: Size2
    public let weight: Tensor
    public let bias: Tensor?
    /// For a 2×2 stride-2 up-convolution: the weights as a 1×1 convolution `[4 Cout, Cin, 1, 1]`
    /// (row `(2i + j) Cout + co` = `weight[:, co, i, j]`) and the bias repeated 4 times.
    private let pointwise: (weight: Tensor, bias: Tensor?)?
    /// The frozen weights its convolutions run with (`weight`, and the 1×1 form's when it has one).
    var weightsForInference: [Tensor] { [weight] + (pointwise.map { [$0.weight] } ?? []) }

    public init(_ layer: ConvTranspose2D) {
        inputChannels = layer.inputChannels; outputChannels = layer.outputChannels; kernelSize = layer.kernelSize
        stride = layer.stride; padding = layer.padding; outputPadding = layer.outputPadding
        weight = layer.weight.copy(); bias = layer.bias?.copy()
        weight.freeze(); bias?.freeze()
        guard kernelSize == Size2(2, 2) && stride == Size2(2, 2) && padding == Size2(0, 0) && outputPadding == Size2(0, 0)
        else { pointwise = nil; return }
        let (cin, cout) = (inputChannels, outputChannels)
        let source = weight.scalars
        var rows = [Float](repeating: 0, count: 4 * cout * cin)
        for q in 0..<4 { for co in 0..<cout { for ci in 0..<cin {
            rows[(q * cout + co) * cin + ci] = source[((ci * cout) + co) * 4 + q]
        } } }
        let w = Tensor(shape: [4 * cout, cin, 1, 1], data: rows)
        let b = bias.map { Tensor(Array(repeating: $0.scalars, count: 4).flatMap { $0 }) }
        w.freeze(); b?.freeze()
        pointwise = (w, b)
    }

    /// Inference only (see `FusedConv2D.isTraining`).
    public var isTraining: Bool {
        get { false }
        set { precondition(!newValue, "\(layerDescription) is inference-only; train the model it was fused from") }
    }

    public func forward(_ input: Tensor) -> Tensor {
        precondition(input.rank == 4 && input.shape[1] == inputChannels,
                     "\(layerDescription): input \(input.shape) must be [N, \(inputChannels), H, W]")
        return input.transposedConv2d(weight: weight, bias: bias, stride: stride, padding: padding,
                                      outputPadding: outputPadding)
    }

    /// Blocked in, blocked out; nil when the blocked path cannot run.
    public func forward(blocked input: BlockedFeatureMap) -> BlockedFeatureMap? {
        guard input.shape[1] == inputChannels else { return nil }
        if let pointwise { return input.upsampled2x2(pointwiseWeight: pointwise.weight, pointwiseBias: pointwise.bias) }
        return input.transposedConv2d(weight: weight, bias: bias, stride: stride, padding: padding, outputPadding: outputPadding)
    }

    public var ownTensors: [NamedTensor] {
        [NamedTensor("weight", weight)] + (bias.map { [NamedTensor("bias", $0)] } ?? [])
    }

    public var layerDescription: String {
        "FusedConvTranspose2D(\(inputChannels) → \(outputChannels), kernel \(kernelSize.height)×\(kernelSize.width), "
            + "stride \(stride.height), padding \(padding.height)\(bias == nil ? ", no bias" : ""))"
    }
}
