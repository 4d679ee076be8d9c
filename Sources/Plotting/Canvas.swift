// A small RGB raster canvas: rectangles, lines, text, image blits.
import Foundation

/// An 8-bit RGB colour.
public struct Color: Sendable, Equatable {
    public var red: UInt8, green: UInt8, blue: UInt8
    public init(red: UInt8, green: UInt8, blue: UInt8) { self.red = red; self.green = green; self.blue = blue }
    public init(gray: UInt8) { self.init(red: gray, green: gray, blue: gray) }
    public static let black = Color(gray: 0)
    public static let white = Color(gray: 255)
    public static let darkGray = Color(gray: 40)
    public static let lightGray = Color(gray: 200)
    public static let red = Color(red: 220, green: 50, blue: 47)
    public static let green = Color(red: 60, green: 170, blue: 60)
    public static let blue = Color(red: 38, green: 110, blue: 210)
    public static let yellow = Color(red: 240, green: 200, blue: 40)
}

/// An RGB raster, origin at the top-left, x to the right, y down.
public struct Canvas: Sendable {
    public let width: Int
    public let height: Int
    /// Row-major RGB bytes.
    public private(set) var pixels: [UInt8]

    public init(width: Int, height: Int, background: Color = .white) {
        precondition(width > 0 && height > 0, "Canvas: size must be positive, got \(width)x\(height)")
        self.width = width; self.height = height
        pixels = [UInt8](repeating: 0, count: width * height * 3)
        fillRect(x: 0, y: 0, width: width, height: height, color: background)
    }

    /// Sets one pixel; points outside the canvas are ignored.
    @inline(__always)
    public mutating func set(x: Int, y: Int, color: Color) {
        guard x >= 0, y >= 0, x < width, y < height else { return }
        let p = (y * width + x) * 3
        pixels[p] = color.red; pixels[p + 1] = color.green; pixels[p + 2] = color.blue
    }

    /// The colour at a pixel inside the canvas.
    public func color(x: Int, y: Int) -> Color {
        let p = (y * width + x) * 3
        return Color(red: pixels[p], green: pixels[p + 1], blue: pixels[p + 2])
    }

    /// Fills a rectangle, clipped to the canvas.
    public mutating func fillRect(x: Int, y: Int, width w: Int, height h: Int, color: Color) {
        for yy in max(0, y)..<max(max(0, y), min(height, y + h)) {
            for xx in max(0, x)..<max(max(0, x), min(width, x + w)) { set(x: xx, y: yy, color: color) }
        }
    }

    /// Outlines a rectangle with 1-pixel lines.
    public mutating func strokeRect(x: Int, y: Int, width w: Int, height h: Int, color: Color) {
        drawLine(x0: x, y0: y, x1: x + w - 1, y1: y, color: color)
        drawLine(x0: x, y0: y + h - 1, x1: x + w - 1, y1: y + h - 1, color: color)
        drawLine(x0: x, y0: y, x1: x, y1: y + h - 1, color: color)
        drawLine(x0: x + w - 1, y0: y, x1: x + w - 1, y1: y + h - 1, color: color)
    }

    /// A 1-pixel line (Bresenham).
    public mutating func drawLine(x0: Int, y0: Int, x1: Int, y1: Int, color: Color) {
        var x = x0, y = y0
        let dx = abs(x1 - x0), dy = -abs(y1 - y0)
        let sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1
        var error = dx + dy
        while true {
            set(x: x, y: y, color: color)
            if x == x1 && y == y1 { break }
            let e2 = 2 * error
            if e2 >= dy { error += dy; x += sx }
            if e2 <= dx { error += dx; y += sy }
        }
    }

    /// Draws text with the 5 x 7 `BitmapFont`, top-left corner at (x, y), each font
    /// pixel `scale` x `scale` canvas pixels.
    public mutating func drawText(_ text: String, x: Int, y: Int, color: Color = .black, scale: Int = 1) {
        var penX = x
        for character in text {
            let rows = BitmapFont.glyph(for: character)
            for (row, bits) in rows.enumerated() {
                for column in 0..<BitmapFont.glyphWidth where bits & (1 << (BitmapFont.glyphWidth - 1 - column)) != 0 {
                    fillRect(x: penX + column * scale, y: y + row * scale, width: scale, height: scale, color: color)
                }
            }
            penX += BitmapFont.advance * scale
        }
    }

    /// Copies an 8-bit image (gray: 1 byte per pixel, or RGB: 3) with its top-left corner
    /// at (x, y), each source pixel enlarged to `scale` x `scale` (nearest neighbour).
    /// `rows` are listed top first; FITS images (row 1 at the bottom) should be flipped
    /// with `flipVertically: true` so north stays up.
    public mutating func blit(_ image: [UInt8], width w: Int, height h: Int, channels: Int,
                              x: Int, y: Int, scale: Int = 1, flipVertically: Bool = false) {
        precondition(channels == 1 || channels == 3, "Canvas.blit: channels must be 1 or 3, got \(channels)")
        precondition(image.count == w * h * channels, "Canvas.blit: \(image.count) bytes for \(w)x\(h)x\(channels)")
        for row in 0..<h {
            let sourceRow = flipVertically ? h - 1 - row : row
            for column in 0..<w {
                let p = (sourceRow * w + column) * channels
                let color = channels == 1 ? Color(gray: image[p])
                                          : Color(red: image[p], green: image[p + 1], blue: image[p + 2])
                fillRect(x: x + column * scale, y: y + row * scale, width: scale, height: scale, color: color)
            }
        }
    }

    /// Writes the canvas as an RGB PNG (atomically).
    public func write(to url: URL) throws {
        try PNGWriter.write(pixels, width: width, height: height, format: .rgb, to: url)
    }
}
