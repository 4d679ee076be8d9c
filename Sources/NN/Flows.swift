// Normalizing flows: the Bijection protocol, the elementwise transforms that coupling and
// autoregressive layers apply, and the Flow that composes bijections over a normal base.
import Autograd
import Foundation

/// An invertible layer with an exact log-determinant, optionally conditioned on a context.
///
/// `forward(x, context:)` maps `x` (`[N, features]`) to `y` of the same shape and returns
/// `log |det ∂y/∂x|` per sample (`[N]`); `inverse(y, context:)` maps back. `context` is one
/// vector per sample (`[N, contextFeatures]`) for the layers that take one, ignored by the
/// others. Everything is recorded by autograd, so a flow trains by maximum likelihood on
/// `Flow.logProbability`. As a `Layer`, `layer(x)` is the forward map without context.
public protocol Bijection: Layer {
    /// The dimension of the variable the layer maps.
    var features: Int { get }
    /// `y = f(x; context)` and `log |det ∂y/∂x|` (`[N]`).
    func forward(_ input: Tensor, context: Tensor?) -> (output: Tensor, logDeterminant: Tensor)
    /// `x = f⁻¹(y; context)`.
    func inverse(_ output: Tensor, context: Tensor?) -> Tensor
}

extension Bijection {
    public func forward(_ input: Tensor) -> Tensor { forward(input, context: nil).output }

    /// Checks an input `[N, features]` and a context `[N, contextFeatures]` (or none when the
    /// layer takes none); `op` names the layer in the message.
    func checkShapes(_ input: Tensor, context: Tensor?, contextFeatures: Int, op: String) {
        precondition(input.rank == 2 && input.shape[1] == features,
                     "\(op): input \(input.shape) must be [N, \(features)]")
        if contextFeatures > 0 {
            precondition(context?.shape == [input.shape[0], contextFeatures],
                         "\(op): context \(context?.shape.description ?? "nil") must be [\(input.shape[0]), \(contextFeatures)]")
        }
    }
}

// MARK: - Elementwise transforms

/// The invertible map that a coupling or autoregressive layer applies to each transformed
/// feature, with parameters computed by its conditioner network.
public enum ElementwiseTransform: Equatable, Sendable {
    /// `y = x·exp(log s) + t` with the raw log-scale `a` soft-clamped,
    /// `log s = a / (1 + |a| / logScaleBound)`, so the scale stays in
    /// `(exp(−bound), exp(bound))` and a large conditioner output cannot overflow (zuko's
    /// `MonotonicAffineTransform`, whose `slope` is `exp(−logScaleBound)`). Parameters per
    /// feature: `(t, a)`.
    case affine(logScaleBound: Float = 6.907755)
    /// A monotonic rational-quadratic spline with `bins` bins on `[−tailBound, tailBound]`
    /// and the identity outside (linear tails), parametrised as in nflows: bin widths and
    /// heights `1e-3 + (1 − 1e-3·K)·softmax(·)`, interior knot derivatives
    /// `1e-3 + softplus(·)`, derivative 1 at the two end knots. Parameters per feature:
    /// `K` widths, `K` heights, `K − 1` derivatives (`3K − 1`).
    /// Durkan et al., "Neural Spline Flows" (2019), https://arxiv.org/abs/1906.04032.
    case rationalQuadraticSpline(bins: Int = 8, tailBound: Float = 3)

    /// nflows' `DEFAULT_MIN_BIN_WIDTH`, `DEFAULT_MIN_BIN_HEIGHT`, `DEFAULT_MIN_DERIVATIVE`.
    public static let minimumBinWidth: Float = 1e-3
    public static let minimumBinHeight: Float = 1e-3
    public static let minimumDerivative: Float = 1e-3

    /// Conditioner outputs per transformed feature.
    public var parameterCount: Int {
        switch self {
        case .affine: return 2
        case let .rationalQuadraticSpline(bins, _): return 3 * bins - 1
        }
    }

