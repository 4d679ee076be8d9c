import AstroBase
import Foundation
import Preprocessing

/// How regression targets are learned, and how network outputs become values
/// again: the one home of both directions, used by training and inference.
///
/// A target named in `logTargets` is learned as log10 of its value (sizes that
/// span a decade); every target is then standardised, `(t - mean) / std`, with
/// the training set's mean and standard deviation. The network outputs the
/// standardised value and, for a Gaussian-NLL model, a log-variance per target.
///
/// With `bounds` (a posterior model's prior range per target, in catalog units) the
/// (log10) value is mapped to an unbounded one before standardising:
/// `u = logit((v − lo) / (hi − lo))`, the fraction clamped to `[1e-6, 1 − 1e-6]` so a truth on
/// the range's edge stays finite; a value outside its range is an error.
public struct TargetScaling: Equatable, Sendable {
    public var names: [String]
    public var mean: [Double]
    public var std: [Double]
    public var logTargets: [String]
    /// `[lo, hi]` per target in catalog units, or nil (no logit transform).
    public var bounds: [[Double]]?

    /// The clamp of the fraction inside a bounded range.
    public static let edgeFraction = 1e-6

    public init(names: [String], mean: [Double], std: [Double], logTargets: [String], bounds: [[Double]]? = nil) {
        self.names = names
        self.mean = mean
        self.std = std
        self.logTargets = logTargets
        self.bounds = bounds
    }

