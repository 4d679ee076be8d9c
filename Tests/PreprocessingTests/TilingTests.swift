import XCTest
@testable import Preprocessing

final class TilingTests: XCTestCase {
    func testTilesCoverEveryPixelWithAtLeastTheOverlap() {
        for (h, w, tile, overlap) in [(2048, 2048, 256, 32), (300, 257, 64, 16), (50, 40, 64, 8), (256, 256, 256, 32)] {
            let grid = TileGrid(height: h, width: w, tile: tile, overlap: overlap)
            var covered = [Int](repeating: 0, count: h * w)
            for rect in grid.tiles {
                for y in rect.y..<min(h, rect.y + tile) { for x in rect.x..<min(w, rect.x + tile) { covered[y * w + x] += 1 } }
            }
            XCTAssert(covered.allSatisfy { $0 > 0 }, "\(h)×\(w) tile \(tile)")
            for origins in [grid.rows, grid.columns] where origins.count > 1 {
                for (a, b) in zip(origins, origins.dropFirst()) { XCTAssertLessThanOrEqual(b - a, tile - overlap) }
                XCTAssertEqual(origins.last! + tile, origins == grid.rows ? h : w, "last tile ends at the edge")
            }
        }
        XCTAssertEqual(TileGrid(height: 2048, width: 2048, tile: 256, overlap: 32).count, 81)   // origins 0, 224, ..., 1568, 1792 per axis
    }

    func testTilingThenStitchingReturnsTheInputExactly() {
        let image = PlanarImage(channels: 2, height: 70, width: 53,
                                pixels: (0..<(2 * 70 * 53)).map { Float(($0 * 7919) % 1013) - 500 })
        for weighting in [StitchWeighting.average, .smooth] {
            let grid = TileGrid(height: 70, width: 53, tile: 32, overlap: 8)
            let stitched = image.mapTiles(grid, outputChannels: 2, weighting: weighting) { $0 }
            for (a, b) in zip(stitched.pixels, image.pixels) { XCTAssertEqual(a, b, accuracy: 1e-3) }
        }
    }

    func testImageSmallerThanATileIsPaddedAndCropped() {
        let image = PlanarImage(height: 10, width: 7, pixels: (0..<70).map(Float.init))
        let grid = TileGrid(height: 10, width: 7, tile: 16, overlap: 4)
        XCTAssertEqual(grid.count, 1)
        var sawPadding = false
        let stitched = image.mapTiles(grid, outputChannels: 1) { tile in
            sawPadding = tile.height == 16 && tile[0, 15, 15] == 0
            return tile
        }
        XCTAssert(sawPadding)
        XCTAssertEqual(stitched, image)
    }

    func testTiledLocalOperatorEqualsUntiledAwayFromTileBorders() {
        // A 3×3 box filter is local: tiled with overlap ≥ its radius it must equal
        // the untiled result everywhere except within 1 px of the image edge.
        let h = 90, w = 77
        let image = PlanarImage(height: h, width: w, pixels: (0..<(h * w)).map { Float(($0 * 31) % 97) })
        func box(_ im: PlanarImage) -> PlanarImage {
            var out = im
            for y in 1..<(im.height - 1) {
                for x in 1..<(im.width - 1) {
                    var s: Float = 0
                    for dy in -1...1 { for dx in -1...1 { s += im[0, y + dy, x + dx] } }
                    out[0, y, x] = s / 9
                }
            }
            return out
        }
        let full = box(image)
        let tiled = image.mapTiles(TileGrid(height: h, width: w, tile: 32, overlap: 8), outputChannels: 1,
                                   weighting: .smooth, box)
        for y in 1..<(h - 1) { for x in 1..<(w - 1) {
            XCTAssertEqual(tiled[0, y, x], full[0, y, x], accuracy: 1e-3, "(\(y), \(x))")
        } }
    }
}

final class StreamingTilingTests: XCTestCase {
    func testStreamingStitchEqualsInMemoryStitchRowBandByRowBand() {
        let (h, w) = (150, 97)
        let image = PlanarImage(channels: 2, height: h, width: w, pixels: (0..<(2 * h * w)).map { Float(($0 * 7) % 113) })
        let grid = TileGrid(height: h, width: w, tile: 40, overlap: 12)
        // Any tile-local operator: here a per-tile offset, so that seams would show.
        func op(_ tile: PlanarImage, _ rect: TileRect) -> PlanarImage {
            var out = tile
            for i in out.pixels.indices { out.pixels[i] += Float(rect.x + rect.y) * 0.01 }
            return out
        }
        var full = TileStitcher(grid: grid, channels: 2, weighting: .smooth)
        for rect in grid.tiles { full.add(op(image.tile(rect), rect), at: rect) }
        let expected = full.result()

        var stream = StreamingTileStitcher(grid: grid, channels: 2, weighting: .smooth)
        var assembled = [[Float]](repeating: [], count: 2)
        var nextRow = 0
        for row in grid.rows.indices {
            for rect in stream.tiles(inRow: row) { stream.add(op(image.tile(rect), rect), at: rect) }
            let (rows, band) = stream.finishRow(row)
            XCTAssertEqual(rows.lowerBound, nextRow, "bands come in order, without gaps")
            nextRow = rows.upperBound
            if let band { for c in 0..<2 { assembled[c] += band.channel(c).pixels } }
        }
        XCTAssertEqual(nextRow, h)
        XCTAssertEqual(assembled[0] + assembled[1], expected.pixels)
    }
}
