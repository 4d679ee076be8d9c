import Foundation

/// How the display/input range `[vmin, vmax]` of an image is chosen, as in
/// `astropy.visualization` (`MinMaxInterval`, `ManualInterval`,
/// `PercentileInterval`, `AsymmetricPercentileInterval`, `ZScaleInterval`).
/// Only finite pixels count.
public enum Interval: Equatable, Sendable {
    case minMax
    case manual(min: Double, max: Double)
    /// The central `percent` of the pixels: `(100 - percent) / 2` cut on each side.
    case percentile(Double)
    case asymmetricPercentile(lower: Double, upper: Double)
    case zscale(ZScale)

    /// IRAF's zscale with astropy's `ZScaleInterval` defaults.
    public struct ZScale: Equatable, Sendable {
        public var samples = 1000
        public var contrast = 0.25
        public var maxReject = 0.5
        public var minPixels = 5
        public var rejectionSigma = 2.5
        public var maxIterations = 5
        public init(samples: Int = 1000, contrast: Double = 0.25, maxReject: Double = 0.5,
                    minPixels: Int = 5, rejectionSigma: Double = 2.5, maxIterations: Int = 5) {
            self.samples = samples; self.contrast = contrast; self.maxReject = maxReject
            self.minPixels = minPixels; self.rejectionSigma = rejectionSigma
            self.maxIterations = maxIterations
        }
    }

    /// The limits `(vmin, vmax)` of the finite values; `nil` when none is finite.
    public func limits(of values: UnsafeBufferPointer<Float>) -> (Double, Double)? {
        if case let .manual(lo, hi) = self { return (lo, hi) }
        var finite = PixelStatistics.finiteValues(values)
        guard !finite.isEmpty else { return nil }
        switch self {
        case .manual: fatalError("unreachable")
        case .minMax:
            return (finite.min()!, finite.max()!)
        case let .percentile(percent):
            finite.sort()
            let lower = (100 - percent) * 0.5
            return (PixelStatistics.percentile(sorted: finite, lower),
                    PixelStatistics.percentile(sorted: finite, 100 - lower))
        case let .asymmetricPercentile(lower, upper):
            finite.sort()
            return (PixelStatistics.percentile(sorted: finite, lower),
                    PixelStatistics.percentile(sorted: finite, upper))
        case let .zscale(parameters):
            return Self.zscaleLimits(finite, parameters)
        }
    }

    /// astropy's `ZScaleInterval.get_limits`, step for step: sample every
    /// `stride`-th finite value, sort, fit a line to value-vs-rank with iterative
    /// k-sigma rejection (rejected points dilated by 1 % of the sample), and set
    /// the limits from the median ± the slope / contrast over the sample.
    static func zscaleLimits(_ finite: [Double], _ p: ZScale) -> (Double, Double) {
        let stride = Swift.max(1, Int(Double(finite.count) / Double(p.samples)))
        var samples = [Double]()
        var i = 0
        while i < finite.count && samples.count < p.samples { samples.append(finite[i]); i += stride }
        samples.sort()
        let n = samples.count
        var vmin = samples[0], vmax = samples[n - 1]
        let minPixels = Swift.max(p.minPixels, Int(Double(n) * p.maxReject))
        var good = n, lastGood = n + 1
        var bad = [Bool](repeating: false, count: n)
        let grow = Swift.max(1, Int(Double(n) * 0.01))
        var slope = 0.0, intercept = 0.0
        var fitted = false
        for _ in 0..<p.maxIterations {
            if good >= lastGood || good < minPixels { break }
            // Least squares line through the good points (np.polyfit with 0/1 weights).
            var sw = 0.0, sx = 0.0, sy = 0.0
            for k in 0..<n where !bad[k] { sw += 1; sx += Double(k); sy += samples[k] }
            let mx = sx / sw, my = sy / sw
            var sxx = 0.0, sxy = 0.0
            for k in 0..<n where !bad[k] {
                let dx = Double(k) - mx
                sxx += dx * dx; sxy += dx * (samples[k] - my)
            }
            slope = sxx > 0 ? sxy / sxx : 0
            intercept = my - slope * mx
            fitted = true
            var residuals = [Double](repeating: 0, count: n)
            var goodResiduals = [Double]()
            for k in 0..<n {
                residuals[k] = samples[k] - (intercept + slope * Double(k))
                if !bad[k] { goodResiduals.append(residuals[k]) }
            }
            let threshold = p.rejectionSigma * PixelStatistics.meanAndStd(goodResiduals).std
            for k in 0..<n where residuals[k] < -threshold || residuals[k] > threshold { bad[k] = true }
            // np.convolve(bad, ones(grow), mode="same"): out[k] = OR of bad[k + (grow-1)/2 - j], j < grow.
            let shift = (grow - 1) / 2
            var grown = [Bool](repeating: false, count: n)
            for k in 0..<n {
                let hi = Swift.min(n - 1, k + shift), lo = Swift.max(0, k + shift - (grow - 1))
                if lo <= hi { for j in lo...hi where bad[j] { grown[k] = true; break } }
            }
            bad = grown
            lastGood = good
            good = bad.reduce(0) { $0 + ($1 ? 0 : 1) }
        }
        if good >= minPixels && fitted {
            if p.contrast > 0 { slope /= p.contrast }
            let center = (n - 1) / 2
            let med = PixelStatistics.median(sorted: samples)
            vmin = Swift.max(vmin, med - Double(center - 1) * slope)
            vmax = Swift.min(vmax, med + Double(n - center) * slope)
        }
        return (vmin, vmax)
    }
}
