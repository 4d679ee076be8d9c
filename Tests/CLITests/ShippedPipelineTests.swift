import FITS
import Foundation
import TestSupport
import XCTest

/// Each shipped pipeline, on the shipped samples with the shipped weights, writes
/// the outputs TASKS.md documents ("Shipped pipelines and what they write").
final class ShippedPipelineTests: XCTestCase {
    func runPipeline(_ name: String, output: URL, input: String? = nil) throws {
        var arguments = ["run", "pipelines/\(name).yaml", "--output", output.path, "--quiet", "--fresh"]
        if let input { arguments += ["--input", input] }
        let r = try runTool(arguments)
        XCTAssertEqual(r.status, 0, "\(name): \(r.stderr)")
    }

    func rows(_ url: URL) throws -> [[String]] {
        try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
    }

    func sampleNames(_ task: String) throws -> [String] {
        try String(contentsOf: repositoryRoot.appendingPathComponent("samples/\(task)/catalog.csv"), encoding: .utf8)
            .split(separator: "\n").dropFirst().map { String($0.split(separator: ",")[0]) }
    }

    func testClassifyGalaxies() throws {
        let out = try makeTemporaryDirectory("shipped").appendingPathComponent("morphology.csv")
        try runPipeline("classify-galaxies", output: out)
        let table = try rows(out)
        // TASKS.md's columns, then the quality columns (docs/real-data.md).
        XCTAssertEqual(table[0], ["file", "predicted", "p_elliptical", "p_spiral", "p_edge_on", "p_irregular", "p_star",
                                  "in_domain", "outside_domain", "ood_energy"])
        XCTAssert(table.dropFirst().allSatisfy { $0[7] == "yes" && $0[8].isEmpty }, "the samples follow the model's observation")
        XCTAssertEqual(table.dropFirst().map { $0[0] }, try sampleNames("morphology"))
        // The shipped model is right on most of the samples (their labels are in the catalog).
        let names = ["elliptical", "spiral", "edge_on", "irregular", "star"]
        let truth = try String(contentsOf: repositoryRoot.appendingPathComponent("samples/morphology/catalog.csv"), encoding: .utf8)
            .split(separator: "\n").dropFirst().map { Int($0.split(separator: ",")[1])! }
        let correct = zip(table.dropFirst(), truth).filter { names.firstIndex(of: $0.0[1]) == $0.1 }.count
        XCTAssertGreaterThanOrEqual(Double(correct) / Double(truth.count), 0.8)
    }

    func testFindLenses() throws {
        let out = try makeTemporaryDirectory("shipped").appendingPathComponent("lenses.csv")
        try runPipeline("find-lenses", output: out)
        let table = try rows(out)
        XCTAssertEqual(table[0], ["file", "predicted", "p_non_lens", "p_lens", "in_domain", "outside_domain", "ood_energy"])
        XCTAssertEqual(table.dropFirst().map { $0[0] }, try sampleNames("lens"))
        for row in table.dropFirst() {
            XCTAssert(["lens", "non_lens"].contains(row[1]))
            XCTAssertEqual(Double(row[2])! + Double(row[3])!, 1, accuracy: 1e-4)
        }
    }

    func testRegressSersic() throws {
        let out = try makeTemporaryDirectory("shipped").appendingPathComponent("sersic.csv")
        try runPipeline("regress-sersic", output: out)
        let table = try rows(out)
        XCTAssertEqual(table[0], ["file", "sersic_n", "r_e", "q", "mag", "sersic_n_sigma", "r_e_sigma", "q_sigma", "mag_sigma",
                                  "in_domain", "outside_domain"])
        XCTAssertEqual(table.count, 31)
        for row in table.dropFirst() {
            let v = row[1...8].map { Double($0)! }
            XCTAssert((0.05...30).contains(v[1]) && (15...25).contains(v[3]) && v[4...].allSatisfy { $0 > 0 },
                      "r_e in arcsec (not log10), mag in range, positive sigmas: \(row)")
        }
    }

    func testSegmentSkyWritesClassMapsWithTheInputWCS() throws {
        let folder = try makeTemporaryDirectory("shipped").appendingPathComponent("segmented")
        try runPipeline("segment-sky", output: folder, input: "samples/skymap/skymap_1024.fits")
        let file = try FITSFile(path: folder.appendingPathComponent("skymap_1024.fits").path)
        let map = try file.readImage(0, as: Float.self)
        XCTAssertEqual(try file.hduInfo(0).bitpix, 8)
        XCTAssertEqual(map.shape, [1024, 1024])
        XCTAssert(map.pixels.allSatisfy { [0, 1, 2].contains($0) })
        let input = try FITSFile(path: repositoryRoot.appendingPathComponent("samples/skymap/skymap_1024.fits").path).header()
        for key in ["CTYPE1", "CRVAL1", "CRPIX1", "CRPIX2"] { XCTAssertEqual(map.header[key], input[key], key) }
        XCTAssertEqual(try file.readImage("PROB", as: Float.self).shape, [1024, 1024, 3])
        XCTAssertGreaterThan(map.pixels.filter { $0 == 2 }.count, 100, "galaxies are found")
    }
}
