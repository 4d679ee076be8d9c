// Loss functions, composed from the differentiable primitives (gradients come for free).
// Each returns a scalar (shape `[]`): the mean over the batch unless stated.

/// Loss functions. Shapes: `prediction` and `target` the same shape unless stated.
public enum Loss {
    /// `mean((p - t)^2)`.
    public static func meanSquaredError(_ prediction: Tensor, _ target: Tensor) -> Tensor {
        checkSameShape(prediction, target, "meanSquaredError")
        return (prediction - target).squared().mean()
    }

    /// `mean(|p - t|)`.
    public static func meanAbsoluteError(_ prediction: Tensor, _ target: Tensor) -> Tensor {
        checkSameShape(prediction, target, "meanAbsoluteError")
        return (prediction - target).abs().mean()
    }

    /// Huber: quadratic `0.5 d^2` for `|d| < delta`, linear `delta (|d| - delta / 2)` beyond
    /// (PyTorch's `huber_loss`).
    public static func huber(_ prediction: Tensor, _ target: Tensor, delta: Float = 1) -> Tensor {
        checkSameShape(prediction, target, "huber")
        let d = prediction - target
        let a = d.abs()
        return Tensor.where(a.detached() .< delta, d.squared() * 0.5, (a - 0.5 * delta) * delta).mean()
    }

    /// Cross-entropy from logits and integer class labels (PyTorch's `cross_entropy`).
    ///
    /// - `logits`: `[N, C]`, or `[N, C, H, W]` (any trailing axes) for per-pixel classification;
    ///   `labels`: `N` (or `N*H*W`, row-major over `[N, H, W]`) values in `0..<C`.
    /// - `classWeights`: `[C]`; the mean is then weighted, `sum_i w_{y_i} l_i / sum_i w_{y_i}`.
    /// - `labelSmoothing` `eps`: the target becomes `(1 - eps) onehot + eps / C`.
    /// - `outsideWeight` `λ` > 0 admits the label `OutsideClass.label` (-1), a sample of none of the
    ///   classes: its target is the uniform distribution, weighted `λ` (outlier exposure,
    ///   Hendrycks et al. 2019), so the network learns to be unsure of such inputs.
    ///
    /// Log-softmax is the fused, stable primitive; the target is a constant weight tensor.
    public static func crossEntropy(logits: Tensor, labels: [Int], classWeights: Tensor? = nil,
                                    labelSmoothing: Float = 0, outsideWeight: Float = 0) -> Tensor {
        let (n, c, inner) = classLayout(logits, "crossEntropy")
        precondition(labels.count == n * inner,
                     "crossEntropy: \(labels.count) labels for logits \(logits.shape) (need \(n * inner))")
        let w = weights(classWeights, c, "crossEntropy")
        let target = Tensor(repeating: 0, shape: logits.shape)
        let t = target.storage.pointer
        var denominator = 0.0
        for i in 0..<n { for s in 0..<inner {
            let y = labels[i * inner + s]
            if y == OutsideClass.label && outsideWeight > 0 {
                denominator += Double(outsideWeight)
                for k in 0..<c { t[(i * c + k) * inner + s] = outsideWeight / Float(c) }
                continue
            }
            precondition(y >= 0 && y < c, "crossEntropy: label \(y) outside 0..<\(c)")
            denominator += Double(w[y])
            for k in 0..<c { t[(i * c + k) * inner + s] = labelSmoothing / Float(c) * w[k] }
            t[(i * c + y) * inner + s] += (1 - labelSmoothing) * w[y]
        } }
        return -(logits.logSoftmax(axis: 1) * target).sum() * Float(1 / denominator)
    }

    /// Cross-entropy from logits against class probabilities (soft labels), mean over samples
    /// (and pixels).
    ///
    /// - `logits`, `probabilities`: `[N, C, ...]`; `classWeights`: `[C]` scales each class term.
    public static func crossEntropy(logits: Tensor, probabilities: Tensor, classWeights: Tensor? = nil,
                                    labelSmoothing: Float = 0) -> Tensor {
        checkSameShape(logits, probabilities, "crossEntropy")
        let (n, c, inner) = classLayout(logits, "crossEntropy")
        var target = probabilities.detached()
        if labelSmoothing > 0 { target = target * (1 - labelSmoothing) + labelSmoothing / Float(c) }
        if let classWeights {
            _ = weights(classWeights, c, "crossEntropy")
            target = target * classWeights.detached().reshaped(to: [c] + Array(repeating: 1, count: logits.rank - 2))
        }
        return -(logits.logSoftmax(axis: 1) * target).sum() * (1 / Float(n * inner))
    }

