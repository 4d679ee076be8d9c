// Contact sheets: a grid of images with a label under each.
import Foundation

/// A grid of small images, each with a text label underneath, drawn on a `Canvas`.
///
/// ```swift
/// var sheet = ContactSheet(columns: 6, cellSize: 128, title: "MORPHOLOGY")
/// sheet.add(gray: ImageNormalization.display(for: pixels).bytes(pixels), width: 64, height: 64, label: "spiral")
/// try sheet.write(to: URL(fileURLWithPath: "sheet.png"))
/// ```
public struct ContactSheet: Sendable {
    /// One image of the sheet: 8-bit gray or RGB bytes, top row first.
    public struct Tile: Sendable {
        public var bytes: [UInt8]
        public var width: Int
        public var height: Int
        public var channels: Int
        public var label: String
    }

    public var columns: Int
    /// Side of each image's square cell in pixels (images are scaled by an integer factor to fit).
    public var cellSize: Int
    public var title: String
    public var padding = 6
    public var labelScale = 1
    public private(set) var tiles: [Tile] = []

    public init(columns: Int, cellSize: Int, title: String = "") {
        precondition(columns > 0 && cellSize > 0, "ContactSheet: columns and cell size must be positive")
        self.columns = columns; self.cellSize = cellSize; self.title = title
    }

    /// Adds a gray image (e.g. from AstroBase's `ImageNormalization.bytes`).
    public mutating func add(gray bytes: [UInt8], width: Int, height: Int, label: String) {
        tiles.append(Tile(bytes: bytes, width: width, height: height, channels: 1, label: label))
    }

    /// Adds an RGB image (e.g. from AstroBase's `LuptonRGB.composite8`).
    public mutating func add(rgb bytes: [UInt8], width: Int, height: Int, label: String) {
        tiles.append(Tile(bytes: bytes, width: width, height: height, channels: 3, label: label))
    }

    /// The sheet drawn on a canvas. FITS row order (bottom row first) is flipped so north is up.
    public func canvas(flipVertically: Bool = true) -> Canvas {
        let labelHeight = (BitmapFont.glyphHeight + 4) * labelScale
        let titleHeight = title.isEmpty ? 0 : (BitmapFont.glyphHeight * 2 + 8)
        let rows = max(1, (tiles.count + columns - 1) / columns)
        let cellWidth = cellSize + padding, cellHeight = cellSize + labelHeight + padding
        var canvas = Canvas(width: columns * cellWidth + padding, height: titleHeight + rows * cellHeight + padding,
                            background: .darkGray)
        if !title.isEmpty { canvas.drawText(title, x: padding, y: 4, color: .white, scale: 2) }
        for (index, tile) in tiles.enumerated() {
            let x = padding + (index % columns) * cellWidth
            let y = titleHeight + padding + (index / columns) * cellHeight
            let scale = max(1, min(cellSize / max(tile.width, 1), cellSize / max(tile.height, 1)))
            let offsetX = (cellSize - tile.width * scale) / 2, offsetY = (cellSize - tile.height * scale) / 2
            canvas.fillRect(x: x, y: y, width: cellSize, height: cellSize, color: .black)
            canvas.blit(tile.bytes, width: tile.width, height: tile.height, channels: tile.channels,
                        x: x + offsetX, y: y + offsetY, scale: scale, flipVertically: flipVertically)
            var label = tile.label
            while BitmapFont.width(of: label, scale: labelScale) > cellSize && !label.isEmpty { label.removeLast() }
            canvas.drawText(label, x: x + (cellSize - BitmapFont.width(of: label, scale: labelScale)) / 2,
                            y: y + cellSize + 2, color: .white, scale: labelScale)
        }
        return canvas
    }

    /// Writes the sheet as an RGB PNG.
    public func write(to url: URL) throws { try canvas().write(to: url) }
}
