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

    /// Values in [0, 1], interleaved RGB, `red.pixels.count × 3`.
    public func composite(red: PlanarImage, green: PlanarImage, blue: PlanarImage) -> [Double] {
        precondition(red.shape == green.shape && green.shape == blue.shape,
                     "LuptonRGB: band shapes differ: \(red.shape), \(green.shape), \(blue.shape)")
        let epsilon = 1.0 / Double(1 << 23)
        let q = abs(self.q) < epsilon ? 0.1 : Swift.min(self.q, 1e10)
        let frac = 0.1
        let slope = frac / Foundation.asinh(frac * q), soften = q / stretch
        let n = red.pixels.count
        var out = [Double](repeating: 0, count: 3 * n)
        for i in 0..<n {
            var band = [Double(red.pixels[i]) - minimum[0], Double(green.pixels[i]) - minimum[1],
                        Double(blue.pixels[i]) - minimum[2]]
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
    public func composite8(red: PlanarImage, green: PlanarImage, blue: PlanarImage) -> [UInt8] {
        composite(red: red, green: green, blue: blue).map { UInt8(Swift.min(255, Swift.max(0, $0 * 255))) }
    }
}
