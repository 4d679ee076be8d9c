import AstroBase
import Foundation

/// Classification metrics over integer labels. Definitions follow scikit-learn
/// (`accuracy_score`, `precision_recall_fscore_support(average="macro",
/// zero_division=0)`, `confusion_matrix`, `roc_auc_score`) so numbers can be
/// compared with what astronomers already compute.
public enum ClassificationMetrics {
    /// Fraction of `predicted` equal to `truth`.
    public static func accuracy(predicted: [Int], truth: [Int]) -> Double {
        precondition(predicted.count == truth.count, "accuracy: \(predicted.count) predictions for \(truth.count) labels")
        guard !truth.isEmpty else { return .nan }
        return Double(zip(predicted, truth).filter { $0 == $1 }.count) / Double(truth.count)
    }

    /// Fraction of samples whose true class is among the `k` highest scores.
    /// `scores` is row-major `count × classCount`.
    public static func topKAccuracy(scores: [Float], classCount: Int, truth: [Int], k: Int) -> Double {
        precondition(scores.count == truth.count * classCount, "topKAccuracy: scores do not match \(truth.count)×\(classCount)")
        guard !truth.isEmpty else { return .nan }
        var hits = 0
        for (i, label) in truth.enumerated() {
            let row = scores[(i * classCount)..<((i + 1) * classCount)]
            let own = row[row.startIndex + label]
            // Ties count in the sample's favour only up to k, as a stable sort would place them.
            let higher = row.filter { $0 > own }.count
            if higher < k { hits += 1 }
        }
        return Double(hits) / Double(truth.count)
    }

    /// `matrix[t][p]`: how many samples of true class `t` were predicted `p`.
    public static func confusionMatrix(predicted: [Int], truth: [Int], classCount: Int) -> [[Int]] {
        var matrix = [[Int]](repeating: [Int](repeating: 0, count: classCount), count: classCount)
        for (p, t) in zip(predicted, truth) where (0..<classCount).contains(p) && (0..<classCount).contains(t) {
            matrix[t][p] += 1
        }
        return matrix
    }

    /// Per-class precision, recall and F1, and their unweighted (macro) means.
    /// A class with no predictions (or no members) scores 0, as scikit-learn's
    /// `zero_division=0`.
    public static func precisionRecallF1(predicted: [Int], truth: [Int], classCount: Int)
        -> (precision: [Double], recall: [Double], f1: [Double], macroPrecision: Double, macroRecall: Double, macroF1: Double) {
        let m = confusionMatrix(predicted: predicted, truth: truth, classCount: classCount)
        var precision = [Double](), recall = [Double](), f1 = [Double]()
        for c in 0..<classCount {
            let tp = Double(m[c][c])
            let predictedAsC = Double((0..<classCount).reduce(0) { $0 + m[$1][c] })
            let actualC = Double(m[c].reduce(0, +))
            let p = predictedAsC > 0 ? tp / predictedAsC : 0
            let r = actualC > 0 ? tp / actualC : 0
            precision.append(p)
            recall.append(r)
            f1.append(p + r > 0 ? 2 * p * r / (p + r) : 0)
        }
        let mean = { (v: [Double]) in v.isEmpty ? 0 : v.reduce(0, +) / Double(v.count) }
        return (precision, recall, f1, mean(precision), mean(recall), mean(f1))
    }