    /// The scaling of a training catalog: means and (population) standard
    /// deviations of its learned values; a constant target gets std 1.
    public init(fitting catalog: Catalog, names: [String], logTargets: [String], bounds: [[Double]]? = nil) throws {
        self.init(names: names, mean: [], std: [], logTargets: logTargets, bounds: bounds)
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

    /// Catalog values → what the network learns before standardising (log10 where asked,
    /// then the logit within `bounds`).
    public func learnedValues(_ targets: [Double], file: String) throws -> [Double] {
        try targets.enumerated().map { k, value in
            var v = value
            if isLogarithmic(k) {
                guard value > 0 else {
                    throw PipelineError.unsupported("\(file): \(names[k]) = \(value) cannot be learned as log10 (it must be positive).")
                }
                v = Foundation.log10(value)
            }
            guard let range = learnedRange(k) else { return v }
            let fraction = (v - range.lo) / (range.hi - range.lo)
            guard fraction >= 0 && fraction <= 1 else {
                throw PipelineError.unsupported("\(file): \(names[k]) = \(value) is outside its prior range "
                    + "[\(bounds![k][0]), \(bounds![k][1])] (input.target_bounds).")
            }
            let p = Swift.min(Swift.max(fraction, Self.edgeFraction), 1 - Self.edgeFraction)
            return Foundation.log(p / (1 - p))
        }
    }

    /// The bounds of target `k` in learned (log10 where asked) units.
    func learnedRange(_ k: Int) -> (lo: Double, hi: Double)? {
        guard let b = bounds?[k] else { return nil }
        return isLogarithmic(k) ? (Foundation.log10(b[0]), Foundation.log10(b[1])) : (b[0], b[1])
    }

    /// One standardised network value of target `k` → catalog units (the inverse of
    /// `standardized`): un-standardise, undo the logit, then the log10.
    @inline(__always)
    public func catalogValue(_ standardized: Double, target k: Int) -> Double {
        var v = standardized * std[k] + mean[k]
        if let range = learnedRange(k) { v = range.lo + (range.hi - range.lo) / (1 + Foundation.exp(-v)) }
        return isLogarithmic(k) ? Foundation.pow(10, v) : v
    }

    /// Posterior draws `[S, k]` (row-major, standardised network units) of one input →
    /// medians and the percentiles 16, 84, 2.5, 97.5 in catalog units (the maps are monotonic,
    /// so percentiles are taken first and only they are mapped), and the first `keepSamples`
    /// draws in catalog units.
    public func posterior(_ draws: UnsafeBufferPointer<Float>, keepSamples: Int = 0) -> PosteriorEstimate {
        let k = names.count, s = draws.count / k
        precondition(s > 0 && draws.count == s * k, "posterior: \(draws.count) values are not [S, \(k)]")
        var column = [Float](repeating: 0, count: s)
        var medians = [Double](), p16 = [Double](), p84 = [Double](), p025 = [Double](), p975 = [Double]()
        for t in 0..<k {
            for i in 0..<s { column[i] = draws[i * k + t] }
            let at = column.withUnsafeMutableBufferPointer { PixelStatistics.percentiles(selecting: $0, [50, 16, 84, 2.5, 97.5]) }
                .map { catalogValue($0, target: t) }
            medians.append(at[0]); p16.append(at[1]); p84.append(at[2]); p025.append(at[3]); p975.append(at[4])
        }
        var samples: [Double]?
        if keepSamples > 0 {
            let kept = Swift.min(keepSamples, s)
            samples = (0..<(kept * k)).map { catalogValue(Double(draws[$0]), target: $0 % k) }
        }
        return PosteriorEstimate(medians: medians, p16: p16, p84: p84, p025: p025, p975: p975, samples: samples)
    }

    /// One catalog value of target `k` → its standardised network value (the inverse of
    /// `catalogValue`; a value on or beyond a bound is clamped as in `learnedValues`).
    func standardizedValue(_ value: Double, target k: Int) -> Double {
        var v = isLogarithmic(k) ? Foundation.log10(Swift.max(value, .leastNormalMagnitude)) : value
        if let range = learnedRange(k) {
            let p = Swift.min(Swift.max((v - range.lo) / (range.hi - range.lo), Self.edgeFraction), 1 - Self.edgeFraction)
            v = Foundation.log(p / (1 - p))
        }
        return (v - mean[k]) / std[k]
    }

    /// The posterior widened about its median, per target by `scales[k] = [s68, s95]`, in the
    /// standardised network space (where the flow draws, so the result stays inside a bounded
    /// range): the 16th/84th percentiles (and the kept draws) by s68, the 2.5th/97.5th by s95.
    public func widened(_ p: PosteriorEstimate, by scales: [[Double]]) -> PosteriorEstimate {
        var out = p
        for k in names.indices where k < scales.count && scales[k].count == 2 {
            let median = standardizedValue(p.medians[k], target: k)
            func widen(_ value: Double, _ s: Double) -> Double {
                catalogValue(median + s * (standardizedValue(value, target: k) - median), target: k)
            }
            out.p16[k] = widen(p.p16[k], scales[k][0]); out.p84[k] = widen(p.p84[k], scales[k][0])
            out.p025[k] = widen(p.p025[k], scales[k][1]); out.p975[k] = widen(p.p975[k], scales[k][1])
            if var samples = out.samples {
                for i in Swift.stride(from: k, to: samples.count, by: names.count) { samples[i] = widen(samples[i], scales[k][0]) }
                out.samples = samples
            }
        }
        return out
    }

    /// The targets whose central 68 % interval lies in the outer 1 % of their prior range at
    /// one end (in learned units: log10 where asked): the posterior piles up on the bound, as
    /// for an object beyond the range the model was trained on (a galaxy brighter than its
    /// magnitudes), and the value is the bound, not a measurement.
    public func targetsAtRangeEdge(_ p: PosteriorEstimate) -> [String] {
        names.indices.compactMap { k in
            guard let range = learnedRange(k), k < p.p16.count, k < p.p84.count else { return nil }
            func learned(_ v: Double) -> Double { isLogarithmic(k) ? Foundation.log10(Swift.max(v, .leastNormalMagnitude)) : v }
            let margin = 0.01 * (range.hi - range.lo)
            let (low, high) = (learned(p.p16[k]), learned(p.p84[k]))
            return high <= range.lo + margin || low >= range.hi - margin ? names[k] : nil
        }
    }

    /// Catalog values → the standardised training targets.
    public func standardized(_ targets: [Double], file: String) throws -> [Double] {
        try learnedValues(targets, file: file).enumerated().map { ($0.element - mean[$0.offset]) / std[$0.offset] }
    }

    /// Standard-normal quantiles of the percentiles 16, 84, 2.5 and 97.5 (TASKS.md's order).
    static let gaussianQuantiles = [-0.994457883209753, 0.994457883209753, -1.959963984540054, 1.959963984540054]

    /// One input's network outputs → values in catalog units. With `uncertainty`,
    /// `outputs` holds the k standardised values then k log-variances; σ is
    /// `exp(logvar / 2) · std`, and for a log10 target the value is `10^m` with σ
    /// propagated by the delta method, `σ · value · ln 10`.
    public func estimate<C: Collection>(_ outputs: C, uncertainty: Bool) -> RegressionEstimate
        where C.Element == Float, C.Index == Int {
        let k = names.count
        let start = outputs.startIndex
        var values = [Double](), sigmas = [Double](), percentiles = [[Double]]()
        for t in 0..<k {
            let learned = Double(outputs[start + t]) * std[t] + mean[t]
            let learnedSigma = uncertainty ? Foundation.exp(0.5 * Double(outputs[start + k + t])) * std[t] : 0
            var value = learned, sigma = learnedSigma
            if isLogarithmic(t) {
                value = Foundation.pow(10, value)
                sigma *= value * Foundation.log(10)
            }
            values.append(value)
            sigmas.append(sigma)
            percentiles.append(Self.gaussianQuantiles.map {
                let x = learned + $0 * learnedSigma
                return isLogarithmic(t) ? Foundation.pow(10, x) : x
            })
        }
        return uncertainty ? RegressionEstimate(values: values, sigmas: sigmas, percentiles: percentiles)
                           : RegressionEstimate(values: values)
    }
}
