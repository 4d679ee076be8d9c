// Calibration tests of posteriors: interval coverage, simulation-based calibration ranks,
// and TARP's expected coverage of the joint posterior.
import AstroBase
import Foundation

/// Checks whether posteriors are calibrated, from draws and truths.
///
/// - Coverage: the fraction of truths inside central credible intervals (68 % → 0.68 when
///   calibrated).
/// - Simulation-based calibration (Talts et al. 2018, https://arxiv.org/abs/1804.06788): the
///   rank of each truth among its posterior's draws is uniform on `0...S` when the posteriors
///   are right; a ∪ shape means too narrow, ∩ too wide, a slope a bias.
/// - TARP (Lemos et al. 2023, "Sampling-Based Accuracy Testing of Posterior Estimators",
///   https://arxiv.org/abs/2302.03026): for a random reference point per object, `f` is the
///   fraction of draws nearer the reference than the truth; calibrated posteriors make `f`
///   uniform, so the expected coverage `ECP(α) = P(f < α)` is the diagonal. Tests the joint
///   posterior, not only its marginals.
public enum PosteriorCalibration {
    /// The fraction of `truth[i]` within `[lower[i], upper[i]]`.
    public static func coverage(lower: [Double], upper: [Double], truth: [Double]) -> Double {
        precondition(lower.count == truth.count && upper.count == truth.count && !truth.isEmpty,
                     "coverage: \(lower.count) lower, \(upper.count) upper, \(truth.count) truths")
        return Double(truth.indices.filter { lower[$0] <= truth[$0] && truth[$0] <= upper[$0] }.count) / Double(truth.count)
    }

    /// The SBC rank of `truth` among `draws`: how many draws are below it (`0...draws.count`).
    public static func rank<C: Collection>(of truth: Double, among draws: C) -> Int where C.Element == Double {
        draws.reduce(0) { $0 + ($1 < truth ? 1 : 0) }
    }

    /// Counts of ranks (each in `0...draws`) in `bins` equal bins of the normalised rank
    /// `r / (draws + 1)`, and the p-value of a χ² test of their uniformity (`bins − 1` degrees of
    /// freedom).
    public static func rankHistogram(_ ranks: [Int], draws: Int, bins: Int = 20) -> (counts: [Int], pValue: Double) {
        precondition(bins > 1 && !ranks.isEmpty, "rankHistogram: \(ranks.count) ranks, \(bins) bins")
        var counts = [Int](repeating: 0, count: bins)
        for r in ranks { counts[Swift.min(bins - 1, r * bins / (draws + 1))] += 1 }
        // Expected counts per bin: each rank value 0...draws is equally likely.
        var expected = [Double](repeating: 0, count: bins)
        for r in 0...draws { expected[Swift.min(bins - 1, r * bins / (draws + 1))] += Double(ranks.count) / Double(draws + 1) }
        let chi2 = zip(counts, expected).reduce(0.0) { $0 + (Double($1.0) - $1.1) * (Double($1.0) - $1.1) / $1.1 }
        return (counts, 1 - SpecialFunctions.regularizedGammaP(Double(bins - 1) / 2, chi2 / 2))
    }

    /// The result of a TARP test.
    public struct TARPResult: Equatable, Sendable {
        /// Credibility levels α and the expected coverage `ECP(α)` at each.
        public var alpha: [Double]
        public var expectedCoverage: [Double]
        /// `∫ |ECP(α) − α| dα`: 0 for calibrated posteriors (at most 0.5).
        public var areaDifference: Double
        /// `∫ (ECP(α) − α) dα`: negative when the posteriors are too narrow (overconfident),
        /// positive when too wide.
        public var signedAreaDifference: Double
        /// Kolmogorov–Smirnov statistic and p-value of the `f` values against a uniform law.
        public var ksStatistic: Double
        public var ksPValue: Double
    }

