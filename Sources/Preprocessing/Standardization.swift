import Foundation

/// Per-image normalisations for network inputs. Each works in place on the
/// values of one image (or one band) and leaves NaN where it was.
public enum PixelScaling: Equatable, Sendable {
    /// `(x - mean) / std` over the finite pixels (a constant image becomes 0).
    case standardize
    /// `x / sigma` with a known noise level (e.g. the header's `SKYSIG`).
    case noise(sigma: Double)
    /// `x / sigma` with sigma estimated from the image itself (astropy's `mad_std`).
    case measuredNoise
    /// Subtract the sigma-clipped median (3 sigma, 5 iterations): a sky background.
    case subtractBackground

    public func apply(to values: UnsafeMutableBufferPointer<Float>) {
        let readOnly = UnsafeBufferPointer(values)
        let (offset, scale): (Double, Double)
        switch self {
        case .standardize:
            let (mean, std) = PixelStatistics.meanAndStd(PixelStatistics.finiteValues(readOnly))
            (offset, scale) = (mean, std > 0 ? 1 / std : 0)
        case let .noise(sigma):
            precondition(sigma > 0, "PixelScaling.noise: sigma must be positive, got \(sigma)")
            (offset, scale) = (0, 1 / sigma)
        case .measuredNoise:
            let sigma = PixelStatistics.madStd(readOnly)
            (offset, scale) = (0, sigma > 0 ? 1 / sigma : 1)
        case .subtractBackground:
            let median = PixelStatistics.sigmaClipped(readOnly).median
            (offset, scale) = (median.isFinite ? median : 0, 1)
        }
        let o = Float(offset), s = Float(scale)
        for i in values.indices { values[i] = (values[i] - o) * s }
    }
}
