// Display stretches: float images to 8-bit gray, and RGB composites of three bands.
import Foundation

/// How float pixel values map to display brightness.
public enum Stretch: Sendable, Equatable {
    /// Linear between two percentiles of the pixel values (e.g. 1 and 99.5).
    case linear(lowPercentile: Double, highPercentile: Double)
    /// asinh((x - low) / softening) scaled so the high percentile is white: linear for
    /// faint pixels, logarithmic for bright ones. `softening` is in units of the image's
    /// robust noise (median absolute deviation x 1.4826).
    case asinh(softening: Double, lowPercentile: Double, highPercentile: Double)

    /// A default that shows both faint outskirts and bright cores of sky images.
    public static let astronomical = Stretch.asinh(softening: 2, lowPercentile: 5, highPercentile: 99.8)

    /// Display bytes of a float image (any layout; one byte per value).
    public func gray(_ values: [Float]) -> [UInt8] {
        guard !values.isEmpty else { return [] }
        let sorted = values.filter { $0.isFinite }.sorted()
        guard !sorted.isEmpty else { return [UInt8](repeating: 0, count: values.count) }
        func percentile(_ p: Double) -> Float {
            sorted[min(sorted.count - 1, max(0, Int((p / 100 * Double(sorted.count - 1)).rounded())))]
        }
        switch self {
        case let .linear(lowP, highP):
            let low = percentile(lowP), high = percentile(highP)
            let span = max(high - low, .leastNormalMagnitude)
            return values.map { Stretch.byte(Double(($0 - low) / span)) }
        case let .asinh(softening, lowP, highP):
            let low = Double(percentile(lowP)), high = Double(percentile(highP))
            let median = Double(sorted[sorted.count / 2])
            let deviations = sorted.map { abs(Double($0) - median) }.sorted()
            let noise = max(deviations[deviations.count / 2] * 1.4826, 1e-12)
            let soft = max(softening * noise, 1e-12)
            let top = Foundation.asinh(max(high - low, 1e-12) / soft)
            return values.map { Stretch.byte(Foundation.asinh((Double($0) - low) / soft) / top) }
        }
    }

    @inline(__always)
    static func byte(_ unit: Double) -> UInt8 {
        guard unit.isFinite else { return 0 }
        return UInt8(max(0, min(255, (unit * 255).rounded())))
    }
}

/// Colour composites of three bands.
public enum RGBComposite {
    /// Lupton et al. (2004) asinh composite, "Preparing red-green-blue images from CCD data"
    /// (PASP 116, 133): with I = (r + g + b) / 3, each channel is c · asinh(Q I / s) / (Q I),
    /// so colours are preserved where a per-band stretch would bleach bright cores to white.
    /// Inputs are sky-subtracted bands of equal size; `softeningNoise` sets s as a multiple
    /// of the mean robust noise of the bands, and `Q` the asinh strength.
    /// - Returns: interleaved RGB bytes.
    public static func lupton(red: [Float], green: [Float], blue: [Float], q: Double = 8,
                              softeningNoise: Double = 12) -> [UInt8] {
        precondition(red.count == green.count && green.count == blue.count, "RGBComposite.lupton: bands differ in size")
        func noise(_ band: [Float]) -> Double {
            let sorted = band.sorted()
            let median = Double(sorted[sorted.count / 2])
            let deviations = sorted.map { abs(Double($0) - median) }.sorted()
            return deviations[deviations.count / 2] * 1.4826
        }
        let scale = max(softeningNoise * (noise(red) + noise(green) + noise(blue)) / 3, 1e-12)
        var out = [UInt8](repeating: 0, count: red.count * 3)
        for i in 0..<red.count {
            let r = max(Double(red[i]), 0) / scale, g = max(Double(green[i]), 0) / scale, b = max(Double(blue[i]), 0) / scale
            let intensity = (r + g + b) / 3
            let factor = intensity > 0 ? Foundation.asinh(q * intensity) / (q * intensity) : 1
            var channels = [r * factor, g * factor, b * factor]
            let peak = channels.max()!
            if peak > 1 { channels = channels.map { $0 / peak } }  // clip to the colour, not to white
            out[3 * i] = Stretch.byte(channels[0]); out[3 * i + 1] = Stretch.byte(channels[1]); out[3 * i + 2] = Stretch.byte(channels[2])
        }
        return out
    }
}
