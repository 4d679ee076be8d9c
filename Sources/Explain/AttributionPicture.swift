// Pictures of attribution maps: the input stretched, the map as colour or contours.
import AstroBase
import Foundation
import Plotting

/// How a map is drawn over its input.
public enum OverlayStyle: String, CaseIterable, Sendable, Codable {
    /// The input in gray with the positive attribution blended in as `inferno` colour.
    case colour
    /// The input in gray with contours of the positive attribution at 50, 70 and 90 % of its maximum.
    case contours
    /// The map alone in the diverging map (blue negative, red positive).
    case map
}

/// Draws maps and inputs as 8-bit RGB tiles for contact sheets (rows top first, FITS row 0
/// last, as `ContactSheet` flips them).
public enum AttributionPicture {
    /// The input `[C, H, W]` as a gray image: the first band, or the mean of the bands,
    /// with AstroBase's display stretch (asinh between robust limits).
    public static func gray(_ image: [Float], channels: Int, height: Int, width: Int) -> [Float] {
        let plane = height * width
        var mean = [Float](repeating: 0, count: plane)
        for c in 0..<channels { for p in 0..<plane { mean[p] += image[c * plane + p] / Float(channels) } }
        var values = mean
        values.withUnsafeMutableBufferPointer { ImageNormalization.display(for: mean).apply(to: $0) }
        return values.map { $0.isFinite ? Swift.max(0, Swift.min(1, $0)) : 0 }
    }

    /// The map summed over its channels (captum's `visualize_image_attr` sums them too).
    public static func summed(_ map: [Float], channels: Int, plane: Int) -> [Float] {
        var out = [Float](repeating: 0, count: plane)
        for c in 0..<channels { for p in 0..<plane { out[p] += map[c * plane + p] } }
        return out
    }

    /// The scale that maps attributions to [−1, 1]: the 99.5th percentile of |map| (1 for an empty map).
    public static func scale(_ map: [Float]) -> Float {
        let magnitudes = map.map { Double(abs($0)) }.filter(\.isFinite).sorted()
        guard !magnitudes.isEmpty else { return 1 }
        let s = Float(PixelStatistics.percentile(sorted: magnitudes, 99.5))
        return s > 0 ? s : 1
    }

    /// RGB bytes of `map` (one plane, `[H, W]`) drawn over the gray `background` in `style`.
    public static func overlay(background: [Float], map: [Float], height: Int, width: Int, style: OverlayStyle) -> [UInt8] {
        let s = scale(map)
        let normalised = map.map { Swift.max(-1, Swift.min(1, $0 / s)) }
        var bytes = [UInt8](repeating: 0, count: height * width * 3)
        func put(_ p: Int, _ color: Color) {
            bytes[3 * p] = color.red; bytes[3 * p + 1] = color.green; bytes[3 * p + 2] = color.blue
        }
        switch style {
        case .map:
            for p in 0..<(height * width) { put(p, Colormap.diverging.color(Double(normalised[p]))) }
        case .colour:
            for p in 0..<(height * width) {
                let g = Double(background[p]) * 255
                let a = Double(Swift.max(0, normalised[p]))
                let heat = Colormap.inferno.color(a)
                func blend(_ c: UInt8) -> UInt8 { UInt8(Swift.min(255, (1 - 0.7 * a) * g * 0.8 + 0.7 * a * Double(c) + 0.5)) }
                put(p, Color(red: blend(heat.red), green: blend(heat.green), blue: blend(heat.blue)))
            }
        case .contours:
            let peak = Swift.max(normalised.max() ?? 0, 1e-6)
            let levels: [Float] = [0.5, 0.7, 0.9].map { $0 * peak }
            let colors = [Colormap.inferno.color(0.55), Colormap.inferno.color(0.75), Colormap.inferno.color(0.95)]
            func band(_ v: Float) -> Int { levels.lastIndex { v >= $0 }.map { $0 + 1 } ?? 0 }
            for y in 0..<height {
                for x in 0..<width {
                    let p = y * width + x
                    let here = band(normalised[p])
                    let neighbours = [(y, x + 1), (y + 1, x), (y, x - 1), (y - 1, x)]
                        .filter { $0.0 >= 0 && $0.0 < height && $0.1 >= 0 && $0.1 < width }
                    // A pixel on the high side of a level boundary is drawn in that level's colour.
                    if here > 0, neighbours.contains(where: { band(normalised[$0.0 * width + $0.1]) < here }) {
                        put(p, colors[here - 1])
                    } else {
                        put(p, Color(gray: UInt8(Double(background[p]) * 255)))
                    }
                }
            }
        }
        return bytes
    }
}
