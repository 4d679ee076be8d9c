// Files this module writes, read back by astropy (Fixtures/make_fixtures.py --check).
import FITS
import Foundation
import TestSupport
import XCTest

final class FITSAstropyRoundTripTests: XCTestCase {
    /// Writes one file of each kind plus manifest.json describing what was meant, then
    /// has astropy compare. Skipped where python3 with astropy is missing. Set
    /// ASTROLABE_ROUNDTRIP_REPORT to a path to keep the report (Fixtures/roundtrip_report.txt).
    func testAstropyReadsWhatWeWrite() throws {
        let directory = try makeTemporaryDirectory("fits-roundtrip")
        // ASTROLABE_ROUNDTRIP_KEEP=1 keeps the files for a look with other readers.
        defer {
            if ProcessInfo.processInfo.environment["ASTROLABE_ROUNDTRIP_KEEP"] == nil {
                try? FileManager.default.removeItem(at: directory)
            } else {
                print("round-trip files kept in \(directory.path)")
            }
        }
        let manifest = try writeRoundTripFiles(in: directory)
        // The module reads its own files back identically first.
        for item in manifest {
            let file = try FITSFile(path: directory.appendingPathComponent(item["file"] as! String).path)
            for hdu in item["hdus"] as! [[String: Any]] where hdu["data"] != nil {
                let image = try file.readImage(.index(hdu["index"] as! Int), as: Double.self)
                let data = (hdu["data"] as! [Any]).map { ($0 as? Double) }
                // Lossy (quantised) HDUs: 0.05 absolute on values near 100.
                let tolerance = hdu["tolerance"] == nil ? 1e-12 : 5e-4
                assertClose(image.pixels, data, tolerance: tolerance, "\(item["file"]!)")
            }
        }
        let json = try JSONSerialization.data(withJSONObject: ["files": manifest], options: [.prettyPrinted])
        try json.write(to: directory.appendingPathComponent("manifest.json"))

        let script = repositoryRoot.appendingPathComponent("Tests/FITSTests/Fixtures/make_fixtures.py").path
        guard runProcess("/usr/bin/env", ["python3", "-c", "import astropy"]).status == 0 else {
            throw XCTSkip("python3 with astropy is not installed")
        }
        var arguments = ["python3", script, "--check", directory.path]
        if let report = ProcessInfo.processInfo.environment["ASTROLABE_ROUNDTRIP_REPORT"] {
            arguments += ["--report", report]
        }
        let result = runProcess("/usr/bin/env", arguments)
        XCTAssertEqual(result.status, 0, result.output)
    }