    /// Applies the map (or its inverse) to `x` (`[M]`) with per-element parameters
    /// `parameters` (`[M, parameterCount]`); returns the values and `log |dy/dx|` of the map
    /// applied (`[M]` each).
    public func apply(_ x: Tensor, parameters: Tensor, inverse: Bool) -> (output: Tensor, logDerivative: Tensor) {
        let m = x.count
        precondition(x.shape == [m] && parameters.shape == [m, parameterCount],
                     "\(self): input \(x.shape) and parameters \(parameters.shape) must be [M] and [M, \(parameterCount)]")
        switch self {
        case let .affine(bound):
            let shift = parameters.sliced(axis: 1, 0..<1).reshaped(to: [m])
            let raw = parameters.sliced(axis: 1, 1..<2).reshaped(to: [m])
            let logScale = raw / (raw.abs() * (1 / bound) + 1)
            if inverse { return ((x - shift) * (-logScale).exp(), -logScale) }
            return (x * logScale.exp() + shift, logScale)
        case let .rationalQuadraticSpline(bins, tailBound):
            let k = bins
            let knotsX = Self.knots(parameters.sliced(axis: 1, 0..<k), minimum: Self.minimumBinWidth, bound: tailBound)
            let knotsY = Self.knots(parameters.sliced(axis: 1, k..<(2 * k)), minimum: Self.minimumBinHeight, bound: tailBound)
            let ones = Tensor.ones([m, 1])
            let inner = parameters.sliced(axis: 1, (2 * k)..<(3 * k - 1)).softplus() + Self.minimumDerivative
            let derivatives = Tensor.concatenate([ones, inner, ones], axis: 1)
            let out = x.rationalQuadraticSpline(knotsX: knotsX, knotsY: knotsY, derivatives: derivatives, inverse: inverse)
            return (out.sliced(axis: 1, 0..<1).reshaped(to: [m]), out.sliced(axis: 1, 1..<2).reshaped(to: [m]))
        }
    }

    /// Knot positions `[M, K + 1]` on `[−bound, bound]` from unnormalised bin sizes `[M, K]`.
    /// The end knots are set to `∓bound` exactly rather than through the running sum, whose
    /// last value is 1 only to rounding (as nflows assigns them).
    static func knots(_ unnormalized: Tensor, minimum: Float, bound: Float) -> Tensor {
        let (m, k) = (unnormalized.shape[0], unnormalized.shape[1])
        precondition(minimum * Float(k) < 1, "rationalQuadraticSpline: \(k) bins do not fit a minimum bin size of \(minimum)")
        let sizes = unnormalized.softmax(axis: 1) * (1 - minimum * Float(k)) + minimum
        let interior = sizes.sliced(axis: 1, 0..<(k - 1)).cumulativeSum(axis: 1) * (2 * bound) - bound
        return Tensor.concatenate([Tensor(repeating: -bound, shape: [m, 1]), interior,
                                   Tensor(repeating: bound, shape: [m, 1])], axis: 1)
    }

    var summary: String {
        switch self {
        case let .affine(bound): return "affine, log-scale bound \(bound)"
        case let .rationalQuadraticSpline(bins, tailBound): return "spline, \(bins) bins, tail bound \(tailBound)"
        }
    }
}

// MARK: - Flow

/// A normalizing flow: bijections applied in order to `x`, ending in a standard normal.
///
/// `log p(x | c) = log N(z; 0, I) + Σ_l log |det ∂f_l/∂h_{l−1}|` with `z = f_L ∘ … ∘ f_1(x)`;
/// sampling draws `z ~ N(0, I)` and runs the inverses backwards. Conditional when
/// `contextFeatures > 0`: every layer that takes a context gets the same per-sample vector.
///
/// - `logProbability(x, context:)`: `x` `[N, features]`, `context` `[N, contextFeatures]`;
///   returns `[N]`. Train by minimising `-logProbability(x).mean()`.
/// - `sample(count, context:, generator:)`: returns `[count, features]`; `context` is
///   `[count, contextFeatures]`, or `[1, contextFeatures]` for one context for all samples.
/// - As a `Layer`, `flow(x)` is `logProbability(x)` without context. Keys: `0.`, `1.`, ... by
///   layer, as a `Sequential`.
///
/// Papamakarios et al., "Normalizing Flows for Probabilistic Modeling and Inference" (JMLR
/// 2021), https://arxiv.org/abs/1912.02762.
public final class Flow: Layer {
    public let features: Int
    public let contextFeatures: Int
    public let transforms: [any Bijection]
    public var isTraining = true

    public init(features: Int, contextFeatures: Int = 0, transforms: [any Bijection]) {
        precondition(features > 0 && contextFeatures >= 0, "Flow: features \(features), context \(contextFeatures)")
        for t in transforms {
            precondition(t.features == features, "Flow: \(t.layerDescription) maps \(t.features) features, not \(features)")
        }
        self.features = features
        self.contextFeatures = contextFeatures
        self.transforms = transforms
    }