    /// TARP on `objects` posteriors in `dimensions` dimensions (`f` is the count of nearer
    /// draws, `0...S`, mapped to the middle of its cell, `(count + ½) / (S + 1)`, so a
    /// calibrated `f` is uniform on (0, 1)): `draws` is `[N, S, D]` and
    /// `truths` `[N, D]`, both row-major and already scaled so that distances mix the
    /// dimensions sensibly (e.g. each dimension divided by the truths' spread). Reference
    /// points are drawn uniformly in the truths' bounding box from `seed`.
    public static func tarp(draws: [Double], truths: [Double], objects: Int, dimensions: Int,
                            levels: Int = 50, seed: UInt64 = 1) -> TARPResult {
        let n = objects, d = dimensions
        precondition(n > 0 && d > 0 && truths.count == n * d && draws.count % (n * d) == 0 && !draws.isEmpty,
                     "tarp: \(draws.count) draws and \(truths.count) truths for \(n) objects of \(d) dimensions")
        let s = draws.count / (n * d)
        var lo = [Double](repeating: .infinity, count: d), hi = [Double](repeating: -.infinity, count: d)
        for i in 0..<n { for j in 0..<d { lo[j] = Swift.min(lo[j], truths[i * d + j]); hi[j] = Swift.max(hi[j], truths[i * d + j]) } }
        var generator = SeededGenerator(seed: seed)
        var f = [Double](repeating: 0, count: n)
        var reference = [Double](repeating: 0, count: d)
        for i in 0..<n {
            for j in 0..<d { reference[j] = lo[j] + (hi[j] - lo[j]) * generator.uniform() }
            func distance(_ base: Int, _ values: [Double]) -> Double {
                var total = 0.0
                for j in 0..<d { let e = values[base + j] - reference[j]; total += e * e }
                return total
            }
            let truthDistance = distance(i * d, truths)
            var nearer = 0
            for k in 0..<s where distance((i * s + k) * d, draws) < truthDistance { nearer += 1 }
            f[i] = (Double(nearer) + 0.5) / Double(s + 1)   // the midpoint of its rank's cell: inside (0, 1)
        }
        return tarpResult(f, levels: levels)
    }

    /// The TARP curve and statistics of the coverage fractions `f` (each in [0, 1]).
    public static func tarpResult(_ f: [Double], levels: Int = 50) -> TARPResult {
        let sorted = f.sorted()
        let n = Double(sorted.count)
        let alpha = (0...levels).map { Double($0) / Double(levels) }
        let ecp = alpha.map { a in Double(sorted.partitioningIndex { $0 >= a }) / n }
        var area = 0.0, signed = 0.0
        for i in 1..<alpha.count {   // trapezoids of |ECP − α| and ECP − α
            let (e0, e1) = (ecp[i - 1] - alpha[i - 1], ecp[i] - alpha[i])
            let h = alpha[i] - alpha[i - 1]
            area += 0.5 * (Swift.abs(e0) + Swift.abs(e1)) * h
            signed += 0.5 * (e0 + e1) * h
        }
        let (statistic, p) = ksUniform(sorted: sorted)
        return TARPResult(alpha: alpha, expectedCoverage: ecp, areaDifference: area, signedAreaDifference: signed,
                          ksStatistic: statistic, ksPValue: p)
    }

    /// One-sample Kolmogorov–Smirnov test of sorted values in [0, 1] against the uniform law:
    /// `D = sup |F_n(x) − x|` and its asymptotic p-value `Q_KS((√n + 0.12 + 0.11/√n) D)`
    /// (Numerical Recipes §14.3), `Q_KS(λ) = 2 Σ_{j≥1} (−1)^{j−1} exp(−2 j² λ²)`.
    public static func ksUniform(sorted: [Double]) -> (statistic: Double, pValue: Double) {
        let n = sorted.count
        precondition(n > 0, "ksUniform: no values")
        var d = 0.0
        for (i, x) in sorted.enumerated() {
            d = Swift.max(d, Double(i + 1) / Double(n) - x, x - Double(i) / Double(n))
        }
        let root = Double(n).squareRoot()
        let lambda = (root + 0.12 + 0.11 / root) * d
        return (d, kolmogorovQ(lambda))
    }

    /// `Q_KS(λ)`, the Kolmogorov distribution's upper tail.
    static func kolmogorovQ(_ lambda: Double) -> Double {
        guard lambda > 0.2 else { return 1 }
        var total = 0.0, sign = 1.0
        for j in 1...100 {
            let term = sign * Foundation.exp(-2 * Double(j * j) * lambda * lambda)
            total += term
            if Swift.abs(term) < 1e-12 { break }
            sign = -sign
        }
        return Swift.min(1, Swift.max(0, 2 * total))
    }
}

extension Array where Element == Double {
    /// The first index whose element satisfies `predicate`, for a predicate that is false then
    /// true along the (sorted) array.
    func partitioningIndex(where predicate: (Double) -> Bool) -> Int {
        var low = 0, high = count
        while low < high {
            let mid = (low + high) / 2
            if predicate(self[mid]) { high = mid } else { low = mid + 1 }
        }
        return low
    }
}
