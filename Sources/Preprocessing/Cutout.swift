import Foundation

/// What a cutout does where it reaches past the image edge.
public enum CutoutEdges: String, Equatable, Sendable, CaseIterable {
    /// Keep the full size: outside pixels are NaN, and `Cutout.mask` marks them.
    case pad
    /// Refuse the cutout (`cutout(...)` returns nil), as astropy's `mode="strict"`.
    case skip
}

/// A rectangular piece of a larger image.
public struct Cutout: Equatable, Sendable {
    public var image: PlanarImage
    /// 0-based pixel position of the cutout's pixel (0, 0) in the original image;
    /// negative where the cutout starts past the edge. A WCS stays correct when
    /// `CRPIX1 -= originX` and `CRPIX2 -= originY` (as astropy's `Cutout2D` does).
    public var originX: Int
    public var originY: Int
    /// 1 where the pixel lies outside the original image (only with `.pad`).
    public var mask: PlanarImage?
}

extension PlanarImage {
    /// A `height × width` cutout centred on the 0-based pixel position `(x, y)`,
    /// with astropy `Cutout2D`'s placement: the first row/column is
    /// `ceil(position - size / 2)`. Returns nil when the cutout does not overlap
    /// the image at all, or reaches past the edge with `.skip`.
    public func cutout(centerX x: Double, centerY y: Double, height h: Int, width w: Int,
                       edges: CutoutEdges = .pad) -> Cutout? {
        precondition(h > 0 && w > 0, "cutout: size \(h)×\(w) must be positive")
        guard x.isFinite, y.isFinite else { return nil }
        let x0 = Int(Foundation.ceil(x - Double(w) / 2)), y0 = Int(Foundation.ceil(y - Double(h) / 2))
        guard x0 + w > 0, y0 + h > 0, x0 < width, y0 < height else { return nil }
        let inside = x0 >= 0 && y0 >= 0 && x0 + w <= width && y0 + h <= height
        if !inside && edges == .skip { return nil }
        let piece = cropped(y: y0, x: x0, height: h, width: w, fill: .nan)
        var mask: PlanarImage?
        if !inside {
            var m = PlanarImage(height: h, width: w)
            for yy in 0..<h {
                for xx in 0..<w where !(0..<height).contains(y0 + yy) || !(0..<width).contains(x0 + xx) {
                    m[0, yy, xx] = 1
                }
            }
            mask = m
        }
        return Cutout(image: piece, originX: x0, originY: y0, mask: mask)
    }

    /// A cutout centred on a sky position through `wcs`.
    public func cutout(ra: Double, dec: Double, wcs: WorldCoordinates, height h: Int, width w: Int,
                       edges: CutoutEdges = .pad) throws -> Cutout? {
        let (x, y) = try wcs.pixel(ra: ra, dec: dec)
        return cutout(centerX: x, centerY: y, height: h, width: w, edges: edges)
    }
}
