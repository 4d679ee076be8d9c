import Foundation

/// Tiling for maps larger than memory: tiles are processed one tile row at a
/// time and stitched rows are handed out as soon as no later tile can touch them,
/// so only about two tile rows (inputs and accumulators) are held at once,
/// whatever the map's height.
///
///     var stream = StreamingTileStitcher(grid: grid, channels: 3)
///     for row in 0..<grid.rows.count {
///         for rect in stream.tiles(inRow: row) { stream.add(output(for: rect), at: rect) }
///         let (rows, finished) = stream.finishRow(row)   // write `finished` at `rows`
///     }
///
/// The blend is the same as `TileStitcher`'s, so the result equals the in-memory one.
public struct StreamingTileStitcher: Sendable {
    public let grid: TileGrid
    public let channels: Int
    public let weighting: StitchWeighting
    /// First map row held in the rolling buffers.
    public private(set) var firstRow = 0
    private var sum: [Float] = []
    private var weight: [Float] = []
    private var heldRows = 0

    public init(grid: TileGrid, channels: Int, weighting: StitchWeighting = .smooth) {
        self.grid = grid
        self.channels = channels
        self.weighting = weighting
    }

    public func tiles(inRow row: Int) -> [TileRect] {
        grid.columns.map { TileRect(y: grid.rows[row], x: $0, size: grid.tile) }
    }

    /// Makes sure map rows `..<end` are held.
    private mutating func hold(upTo end: Int) {
        let needed = end - firstRow
        guard needed > heldRows else { return }
        let extra = (needed - heldRows) * grid.width
        weight += [Float](repeating: 0, count: extra)
        var grown = [Float](repeating: 0, count: channels * needed * grid.width)
        for c in 0..<channels {
            for i in 0..<(heldRows * grid.width) { grown[c * needed * grid.width + i] = sum[c * heldRows * grid.width + i] }
        }
        sum = grown
        heldRows = needed
    }

    public mutating func add(_ output: PlanarImage, at rect: TileRect) {
        precondition(rect.y >= firstRow, "StreamingTileStitcher.add: tile at row \(rect.y) after rows before \(firstRow) were finished")
        precondition(output.channels == channels && output.height == rect.size && output.width == rect.size,
                     "StreamingTileStitcher.add: tile output \(output.shape) differs from [\(channels), \(rect.size), \(rect.size)]")
        let bottom = Swift.min(grid.height, rect.y + rect.size)
        hold(upTo: bottom)
        let (wy, wx) = grid.blendWeights(rect, weighting)
        let w = grid.width, plane = heldRows * w
        for ty in 0..<rect.size where rect.y + ty < grid.height {
            let row = rect.y + ty - firstRow
            for tx in 0..<rect.size where rect.x + tx < w {
                let pw = wy[ty] * wx[tx]
                let p = row * w + rect.x + tx
                weight[p] += pw
                for c in 0..<channels { sum[c * plane + p] += pw * output[c, ty, tx] }
            }
        }
    }

    /// After every tile of tile row `row` was added: the map rows that are now
    /// final (they lie above the next tile row), blended, and dropped from memory.
    public mutating func finishRow(_ row: Int) -> (rows: Range<Int>, image: PlanarImage?) {
        let end = row + 1 < grid.rows.count ? grid.rows[row + 1] : grid.height
        let count = Swift.min(end, firstRow + heldRows) - firstRow
        guard count > 0 else { return (firstRow..<firstRow, nil) }
        let w = grid.width, plane = heldRows * w
        var pixels = [Float](repeating: .nan, count: channels * count * w)
        for c in 0..<channels {
            for p in 0..<(count * w) where weight[p] > 0 { pixels[c * count * w + p] = sum[c * plane + p] / weight[p] }
        }
        let rows = firstRow..<(firstRow + count)
        // Keep the rows still open.
        let left = heldRows - count
        var keptSum = [Float](repeating: 0, count: channels * left * w)
        for c in 0..<channels {
            for i in 0..<(left * w) { keptSum[c * left * w + i] = sum[c * plane + count * w + i] }
        }
        sum = keptSum
        weight = Array(weight[(count * w)...])
        heldRows = left
        firstRow += count
        return (rows, PlanarImage(channels: channels, height: count, width: w, pixels: pixels))
    }
}
