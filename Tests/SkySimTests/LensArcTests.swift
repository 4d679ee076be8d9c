import FITS
import Foundation
@testable import SkySim
import TestSupport
import XCTest

/// `--arcs`: each lens's noiseless lensed source, the part of the noiseless cube that is not
/// the lens galaxy, written as the `ARC` extension; non-lenses and plain runs have none.
final class LensArcTests: XCTestCase {
    func testArcIsTheLensedSourceOfTheNoiselessImage() throws {
        let settings = ObservationSettings()
        let withArc = LensScene.make(index: 3, seed: 21, settings: settings, size: 48, keepNoiseless: true, keepArc: true,
                                     forcedLabel: 1)
        let noArc = LensScene.make(index: 3, seed: 21, settings: settings, size: 48, keepNoiseless: true, forcedLabel: 1)
        XCTAssertNil(noArc.arc)
        XCTAssertEqual(withArc.pixels, noArc.pixels)   // the arc costs no random draws
        let arc = try XCTUnwrap(withArc.arc)
        let clean = try XCTUnwrap(withArc.noiseless)
        let plane = 48 * 48
        let total = (0..<plane).map { p in clean[p] + clean[plane + p] + clean[2 * plane + p] }
        // The arc is a non-negative part of the noiseless image, with a real share of its flux.
        for p in 0..<plane { XCTAssertLessThanOrEqual(Double(arc[p]), total[p] * (1 + 1e-5) + 1e-3) }
        XCTAssertGreaterThanOrEqual(arc.min()!, -1e-3)
        let share = arc.reduce(0) { $0 + Double($1) } / total.reduce(0, +)
        XCTAssertGreaterThan(share, 0.01)
        XCTAssertLessThan(share, 0.99)
        XCTAssertNil(LensScene.make(index: 3, seed: 21, settings: settings, size: 48, keepArc: true, forcedLabel: 0).arc)

        let folder = try makeTemporaryDirectory("arcs")
        var simulator = Simulator(task: .lens, seed: 21, size: 32)
        simulator.arcs = true
        _ = try simulator.writeDataset(count: 4, to: folder)
        for index in 0..<4 {
            let image = simulator.image(at: index)
            let file = try FITSFile(path: folder.appendingPathComponent(image.fileName).path)
            let names = try file.hdus().map(\.extensionName)
            XCTAssertEqual(names.contains("ARC"), image.label == 1, "\(image.fileName): \(names)")
        }
    }
}
