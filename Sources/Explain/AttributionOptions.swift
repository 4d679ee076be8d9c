// Names, options and results of the attribution methods.
import Autograd
import Foundation

/// An attribution method; raw values are the names used on the command line and in
/// pipeline files (`--method integrated_gradients`, `outputs.explain.methods`).
public enum AttributionMethod: String, CaseIterable, Sendable, Codable {
    /// captum `Saliency`: |∂f/∂x|.
    case saliency
    /// captum `NoiseTunnel(Saliency)`, `nt_type="smoothgrad"`.
    case smoothGrad = "smoothgrad"
    /// captum `IntegratedGradients`.
    case integratedGradients = "integrated_gradients"
    /// captum `LayerGradCam` + `LayerAttribution.interpolate`.
    case gradCAM = "gradcam"
    /// captum `Occlusion`.
    case occlusion

    /// Whether the maps have one plane (Grad-CAM) rather than one per input channel.
    public var isSinglePlane: Bool { self == .gradCAM }
}

/// How SmoothGrad combines its noisy samples (captum's `nt_type`).
public enum NoiseTunnelKind: String, CaseIterable, Sendable, Codable {
    case smoothGrad = "smoothgrad"
    case smoothGradSquared = "smoothgrad_sq"
    case varGrad = "vargrad"
}

/// SmoothGrad's noise.
public struct SmoothGradOptions: Equatable, Sendable {
    /// captum's `nt_samples`.
    public var samples: Int
    /// captum's `stdevs`: the noise's standard deviation in input units.
    public var standardDeviation: Double
    public var kind: NoiseTunnelKind
    /// Seed of the noise (the same seed gives the same maps).
    public var seed: UInt64

    public init(samples: Int = 25, standardDeviation: Double = 1, kind: NoiseTunnelKind = .smoothGrad, seed: UInt64 = 0) {
        self.samples = samples; self.standardDeviation = standardDeviation; self.kind = kind; self.seed = seed
    }
}

/// Integration rule of integrated gradients (captum's `method`).
public enum IntegrationMethod: String, CaseIterable, Sendable, Codable {
    case gaussLegendre = "gausslegendre"
    case riemannLeft = "riemann_left"
    case riemannRight = "riemann_right"
    case riemannMiddle = "riemann_middle"
    case riemannTrapezoid = "riemann_trapezoid"

    var minimumSteps: Int { self == .gaussLegendre ? 1 : 2 }

    /// Nodes `α_k` in [0, 1] and weights summing to 1, as captum's `approximation_methods`.
    public func nodes(_ n: Int) -> (alphas: [Double], weights: [Double]) {
        let d = Double(n)
        switch self {
        case .gaussLegendre:
            let (x, w) = Self.gaussLegendre(n)
            return (x.map { 0.5 * (1 + $0) }, w.map { 0.5 * $0 })
        case .riemannLeft: return ((0..<n).map { Double($0) / d }, Array(repeating: 1 / d, count: n))
        case .riemannRight: return ((0..<n).map { Double($0 + 1) / d }, Array(repeating: 1 / d, count: n))
        case .riemannMiddle: return ((0..<n).map { (Double($0) + 0.5) / d }, Array(repeating: 1 / d, count: n))
        case .riemannTrapezoid:
            var weights = Array(repeating: 1 / d, count: n)
            weights[0] /= 2
            weights[n - 1] /= 2
            return ((0..<n).map { Double($0) / Double(n - 1) }, weights)
        }
    }

    /// Gauss-Legendre nodes on [−1, 1] in increasing order and their weights (numpy's
    /// `leggauss`): Newton's iteration on the Legendre polynomial from Tricomi's estimates.
    static func gaussLegendre(_ n: Int) -> (nodes: [Double], weights: [Double]) {
        var nodes = [Double](repeating: 0, count: n), weights = nodes
        for i in 0..<n {
            var x = cos(Double.pi * (Double(i) + 0.75) / (Double(n) + 0.5))
            var derivative = 1.0
            for _ in 0..<100 {
                var (p0, p1) = (1.0, x)
                if n == 1 { p1 = x; p0 = 1 } else {
                    for k in 2...n {
                        let p2 = ((2 * Double(k) - 1) * x * p1 - Double(k - 1) * p0) / Double(k)
                        (p0, p1) = (p1, p2)
                    }
                }
                // p1 = P_n(x), p0 = P_{n−1}(x).
                derivative = n == 1 ? 1 : Double(n) * (x * p1 - p0) / (x * x - 1)
                let step = p1 / derivative
                x -= step
                if abs(step) < 1e-16 { break }
            }
            nodes[n - 1 - i] = x
            weights[n - 1 - i] = 2 / ((1 - x * x) * derivative * derivative)
        }
        return (nodes, weights)
    }
}

/// How a coarse map (Grad-CAM's) is brought to the input's size (captum's `interpolate_mode`).
public enum MapInterpolation: String, CaseIterable, Sendable, Codable {
    case nearest
    case bilinear