    /// The latent point `z` and the summed log-determinant `[N]` of `x`.
    public func latent(_ x: Tensor, context: Tensor? = nil) -> (latent: Tensor, logDeterminant: Tensor) {
        checkContext(context, count: x.shape.first ?? 0)
        var h = x
        var total = Tensor.zeros([x.shape[0]])
        for t in transforms {
            let (y, logDet) = t.forward(h, context: context)
            h = y
            total = total + logDet
        }
        return (h, total)
    }

    /// `log p(x | context)` per sample, `[N]`.
    public func logProbability(_ x: Tensor, context: Tensor? = nil) -> Tensor {
        precondition(x.rank == 2 && x.shape[1] == features, "Flow: input \(x.shape) must be [N, \(features)]")
        let (z, logDet) = latent(x, context: context)
        let base = z.squared().sum(axes: [1]) * -0.5 - Float(features) * 0.5 * Foundation.log(2 * Float.pi)
        return base + logDet
    }

    /// `count` samples `[count, features]`; the normal draws come from `generator`.
    public func sample(_ count: Int, context: Tensor? = nil, generator: inout SeededGenerator) -> Tensor {
        let c = context.map { $0.shape[0] == 1 && count != 1 ? $0.expanded(to: [count, contextFeatures]) : $0 }
        checkContext(c, count: count)
        var h = Tensor.randomNormal([count, features], generator: &generator)
        for t in transforms.reversed() { h = t.inverse(h, context: c) }
        return h
    }

    public func forward(_ input: Tensor) -> Tensor { logProbability(input) }

    private func checkContext(_ context: Tensor?, count: Int) {
        if contextFeatures == 0 {
            precondition(context == nil, "Flow: a context was given to a flow without context features")
        } else {
            precondition(context?.shape == [count, contextFeatures],
                         "Flow: context \(context?.shape.description ?? "nil") must be [\(count), \(contextFeatures)]")
        }
    }

    public var children: [(key: String, layer: any Layer)] {
        transforms.enumerated().map { (String($0.offset), $0.element as any Layer) }
    }

    public var layerDescription: String {
        "Flow(\(features) features\(contextFeatures > 0 ? ", context \(contextFeatures)" : ""), \(transforms.count) layers)"
    }
}

// MARK: - Factories

extension Flow {
    /// RealNVP / neural-spline coupling flow: `layers` coupling layers with alternating masks
    /// (even features transformed, then odd), each preceded by an `ActNorm` when `actNorm`.
    /// `transform` `.affine()` gives RealNVP, `.rationalQuadraticSpline()` a coupling neural
    /// spline flow.
    public static func coupling(features: Int, contextFeatures: Int = 0, layers: Int = 4,
                                transform: ElementwiseTransform = .affine(), hiddenFeatures: [Int] = [64, 64],
                                actNorm: Bool = false, seed: UInt64? = nil) -> Flow {
        precondition(features >= 2, "Flow.coupling: a coupling layer needs at least 2 features, got \(features)")
        var seeds = LayerSeeds(seed)
        var transforms: [any Bijection] = []
        for l in 0..<layers {
            if actNorm { transforms.append(ActNorm(features: features)) }
            transforms.append(CouplingTransform(features: features, contextFeatures: contextFeatures,
                                                mask: (0..<features).map { $0 % 2 == l % 2 }, transform: transform,
                                                hiddenFeatures: hiddenFeatures, seed: seeds.next()))
        }
        return Flow(features: features, contextFeatures: contextFeatures, transforms: transforms)
    }

    /// Masked autoregressive flow (MAF): `layers` MADE layers, the feature order reversed
    /// between them. `transform` `.affine()` is Papamakarios et al.'s MAF,
    /// `.rationalQuadraticSpline()` an autoregressive neural spline flow.
    public static func maskedAutoregressive(features: Int, contextFeatures: Int = 0, layers: Int = 4,
                                            transform: ElementwiseTransform = .affine(),
                                            hiddenFeatures: [Int] = [64, 64], seed: UInt64? = nil) -> Flow {
        var seeds = LayerSeeds(seed)
        var transforms: [any Bijection] = []
        for l in 0..<layers {
            if l > 0 { transforms.append(Permutation.reverse(features: features)) }
            transforms.append(MaskedAutoregressiveTransform(features: features, contextFeatures: contextFeatures,
                                                            transform: transform, hiddenFeatures: hiddenFeatures,
                                                            seed: seeds.next()))
        }
        return Flow(features: features, contextFeatures: contextFeatures, transforms: transforms)
    }
}
