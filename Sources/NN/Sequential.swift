// Sequential container with a result builder, and the batch-norm folding fast path.
import Autograd

/// Builds the layer list of a `Sequential`.
@resultBuilder
public enum LayerBuilder {
    public static func buildExpression(_ layer: any Layer) -> [any Layer] { [layer] }
    public static func buildExpression(_ layers: [any Layer]) -> [any Layer] { layers }
    public static func buildBlock(_ parts: [any Layer]...) -> [any Layer] { parts.flatMap { $0 } }
    public static func buildOptional(_ part: [any Layer]?) -> [any Layer] { part ?? [] }
    public static func buildEither(first: [any Layer]) -> [any Layer] { first }
    public static func buildEither(second: [any Layer]) -> [any Layer] { second }
    public static func buildArray(_ parts: [[any Layer]]) -> [any Layer] { parts.flatMap { $0 } }
}

/// Layers applied in order, as PyTorch's `nn.Sequential`; children are keyed `"0"`, `"1"`, ...
/// so parameter names match (`0.weight`, `3.bias`).
///
/// ```swift
/// let model = Sequential {
///     Conv2D(inputChannels: 1, outputChannels: 8, kernelSize: 3, padding: 1)
///     Activation.relu()
///     GlobalAvgPool()
///     Dense(inputFeatures: 8, outputFeatures: 2)
/// }
/// ```
public final class Sequential: Layer {
    public let layers: [any Layer]
    public var isTraining = true

    public init(_ layers: [any Layer]) { self.layers = layers }
    public convenience init(@LayerBuilder _ build: () -> [any Layer]) { self.init(build()) }

    public func forward(_ input: Tensor) -> Tensor {
        layers.reduce(input) { x, layer in layer(x) }
    }

    public var children: [(key: String, layer: any Layer)] {
        layers.enumerated().map { (String($0.offset), $0.element) }
    }

    /// Folds each `Conv2D` → `BatchNorm` (→ ReLU) run into one convolution with a fused ReLU,
    /// and fuses a ReLU straight after a convolution.
    /// The folded layer keeps the key of the convolution; the batch norm and ReLU become
    /// `Identity` placeholders so the remaining keys do not shift.
    public func fusedForInference() -> any Layer {
        var out: [any Layer] = []
        var i = 0
        while i < layers.count {
            if let conv = layers[i] as? Conv2D, !conv.fusedReLU, i + 1 < layers.count, let bn = layers[i + 1] as? BatchNorm {
                let relu = i + 2 < layers.count && (layers[i + 2] as? Activation)?.function == .relu
                out.append(conv.folding(bn, relu: relu))
                out.append(Identity())
                if relu { out.append(Identity()) }
                i += relu ? 3 : 2
            } else if let conv = layers[i] as? Conv2D, !conv.fusedReLU, i + 1 < layers.count,
                      (layers[i + 1] as? Activation)?.function == .relu {
                let w = conv.weight.copy(), b = conv.bias?.copy()
                w.freeze(); b?.freeze()
                out.append(Conv2D(like: conv, weight: w, bias: b, fusedReLU: true))
                out.append(Identity())
                i += 2
            } else {
                out.append(layers[i].fusedForInference())
                i += 1
            }
        }
        let s = Sequential(out)
        s.isTraining = false
        return s
    }

    public var layerDescription: String { "Sequential(\(layers.count) layer\(layers.count == 1 ? "" : "s"))" }
}

/// Passes its input through (a placeholder left by batch-norm folding).
public final class Identity: Layer {
    public var isTraining = false
    public init() {}
    public func forward(_ input: Tensor) -> Tensor { input }
    public var layerDescription: String { "Identity()" }
}

extension Conv2D {
    /// This convolution with eval-mode batch norm folded in:
    /// `W' = W * scale[f]`, `b' = b * scale[f] + shift[f]`, ReLU fused if `relu`.
    /// Matches `relu(bn(conv(x)))` in eval mode to float rounding.
    public func folding(_ bn: BatchNorm, relu: Bool) -> Conv2D {
        precondition(bn.features == outputChannels, "folding: \(bn.layerDescription) after \(layerDescription)")
        precondition(!bn.isTraining, "folding: batch norm is in training mode; call eval() before fusedForInference()")
        let (scale, shift) = bn.inferenceScaleShift
        let w = weight.copy()
        let per = inputChannels * kernelSize.height * kernelSize.width
        w.withUnsafeMutableBufferPointer { p in
            for f in 0..<outputChannels { for j in 0..<per { p[f * per + j] *= scale[f] } }
        }
        let b0 = bias?.scalars ?? [Float](repeating: 0, count: outputChannels)
        let b = Tensor((0..<outputChannels).map { b0[$0] * scale[$0] + shift[$0] })
        w.freeze(); b.freeze()
        return Conv2D(like: self, weight: w, bias: b, fusedReLU: relu)
    }
}
