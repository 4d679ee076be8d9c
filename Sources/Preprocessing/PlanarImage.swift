/// An image of `channels` planes of `height × width` Float32 pixels, stored
/// plane after plane, row-major (C×H×W, the layout of one NCHW sample).
///
/// A value type: preprocessing copies on write and never aliases a caller's data.
/// Pixels that are blank in the FITS file are NaN until a `BlankHandling` fills them.
public struct PlanarImage: Equatable, Sendable {
    public var channels: Int
    public var height: Int
    public var width: Int
    public var pixels: [Float]

    public init(channels: Int = 1, height: Int, width: Int, pixels: [Float]) {
        precondition(channels > 0 && height > 0 && width > 0,
                     "PlanarImage: dimensions must be positive, got \(channels)×\(height)×\(width)")
        precondition(pixels.count == channels * height * width,
                     "PlanarImage: \(pixels.count) pixels for shape \(channels)×\(height)×\(width)")
        self.channels = channels
        self.height = height
        self.width = width
        self.pixels = pixels
    }

    public init(channels: Int = 1, height: Int, width: Int, repeating value: Float = 0) {
        self.init(channels: channels, height: height, width: width,
                  pixels: [Float](repeating: value, count: channels * height * width))
    }

    /// `[channels, height, width]`.
    public var shape: [Int] { [channels, height, width] }

    /// Whether pixel (x, y) of a `height` × `width` image lies within `border` pixels of its edge.
    @inline(__always)
    public static func isInFrame(x: Int, y: Int, height: Int, width: Int, border: Int) -> Bool {
        x < border || x >= width - border || y < border || y >= height - border
    }
    public var planeSize: Int { height * width }

    @inlinable
    public subscript(channel: Int, y: Int, x: Int) -> Float {
        get { pixels[(channel * height + y) * width + x] }
        set { pixels[(channel * height + y) * width + x] = newValue }
    }

    /// One channel as a single-channel image.
    public func channel(_ c: Int) -> PlanarImage {
        precondition(c >= 0 && c < channels, "PlanarImage.channel: \(c) out of 0..<\(channels)")
        return PlanarImage(height: height, width: width,
                           pixels: Array(pixels[c * planeSize..<(c + 1) * planeSize]))
    }

    /// Channels stacked in order; all must share height and width.
    public static func stacking(_ images: [PlanarImage]) -> PlanarImage {
        precondition(!images.isEmpty, "PlanarImage.stacking: no images")
        let h = images[0].height, w = images[0].width
        for image in images {
            precondition(image.height == h && image.width == w,
                         "PlanarImage.stacking: \(image.height)×\(image.width) differs from \(h)×\(w)")
        }
        return PlanarImage(channels: images.reduce(0) { $0 + $1.channels }, height: h, width: w,
                           pixels: images.flatMap(\.pixels))
    }

    /// Applies `body` to the pixels of each channel in turn.
    public mutating func forEachPlane(_ body: (UnsafeMutableBufferPointer<Float>) -> Void) {
        let size = planeSize
        pixels.withUnsafeMutableBufferPointer { all in
            for c in 0..<channels {
                body(UnsafeMutableBufferPointer(rebasing: all[c * size..<(c + 1) * size]))
            }
        }
    }
}
