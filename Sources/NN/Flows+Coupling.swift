// Coupling layers (RealNVP, coupling neural spline flows).
import Autograd

/// A coupling layer: the features where `mask` is false pass through unchanged and, with the
/// context, feed a conditioner MLP whose outputs parametrise an elementwise transform of the
/// features where `mask` is true.
///
/// `y_B = τ(x_B; θ(x_A, c))`, `y_A = x_A`; `log |det ∂y/∂x| = Σ_{i∈B} log |τ'(x_i)|`. The
/// inverse is one conditioner pass on `y_A = x_A`. With `.affine()` this is RealNVP's affine
/// coupling (Dinh et al., "Density estimation using Real NVP", 2017,
/// https://arxiv.org/abs/1605.08803), with `.rationalQuadraticSpline()` the coupling layer of
/// neural spline flows.
///
/// - `input`: `[N, features]`; `context`: `[N, contextFeatures]`.
/// - Conditioner input: the passed-through features in increasing order, then the context;
///   output `[N, T·P]` read as `[N, T, P]` (transformed feature, its `P` parameters), as
///   zuko's `GeneralCouplingTransform` and nflows' coupling transforms lay it out.
/// - Keys: `conditioner.0.weight`, `conditioner.0.bias`, ... (an `MLP.make` of Dense/ReLU).
public final class CouplingTransform: Bijection {
    public let features: Int
    public let contextFeatures: Int
    /// True for each transformed feature.
    public let mask: [Bool]
    public let transform: ElementwiseTransform
    public let conditioner: Sequential
    public var isTraining = true
    let passedIndices: [Int]
    let transformedIndices: [Int]
    /// Puts `[passed, transformed]` columns back in feature order.
    let restoringOrder: [Int]

    /// - `mask`: true for the features to transform (default: the odd ones); at least one of
    ///   each kind, or all true with a context: then the conditioner sees the context alone
    ///   and the layer is a conditional elementwise map (`Flow.posterior`'s location-scale layer).
    /// - `hiddenFeatures`: the conditioner's hidden widths (ReLU between layers).
    public init(features: Int, contextFeatures: Int = 0, mask: [Bool]? = nil,
                transform: ElementwiseTransform = .affine(), hiddenFeatures: [Int] = [64, 64], seed: UInt64? = nil) {
        let mask = mask ?? (0..<features).map { $0 % 2 == 1 }
        precondition(mask.count == features && mask.contains(true) && (mask.contains(false) || contextFeatures > 0),
                     "CouplingTransform: mask \(mask) must have \(features) entries, some true and some false (all true with a context)")
        self.features = features
        self.contextFeatures = contextFeatures
        self.mask = mask
        self.transform = transform
        passedIndices = mask.indices.filter { !mask[$0] }
        transformedIndices = mask.indices.filter { mask[$0] }
        var order = [Int](repeating: 0, count: features)
        for (position, feature) in (passedIndices + transformedIndices).enumerated() { order[feature] = position }
        restoringOrder = order
        conditioner = MLP.make(inputFeatures: passedIndices.count + contextFeatures,
                               widths: hiddenFeatures + [transformedIndices.count * transform.parameterCount], seed: seed)
    }

    public func forward(_ input: Tensor, context: Tensor?) -> (output: Tensor, logDeterminant: Tensor) {
        apply(input, context: context, inverse: false)
    }

    public func inverse(_ output: Tensor, context: Tensor?) -> Tensor {
        apply(output, context: context, inverse: true).output
    }

    private func apply(_ input: Tensor, context: Tensor?, inverse: Bool) -> (output: Tensor, logDeterminant: Tensor) {
        checkShapes(input, context: context, contextFeatures: contextFeatures, op: "CouplingTransform")
        let n = input.shape[0], t = transformedIndices.count
        let passed = input.indexSelected(axis: 1, passedIndices)
        let moving = input.indexSelected(axis: 1, transformedIndices)
        let conditionerInput = contextFeatures == 0 ? passed : passedIndices.isEmpty ? context!
            : Tensor.concatenate([passed, context!], axis: 1)
        let parameters = conditioner(conditionerInput).reshaped(to: [n * t, transform.parameterCount])
        let (moved, logDerivative) = transform.apply(moving.reshaped(to: [n * t]), parameters: parameters, inverse: inverse)
        let output = Tensor.concatenate([passed, moved.reshaped(to: [n, t])], axis: 1).indexSelected(axis: 1, restoringOrder)
        return (output, logDerivative.reshaped(to: [n, t]).sum(axes: [1]))
    }

    public var children: [(key: String, layer: any Layer)] { [("conditioner", conditioner)] }

    public var layerDescription: String {
        "CouplingTransform(\(features) features, transformed \(transformedIndices)"
            + "\(contextFeatures > 0 ? ", context \(contextFeatures)" : ""), \(transform.summary))"
    }
}
