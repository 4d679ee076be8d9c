import Foundation

/// Colour composites of three bands by Lupton et al. (2004), "Preparing
/// Red-Green-Blue Images from CCD Data" (PASP 116, 133), as astropy's
/// `make_lupton_rgb(r, g, b, minimum, stretch, Q)`.
///
/// The asinh is applied to the mean intensity I = (r + g + b) / 3 and every band
/// is scaled by the same factor f(I) / I, so colours stay true from the faint
/// wings to saturated cores (a per-band stretch would turn bright cores white).
public struct LuptonRGB: Equatable, Sendable {
    /// Linear stretch: the intensity range mapped near-linearly.
    public var stretch: Double
    /// Asinh softening: larger Q compresses bright cores more.
    public var q: Double
    /// Per band (r, g, b): the value mapped to black.
    public var minimum: [Double]

    public init(stretch: Double = 5, q: Double = 8, minimum: [Double] = [0, 0, 0]) {
        precondition(stretch > 0 && q >= 0, "LuptonRGB: stretch must be positive and Q non-negative")
        precondition(minimum.count == 3, "LuptonRGB: give three minima (r, g, b)")
        self.stretch = stretch
        self.q = q
        self.minimum = minimum
    }

    /// A composite for display whose linear stretch is `noiseMultiple` times the mean
    /// robust noise (`mad_std`) of the bands, so that faint wings show the same whatever the
    /// image's units or depth.
    public static func noiseScaled(red: [Float], green: [Float], blue: [Float],
                                   q: Double = 8, noiseMultiple: Double = 12) -> LuptonRGB {
        let noise = (PixelStatistics.madStd(red) + PixelStatistics.madStd(green) + PixelStatistics.madStd(blue)) / 3
        let stretch = noiseMultiple * noise
        return LuptonRGB(stretch: stretch.isFinite && stretch > 0 ? stretch : 1, q: q)
    }

    /// Values in [0, 1], interleaved RGB, `red.count × 3`, from three bands of equal size.
    public func composite(red: [Float], green: [Float], blue: [Float]) -> [Double] {
        precondition(red.count == green.count && green.count == blue.count,
                     "LuptonRGB: band sizes differ: \(red.count), \(green.count), \(blue.count)")
        let epsilon = 1.0 / Double(1 << 23)
        let q = abs(self.q) < epsilon ? 0.1 : Swift.min(self.q, 1e10)
        let frac = 0.1
        let slope = frac / Foundation.asinh(frac * q), soften = q / stretch
        let n = red.count
        var out = [Double](repeating: 0, count: 3 * n)
        for i in 0..<n {
            var band = [Double(red[i]) - minimum[0], Double(green[i]) - minimum[1], Double(blue[i]) - minimum[2]]
            let intensity = (band[0] + band[1] + band[2]) / 3
            let factor = intensity <= 0 ? 0 : Foundation.asinh(intensity * soften) * slope / intensity
            var peak = 0.0
            for c in 0..<3 {
                band[c] = Swift.max(0, band[c] * factor)
                if band[c].isNaN { band[c] = 0 }
                peak = Swift.max(peak, band[c])
            }
            for c in 0..<3 { out[3 * i + c] = peak > 1 ? band[c] / peak : band[c] }
        }
        return out
    }

    /// 8-bit interleaved RGB (truncated, as astropy's uint8 output), ready for a PNG.
    public func composite8(red: [Float], green: [Float], blue: [Float]) -> [UInt8] {
        composite(red: red, green: green, blue: blue).map { UInt8(Swift.min(255, Swift.max(0, $0 * 255))) }
    }
}