    /// Area under the ROC curve of `scores` for the binary `truth` (1 positive),
    /// by the Mann-Whitney statistic with tied scores counted half: exactly
    /// scikit-learn's `roc_auc_score`.
    public static func rocAUC(scores: [Double], truth: [Int]) -> Double {
        precondition(scores.count == truth.count, "rocAUC: \(scores.count) scores for \(truth.count) labels")
        let positives = truth.filter { $0 == 1 }.count, negatives = truth.count - positives
        guard positives > 0, negatives > 0 else { return .nan }
        let order = scores.indices.sorted { scores[$0] < scores[$1] }
        var rankSumPositive = 0.0
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && scores[order[j + 1]] == scores[order[i]] { j += 1 }
            let averageRank = Double(i + j) / 2 + 1
            for k in i...j where truth[order[k]] == 1 { rankSumPositive += averageRank }
            i = j + 1
        }
        let u = rankSumPositive - Double(positives) * Double(positives + 1) / 2
        return u / (Double(positives) * Double(negatives))
    }

    /// The ROC curve: false and true positive rates at every distinct threshold,
    /// from the highest score down (scikit-learn's `roc_curve` with
    /// `drop_intermediate=False`, starting at (0, 0)).
    public static func rocCurve(scores: [Double], truth: [Int]) -> (fpr: [Double], tpr: [Double], thresholds: [Double]) {
        let positives = Double(truth.filter { $0 == 1 }.count), negatives = Double(truth.count) - positives
        let order = scores.indices.sorted { scores[$0] > scores[$1] }
        var fpr = [0.0], tpr = [0.0], thresholds = [Double.infinity]
        var tp = 0.0, fp = 0.0
        var i = 0
        while i < order.count {
            let threshold = scores[order[i]]
            while i < order.count && scores[order[i]] == threshold {
                if truth[order[i]] == 1 { tp += 1 } else { fp += 1 }
                i += 1
            }
            fpr.append(negatives > 0 ? fp / negatives : .nan)
            tpr.append(positives > 0 ? tp / positives : .nan)
            thresholds.append(threshold)
        }
        return (fpr, tpr, thresholds)
    }

    /// The highest true-positive rate reached while the false-positive rate is at
    /// most `falsePositiveRate` (e.g. 0.01), and the score threshold that gives it.
    public static func truePositiveRate(atFalsePositiveRate target: Double, scores: [Double], truth: [Int])
        -> (tpr: Double, threshold: Double) {
        let curve = rocCurve(scores: scores, truth: truth)
        var best = (tpr: 0.0, threshold: Double.infinity)
        for k in curve.fpr.indices where curve.fpr[k] <= target + 1e-12 && curve.tpr[k] >= best.tpr {
            best = (curve.tpr[k], curve.thresholds[k])
        }
        return best
    }
}

