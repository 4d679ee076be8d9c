import Autograd
import NN

/// The targets of one batch.
public enum Targets {
    /// Integer classes: one per sample, or one per pixel (N·H·W, row-major) for segmentation.
    case classes([Int])
    /// Real-valued targets, `[N, k]` (regression), or class probabilities `[N, C]`.
    case values(Tensor)

    public var count: Int {
        switch self {
        case let .classes(c): return c.count
        case let .values(t): return t.shape.first ?? 0
        }
    }
}

/// What training minimises, named as Keras names it.
public enum LossFunction: Equatable, Sendable {
    /// Cross-entropy of logits `[N, C]` with integer labels; with `outsideWeight` > 0 the label
    /// `OutsideClass.label` marks a sample of none of the classes, trained towards equal
    /// probabilities (outlier exposure) with that weight.
    case sparseCategoricalCrossentropy(labelSmoothing: Float = 0, outsideWeight: Float = 0)
    /// Cross-entropy of logits `[N, C]` with target probabilities `[N, C]`.
    case categoricalCrossentropy(labelSmoothing: Float = 0)
    /// Logits `[N, k]` against 0/1 targets `[N, k]`.
    case binaryCrossentropy
    case meanSquaredError
    case meanAbsoluteError
    case huber(delta: Float = 1)
    /// Regression with uncertainties: the network outputs `[N, 2k]`, the means then
    /// the log-variances of k targets; the loss is their Gaussian negative log-likelihood.
    case gaussianNegativeLogLikelihood
    /// Per-pixel cross-entropy of logits `[N, C, H, W]` with labels `N·H·W`,
    /// plus `diceWeight ×` the soft Dice loss.
    case pixelCrossEntropy(diceWeight: Float = 0)
    /// A density model's negative log-likelihood of the targets `[N, k]` (a `DensityModel`
    /// network, e.g. `PosteriorRegressor`): `Model` evaluates it through the network, whose
    /// output is then a context vector rather than a prediction.
    case negativeLogLikelihood

    public static let sparseCategoricalCrossentropy = LossFunction.sparseCategoricalCrossentropy()
    public static let categoricalCrossentropy = LossFunction.categoricalCrossentropy()
    public static let mse = LossFunction.meanSquaredError
    public static let mae = LossFunction.meanAbsoluteError

    /// Whether targets are integer classes.
    public var usesClassLabels: Bool {
        switch self {
        case .sparseCategoricalCrossentropy, .pixelCrossEntropy: return true
        default: return false
        }
    }

    /// The scalar loss of `output` against `targets`.
    public func callAsFunction(_ output: Tensor, _ targets: Targets, classWeights: Tensor? = nil) -> Tensor {
        switch (self, targets) {
        case let (.sparseCategoricalCrossentropy(smoothing, outsideWeight), .classes(labels)):
            return Loss.crossEntropy(logits: output, labels: labels, classWeights: classWeights, labelSmoothing: smoothing,
                                     outsideWeight: outsideWeight)
        case let (.pixelCrossEntropy(diceWeight), .classes(labels)):
            let ce = Loss.crossEntropy(logits: output, labels: labels, classWeights: classWeights)
            return diceWeight > 0 ? ce + Loss.softDice(logits: output, labels: labels) * diceWeight : ce
        case let (.categoricalCrossentropy(smoothing), .values(p)):
            return Loss.crossEntropy(logits: output, probabilities: p, classWeights: classWeights, labelSmoothing: smoothing)
        case let (.binaryCrossentropy, .values(t)):
            return Loss.binaryCrossEntropy(logits: output, targets: t)
        case let (.meanSquaredError, .values(t)):
            return Loss.meanSquaredError(output, t)
        case let (.meanAbsoluteError, .values(t)):
            return Loss.meanAbsoluteError(output, t)
        case let (.huber(delta), .values(t)):
            return Loss.huber(output, t, delta: delta)
        case let (.gaussianNegativeLogLikelihood, .values(t)):
            let (mean, logVariance) = Self.split(output, targets: t.shape.last ?? 1)
            return Loss.gaussianNegativeLogLikelihood(mean: mean, logVariance: logVariance, target: t)
        case (.negativeLogLikelihood, _):
            preconditionFailure("negativeLogLikelihood needs the network: use Model.loss(of:output:network:)")
        default:
            preconditionFailure("loss \(self): targets must be \(usesClassLabels ? "integer classes" : "values")")
        }
    }

    /// The scalar loss of `network`'s `output` for `targets`: the density's negative
    /// log-likelihood for `.negativeLogLikelihood`, `self(output, targets)` otherwise.
    public func callAsFunction(_ output: Tensor, _ targets: Targets, network: any Layer, classWeights: Tensor? = nil) -> Tensor {
        guard self == .negativeLogLikelihood else { return self(output, targets, classWeights: classWeights) }
        guard let density = network as? any DensityModel, case let .values(t) = targets else {
            preconditionFailure("negativeLogLikelihood: the network must be a DensityModel and the targets values")
        }
        return density.negativeLogLikelihood(context: output, targets: t)
    }

    /// Means and log-variances from an `[N, 2k]` output.
    static func split(_ output: Tensor, targets k: Int) -> (Tensor, Tensor) {
        precondition(output.shape.count == 2 && output.shape[1] == 2 * k,
                     "gaussianNegativeLogLikelihood: output \(output.shape) must be [N, \(2 * k)] (means, log-variances)")
        return (output.sliced(axis: 1, 0..<k), output.sliced(axis: 1, k..<(2 * k)))
    }
}
