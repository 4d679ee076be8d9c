import Foundation

/// Robust statistics, computed in Double: the one median, percentile, MAD and sigma
/// clipping of the project (stages, display stretches, metrics, benchmarks).
///
/// These follow numpy / astropy exactly where a stage must match astropy
/// (`np.percentile`'s linear interpolation, `np.median`, `np.std` with ddof 0,
/// `astropy.stats.mad_std`, `astropy.stats.sigma_clipped_stats` with its defaults).
public enum PixelStatistics {
    /// The Gaussian sigma per median absolute deviation, 1 / Φ⁻¹(3/4) (astropy's `mad_std`).
    public static let madToSigma = 1.482602218505602

    /// The finite values of `values`, as Double, in their original order.
    public static func finiteValues(_ values: UnsafeBufferPointer<Float>) -> [Double] {
        var out = [Double]()
        out.reserveCapacity(values.count)
        for v in values where v.isFinite { out.append(Double(v)) }
        return out
    }

    /// The `p`-th percentile (0...100) of already sorted values, with numpy's
    /// default linear interpolation between closest ranks: index `p/100 · (n - 1)`.
    public static func percentile(sorted: [Double], _ p: Double) -> Double {
        precondition(!sorted.isEmpty, "percentile: no finite values")
        let (lower, upper, fraction) = ranks(p, count: sorted.count)
        return interpolated(sorted[lower], sorted[upper], fraction)
    }

    /// The percentiles `ps` (0...100, as `percentile(sorted:)`) of `values`, which are
    /// reordered: only the order statistics the percentiles need are found, by selection
    /// (Hoare's quickselect with a median-of-three pivot, as numpy's `partition` selects),
    /// each in what is left above the one before, instead of sorting them all. No NaNs.
    public static func percentiles(selecting values: UnsafeMutableBufferPointer<Float>, _ ps: [Double]) -> [Double] {
        precondition(!values.isEmpty, "percentiles: no values")
        let needed = Set(ps.flatMap { p -> [Int] in let r = ranks(p, count: values.count); return [r.lower, r.upper] }).sorted()
        var start = 0
        for rank in needed {
            select(values, rank: rank, from: start)
            start = rank + 1
        }
        return ps.map { p in
            let (lower, upper, fraction) = ranks(p, count: values.count)
            return interpolated(Double(values[lower]), Double(values[upper]), fraction)
        }
    }

    /// The ranks between which numpy's linear interpolation takes the `p`-th percentile of `count` values.
    @inline(__always)
    static func ranks(_ p: Double, count: Int) -> (lower: Int, upper: Int, fraction: Double) {
        let position = min(max(p, 0), 100) / 100 * Double(count - 1)
        let lower = Int(position.rounded(.down))
        return (lower, min(lower + 1, count - 1), position - Double(lower))
    }

    /// numpy's `_lerp`: a + (b - a)·t, switching form at t ≥ 0.5 for exactness at the ends.
    @inline(__always)
    static func interpolated(_ a: Double, _ b: Double, _ fraction: Double) -> Double {
        fraction >= 0.5 ? b - (b - a) * (1 - fraction) : a + (b - a) * fraction
    }

    /// The median of `values` (mean of the middle two for even counts, as `median(sorted:)`),
    /// which are reordered: the middle order statistics by selection, no sort. No NaNs.
    public static func median(selecting values: UnsafeMutableBufferPointer<Double>) -> Double {
        precondition(!values.isEmpty, "median: no values")
        let n = values.count
        select(values, rank: (n - 1) / 2, from: 0)
        guard n % 2 == 0 else { return values[n / 2] }
        select(values, rank: n / 2, from: n / 2)
        return 0.5 * (values[n / 2 - 1] + values[n / 2])
    }

    /// Reorders `v[start...]` so that `v[rank]` holds the value of that rank, with none larger
    /// before it and none smaller after it.
    static func select<T: BinaryFloatingPoint>(_ v: UnsafeMutableBufferPointer<T>, rank: Int, from start: Int) {
        var lo = start, hi = v.count - 1
        while hi > lo {
            let mid = lo + (hi - lo) / 2
            if v[mid] < v[lo] { v.swapAt(mid, lo) }
            if v[hi] < v[lo] { v.swapAt(hi, lo) }
            if v[hi] < v[mid] { v.swapAt(hi, mid) }
            let pivot = v[mid]
            var i = lo, j = hi
            while i <= j {
                while v[i] < pivot { i += 1 }
                while v[j] > pivot { j -= 1 }
                if i <= j { v.swapAt(i, j); i += 1; j -= 1 }
            }
            // v[lo...j] ≤ pivot ≤ v[i...hi], and anything between equals the pivot.
            if rank <= j { hi = j } else if rank >= i { lo = i } else { return }
        }
    }

