import Autograd
import FITS
import Foundation
import NN
import Preprocessing
import TestSupport
import XCTest
@testable import Pipelines

/// Tiled segmentation against the untiled network, and the streaming writer
/// against the in-memory stitch.
final class SegmentationTilingTests: XCTestCase {
    /// A map with blobs over noise, and a small U-Net with fixed random weights.
    func fixture(size: Int) -> (PlanarImage, UNet) {
        var rng = SeededGenerator(seed: 3)
        var pixels = (0..<(size * size)).map { _ in Float(rng.normal()) }
        for _ in 0..<12 {
            let cx = rng.uniform(0...Double(size)), cy = rng.uniform(0...Double(size)), r = rng.uniform(1...6)
            for y in 0..<size { for x in 0..<size {
                let d2 = (Double(x) - cx) * (Double(x) - cx) + (Double(y) - cy) * (Double(y) - cy)
                pixels[y * size + x] += Float(20 * Foundation.exp(-d2 / (2 * r * r)))
            } }
        }
        let net = UNet(inputChannels: 1, classCount: 3, widths: [4, 8, 16], bottleneckWidth: 16, seed: 9)
        net.eval()
        return (PlanarImage(height: size, width: size, pixels: pixels), net)
    }

    /// The U-Net as a predictor of raw pixels (no recipe: no stages, the primary HDU).
    func predictor(_ net: UNet) -> Predictor {
        Predictor(network: net, architecture: Architecture(name: .unet, inChannels: 1, classes: 3, widths: [4, 8, 16],
                                                           bottleneck: 16), recipe: nil, path: "unet")
    }

    /// Away from tile borders the tiled result equals the untiled one within 0.02 in
    /// probability (the network's receptive field reaches past a tile, so not exactly);
    /// the class maps agree on at least 99.5 % of all pixels.
    func testTiledEqualsUntiledAwayFromTileBorders() throws {
        let size = 192
        let (image, net) = fixture(size: size)
        let tiling = TilingConfig(tile: 96, overlap: 32, weighting: .smooth)
        let tiled = try predictor(net).segmentProbabilities(image, tiling: tiling, batchSize: 4, file: "map")
        let whole = withNoGrad { net(Tensor(shape: [1, 1, size, size], data: image.pixels)).softmax(axis: 1) }.scalars
        let grid = TileGrid(height: size, width: size, tile: 96, overlap: 32)
        // Pixels at least 16 px from every tile edge that lies inside the map.
        let edges = Set(grid.rows.flatMap { [$0, $0 + 96] }.filter { $0 > 0 && $0 < size })
        func nearEdge(_ v: Int) -> Bool { edges.contains { abs($0 - v) < 16 } }
        var worst: Float = 0, agree = 0
        let plane = size * size
        for y in 0..<size { for x in 0..<size {
            var tb = 0, wb = 0
            for c in 0..<3 {
                if tiled.pixels[c * plane + y * size + x] > tiled.pixels[tb * plane + y * size + x] { tb = c }
                if whole[c * plane + y * size + x] > whole[wb * plane + y * size + x] { wb = c }
                if !nearEdge(x) && !nearEdge(y) {
                    worst = max(worst, abs(tiled.pixels[c * plane + y * size + x] - whole[c * plane + y * size + x]))
                }
            }
            if tb == wb { agree += 1 }
        } }
        XCTAssertLessThan(worst, 0.02, "interior probabilities")
        XCTAssertGreaterThan(Double(agree) / Double(plane), 0.995, "class maps")
    }

    /// The streaming path (rows read as sections, written as produced) writes the
    /// same class map and probabilities as the in-memory stitch.
    func testStreamingOutputEqualsInMemory() throws {
        let size = 160
        let (image, net) = fixture(size: size)
        let folder = try makeTemporaryDirectory("seg-stream")
        let input = folder.appendingPathComponent("map.fits")
        let writer = try FITSWriter(path: input.path)
        try writer.appendImage(image.pixels, shape: [size, size], header: FITSHeader([
            HeaderRecord("CTYPE1", .string("RA---TAN")), HeaderRecord("CTYPE2", .string("DEC--TAN")),
            HeaderRecord("CRVAL1", .float(150)), HeaderRecord("CRVAL2", .float(2)),
            HeaderRecord("CRPIX1", .float(80)), HeaderRecord("CRPIX2", .float(80)),
            HeaderRecord("CD1_1", .float(-5.5e-5)), HeaderRecord("CD2_2", .float(5.5e-5))]))
        try writer.commit()
        try """
        task: segment
        model: {weights: none.safetensors}
        tiling: {tile: 64, overlap: 16}
        run: {batch_size: 3}
        """.write(to: folder.appendingPathComponent("p.yaml"), atomically: true, encoding: .utf8)
        let runner = try PipelineRunner(pipelinePath: folder.appendingPathComponent("p.yaml").path)
        let output = folder.appendingPathComponent("out.fits")
        let predictor = predictor(net)
        try predictor.segment(CatalogEntry(url: input, name: "map.fits"), to: output, tiling: runner.config.tiling!,
                              batchSize: 3, probabilities: true)
        let memory = try predictor.segmentProbabilities(image, tiling: runner.config.tiling!, batchSize: 3, file: "map")
        let file = try FITSFile(path: output.path)
        let map = try file.readImage(0, as: Float.self)
        XCTAssertEqual(try file.hduInfo(0).bitpix, 8)
        XCTAssertEqual(map.shape, [size, size])
        XCTAssertEqual(map.header.double("CRPIX1"), 80, "the input's WCS is kept")
        XCTAssertEqual(map.pixels.map { UInt8($0) }, Predictor.classMap(memory))
        let prob = try file.readImage("PROB", as: Float.self)
        XCTAssertEqual(prob.shape, [size, size, 3])
        for (a, b) in zip(prob.pixels, memory.pixels) { XCTAssertEqual(a, b, accuracy: 1e-6) }
    }
}
