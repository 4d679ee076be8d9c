import AstroBase
import FITS
import Foundation
import TestSupport
import XCTest
@testable import SkySim

/// TASKS.md task 6: blends, their TRUTH extension and the distributions the page fixes.
final class DeblendSceneTests: XCTestCase {
    func testFilesHoldTheBlendAndTheCentralGalaxyAloneAsTruth() throws {
        let folder = try makeTemporaryDirectory("deblend")
        defer { try? FileManager.default.removeItem(at: folder) }
        _ = try Simulator(task: .deblend, seed: 4).writeDataset(count: 3, to: folder)
        let lines = try String(contentsOf: folder.appendingPathComponent("catalog.csv"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.first, "file,sersic_n,r_e,q,mag,nneigh")
        for line in lines.dropFirst() {
            let fields = line.split(separator: ",").map(String.init)
            let file = try FITSFile(path: folder.appendingPathComponent(fields[0]).path)
            let blend = try file.readImage(0), truth = try file.readImage("TRUTH")
            XCTAssertEqual(blend.shape, [64, 64])
            XCTAssertEqual(truth.shape, [64, 64])
            XCTAssertEqual(try file.hduInfo("TRUTH").bitpix, -32)
            for (k, keyword) in ["SERSIC_N", "R_E", "Q", "MAG", "NNEIGH"].enumerated() {
                let primary = try XCTUnwrap(try file.header(0).double(keyword)), inTruth = try XCTUnwrap(try file.header("TRUTH").double(keyword))
                XCTAssertEqual(primary, inTruth, keyword)
                XCTAssertEqual(primary, Double(fields[k + 1])!, accuracy: 1e-8, keyword)
            }
            XCTAssert(truth.pixels.allSatisfy { $0 >= 0 }, "TRUTH is noiseless counts")
        }
    }

    func testScenesFollowTheTaskPage() throws {
        let settings = ObservationSettings()
        var neighbourCounts = [0, 0, 0], stars = 0, neighbours = 0
        var distances: [Double] = [], fluxRatios: [Double] = []
        var centralMagnitudes: [Double] = [], neighbourGalaxyMagnitudes: [Double] = []
        for index in 0..<300 {
            let image = DeblendScene.make(index: index, seed: 17, settings: settings, size: 64, keepNoiseless: true)
            func value(_ keyword: String) -> Double {
                guard let v = image.headerValue(keyword)?.doubleValue else { XCTFail("\(image.fileName): no \(keyword)"); return .nan }
                return v
            }
            let count = Int(value("NNEIGH"))
            neighbourCounts[count] += 1
            let (cx, cy) = (value("OBJ_X"), value("OBJ_Y"))
            XCTAssertLessThanOrEqual(Swift.abs(cx - 32.5), 2.0001)
            XCTAssertLessThanOrEqual(Swift.abs(cy - 32.5), 2.0001)
            XCTAssert((0.5...6).contains(value("SERSIC_N")) && (0.3...2.0).contains(value("R_E")) && (0.3...1).contains(value("Q")))
            centralMagnitudes.append(value("MAG"))
            for k in 1...count {
                neighbours += 1
                let dx = value("NB\(k)_X") - cx, dy = value("NB\(k)_Y") - cy
                distances.append((dx * dx + dy * dy).squareRoot() * 0.2)
                if case .string("star")? = image.headerValue("NB\(k)_TYP") { stars += 1 } else {
                    neighbourGalaxyMagnitudes.append(value("NB\(k)_MAG"))
                }
            }
            // TRUTH is the central galaxy's part of the noiseless blend, holding (almost) all its flux.
            let truth = image.truthImage!.map(Double.init), clean = image.noiseless!
            XCTAssert(zip(clean, truth).allSatisfy { $0 - Double(Float($1)) >= -1e-3 * Swift.max(1, $0) })
            fluxRatios.append(truth.reduce(0, +) / settings.flux(magnitude: value("MAG")))
        }
        XCTAssertEqual(neighbourCounts[0], 0)
        XCTAssertEqual(Double(neighbourCounts[1]) / 300, 0.5, accuracy: 0.09, "1 or 2 neighbours with equal odds")
        XCTAssertEqual(Double(stars) / Double(neighbours), 0.2, accuracy: 0.06, "a neighbour is a star with probability 0.2")
        XCTAssert(distances.allSatisfy { (0.999...5.001).contains($0) })
        XCTAssertEqual(distances.reduce(0, +) / Double(distances.count), 3.0, accuracy: 0.25, "uniform in [1, 5] arcsec")
        XCTAssertEqual(centralMagnitudes.min()!, 18, accuracy: 0.1)
        XCTAssertEqual(centralMagnitudes.max()!, 21, accuracy: 0.1)
        XCTAssertEqual(neighbourGalaxyMagnitudes.min()!, 17.5, accuracy: 0.15)
        XCTAssertEqual(neighbourGalaxyMagnitudes.max()!, 22.5, accuracy: 0.15)
        XCTAssert(fluxRatios.allSatisfy { $0 <= 1.001 }, "no more light than the model's total")
        XCTAssertGreaterThan(fluxRatios.sorted()[150], 0.9, "a typical central galaxy fits in the stamp")
    }
}