    private func writeRoundTripFiles(in directory: URL) throws -> [[String: Any]] {
        func values(_ pixels: [Float]) -> [Any] { pixels.map { $0.isNaN ? NSNull() : Double($0) as Any } }
        var manifest: [[String: Any]] = []

        // float32 with keywords of every type, WCS copied from a fixture, long string.
        let source = try FITSFile(path: fixture("header.fits")).header()
        var header = FITSHeader(source.wcsRecords)
        header.set("OBJECT", .string("NGC 1300"), comment: "target")
        header.set("EXPTIME", .float(0.1))
        header.set("GAIN", .float(1.5e-7))
        header.set("NCOMBINE", .integer(12))
        header.set("FLAT", .logical(false))
        header.set("QUOTE", .string("it's"))
        header.set("NOTE", .string(String(repeating: "a long string value ", count: 6) + "end"))
        header.records.append(HeaderRecord("COMMENT", .none, comment: "round trip"))
        header.records.append(HeaderRecord("HISTORY", .none, comment: "written by FITSAstropyRoundTripTests"))
        let floats: [Float] = (0..<(24 * 10)).map { Float(sin(Double($0)) * 1000) } + []
        var withNaN = floats
        withNaN[17] = .nan
        let f32 = try FITSWriter(path: directory.appendingPathComponent("float32.fits").path)
        try f32.appendImage(withNaN, shape: [24, 10], header: header)
        try f32.commit()
        var keys: [String: Any] = [:]
        for record in header.records {
            switch record.value {
            case let .string(value): keys[record.keyword] = value
            case let .integer(value): keys[record.keyword] = value
            case let .float(value): keys[record.keyword] = value
            case let .logical(value): keys[record.keyword] = value
            case .none: break
            }
        }
        manifest.append(["file": "float32.fits", "hdus": [[
            "index": 0, "type": "image", "bitpix": -32, "naxis": [24, 10], "extname": "PRIMARY",
            "data": values(withNaN), "header": keys, "comments": ["round trip"],
            "history": ["written by FITSAstropyRoundTripTests"]]]])

        // int16 with BSCALE/BZERO and BLANK.
        var scaled: [Float] = (0..<60).map { Float($0) * 0.5 - 10 }
        scaled[3] = .nan
        let i16 = try FITSWriter(path: directory.appendingPathComponent("int16.fits").path)
        try i16.appendImage(scaled, shape: [6, 10], storage: .int16(scale: 0.5, zero: 5))
        try i16.commit()
        manifest.append(["file": "int16.fits", "hdus": [[
            "index": 0, "type": "image", "bitpix": 16, "naxis": [6, 10], "data": values(scaled),
            "header": ["BSCALE": 0.5, "BZERO": 5.0, "BLANK": -32768]]]])

        // uint8 mask, compressed extensions, and a catalog table.
        let mask: [UInt8] = (0..<(32 * 8)).map { UInt8(($0 / 5) % 3) }
        let ints: [Float] = (0..<(32 * 8)).map { Float(($0 * 91) % 2000 - 1000) }
        let multi = try FITSWriter(path: directory.appendingPathComponent("multi.fits").path)
        try multi.appendImage(mask: mask, shape: [32, 8], header: FITSHeader([HeaderRecord("CLASSES", .integer(3))]))
        try multi.appendImage(ints, shape: [32, 8], storage: .int16(scale: 1, zero: 0), extensionName: "RICE",
                              compression: TileCompression(.rice))
        try multi.appendImage(withNaN, shape: [24, 10], extensionName: "GZIP",
                              compression: TileCompression(.gzip, quantizeLevel: 0))
        // Smooth data: cfitsio's quantisation step (noise / 4) is then well below 0.05.
        // A lossy HDU after a lossless one is what cfitsio 4.2 misreads unaided.
        var smooth: [Float] = (0..<240).map { Float(100 + 20 * sin(Double($0) * 0.05)) }
        smooth[17] = .nan
        try multi.appendImage(smooth, shape: [24, 10], extensionName: "LOSSY", compression: TileCompression(.rice))
        try multi.appendTable(FITSTable([
            FITSColumn("FILE", .string(["a.fits", "b.fits"])), FITSColumn("LABEL", .int32([1, 4])),
            FITSColumn("P", .float([0.25, 0.75])), FITSColumn("RA", .double([150.125, -0.5])),
            FITSColumn("N", .int64([1 << 40, -3])),
        ]), extensionName: "CATALOG")
        try multi.commit()
        manifest.append(["file": "multi.fits", "hdus": [
            ["index": 0, "type": "image", "bitpix": 8, "naxis": [32, 8], "data": values(mask.map(Float.init)),
             "header": ["CLASSES": 3]],
            ["index": 1, "type": "image", "bitpix": 16, "naxis": [32, 8], "extname": "RICE",
             "compression": "RICE_1", "data": values(ints)],
            ["index": 2, "type": "image", "bitpix": -32, "naxis": [24, 10], "extname": "GZIP",
             "compression": "GZIP_1", "data": values(withNaN)],
            ["index": 3, "type": "image", "bitpix": -32, "naxis": [24, 10], "extname": "LOSSY",
             "compression": "RICE_1", "data": values(smooth), "tolerance": 0.05],
            ["index": 4, "type": "bintable", "extname": "CATALOG", "columns": [
                "FILE": ["a.fits", "b.fits"], "LABEL": [1, 4], "P": [0.25, 0.75], "RA": [150.125, -0.5],
                "N": [Double(1 << 40), -3]]],
        ]])
        return manifest
    }
}
