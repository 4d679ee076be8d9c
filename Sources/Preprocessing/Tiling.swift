import Foundation

/// One tile of a `TileGrid`: its top-left corner in the full image (`y`, `x`)
/// and its size (always `tile × tile`; it may extend past the image when the
/// image is smaller than a tile).
public struct TileRect: Equatable, Hashable, Sendable {
    public var y: Int
    public var x: Int
    public var size: Int
}

/// A cover of a `height × width` image by `tile × tile` tiles overlapping by at
/// least `overlap` pixels. Tile origins step by `tile - overlap`; the last row
/// and column are moved back so that they end exactly at the image edge (so no
/// tile needs padding unless the image is smaller than one tile). Tiles are in
/// row-major order, which the streaming stitcher relies on.
public struct TileGrid: Equatable, Sendable {
    public let height: Int
    public let width: Int
    public let tile: Int
    public let overlap: Int
    public let rows: [Int]
    public let columns: [Int]

    public init(height: Int, width: Int, tile: Int, overlap: Int) {
        precondition(tile > 0, "TileGrid: tile size must be positive, got \(tile)")
        precondition(overlap >= 0 && overlap < tile,
                     "TileGrid: overlap \(overlap) must be in 0..<\(tile) (the tile size)")
        precondition(height > 0 && width > 0, "TileGrid: image \(height)×\(width) must be non-empty")
        self.height = height
        self.width = width
        self.tile = tile
        self.overlap = overlap
        rows = Self.origins(length: height, tile: tile, step: tile - overlap)
        columns = Self.origins(length: width, tile: tile, step: tile - overlap)
    }

    static func origins(length: Int, tile: Int, step: Int) -> [Int] {
        if length <= tile { return [0] }
        var result = Array(stride(from: 0, to: length - tile, by: step))
        result.append(length - tile)
        return result
    }

    public var tiles: [TileRect] {
        rows.flatMap { y in columns.map { x in TileRect(y: y, x: x, size: tile) } }
    }

    public var count: Int { rows.count * columns.count }

    /// The separable blend weights of `rect`'s rows and columns (shared by the
    /// in-memory and the streaming stitcher, so both blend identically).
    func blendWeights(_ rect: TileRect, _ weighting: StitchWeighting) -> (rows: [Float], columns: [Float]) {
        ((0..<rect.size).map { axisWeight($0, origin: rect.y, length: height, weighting) },
         (0..<rect.size).map { axisWeight($0, origin: rect.x, length: width, weighting) })
    }

    /// Weight of a tile pixel at offset `i` along an axis, for a tile at `origin`.
    func axisWeight(_ i: Int, origin: Int, length: Int, _ weighting: StitchWeighting) -> Float {
        guard weighting == .smooth, overlap > 0 else { return 1 }
        var w: Float = 1
        // Only edges that face another tile are tapered.
        if origin > 0 { w = Swift.min(w, taper(distance: i)) }
        if origin + tile < length { w = Swift.min(w, taper(distance: tile - 1 - i)) }
        return w
    }

    /// 0 for the `overlap / 4` pixels nearest a shared edge (they see the least
    /// context, and a neighbouring tile covers them at full weight), then a
    /// raised cosine up to 1 at `3/4 · overlap`.
    func taper(distance d: Int) -> Float {
        let margin = overlap / 4, ramp = overlap - 2 * margin
        if d < margin { return 0 }
        if d >= margin + ramp { return 1 }
        return 0.5 - 0.5 * Foundation.cos(Float.pi * (Float(d - margin) + 0.5) / Float(ramp))
    }
}

/// How overlapping tile outputs are blended.
public enum StitchWeighting: Equatable, Sendable {
    /// Plain average of every tile covering a pixel.
    case average
    /// A separable window that ignores the outer quarter of the overlap at each
    /// shared tile edge, where a network sees the least context, and blends the
    /// rest with a raised cosine, so seams vanish. Edges of the full image are not
    /// down-weighted, since no other tile covers them. An operator whose receptive
    /// field reaches no further than `overlap / 4` pixels is reproduced exactly.
    case smooth
}

/// Accumulates per-tile outputs (`channels × tile × tile`) into a full map.
public struct TileStitcher: Sendable {
    public let grid: TileGrid
    public let channels: Int
    public let weighting: StitchWeighting
    private var sum: [Float]
    private var weight: [Float]

    public init(grid: TileGrid, channels: Int, weighting: StitchWeighting = .average) {
        self.grid = grid
        self.channels = channels
        self.weighting = weighting
        sum = [Float](repeating: 0, count: channels * grid.height * grid.width)
        weight = [Float](repeating: 0, count: grid.height * grid.width)
    }

    /// Adds the output for `rect`; parts of the tile outside the image are ignored.
    public mutating func add(_ output: PlanarImage, at rect: TileRect) {
        precondition(output.channels == channels && output.height == rect.size && output.width == rect.size,
                     "TileStitcher.add: tile output \(output.shape) differs from [\(channels), \(rect.size), \(rect.size)]")
        let h = grid.height, w = grid.width
        let (wy, wx) = grid.blendWeights(rect, weighting)
        for ty in 0..<rect.size where rect.y + ty < h {
            for tx in 0..<rect.size where rect.x + tx < w {
                let pw = wy[ty] * wx[tx]
                let p = (rect.y + ty) * w + rect.x + tx
                weight[p] += pw
                for c in 0..<channels {
                    sum[c * h * w + p] += pw * output[c, ty, tx]
                }
            }
        }
    }

    /// The blended map. Pixels that no tile covered are NaN.
    public func result() -> PlanarImage {
        let plane = grid.height * grid.width
        var pixels = sum
        for c in 0..<channels {
            for p in 0..<plane {
                pixels[c * plane + p] = weight[p] > 0 ? sum[c * plane + p] / weight[p] : .nan
            }
        }
        return PlanarImage(channels: channels, height: grid.height, width: grid.width, pixels: pixels)
    }
}

extension PlanarImage {
    /// The pixels of `rect`, padded with `fill` where the tile extends past the image.
    public func tile(_ rect: TileRect, fill: Float = 0) -> PlanarImage {
        cropped(y: rect.y, x: rect.x, height: rect.size, width: rect.size, fill: fill)
    }

    /// Runs `body` on every tile of `grid` and stitches the outputs.
    public func mapTiles(_ grid: TileGrid, outputChannels: Int, weighting: StitchWeighting = .smooth,
                         _ body: (PlanarImage) throws -> PlanarImage) rethrows -> PlanarImage {
        precondition(grid.height == height && grid.width == width,
                     "mapTiles: grid \(grid.height)×\(grid.width) differs from image \(height)×\(width)")
        var stitcher = TileStitcher(grid: grid, channels: outputChannels, weighting: weighting)
        for rect in grid.tiles { stitcher.add(try body(tile(rect)), at: rect) }
        return stitcher.result()
    }
}
