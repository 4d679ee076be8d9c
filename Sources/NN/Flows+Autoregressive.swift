// Masked autoregressive layers: MADE conditioners and the MAF bijection.
import Autograd

/// A dense layer whose weight is multiplied by a fixed 0/1 mask, `y = x (W ⊙ M)ᵀ + b`: the
/// building block of MADE. The mask is structure, not state (rebuilt from the degrees), so it
/// is not saved.
///
/// - `input`: `[N, inputFeatures]`; returns `[N, outputFeatures]`.
/// - Keys: `weight` `[outputFeatures, inputFeatures]`, `bias` `[outputFeatures]`.
public final class MaskedDense: Layer {
    public let weight: Tensor
    public let bias: Tensor
    public let mask: Tensor
    public var isTraining = true

    /// `mask`: `[outputFeatures, inputFeatures]` of 0/1.
    public init(mask: Tensor, seed: UInt64? = nil) {
        precondition(mask.rank == 2, "MaskedDense: mask \(mask.shape) must be [out, in]")
        let s = WeightInitialization.seed(seed)
        let (outputs, inputs) = (mask.shape[0], mask.shape[1])
        weight = WeightInitialization.uniform([outputs, inputs], fanIn: inputs, seed: s)
        bias = WeightInitialization.uniform([outputs], fanIn: inputs, seed: s &+ 1)
        self.mask = mask
    }

    public func forward(_ input: Tensor) -> Tensor {
        input.matmul(transposed: weight * mask) + bias
    }

    public var ownTensors: [NamedTensor] { [NamedTensor("weight", weight), NamedTensor("bias", bias)] }

    public var layerDescription: String { "MaskedDense(\(mask.shape[1]) → \(mask.shape[0]))" }
}

/// A masked autoregressive layer (MAF): each feature is transformed with parameters that
/// depend only on the features before it (and the context), computed in one pass by a MADE
/// network.
///
/// `y_i = τ(x_i; θ_i(x_{<i}, c))`; `log |det ∂y/∂x| = Σ_i log |τ'(x_i)|` (the Jacobian is
/// triangular). The forward map (density evaluation) is one pass; the inverse (sampling)
/// takes `features` passes, pass `i` fixing feature `i`.
///
/// MADE degrees (Germain et al., "MADE: Masked Autoencoder for Distribution Estimation",
/// 2015, https://arxiv.org/abs/1502.03509): input `i` has degree `i + 1`, hidden unit `j`
/// degree `j mod max(1, D − 1) + min(1, D − 1)` (as nflows), a connection exists where the
/// receiving degree is ≥ the sending one, and an output of feature `i` sees only hidden
/// degrees ≤ `i`. The context enters the first hidden layer through an unmasked dense layer.
/// Papamakarios et al., "Masked Autoregressive Flow for Density Estimation" (2017),
/// https://arxiv.org/abs/1705.07057.
///
/// - `input`: `[N, features]`; `context`: `[N, contextFeatures]`.
/// - Output of the MADE `[N, D·P]` read as `[N, D, P]`.
/// - Keys: `layers.0.weight`, ... (masked layers), `context.weight`, `context.bias`.
public final class MaskedAutoregressiveTransform: Bijection {
    public let features: Int
    public let contextFeatures: Int
    public let transform: ElementwiseTransform
    public let layers: Sequential
    public let contextLayer: Dense?
    public var isTraining = true

    public init(features: Int, contextFeatures: Int = 0, transform: ElementwiseTransform = .affine(),
                hiddenFeatures: [Int] = [64, 64], seed: UInt64? = nil) {
        precondition(features > 0 && !hiddenFeatures.isEmpty,
                     "MaskedAutoregressiveTransform: features \(features), hidden \(hiddenFeatures)")
        self.features = features
        self.contextFeatures = contextFeatures
        self.transform = transform
        var seeds = LayerSeeds(seed)
        let inputDegrees = (0..<features).map { $0 + 1 }
        var previous = inputDegrees
        var stack: [any Layer] = []
        for width in hiddenFeatures {
            let degrees = (0..<width).map { $0 % Swift.max(1, features - 1) + Swift.min(1, features - 1) }
            stack.append(MaskedDense(mask: Self.mask(to: degrees, from: previous, strict: false), seed: seeds.next()))
            stack.append(Activation(.relu))
            previous = degrees
        }
        let p = transform.parameterCount
        let outputDegrees = inputDegrees.flatMap { [Int](repeating: $0, count: p) }
        stack.append(MaskedDense(mask: Self.mask(to: outputDegrees, from: previous, strict: true), seed: seeds.next()))
        layers = Sequential(stack)
        contextLayer = contextFeatures > 0
            ? Dense(inputFeatures: contextFeatures, outputFeatures: hiddenFeatures[0], seed: seeds.next()) : nil
    }

    /// 0/1 mask `[to.count, from.count]`: 1 where `to[j] ≥ from[i]` (`>` when `strict`).
    static func mask(to: [Int], from: [Int], strict: Bool) -> Tensor {
        var m = [Float](repeating: 0, count: to.count * from.count)
        for (j, dj) in to.enumerated() { for (i, di) in from.enumerated() where strict ? dj > di : dj >= di {
            m[j * from.count + i] = 1
        } }
        return Tensor(shape: [to.count, from.count], data: m)
    }

    /// The MADE output `[N · D, P]`: the parameters of feature `i` from `x_{<i}` and the context.
    func conditionerOutput(_ input: Tensor, context: Tensor?) -> Tensor {
        var h = layers.layers[0](input)
        if let contextLayer { h = h + contextLayer(context!) }
        for layer in layers.layers.dropFirst() { h = layer(h) }
        return h.reshaped(to: [input.shape[0] * features, transform.parameterCount])
    }

    public func forward(_ input: Tensor, context: Tensor?) -> (output: Tensor, logDeterminant: Tensor) {
        checkShapes(input, context: context, contextFeatures: contextFeatures, op: "MaskedAutoregressiveTransform")
        let n = input.shape[0]
        let (y, logDerivative) = transform.apply(input.reshaped(to: [n * features]),
                                                 parameters: conditionerOutput(input, context: context), inverse: false)
        return (y.reshaped(to: [n, features]), logDerivative.reshaped(to: [n, features]).sum(axes: [1]))
    }

    /// Pass `i` computes every feature from the current estimate; features `0...i` are then
    /// exact, because feature `i`'s parameters depend only on features before it.
    public func inverse(_ output: Tensor, context: Tensor?) -> Tensor {
        checkShapes(output, context: context, contextFeatures: contextFeatures, op: "MaskedAutoregressiveTransform")
        let n = output.shape[0]
        let flat = output.reshaped(to: [n * features])
        var x = Tensor.zeros([n, features])
        for _ in 0..<features {
            x = transform.apply(flat, parameters: conditionerOutput(x, context: context), inverse: true).output
                .reshaped(to: [n, features])
        }
        return x
    }

    public var children: [(key: String, layer: any Layer)] {
        [("layers", layers)] + (contextLayer.map { [("context", $0 as any Layer)] } ?? [])
    }

    public var layerDescription: String {
        "MaskedAutoregressiveTransform(\(features) features\(contextFeatures > 0 ? ", context \(contextFeatures)" : ""), "
            + "\(transform.summary))"
    }
}
