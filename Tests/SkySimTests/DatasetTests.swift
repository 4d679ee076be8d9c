import AstroBase
import FITS
import Foundation
import Plotting
import TestSupport
import XCTest
@testable import SkySim

/// Files, headers, catalogs and pictures of simulated data sets.
final class DatasetTests: XCTestCase {
    private var scratch: URL!

    override func setUpWithError() throws {
        scratch = try makeTemporaryDirectory("skysim")
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: scratch) }

    /// The same seed gives byte-identical files (written in parallel); another seed differs.
    func testRepeatedSeedGivesByteIdenticalFiles() throws {
        for task in SimulationTask.allCases where task != .lightcurves {   // LightCurveSimulationTests
            let count = task == .segmentation ? 2 : 6
            let first = scratch.appendingPathComponent("\(task)-a"), second = scratch.appendingPathComponent("\(task)-b")
            let other = scratch.appendingPathComponent("\(task)-c")
            _ = try Simulator(task: task, seed: 11).writeDataset(count: count, to: first)
            _ = try Simulator(task: task, seed: 11).writeDataset(count: count, to: second)
            _ = try Simulator(task: task, seed: 12).writeDataset(count: count, to: other)
            let names = try FileManager.default.contentsOfDirectory(atPath: first.path).sorted()
            XCTAssertEqual(names.count, count + 1, "\(task): files plus catalog.csv")
            for name in names {
                let a = try Data(contentsOf: first.appendingPathComponent(name))
                let b = try Data(contentsOf: second.appendingPathComponent(name))
                XCTAssertEqual(a, b, "\(task): \(name) differs between runs with the same seed")
                if name.hasSuffix(".fits") {
                    XCTAssertNotEqual(a, try Data(contentsOf: other.appendingPathComponent(name)), "\(task): \(name) ignores the seed")
                }
            }
        }
    }

    /// catalog.csv rows match the FITS headers read back with cfitsio.
    func testCatalogMatchesHeaders() throws {
        let directory = scratch.appendingPathComponent("regression")
        _ = try Simulator(task: .regression, seed: 3).writeDataset(count: 5, to: directory)
        let lines = try String(contentsOf: directory.appendingPathComponent("catalog.csv"), encoding: .utf8)
            .split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first, "file,sersic_n,r_e,q,mag")
        for line in lines.dropFirst() {
            let fields = line.split(separator: ",").map(String.init)
            let path = directory.appendingPathComponent(fields[0]).path
            for (column, keyword) in ["SERSIC_N", "R_E", "Q", "MAG"].enumerated() {
                XCTAssertEqual(Double(fields[column + 1])!, try readKeyword(path, keyword), accuracy: 1e-8, "\(fields[0]) \(keyword)")
            }
            XCTAssertEqual(try readKeyword(path, "PIXSCALE"), 0.2)
            XCTAssertEqual(try readKeyword(path, "MAGZERO"), 30)
        }
        let morphology = scratch.appendingPathComponent("morphology")
        _ = try Simulator(task: .morphology, seed: 3).writeDataset(count: 10, to: morphology)
        for line in try String(contentsOf: morphology.appendingPathComponent("catalog.csv"), encoding: .utf8)
            .split(separator: "\n").dropFirst() {
            let fields = line.split(separator: ",").map(String.init)
            XCTAssertEqual(Double(fields[1])!, try readKeyword(morphology.appendingPathComponent(fields[0]).path, "LABEL"))
        }
    }

    /// TRUTH: a pixel is a source only where the noiseless flux reaches 1.0 SKYSIG (the winning
    /// source alone must exceed it, so the summed flux does too), and wherever a single
    /// star dominates above threshold the pixel is a star.
    func testSegmentationTruthFollowsThreshold() {
        let (image, sources) = SegmentationScene.make(index: 1, seed: 9, settings: ObservationSettings(), size: 256, keepNoiseless: true)
        guard case .float(let sky)? = image.headerValue("SKYSIG"), let truth = image.truth, let clean = image.noiseless else {
            return XCTFail("segmentation image lacks SKYSIG, truth or noiseless pixels")
        }
        XCTAssertEqual(truth.count, 256 * 256)
        for p in 0..<truth.count where truth[p] != 0 { XCTAssertGreaterThan(clean[p], sky, "pixel \(p)") }
        XCTAssert(truth.contains(1) && truth.contains(2), "both classes present")
        XCTAssertEqual(Set(truth), Set(truth).intersection([0, 1, 2]))
        // Pixels far below threshold everywhere are background.
        for p in 0..<truth.count where clean[p] < 0.5 * sky { XCTAssertEqual(truth[p], 0) }
        // Each bright star's centre pixel is labelled star.
        for s in sources where s.classCode == 1 && s.magnitude < 19 {
            let i = Int(s.x.rounded()), j = Int(s.y.rounded())
            if i >= 0, j >= 0, i < 256, j < 256 { XCTAssertNotEqual(truth[j * 256 + i], 0) }
        }
    }

    /// Overlapping sources: each pixel goes to the source with the most flux there, if that
    /// flux exceeds the threshold; a faint source's pixels stay background even where the sum
    /// of two sources exceeds it.
    func testTruthRuleBrightestSourceWins() {
        let size = 5
        var image = [Double](repeating: 0, count: size * size), best = image
        var truth = [UInt8](repeating: 0, count: size * size)
        let galaxy: [Double] = [3, 6, 9, 6, 3]   // a 5 x 1 row stamp for simplicity: side 1 per row
        let star: [Double] = [0, 4, 12, 8, 0.5]
        for (x, value) in galaxy.enumerated() {
            SegmentationScene.paint([value], side: 1, originX: x, originY: 2, classCode: 2, threshold: 5,
                                    size: size, image: &image, best: &best, truth: &truth)
        }
        for (x, value) in star.enumerated() {
            SegmentationScene.paint([value], side: 1, originX: x, originY: 2, classCode: 1, threshold: 5,
                                    size: size, image: &image, best: &best, truth: &truth)
        }
        // x = 0: 3 < 5 -> background even though nothing else; x = 1: galaxy 6 > star 4;
        // x = 2: star 12 > galaxy 9; x = 3: star 8 > galaxy 6; x = 4: neither above 5 although 3.5 total.
        XCTAssertEqual(Array(truth[10..<15]), [0, 2, 1, 1, 0])
        XCTAssertEqual(Array(image[10..<15]), [3, 10, 21, 14, 3.5])
        XCTAssertEqual(truth[0], 0, "pixels outside stamps stay background")
    }

    /// Band fluxes of noiseless lens galaxies follow the drawn colours; lensed arcs are bluer.
    func testLensColours() {
        let settings = ObservationSettings()
        var checked = 0
        for index in 0..<12 {
            let image = LensScene.make(index: index, seed: 21, settings: settings, size: 64, keepNoiseless: true, forcedLabel: 0)
            guard image.headerValue("COMPANIO") == nil, let clean = image.noiseless,
                  case .float(let gr)? = image.headerValue("LENS_GR"), case .float(let ri)? = image.headerValue("LENS_RI")
            else { continue }
            let plane = 64 * 64
            let sums = (0..<3).map { b in clean[b * plane..<(b + 1) * plane].reduce(0, +) }
            // Same shape in every band; only the PSF width differs, so the stamp loses nearly the same fraction.
            XCTAssertEqual(-2.5 * log10(sums[0] / sums[1]), gr, accuracy: 0.02, "g - r of image \(index)")
            XCTAssertEqual(-2.5 * log10(sums[1] / sums[2]), ri, accuracy: 0.02, "r - i of image \(index)")
            checked += 1
        }
        XCTAssertGreaterThan(checked, 2)
        let lens = LensScene.make(index: 0, seed: 21, settings: settings, size: 64, keepNoiseless: true, forcedLabel: 1)
        let alone = LensScene.make(index: 0, seed: 21, settings: settings, size: 64, keepNoiseless: true, forcedLabel: 0)
        let plane = 64 * 64
        func colour(_ image: SimulatedImage) -> Double {
            let c = image.noiseless!
            return -2.5 * log10(c[0..<plane].reduce(0, +) / c[2 * plane..<3 * plane].reduce(0, +))
        }
        XCTAssertLessThan(colour(lens), colour(alone), "adding the blue source makes g - i bluer")
    }

    func testContactSheetPNG() throws {
        let images = (0..<5).map { Simulator(task: .morphology, seed: 4).image(at: $0) }
        let url = scratch.appendingPathComponent("sheet.png")
        try SimulationPreview.contactSheet(images, task: .morphology, columns: 5, cellSize: 64).write(to: url)
        let bytes = try Data(contentsOf: url)
        XCTAssertEqual(Array(bytes.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        for name in SimulationTask.morphology.classNames + SimulationTask.lens.classNames {
            for character in name {
                XCTAssertNotEqual(BitmapFont.glyph(for: character), [0x1F, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1F], "glyph for \(character)")
            }
        }
        XCTAssertThrowsError(try PNGWriter.write([1, 2], width: 2, height: 2, format: .gray, to: url)) {
            XCTAssertEqual($0 as? PlottingError, .badBuffer(expected: 4, received: 2))
        }
        XCTAssertThrowsError(try PNGWriter.write([1, 2, 3, 4], width: 2, height: 2, format: .gray,
                                                 to: URL(fileURLWithPath: "/nonexistent-dir/x.png")))
    }

    func testUnwritableOutputThrowsTypedError() {
        XCTAssertThrowsError(try Simulator(task: .morphology, seed: 1).writeDataset(count: 1, to: URL(fileURLWithPath: "/proc/none"))) {
            guard case .io? = $0 as? SkySimError else { return XCTFail("expected SkySimError.io, got \($0)") }
        }
    }

    private func readKeyword(_ path: String, _ keyword: String) throws -> Double {
        let value = try FITSFile(path: path).header(0).double(keyword)
        return try XCTUnwrap(value, "\(path): no numeric \(keyword)")
    }
}

/// Plotting pieces other issues reuse.
final class PlottingTests: XCTestCase {
    func testLinePlotAndCanvasPrimitives() throws {
        var plot = LinePlot(title: "TRAINING", xLabel: "EPOCH", yLabel: "LOSS")
        let epochs = (0..<30).map(Double.init)
        plot.add(x: epochs, y: epochs.map { 2 * exp(-$0 / 8) + 0.1 }, label: "train", color: .blue)
        plot.add(x: epochs, y: epochs.map { 2 * exp(-$0 / 10) + 0.25 }, label: "validation", color: .red)
        let canvas = plot.canvas(width: 480, height: 300)
        XCTAssertEqual(canvas.pixels.count, 480 * 300 * 3)
        XCTAssert(canvas.pixels.contains(Color.blue.blue) && canvas.pixels.contains(Color.red.red))
        let directory = try ProcessInfo.processInfo.environment["SKYSIM_PREVIEW_DIR"].map { URL(fileURLWithPath: $0) }
            ?? makeTemporaryDirectory("plots")
        let url = directory.appendingPathComponent("lineplot-\(UUID().uuidString.prefix(6)).png")
        try canvas.write(to: url)
        XCTAssertGreaterThan(try Data(contentsOf: url).count, 100)
        if ProcessInfo.processInfo.environment["SKYSIM_PREVIEW_DIR"] == nil { try? FileManager.default.removeItem(at: url) }

        var small = Canvas(width: 10, height: 10, background: .black)
        small.drawLine(x0: 0, y0: 0, x1: 9, y1: 9, color: .white)
        XCTAssertEqual(small.color(x: 5, y: 5), .white)
        XCTAssertEqual(small.color(x: 5, y: 4), .black)
        small.fillRect(x: -5, y: -5, width: 7, height: 7, color: .red)  // clipped, no crash
        XCTAssertEqual(small.color(x: 1, y: 1), .red)
        XCTAssertEqual(ImageNormalization(interval: .minMax, stretch: .linear()).bytes([0, 5, 10, .nan]), [0, 128, 255, 0])
    }
}
