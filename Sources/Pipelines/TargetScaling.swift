import Foundation
import Preprocessing

/// How regression targets are learned, and how network outputs become values
/// again: the one home of both directions, used by training and inference.
///
/// A target named in `logTargets` is learned as log10 of its value (sizes that
/// span a decade); every target is then standardised, `(t - mean) / std`, with
/// the training set's mean and standard deviation. The network outputs the
/// standardised value and, for a Gaussian-NLL model, a log-variance per target.
public struct TargetScaling: Equatable, Sendable {
    public var names: [String]
    public var mean: [Double]
    public var std: [Double]
    public var logTargets: [String]

    public init(names: [String], mean: [Double], std: [Double], logTargets: [String]) {
        self.names = names
        self.mean = mean
        self.std = std
        self.logTargets = logTargets
    }

    /// The scaling of a training catalog: means and (population) standard
    /// deviations of its learned values; a constant target gets std 1.
    public init(fitting catalog: Catalog, names: [String], logTargets: [String]) throws {
        self.init(names: names, mean: [], std: [], logTargets: logTargets)
        let learned = try catalog.entries.map { try learnedValues($0.targets, file: $0.name) }
        for k in names.indices {
            let values = learned.map { $0[k] }
            let m = values.reduce(0, +) / Double(Swift.max(1, values.count))
            let s = (values.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(Swift.max(1, values.count))).squareRoot()
            mean.append(m)
            std.append(s > 0 ? s : 1)
        }
    }

    func isLogarithmic(_ k: Int) -> Bool { logTargets.contains(names[k]) }

    /// Catalog values → what the network learns before standardising (log10 where asked).
    public func learnedValues(_ targets: [Double], file: String) throws -> [Double] {
        try targets.enumerated().map { k, value in
            guard isLogarithmic(k) else { return value }
            guard value > 0 else {
                throw PipelineError.unsupported("\(file): \(names[k]) = \(value) cannot be learned as log10 (it must be positive).")
            }
            return Foundation.log10(value)
        }
    }

    /// Catalog values → the standardised training targets.
    public func standardized(_ targets: [Double], file: String) throws -> [Double] {
        try learnedValues(targets, file: file).enumerated().map { ($0.element - mean[$0.offset]) / std[$0.offset] }
    }

    /// One input's network outputs → values in catalog units. With `uncertainty`,
    /// `outputs` holds the k standardised values then k log-variances; σ is
    /// `exp(logvar / 2) · std`, and for a log10 target the value is `10^m` with σ
    /// propagated by the delta method, `σ · value · ln 10`.
    public func estimate<C: Collection>(_ outputs: C, uncertainty: Bool) -> RegressionEstimate
        where C.Element == Float, C.Index == Int {
        let k = names.count
        let start = outputs.startIndex
        var values = [Double](), sigmas = [Double]()
        for t in 0..<k {
            var value = Double(outputs[start + t]) * std[t] + mean[t]
            var sigma = uncertainty ? Foundation.exp(0.5 * Double(outputs[start + k + t])) * std[t] : 0
            if isLogarithmic(t) {
                value = Foundation.pow(10, value)
                sigma *= value * Foundation.log(10)
            }
            values.append(value)
            sigmas.append(sigma)
        }
        return RegressionEstimate(values: values, sigmas: uncertainty ? sigmas : nil)
    }
}
