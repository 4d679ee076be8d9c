// Volume-preserving and per-feature affine flow layers: permutations and ActNorm.
import Autograd

/// Reorders the features, `y_j = x_{order[j]}`; `log |det| = 0`.
///
/// - Keys: `order` (a buffer holding the permutation as floats, so a saved flow keeps it).
public final class Permutation: Bijection {
    public let features: Int
    /// The permutation, as a buffer.
    public let order: Tensor
    public var isTraining = true

    public init(order: [Int]) {
        precondition(order.sorted() == Array(order.indices), "Permutation: \(order) is not a permutation of 0..<\(order.count)")
        features = order.count
        self.order = Tensor(order.map(Float.init))
    }

    /// A random permutation drawn from `seed`.
    public convenience init(features: Int, seed: UInt64) {
        var generator = SeededGenerator(seed: seed)
        self.init(order: generator.permutation(features))
    }

    /// The features in reverse order (MAF's choice between autoregressive layers).
    public static func reverse(features: Int) -> Permutation { Permutation(order: Array((0..<features).reversed())) }

    var indices: [Int] { order.scalars.map { Int($0) } }

    public func forward(_ input: Tensor, context: Tensor?) -> (output: Tensor, logDeterminant: Tensor) {
        checkShapes(input, context: nil, contextFeatures: 0, op: "Permutation")
        return (input.indexSelected(axis: 1, indices), Tensor.zeros([input.shape[0]]))
    }

    public func inverse(_ output: Tensor, context: Tensor?) -> Tensor {
        checkShapes(output, context: nil, contextFeatures: 0, op: "Permutation")
        var inverse = [Int](repeating: 0, count: features)
        for (j, i) in indices.enumerated() { inverse[i] = j }
        return output.indexSelected(axis: 1, inverse)
    }

    public var ownTensors: [NamedTensor] { [NamedTensor("order", order, .buffer)] }

    public var layerDescription: String { "Permutation(\(indices))" }
}

/// Activation normalisation: `y = x·exp(log s) + b` per feature, with `log s` and `b` set
/// from the first batch it sees so that the batch leaves with zero mean and unit variance per
/// feature, and trained afterwards; `log |det| = Σ_i log s_i` for every sample.
///
/// Kingma & Dhariwal, "Glow: Generative Flow with Invertible 1×1 Convolutions" (2018),
/// https://arxiv.org/abs/1807.03039.
///
/// - Keys: `log_scale`, `bias` `[features]`; `initialized` (a buffer, 1 once the
///   data-dependent initialisation ran, so a loaded flow is not initialised again).
public final class ActNorm: Bijection {
    public let features: Int
    public let logScale: Tensor
    public let bias: Tensor
    public let initialized: Tensor
    public var isTraining = true

    public init(features: Int) {
        precondition(features > 0, "ActNorm: features \(features)")
        self.features = features
        logScale = Tensor.zeros([features], requiresGrad: true)
        bias = Tensor.zeros([features], requiresGrad: true)
        initialized = Tensor.zeros([1])
    }

    /// Sets `log s = −log σ` and `b = −μ/σ` from `batch` (σ floored at 1e-6).
    public func initialize(from batch: Tensor) {
        withNoGrad {
            let mean = batch.mean(axes: [0]), variance = batch.variance(axes: [0])
            let std = (variance + 1e-12).sqrt().clamped(min: 1e-6)
            logScale.assign(-std.log())
            bias.assign(-(mean / std))
            initialized.assign(Tensor([1]))
        }
    }

    public func forward(_ input: Tensor, context: Tensor?) -> (output: Tensor, logDeterminant: Tensor) {
        checkShapes(input, context: nil, contextFeatures: 0, op: "ActNorm")
        if initialized.item == 0 && input.shape[0] > 1 { initialize(from: input) }
        let y = input * logScale.exp() + bias
        return (y, logScale.sum().expanded(to: [input.shape[0]]))
    }

    public func inverse(_ output: Tensor, context: Tensor?) -> Tensor {
        checkShapes(output, context: nil, contextFeatures: 0, op: "ActNorm")
        return (output - bias) * (-logScale).exp()
    }

    public var ownTensors: [NamedTensor] {
        [NamedTensor("log_scale", logScale), NamedTensor("bias", bias), NamedTensor("initialized", initialized, .buffer)]
    }

    public var layerDescription: String { "ActNorm(\(features))" }
}
