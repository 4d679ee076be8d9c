import Foundation

/// A monotonic stretch of values normalised to `[0, 1]`, as in
/// `astropy.visualization` (`LinearStretch`, `SqrtStretch`, `PowerStretch`,
/// `LogStretch`, `AsinhStretch`, `SinhStretch`, `HistEqStretch`). Inputs are
/// clipped to `[0, 1]` first, as astropy does with `clip=True`.
///
/// For network inputs the unnormalised `AsinhScaling` (Lupton et al. 2004) is
/// usually the better choice: it keeps the noise linear and needs no interval.
public enum Stretch: Equatable, Sendable {
    case linear(slope: Double = 1, intercept: Double = 0)
    case sqrt
    case power(Double)
    /// `log(a·x + 1) / log(a + 1)`; astropy's default `a` is 1000.
    case log(a: Double = 1000)
    /// `asinh(x / a) / asinh(1 / a)`; astropy's default `a` is 0.1.
    case asinh(a: Double = 0.1)
    /// `sinh(x / a) / sinh(1 / a)`; astropy's default `a` is 1/3.
    case sinh(a: Double = 1.0 / 3.0)
    /// Histogram equalisation over the image's own finite values.
    case histogramEqualization

    /// Applies the stretch to one normalised value.
    @inlinable
    public func callAsFunction(_ x: Double) -> Double {
        let v = Swift.min(Swift.max(x, 0), 1)
        switch self {
        case let .linear(slope, intercept): return Swift.min(Swift.max(slope * v + intercept, 0), 1)
        case .sqrt: return v.squareRoot()
        case let .power(a): return Foundation.pow(v, a)
        case let .log(a): return Foundation.log(a * v + 1) / Foundation.log(a + 1)
        case let .asinh(a): return Foundation.asinh(v / a) / Foundation.asinh(1 / a)
        case let .sinh(a): return Foundation.sinh(v / a) / Foundation.sinh(1 / a)
        case .histogramEqualization:
            preconditionFailure("Stretch.histogramEqualization needs the image: use ImageNormalization")
        }
    }
}

/// Interval then stretch, as astropy's `ImageNormalize(data, interval, stretch,
/// clip=True)`: `stretch(clip((x - vmin) / (vmax - vmin), 0, 1))`. NaN stays NaN.
public struct ImageNormalization: Equatable, Sendable {
    public var interval: Interval
    public var stretch: Stretch

    public init(interval: Interval = .minMax, stretch: Stretch = .linear()) {
        self.interval = interval
        self.stretch = stretch
    }

    /// A display normalisation (contact sheets, previews): the `lower`...`upper` percentile
    /// interval and an asinh stretch softened at `softening` times the image's robust noise
    /// (`mad_std`), so the noise stays linear and bright cores are compressed whatever the
    /// image's units.
    public static func display(for values: [Float], softening: Double = 2,
                               lower: Double = 5, upper: Double = 99.8) -> ImageNormalization {
        let interval = Interval.asymmetricPercentile(lower: lower, upper: upper)
        guard let (vmin, vmax) = values.withUnsafeBufferPointer({ interval.limits(of: $0) }), vmax > vmin else {
            return ImageNormalization(interval: interval, stretch: .linear())
        }
        let noise = PixelStatistics.madStd(values)
        let a = softening * noise / (vmax - vmin)
        return ImageNormalization(interval: interval, stretch: a.isFinite && a > 0 ? .asinh(a: a) : .linear())
    }

    /// Normalises `values` in place. An image with no finite pixel is left as it is;
    /// a constant image (vmax == vmin) maps to 0.
    public func apply(to values: UnsafeMutableBufferPointer<Float>) {
        guard let (vmin, vmax) = interval.limits(of: UnsafeBufferPointer(values)) else { return }
        let scale = vmax > vmin ? 1 / (vmax - vmin) : 0
        if case .histogramEqualization = stretch {
            // astropy's HistEqStretch: np.interp(x, sorted finite data (normalised), linspace(0, 1, n)).
            var sorted = PixelStatistics.finiteValues(UnsafeBufferPointer(values))
                .map { Swift.min(Swift.max(($0 - vmin) * scale, 0), 1) }
            sorted.sort()
            for i in values.indices where values[i].isFinite {
                let x = Swift.min(Swift.max((Double(values[i]) - vmin) * scale, 0), 1)
                values[i] = Float(Self.interpolateRank(x, sorted))
            }
            return
        }
        for i in values.indices where !values[i].isNaN {
            values[i] = Float(stretch((Double(values[i]) - vmin) * scale))
        }
    }

    /// The normalised values as display bytes (`round(255 · v)`, non-finite values black),
    /// one per value, in the order given.
    public func bytes(_ values: [Float]) -> [UInt8] {
        var normalised = values
        normalised.withUnsafeMutableBufferPointer { apply(to: $0) }
        return normalised.map { $0.isFinite ? UInt8(Swift.min(255, Swift.max(0, ($0 * 255).rounded()))) : 0 }
    }

    /// `np.interp(x, xp, linspace(0, 1, n))` for sorted `xp`: where several equal
    /// `xp` bracket x, numpy takes the last one at or below x.
    static func interpolateRank(_ x: Double, _ xp: [Double]) -> Double {
        let n = xp.count
        if n == 1 { return x < xp[0] ? 0 : 1 }
        if x < xp[0] { return 0 }
        if x >= xp[n - 1] { return 1 }
        // Largest j with xp[j] <= x.
        var lo = 0, hi = n - 1
        while hi - lo > 1 {
            let mid = (lo + hi) / 2
            if xp[mid] <= x { lo = mid } else { hi = mid }
        }
        let y0 = Double(lo) / Double(n - 1), y1 = Double(lo + 1) / Double(n - 1)
        let dx = xp[lo + 1] - xp[lo]
        return dx > 0 ? y0 + (y1 - y0) * (x - xp[lo]) / dx : y0
    }
}

/// Lupton et al. (2004) asinh scaling for network inputs:
/// `asinh(x / softening) · scale`. With `softening` of about the sky noise, faint
/// pixels stay linear (noise-like) and bright cores are compressed logarithmically,
/// with no clipping and no dependence on the image's own extremes.
public struct AsinhScaling: Equatable, Sendable {
    public var softening: Double
    public var scale: Double
    public init(softening: Double, scale: Double = 1) {
        precondition(softening > 0, "AsinhScaling: softening must be positive, got \(softening)")
        self.softening = softening
        self.scale = scale
    }

    public func apply(to values: UnsafeMutableBufferPointer<Float>) {
        let inverse = Float(1 / softening), s = Float(scale)
        for i in values.indices { values[i] = Foundation.asinh(values[i] * inverse) * s }
    }

    /// The value `y` came from: `softening · sinh(y / scale)`.
    @inlinable public func inverse(_ y: Float) -> Float {
        Float(softening) * Foundation.sinh(y / Float(scale))
    }
}
