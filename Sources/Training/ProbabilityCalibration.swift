import Foundation

/// How well class probabilities mean what they say, and temperature scaling (Guo et al.
/// 2017): one scalar `T` divides the logits, fitted by minimising the negative
/// log-likelihood on held-out data; it changes no prediction, only the confidence.
///
/// Every function takes the log-probabilities of each input's classes (`logits` up to a
/// constant per row: softmax(log p / T) = softmax(z / T)), so probabilities already written
/// by a run can be recalibrated without the network.
public enum ProbabilityCalibration {
    /// One bin of a reliability diagram: inputs whose top probability fell in
    /// `[lower, upper)`, their mean confidence and their accuracy.
    public struct Bin: Equatable, Sendable {
        public var lower: Double
        public var upper: Double
        public var count: Int
        public var confidence: Double
        public var accuracy: Double
    }

    /// Softmax of `logProbabilities / temperature` for one input, in Double.
    public static func probabilities(_ logProbabilities: [Double], temperature: Double = 1) -> [Double] {
        let scaled = logProbabilities.map { Swift.max($0, -1e300) / temperature }
        let m = scaled.max() ?? 0
        let e = scaled.map { Foundation.exp($0 - m) }
        let total = e.reduce(0, +)
        return e.map { $0 / total }
    }

    /// Mean negative log-likelihood of the true classes at `temperature`.
    public static func negativeLogLikelihood(_ logProbabilities: [[Double]], truth: [Int], temperature: Double = 1) -> Double {
        check(logProbabilities, truth)
        var total = 0.0
        for (row, label) in zip(logProbabilities, truth) {
            let scaled = row.map { Swift.max($0, -1e300) / temperature }
            let m = scaled.max() ?? 0
            let lse = m + Foundation.log(scaled.reduce(0) { $0 + Foundation.exp($1 - m) })
            total += lse - scaled[label]
        }
        return total / Double(truth.count)
    }

    /// Mean Brier score: Σ_k (p_k − [k = truth])², averaged over inputs.
    public static func brierScore(_ probabilities: [[Double]], truth: [Int]) -> Double {
        check(probabilities, truth)
        var total = 0.0
        for (row, label) in zip(probabilities, truth) {
            for (k, p) in row.enumerated() { total += (p - (k == label ? 1 : 0)) * (p - (k == label ? 1 : 0)) }
        }
        return total / Double(truth.count)
    }

    /// The reliability diagram's bins (equal width in the top probability, `count` of them;
    /// empty bins are left out).
    public static func reliability(_ probabilities: [[Double]], truth: [Int], bins count: Int = 15) -> [Bin] {
        check(probabilities, truth)
        precondition(count > 0, "ProbabilityCalibration.reliability: bins must be positive")
        var n = [Int](repeating: 0, count: count), confidence = [Double](repeating: 0, count: count)
        var correct = [Double](repeating: 0, count: count)
        for (row, label) in zip(probabilities, truth) {
            guard let top = row.indices.max(by: { row[$0] < row[$1] }) else { continue }
            let b = Swift.min(count - 1, Int(row[top] * Double(count)))
            n[b] += 1
            confidence[b] += row[top]
            correct[b] += top == label ? 1 : 0
        }
        return (0..<count).compactMap { b in
            n[b] == 0 ? nil : Bin(lower: Double(b) / Double(count), upper: Double(b + 1) / Double(count), count: n[b],
                                  confidence: confidence[b] / Double(n[b]), accuracy: correct[b] / Double(n[b]))
        }
    }

    /// Expected calibration error: Σ_bins (n_b / N) |accuracy_b − confidence_b|.
    public static func expectedCalibrationError(_ probabilities: [[Double]], truth: [Int], bins: Int = 15) -> Double {
        let total = Double(truth.count)
        return reliability(probabilities, truth: truth, bins: bins)
            .reduce(0) { $0 + Double($1.count) / total * Swift.abs($1.accuracy - $1.confidence) }
    }

    /// The temperature in [0.05, 20] that minimises the negative log-likelihood (golden-section
    /// search on log T; the NLL is convex in 1/T), to 1e-4 relative.
    public static func fitTemperature(_ logProbabilities: [[Double]], truth: [Int]) -> Double {
        check(logProbabilities, truth)
        let phi = (Foundation.sqrt(5.0) - 1) / 2
        var (a, b) = (Foundation.log(0.05), Foundation.log(20.0))
        func f(_ u: Double) -> Double { negativeLogLikelihood(logProbabilities, truth: truth, temperature: Foundation.exp(u)) }
        var c = b - phi * (b - a), d = a + phi * (b - a)
        var fc = f(c), fd = f(d)
        while b - a > 1e-4 {
            if fc < fd { b = d; d = c; fd = fc; c = b - phi * (b - a); fc = f(c) } else {
                a = c; c = d; fc = fd; d = a + phi * (b - a); fd = f(d)
            }
        }
        return Foundation.exp((a + b) / 2)
    }

    static func check<T>(_ rows: [[T]], _ truth: [Int]) {
        precondition(rows.count == truth.count && !truth.isEmpty,
                     "ProbabilityCalibration: \(rows.count) rows of probabilities for \(truth.count) labels")
        precondition(zip(rows, truth).allSatisfy { $1 >= 0 && $1 < $0.count },
                     "ProbabilityCalibration: a label outside the classes")
    }
}