    /// The median of already sorted values (mean of the middle two for even counts).
    public static func median(sorted: [Double]) -> Double {
        precondition(!sorted.isEmpty, "median: no finite values")
        let n = sorted.count
        return n % 2 == 1 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2])
    }

    /// Mean and population standard deviation (ddof 0), two-pass for accuracy.
    public static func meanAndStd(_ values: [Double]) -> (mean: Double, std: Double) {
        guard !values.isEmpty else { return (.nan, .nan) }
        var sum = 0.0
        for v in values { sum += v }
        let mean = sum / Double(values.count)
        var ss = 0.0
        for v in values { ss += (v - mean) * (v - mean) }
        return (mean, (ss / Double(values.count)).squareRoot())
    }

    /// The median of `values` in any order (`np.median`); NaN when empty.
    public static func median(_ values: [Double]) -> Double {
        guard !values.isEmpty else { return .nan }
        var work = values
        return work.withUnsafeMutableBufferPointer { median(selecting: $0) }
    }

    /// The median absolute deviation `median(|x - median(x)|)` of `values` in any order;
    /// NaN when empty.
    public static func medianAbsoluteDeviation(_ values: [Double]) -> Double {
        guard !values.isEmpty else { return .nan }
        let center = median(values)
        return median(values.map { abs($0 - center) })
    }

    /// Median absolute deviation scaled to a Gaussian sigma (astropy's `mad_std`:
    /// 1.4826 · median(|x - median(x)|)) of the finite values: a noise estimate
    /// insensitive to sources. NaN when none is finite.
    public static func madStd(_ values: UnsafeBufferPointer<Float>) -> Double {
        madToSigma * medianAbsoluteDeviation(finiteValues(values))
    }

    /// `madStd` of the finite values of an array.
    public static func madStd(_ values: [Float]) -> Double {
        values.withUnsafeBufferPointer { madStd($0) }
    }
}

/// The result of `sigmaClippedStatistics`.
public struct SigmaClippedStatistics: Equatable, Sendable {
    public var mean: Double
    public var median: Double
    public var std: Double
    /// How many finite values survived the clipping.
    public var count: Int
}

extension PixelStatistics {
    /// Iterative sigma clipping about the median, as astropy's
    /// `sigma_clipped_stats(data, sigma=3, maxiters=5)`: at each iteration keep the
    /// values within `[median - sigma·std, median + sigma·std]` of the current set,
    /// until nothing changes or `maxIterations` is reached; NaN and infinities are
    /// ignored. Returns the mean, median and std (ddof 0) of what remains.
    public static func sigmaClipped(
        _ values: UnsafeBufferPointer<Float>, sigma: Double = 3, maxIterations: Int = 5
    ) -> SigmaClippedStatistics {
        var kept = finiteValues(values)
        guard !kept.isEmpty else { return .init(mean: .nan, median: .nan, std: .nan, count: 0) }
        // Medians by selection, survivors compacted in place: no sort (the values' order
        // changes only the last bits of the sums).
        var iteration = 0
        while iteration < maxIterations {
            iteration += 1
            let center = kept.withUnsafeMutableBufferPointer { median(selecting: $0) }
            let std = meanAndStd(kept).std
            let low = center - std * sigma, high = center + std * sigma
            var survivors = 0
            for i in kept.indices where kept[i] >= low && kept[i] <= high {
                kept[survivors] = kept[i]
                survivors += 1
            }
            let changed = kept.count - survivors
            kept.removeLast(changed)
            if changed == 0 || kept.isEmpty { break }
        }
        guard !kept.isEmpty else { return .init(mean: .nan, median: .nan, std: .nan, count: 0) }
        let (mean, std) = meanAndStd(kept)
        return .init(mean: mean, median: kept.withUnsafeMutableBufferPointer { median(selecting: $0) }, std: std, count: kept.count)
    }
}
