import Autograd
import Foundation

/// A quantity reported per epoch, computed over all samples of the epoch
/// (not averaged over batches, so AUC and F1 are exact).
public enum Metric: Equatable, Sendable {
    case accuracy
    case topKAccuracy(Int)
    case macroF1
    case macroPrecision
    case macroRecall
    /// ROC AUC of the last class's probability (binary tasks: the positive class).
    case rocAUC
    /// True-positive rate at a false-positive rate (e.g. 0.01), positive = last class.
    case truePositiveRate(atFalsePositiveRate: Double)
    case rmse
    case mae
    case nmad
    case r2
    /// Mean IoU over the given classes of a segmentation.
    case meanIoU(classes: [Int])
    case pixelAccuracy

    /// The name under which the metric is logged (`val_` is prefixed for validation).
    public var name: String {
        switch self {
        case .accuracy: return "accuracy"
        case let .topKAccuracy(k): return "top\(k)_accuracy"
        case .macroF1: return "macro_f1"
        case .macroPrecision: return "macro_precision"
        case .macroRecall: return "macro_recall"
        case .rocAUC: return "auc"
        case let .truePositiveRate(fpr): return "tpr_at_fpr_\(fpr)"
        case .rmse: return "rmse"
        case .mae: return "mae"
        case .nmad: return "nmad"
        case .r2: return "r2"
        case .meanIoU: return "mean_iou"
        case .pixelAccuracy: return "pixel_accuracy"
        }
    }
}

/// Collects an epoch's outputs and targets to compute metrics at its end.
struct MetricAccumulator {
    var scores: [Float] = []          // class probabilities, row-major N × C
    var classCount = 0
    var labels: [Int] = []
    var predictedPixels: [Int] = []
    var predictions: [Double] = []    // regression: predicted means, row-major
    var truths: [Double] = []
    var lossSum = 0.0
    var lossCount = 0

    mutating func add(output: Tensor, targets: Targets, loss: LossFunction, lossValue: Float, batchSize: Int) {
        lossSum += Double(lossValue) * Double(batchSize)
        lossCount += batchSize
        switch (loss, targets) {
        case let (.pixelCrossEntropy, .classes(pixelLabels)):
            labels += pixelLabels
            let c = output.shape[1], inner = output.count / (output.shape[0] * c)
            let o = output.storage.pointer
            for n in 0..<output.shape[0] { for s in 0..<inner {
                var best = 0
                for k in 1..<c where o[(n * c + k) * inner + s] > o[(n * c + best) * inner + s] { best = k }
                predictedPixels.append(best)
            } }
        case let (_, .classes(classLabels)):
            // Samples of none of the classes (outlier exposure) count in the loss only.
            classCount = output.shape.last ?? 1
            let probabilities = output.softmax(axis: -1).scalars
            for (i, label) in classLabels.enumerated() where label != OutsideClass.label {
                labels.append(label)
                scores += probabilities[(i * classCount)..<((i + 1) * classCount)]
            }
        case let (.gaussianNegativeLogLikelihood, .values(t)):
            predictions += LossFunction.split(output, targets: t.shape.last ?? 1).0.scalars.map(Double.init)
            truths += t.scalars.map(Double.init)
        case let (.categoricalCrossentropy, .values(t)), let (.binaryCrossentropy, .values(t)):
            classCount = output.shape.last ?? 1
            let probabilities = classCount == 1 || loss == .binaryCrossentropy ? output.sigmoid() : output.softmax(axis: -1)
            scores += probabilities.scalars
            if classCount == 1 {
                labels += t.scalars.map { $0 > 0.5 ? 1 : 0 }
            } else {
                labels += t.argmaxIndices(axis: 1)
            }
        case (.negativeLogLikelihood, _):
            break   // the output is a context vector, not a prediction: only the loss is tracked
        case let (_, .values(t)):
            predictions += output.scalars.map(Double.init)
            truths += t.scalars.map(Double.init)
        }
    }

    var loss: Double { lossCount > 0 ? lossSum / Double(lossCount) : .nan }

    func value(_ metric: Metric) -> Double {
        let predicted: [Int] = classCount > 1
            ? (0..<(scores.count / classCount)).map { i in
                var best = 0
                for k in 1..<classCount where scores[i * classCount + k] > scores[i * classCount + best] { best = k }
                return best
            }
            : scores.map { $0 > 0.5 ? 1 : 0 }
        let positive: [Double] = classCount > 1
            ? stride(from: classCount - 1, to: scores.count, by: classCount).map { Double(scores[$0]) }
            : scores.map(Double.init)
        switch metric {
        case .accuracy:
            return ClassificationMetrics.accuracy(predicted: predicted, truth: labels)
        case let .topKAccuracy(k):
            return ClassificationMetrics.topKAccuracy(scores: scores, classCount: classCount, truth: labels, k: k)
        case .macroF1, .macroPrecision, .macroRecall:
            let r = ClassificationMetrics.precisionRecallF1(predicted: predicted, truth: labels, classCount: Swift.max(2, classCount))
            return metric == .macroF1 ? r.macroF1 : metric == .macroPrecision ? r.macroPrecision : r.macroRecall
        case .rocAUC:
            return ClassificationMetrics.rocAUC(scores: positive, truth: labels.map { $0 == Swift.max(1, classCount - 1) ? 1 : 0 })
        case let .truePositiveRate(fpr):
            return ClassificationMetrics.truePositiveRate(atFalsePositiveRate: fpr, scores: positive,
                                                          truth: labels.map { $0 == Swift.max(1, classCount - 1) ? 1 : 0 }).tpr
        case .rmse: return RegressionMetrics.rmse(predicted: predictions, truth: truths)
        case .mae: return RegressionMetrics.mae(predicted: predictions, truth: truths)
        case .nmad: return RegressionMetrics.nmad(predicted: predictions, truth: truths)
        case .r2: return RegressionMetrics.r2(predicted: predictions, truth: truths)
        case let .meanIoU(classes):
            let c = (Swift.max(labels.max() ?? 0, predictedPixels.max() ?? 0, classes.max() ?? 0)) + 1
            return SegmentationMetrics.meanIntersectionOverUnion(predicted: predictedPixels, truth: labels,
                                                                 classCount: c, classes: classes)
        case .pixelAccuracy:
            return SegmentationMetrics.pixelAccuracy(predicted: predictedPixels, truth: labels)
        }
    }
}