/// Regression metrics over predictions and truths.
public enum RegressionMetrics {
    public static func rmse(predicted: [Double], truth: [Double]) -> Double {
        check(predicted, truth, "rmse")
        return (zip(predicted, truth).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } / Double(truth.count)).squareRoot()
    }

    public static func mae(predicted: [Double], truth: [Double]) -> Double {
        check(predicted, truth, "mae")
        return zip(predicted, truth).reduce(0) { $0 + abs($1.0 - $1.1) } / Double(truth.count)
    }

    /// Normalised median absolute deviation of the residuals:
    /// `1.4826 · median(|Δ - median(Δ)|)` with `Δ = predicted - truth`, a robust
    /// standard deviation that outliers do not inflate (the usual photo-z statistic).
    public static func nmad(predicted: [Double], truth: [Double]) -> Double {
        check(predicted, truth, "nmad")
        return 1.4826 * PixelStatistics.medianAbsoluteDeviation(zip(predicted, truth).map { $0 - $1 })
    }

    /// The fraction of truths below their estimates (a tie counts half): 0.5 for estimates
    /// that are medians of calibrated posteriors or unbiased in the median; a model that
    /// runs differently in inference than in training shows up here first.
    public static func fractionBelow(predicted: [Double], truth: [Double]) -> Double {
        check(predicted, truth, "fractionBelow")
        let below = zip(predicted, truth).reduce(0.0) { $0 + ($1.1 < $1.0 ? 1 : $1.1 == $1.0 ? 0.5 : 0) }
        return below / Double(truth.count)
    }

    /// The median of `predicted - truth`.
    public static func medianError(predicted: [Double], truth: [Double]) -> Double {
        check(predicted, truth, "medianError")
        return PixelStatistics.median(zip(predicted, truth).map { $0 - $1 })
    }

    /// The bootstrap standard error of `nmad`: its standard deviation over `resamples`
    /// draws of the pairs with replacement (seeded, so a report is reproducible). A
    /// population NMAD of N objects scatters by roughly 1.2 / √N of itself.
    public static func nmadStandardError(predicted: [Double], truth: [Double], resamples: Int = 200, seed: UInt64 = 23) -> Double {
        check(predicted, truth, "nmad")
        let residuals = zip(predicted, truth).map { $0 - $1 }
        guard residuals.count > 1, resamples > 1 else { return .nan }
        var generator = SeededGenerator(seed: seed)
        var draw = [Double](repeating: 0, count: residuals.count)
        var values = [Double]()
        values.reserveCapacity(resamples)
        for _ in 0..<resamples {
            for i in draw.indices { draw[i] = residuals[Int.random(in: 0..<residuals.count, using: &generator)] }
            values.append(1.4826 * PixelStatistics.medianAbsoluteDeviation(draw))
        }
        return PixelStatistics.meanAndStd(values).std
    }

    /// Coefficient of determination, `1 - SS_res / SS_tot` (scikit-learn's `r2_score`).
    public static func r2(predicted: [Double], truth: [Double]) -> Double {
        check(predicted, truth, "r2")
        let mean = truth.reduce(0, +) / Double(truth.count)
        let ssRes = zip(predicted, truth).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
        let ssTot = truth.reduce(0) { $0 + ($1 - mean) * ($1 - mean) }
        return ssTot > 0 ? 1 - ssRes / ssTot : (ssRes == 0 ? 1 : 0)
    }

    /// Fraction of truths within `predicted ± k·sigma` (≈ 0.683 for k = 1 when the
    /// uncertainties are calibrated and Gaussian).
    public static func coverage(predicted: [Double], sigma: [Double], truth: [Double], k: Double = 1) -> Double {
        check(predicted, truth, "coverage")
        let inside = zip(zip(predicted, sigma), truth).filter { abs($0.0.0 - $0.1) <= k * $0.0.1 }.count
        return Double(inside) / Double(truth.count)
    }

    static func check(_ a: [Double], _ b: [Double], _ name: String) {
        precondition(a.count == b.count && !a.isEmpty, "\(name): \(a.count) predictions for \(b.count) truths")
    }
}

/// Segmentation metrics over per-pixel class maps.
public enum SegmentationMetrics {
    /// Intersection over union per class (NaN for a class absent from both maps).
    public static func intersectionOverUnion(predicted: [Int], truth: [Int], classCount: Int) -> [Double] {
        precondition(predicted.count == truth.count, "IoU: \(predicted.count) predicted pixels for \(truth.count)")
        var intersection = [Int](repeating: 0, count: classCount), union = intersection
        for (p, t) in zip(predicted, truth) {
            if p == t { if (0..<classCount).contains(p) { intersection[p] += 1; union[p] += 1 } } else {
                if (0..<classCount).contains(p) { union[p] += 1 }
                if (0..<classCount).contains(t) { union[t] += 1 }
            }
        }
        return (0..<classCount).map { union[$0] > 0 ? Double(intersection[$0]) / Double(union[$0]) : .nan }
    }

    /// Mean IoU over `classes` (e.g. `[1, 2]` for stars and galaxies), ignoring NaN.
    public static func meanIntersectionOverUnion(predicted: [Int], truth: [Int], classCount: Int, classes: [Int]) -> Double {
        let iou = intersectionOverUnion(predicted: predicted, truth: truth, classCount: classCount)
        let values = classes.map { iou[$0] }.filter { !$0.isNaN }
        return values.isEmpty ? .nan : values.reduce(0, +) / Double(values.count)
    }

    public static func pixelAccuracy(predicted: [Int], truth: [Int]) -> Double {
        ClassificationMetrics.accuracy(predicted: predicted, truth: truth)
    }
}