    /// Binary cross-entropy on logits, `mean((1 - t) x + (1 + (w - 1) t) log(1 + e^-x))`, the
    /// stable form of `-[w t log s(x) + (1 - t) log(1 - s(x))]` (PyTorch's
    /// `binary_cross_entropy_with_logits`, `positiveWeight` = `pos_weight`).
    public static func binaryCrossEntropy(logits: Tensor, targets: Tensor, positiveWeight: Float = 1) -> Tensor {
        checkSameShape(logits, targets, "binaryCrossEntropy")
        let t = targets.detached()
        let softplusNeg = (-logits).softplus()
        let factor = positiveWeight == 1 ? softplusNeg : softplusNeg * (t * (positiveWeight - 1) + 1)
        return ((1 - t) * logits + factor).mean()
    }

    /// Soft Dice loss for segmentation: `1 - mean_c (2 sum(p t) + s) / (sum p + sum t + s)`,
    /// with `p = softmax(logits)` over classes and one-hot `t`, sums over the batch and pixels.
    ///
    /// - `logits`: `[N, C, H, W]`; `labels`: `N*H*W` values in `0..<C`.
    public static func softDice(logits: Tensor, labels: [Int], smoothing: Float = 1) -> Tensor {
        let (n, c, inner) = classLayout(logits, "softDice")
        precondition(labels.count == n * inner, "softDice: \(labels.count) labels for logits \(logits.shape)")
        let onehot = Tensor(repeating: 0, shape: logits.shape)
        let t = onehot.storage.pointer
        for i in 0..<n { for s in 0..<inner {
            let y = labels[i * inner + s]
            precondition(y >= 0 && y < c, "softDice: label \(y) outside 0..<\(c)")
            t[(i * c + y) * inner + s] = 1
        } }
        let sumAxes = [0] + Array(2..<logits.rank)
        let p = logits.softmax(axis: 1)
        let intersection = (p * onehot).sum(axes: sumAxes)
        let denominator = p.sum(axes: sumAxes) + onehot.sum(axes: sumAxes) + smoothing
        return 1 - ((intersection * 2 + smoothing) / denominator).mean()
    }

    /// Gaussian negative log-likelihood with a predicted mean and log-variance (heteroscedastic
    /// regression): `mean(0.5 (logVar + (t - mu)^2 e^-logVar))`, the constant `0.5 log 2pi`
    /// left out as in PyTorch's `gaussian_nll_loss` (which takes `var = e^logVar`).
    public static func gaussianNegativeLogLikelihood(mean: Tensor, logVariance: Tensor, target: Tensor) -> Tensor {
        checkSameShape(mean, target, "gaussianNegativeLogLikelihood")
        checkSameShape(logVariance, target, "gaussianNegativeLogLikelihood")
        return ((logVariance + (target - mean).squared() * (-logVariance).exp()) * 0.5).mean()
    }

    // MARK: - Helpers

    private static func checkSameShape(_ a: Tensor, _ b: Tensor, _ op: String) {
        precondition(a.shape == b.shape, "\(op): prediction \(a.shape) and target \(b.shape) differ")
    }

    private static func classLayout(_ logits: Tensor, _ op: String) -> (Int, Int, Int) {
        precondition(logits.rank >= 2, "\(op): logits must be [N, C, ...], got \(logits.shape)")
        return (logits.shape[0], logits.shape[1], logits.count / Swift.max(logits.shape[0] * logits.shape[1], 1))
    }

    private static func weights(_ w: Tensor?, _ c: Int, _ op: String) -> [Float] {
        guard let w else { return [Float](repeating: 1, count: c) }
        precondition(w.shape == [c], "\(op): class weights \(w.shape) for \(c) classes")
        return w.scalars
    }
}