    /// PyTorch's `F.interpolate(size=...)` (`align_corners=False` for bilinear) of one plane.
    func resample(_ plane: [Float], height: Int, width: Int, toHeight: Int, toWidth: Int) -> [Float] {
        var out = [Float](repeating: 0, count: toHeight * toWidth)
        let sy = Double(height) / Double(toHeight), sx = Double(width) / Double(toWidth)
        switch self {
        case .nearest:
            for y in 0..<toHeight {
                let iy = min(Int((Double(y) * sy).rounded(.down)), height - 1)
                for x in 0..<toWidth {
                    out[y * toWidth + x] = plane[iy * width + min(Int((Double(x) * sx).rounded(.down)), width - 1)]
                }
            }
        case .bilinear:
            func taps(_ i: Int, _ scale: Double, _ size: Int) -> (Int, Int, Float) {
                let source = max(0, (Double(i) + 0.5) * scale - 0.5)
                let i0 = min(Int(source), size - 1)
                return (i0, min(i0 + 1, size - 1), Float(source - Double(i0)))
            }
            for y in 0..<toHeight {
                let (y0, y1, fy) = taps(y, sy, height)
                for x in 0..<toWidth {
                    let (x0, x1, fx) = taps(x, sx, width)
                    let top = plane[y0 * width + x0] * (1 - fx) + plane[y0 * width + x1] * fx
                    let bottom = plane[y1 * width + x0] * (1 - fx) + plane[y1 * width + x1] * fx
                    out[y * toWidth + x] = top * (1 - fy) + bottom * fy
                }
            }
        }
        return out
    }
}

/// Every method's options, with captum's defaults where captum has one.
public struct AttributionOptions: Equatable, Sendable {
    /// Saliency and SmoothGrad: absolute gradients (captum `abs=True`).
    public var absolute = true
    public var smoothGrad = SmoothGradOptions()
    /// Integrated gradients: `n_steps` (captum's default 50), rule and a constant baseline
    /// (captum's scalar `baselines`; 0 by default). `integratedGradients(...)` takes an image.
    public var steps = 50
    public var integration = IntegrationMethod.gaussLegendre
    public var baseline: Float = 0
    /// Integrated gradients to a completeness tolerance (`|delta| ≤ tolerance · |f(x) − f(x')|`,
    /// 0.01 = 1 %): the adaptive trapezoid rule starting from `steps` points and refining the
    /// path up to `maxSteps` gradient evaluations per image (`Explainer.adaptiveIntegratedGradients`);
    /// nil: the fixed rule `integration` with `steps` points.
    public var tolerance: Double?
    public var maxSteps = 1024
    /// Grad-CAM: the layer's key path, ReLU of the map (captum `relu_attributions`, default false), resampling.
    public var layer = "layer4"
    public var relu = false
    public var interpolation = MapInterpolation.nearest
    /// Occlusion: window and strides (`[c, h, w]`, `[h, w]` or one size) and the value put in.
    public var window = [8]
    public var strides = [4]
    public var occlusionBaseline: Float = 0
    /// Network inputs per pass for every method.
    public var batchSize = 64

    public init() {}
}

/// The maps of one method on a batch.
public struct Attribution {
    public var method: AttributionMethod
    /// `[N, C, H, W]`, or `[N, 1, H, W]` for Grad-CAM.
    public var maps: Tensor
    /// Integrated gradients: `Σ attributions − (f(x) − f(baseline))` per image.
    public var deltas: [Double]?
    /// Integrated gradients: the gradient evaluations (path points) used per image.
    public var steps: [Int]?
    /// Integrated gradients with a tolerance: whether each image met it within the maximum steps.
    public var converged: [Bool]?

    public init(method: AttributionMethod, maps: Tensor, deltas: [Double]? = nil, steps: [Int]? = nil,
                converged: [Bool]? = nil) {
        self.method = method; self.maps = maps; self.deltas = deltas; self.steps = steps; self.converged = converged
    }

    /// Image `i`'s map `[C, H, W]` as values.
    public func map(_ i: Int) -> [Float] {
        let size = maps.count / maps.shape[0]
        return Array(maps.scalars[(i * size)..<((i + 1) * size)])
    }
}

/// Problems with an explanation request, each naming the option and the valid choices.
public enum ExplainError: Error, Equatable, LocalizedError {
    case unknownLayer(layer: String, valid: [String])
    case layerNotSpatial(layer: String, shape: [Int])
    case unknownChoice(option: String, value: String, valid: [String])
    case invalidOption(option: String, reason: String)
    case shapeMismatch(what: String, received: [Int], expected: [Int])
    case targetOutOfRange(target: Int, outputs: Int)

    public var errorDescription: String? {
        switch self {
        case let .unknownLayer(layer, valid):
            return "The model has no layer '\(layer)'. Valid layers: \(valid.joined(separator: ", "))."
        case let .layerNotSpatial(layer, shape):
            return "Layer '\(layer)' outputs \(shape), not a feature map [N, C, H, W]: Grad-CAM needs a convolutional layer."
        case let .unknownChoice(option, value, valid):
            return "Unknown \(option) '\(value)'. Valid: \(valid.joined(separator: ", "))."
        case let .invalidOption(option, reason):
            return "\(option): \(reason)."
        case let .shapeMismatch(what, received, expected):
            return "The \(what) has shape \(received); expected \(expected.map { $0 < 0 ? "any" : String($0) })."
        case let .targetOutOfRange(target, outputs):
            return "Target \(target) is out of range: the model has \(outputs) outputs (0...\(outputs - 1))."
        }
    }
}

extension CaseIterable where Self: RawRepresentable, Self.RawValue == String {
    /// The case named `text`, or `ExplainError.unknownChoice` naming the valid ones.
    public static func named(_ text: String, option: String) throws -> Self {
        guard let value = Self(rawValue: text) else {
            throw ExplainError.unknownChoice(option: option, value: text, valid: allCases.map(\.rawValue))
        }
        return value
    }
}
