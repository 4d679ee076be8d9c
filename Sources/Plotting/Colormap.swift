// Colour maps for scalar images (attribution maps, feature maps).
import Foundation

/// Maps a value in [0, 1] (sequential) or [−1, 1] (diverging) to a colour by linear
/// interpolation between anchor colours.
public enum Colormap: Sendable {
    /// Black → purple → orange → pale yellow (close to matplotlib's `inferno`).
    case inferno
    /// Blue (−1) → white (0) → red (+1) (close to matplotlib's `RdBu_r`).
    case diverging

    var anchors: [(Double, Double, Double)] {
        switch self {
        case .inferno:
            return [(0, 0, 4), (40, 11, 84), (101, 21, 110), (159, 42, 99), (212, 72, 66), (245, 125, 21),
                    (250, 193, 39), (252, 255, 164)]
        case .diverging:
            return [(5, 48, 97), (67, 147, 195), (247, 247, 247), (214, 96, 77), (103, 0, 31)]
        }
    }

    /// The colour of `value`: [0, 1] for `inferno`, [−1, 1] for `diverging` (clamped).
    public func color(_ value: Double) -> Color {
        let t = self == .diverging ? (value + 1) / 2 : value
        let anchors = self.anchors
        let position = Swift.max(0, Swift.min(1, t.isFinite ? t : 0)) * Double(anchors.count - 1)
        let i = Swift.min(Int(position), anchors.count - 2)
        let f = position - Double(i)
        let (a, b) = (anchors[i], anchors[i + 1])
        func mix(_ x: Double, _ y: Double) -> UInt8 { UInt8((x + (y - x) * f).rounded()) }
        return Color(red: mix(a.0, b.0), green: mix(a.1, b.1), blue: mix(a.2, b.2))
    }
}
