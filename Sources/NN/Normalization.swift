// Batch normalisation and dropout layers.
import Autograd

/// Batch normalisation, as PyTorch's `nn.BatchNorm1d` / `nn.BatchNorm2d`.
///
/// `y = gamma (x - mean) / sqrt(var + eps) + beta`, with batch statistics in training (and
/// the running statistics updated in place) and the running statistics in eval mode.
///
/// - `input`: `[N, features]` or `[N, features, L]` (1-D) / `[N, features, H, W]` (2-D);
///   returns the same shape.
/// - Keys: `weight`, `bias` (parameters), `running_mean`, `running_var` (buffers), all
///   `[features]`. PyTorch's `num_batches_tracked` is accepted when loading and not kept.
public final class BatchNorm: Layer {
    /// Which PyTorch layer this matches; only checks the input rank.
    public enum Kind: String, Sendable { case oneDimensional = "BatchNorm1D", twoDimensional = "BatchNorm2D" }

    public let kind: Kind
    public let features: Int
    public let momentum: Float
    public let epsilon: Float
    public let weight: Tensor
    public let bias: Tensor
    public let runningMean: Tensor
    public let runningVariance: Tensor
    public var isTraining = true
    /// Synchronised batch norm (data-parallel training with `sync_batch_norm`): in training
    /// the statistics are those of every process's batch together. Nil: this batch's own.
    public var synchronisation: BatchStatisticsReducer?

    public init(features: Int, kind: Kind = .twoDimensional, momentum: Float = 0.1, epsilon: Float = 1e-5) {
        precondition(features > 0, "BatchNorm: features must be positive, got \(features)")
        self.kind = kind
        self.features = features
        self.momentum = momentum
        self.epsilon = epsilon
        weight = Tensor.ones([features], requiresGrad: true)
        bias = Tensor.zeros([features], requiresGrad: true)
        runningMean = Tensor.zeros([features])
        runningVariance = Tensor.ones([features])
    }

    /// `nn.BatchNorm1d`: input `[N, features]` or `[N, features, L]`.
    public static func oneDimensional(features: Int, momentum: Float = 0.1, epsilon: Float = 1e-5) -> BatchNorm {
        BatchNorm(features: features, kind: .oneDimensional, momentum: momentum, epsilon: epsilon)
    }

    public func forward(_ input: Tensor) -> Tensor {
        let ranks = kind == .twoDimensional ? [4] : [2, 3]
        precondition(ranks.contains(input.rank) && input.shape[1] == features,
                     "\(layerDescription): input \(input.shape) must have rank \(ranks) and \(features) channels on axis 1")
        return input.batchNorm(weight: weight, bias: bias, runningMean: runningMean, runningVariance: runningVariance,
                               training: isTraining, momentum: momentum, epsilon: epsilon,
                               synchronisation: synchronisation)
    }

    public var ownTensors: [NamedTensor] {
        [NamedTensor("weight", weight), NamedTensor("bias", bias),
         NamedTensor("running_mean", runningMean, .buffer), NamedTensor("running_var", runningVariance, .buffer)]
    }

    /// The per-channel affine map of eval mode: `y = scale * x + shift`.
    var inferenceScaleShift: (scale: [Float], shift: [Float]) {
        let g = weight.scalars, b = bias.scalars, m = runningMean.scalars, v = runningVariance.scalars
        var scale = [Float](repeating: 0, count: features), shift = scale
        for c in 0..<features {
            // Double for the reciprocal square root: the folded weights should match the
            // unfolded path to float rounding, not to the error of a float rsqrt.
            let s = Double(g[c]) / (Double(v[c]) + Double(epsilon)).squareRoot()
            scale[c] = Float(s)
            shift[c] = Float(Double(b[c]) - Double(m[c]) * s)
        }
        return (scale, shift)
    }

    public var layerDescription: String {
        "\(kind.rawValue)(\(features), momentum \(momentum), epsilon \(epsilon))"
    }
}

/// Inverted dropout, as PyTorch's `nn.Dropout`: zeroes elements with probability
/// `probability` in training and scales the rest by `1 / (1 - probability)`; identity in eval.
///
/// - `input`: any shape; returns the same shape.
public final class Dropout: Layer {
    public let probability: Float
    public var isTraining = true
    private var generator: SeededGenerator

    public init(probability: Float, seed: UInt64? = nil) {
        precondition(probability >= 0 && probability < 1, "Dropout: probability \(probability) not in [0, 1)")
        self.probability = probability
        generator = SeededGenerator(seed: WeightInitialization.seed(seed))
    }

    public func forward(_ input: Tensor) -> Tensor {
        input.dropout(probability: probability, training: isTraining, generator: &generator)
    }

    /// Restarts the mask stream from `seed` (training reseeds every epoch, so a
    /// resumed run draws the same masks as an uninterrupted one).
    public func reseed(_ seed: UInt64) { generator = SeededGenerator(seed: seed) }

    public var layerDescription: String { "Dropout(probability \(probability))" }
}
