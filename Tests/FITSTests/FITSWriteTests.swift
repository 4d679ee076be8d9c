// Writing: round trips through this module and through astropy, atomic no-clobber writes.
import FITS
import Foundation
import TestSupport
import XCTest

final class FITSWriteTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = try makeTemporaryDirectory("fits-write")
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    func testFloat32RoundTripWithKeywordsAndWCS() throws {
        let source = try FITSFile(path: fixture("header.fits")).header()
        var header = FITSHeader(source.wcsRecords)
        header.set("OBJECT", .string("M13"), comment: "target")
        header.set("EXPTIME", .float(0.1))
        header.set("NCOMBINE", .integer(-7))
        header.set("FLAT", .logical(true))
        header.set("NOTE", .string(String(repeating: "long string ", count: 12) + "end"))
        header.records.append(HeaderRecord("COMMENT", .none, comment: "written by a test"))
        header.records.append(HeaderRecord("HISTORY", .none, comment: "step 1"))
        let pixels: [Float] = (0..<12).map { Float($0) * 0.5 - 1 } + [.nan]
        let writer = try FITSWriter(path: path("f32.fits"))
        try writer.appendImage(pixels + [3], shape: [2, 7], header: header)
        try writer.commit()

        let file = try FITSFile(path: path("f32.fits"))
        let image = try file.readImage()
        XCTAssertEqual(image.shape, [2, 7])
        XCTAssertEqual(Array(image.pixels.prefix(12)), Array(pixels.prefix(12)))
        XCTAssertTrue(image.pixels[12].isNaN)
        let read = image.header
        for record in header.records where record.keyword != "COMMENT" && record.keyword != "HISTORY" {
            XCTAssertEqual(read[record.keyword], record.value, record.keyword)
        }
        XCTAssertEqual(read.comments, ["written by a test"])
        XCTAssertEqual(read.history, ["step 1"])
        XCTAssertEqual(read.integer("BITPIX"), -32)
    }

    /// A segmentation output: a uint8 class map with the input's WCS (TASKS.md), and a
    /// float image rewritten with its own header through the one-call writer.
    func testCopyWCSAndOneCallWrite() throws {
        let input = try FITSFile(path: fixture("header.fits")).readImage()
        var header = FITSHeader([HeaderRecord("TASK", .string("segmentation"))])
        header.copyWCS(from: input.header)
        let writer = try FITSWriter(path: path("classes.fits"))
        try writer.appendImage(mask: [0, 1, 2, 1, 0, 0, 2, 2, 1, 1, 0, 0, 0, 0, 1, 2], shape: [4, 4], header: header)
        try writer.commit()
        let written = try FITSFile(path: path("classes.fits")).header()
        XCTAssertEqual(written.wcsRecords.map(\.keyword), input.header.wcsRecords.map(\.keyword))
        for record in input.header.wcsRecords { XCTAssertEqual(written[record.keyword], record.value, record.keyword) }
        XCTAssertNil(written["OBJECT"])

        try FITSWriter.write(input, to: path("copy.fits"))
        let copy = try FITSFile(path: path("copy.fits")).readImage()
        XCTAssertEqual(copy.pixels, input.pixels)
        XCTAssertEqual(copy.header.string("LONGSTR"), input.header.string("LONGSTR"))
        XCTAssertEqual(copy.header.comments, input.header.comments)
        assertThrowsFITSError(try FITSWriter.write(input, to: path("copy.fits"))) {
            $0 == .outputExists(path: self.path("copy.fits"))
        }
        try FITSWriter.write(input, to: path("copy.fits"), storage: .int16(scale: 1, zero: 0), overwrite: true)
        XCTAssertEqual(try FITSFile(path: path("copy.fits")).hduInfo(0).storedBitpix, 16)
    }

    func testInt16WithScaleAndBlank() throws {
        let pixels: [Float] = [100, 100.25, 101, .nan, 90, 108.5]
        let writer = try FITSWriter(path: path("i16.fits"))
        try writer.appendImage(pixels, shape: [3, 2], storage: .int16(scale: 0.25, zero: 100))
        try writer.commit()
        let file = try FITSFile(path: path("i16.fits"))
        let info = try file.hduInfo(0)
        XCTAssertEqual(info.storedBitpix, 16)
        let header = try file.header()
        XCTAssertEqual(header.double("BSCALE"), 0.25)
        XCTAssertEqual(header.double("BZERO"), 100)
        XCTAssertEqual(header.integer("BLANK"), -32768)
        let image = try file.readImage()
        XCTAssertEqual(image.pixels.filter { !$0.isNaN }, pixels.filter { !$0.isNaN })
        XCTAssertTrue(image.pixels[3].isNaN)
    }

    func testUInt8MaskAndCompressedImagesAndTable() throws {
        let mask: [UInt8] = (0..<(16 * 8)).map { UInt8($0 % 3) }
        let ints: [Float] = (0..<(16 * 8)).map { Float(($0 * 37) % 500) }
        let writer = try FITSWriter(path: path("multi.fits"))
        try writer.appendImage(mask: mask, shape: [16, 8])
        try writer.appendImage(ints, shape: [16, 8], storage: .int16(scale: 1, zero: 0), extensionName: "RICE",
                               compression: TileCompression(.rice))
        try writer.appendImage(ints, shape: [16, 8], extensionName: "GZIP",
                               compression: TileCompression(.gzip, quantizeLevel: 0))
        try writer.appendImage(mask: mask, shape: [16, 8], extensionName: "PLIO", compression: TileCompression(.plio))
        let table = FITSTable([
            FITSColumn("ID", .int64([1, 2, 3])), FITSColumn("RA", .double([10.5, 11.25, 12]), unit: "deg"),
            FITSColumn("SCORE", .float([0.5, 0.25, 1])), FITSColumn("CLASS", .int32([0, 4, 2])),
            FITSColumn("NAME", .string(["spiral", "star", "edge_on"])),
        ])
        try writer.appendTable(table, extensionName: "CATALOG")
        try writer.commit()

        let file = try FITSFile(path: path("multi.fits"))
        let infos = try file.hdus()
        XCTAssertEqual(infos.map(\.extensionName), ["PRIMARY", "RICE", "GZIP", "PLIO", "CATALOG"])
        XCTAssertEqual(infos.map(\.compression), [nil, "RICE_1", "GZIP_1", "PLIO_1", nil])
        XCTAssertEqual(infos[0].storedBitpix, 8)
        XCTAssertEqual(try file.readImage(0).pixels, mask.map(Float.init))
        XCTAssertEqual(try file.readImage("RICE").pixels, ints)
        XCTAssertEqual(try file.readImage("GZIP").pixels, ints)
        XCTAssertEqual(try file.readImage("PLIO").pixels, mask.map(Float.init))
        XCTAssertEqual(try file.readSection("RICE", x: 3..<9, y: 2..<5).pixels,
                       (2..<5).flatMap { y in (3..<9).map { ints[$0 + 16 * y] } })
        XCTAssertEqual(try file.readTable("CATALOG"), table)
    }

    /// Lossy RICE on floats (cfitsio's default quantisation) keeps values within the
    /// quantisation step and NaN as NaN, also after a lossless GZIP HDU; scaled int16
    /// under RICE and HCOMPRESS is exact.
    func testCompressedFloatsAndScaledInt16() throws {
        var floats = (0..<(40 * 30)).map { Float(sin(Double($0) * 0.05) * 20 + 100) }
        floats[7] = .nan
        floats[1000] = .nan
        let scaled: [Float] = (0..<(40 * 30)).map { Float($0 % 400) * 0.5 - 20 }
        let writer = try FITSWriter(path: path("lossy.fits"))
        try writer.appendImage(floats, shape: [40, 30], extensionName: "F", compression: TileCompression(.rice))
        try writer.appendImage(floats, shape: [40, 30], extensionName: "N",
                               compression: TileCompression(.gzip, quantizeLevel: 0))
        try writer.appendImage(floats, shape: [40, 30], extensionName: "F2", compression: TileCompression(.rice))
        try writer.appendImage(scaled, shape: [40, 30], storage: .int16(scale: 0.5, zero: 0), extensionName: "S",
                               compression: TileCompression(.rice))
        try writer.appendImage(scaled, shape: [40, 30], storage: .int16(scale: 0.5, zero: 0), extensionName: "H",
                               compression: TileCompression(.hcompress))
        try writer.commit()
        let file = try FITSFile(path: path("lossy.fits"))
        for hdu: HDUSelector in ["F", "F2", "N"] {
            let read = try file.readImage(hdu).pixels
            for (a, b) in zip(read, floats) {
                if b.isNaN { XCTAssertTrue(a.isNaN, "\(hdu)") } else { XCTAssertEqual(a, b, accuracy: 0.05, "\(hdu)") }
            }
        }
        XCTAssertEqual(try file.readImage("S").pixels, scaled)
        XCTAssertEqual(try file.hduInfo("H").compression, "HCOMPRESS_1")
        XCTAssertEqual(try file.readImage("H").pixels, scaled)
    }

    func testCompressedFirstImageGetsEmptyPrimary() throws {
        let writer = try FITSWriter(path: path("c.fits"))
        try writer.appendImage([1, 2, 3, 4], shape: [2, 2], storage: .int16(scale: 1, zero: 0),
                               compression: TileCompression(.rice))
        try writer.commit()
        let file = try FITSFile(path: path("c.fits"))
        XCTAssertEqual(try file.hduCount(), 2)
        XCTAssertEqual(try file.readImage(1).pixels, [1, 2, 3, 4])
    }

    /// Large float32 images take the direct read (pread + byte swap, huge pages), in the
    /// primary HDU and in an extension; both must equal what was written.
    func testLargeFloat32ImagesReadDirectly() throws {
        let side = 600
        var pixels = (0..<(side * side)).map { Float($0 % 9973) * 0.25 - 100 }
        pixels[12345] = .nan
        pixels[side * side - 1] = -.infinity
        let writer = try FITSWriter(path: path("large.fits"))
        try writer.appendImage(pixels, shape: [side, side])
        try writer.appendImage(pixels, shape: [side, side], extensionName: "COPY")
        try writer.commit()
        let file = try FITSFile(path: path("large.fits"))
        for hdu: HDUSelector in [0, "COPY"] {
            let read = try file.readImage(hdu).pixels
            XCTAssertEqual(read.count, pixels.count)
            XCTAssertTrue(zip(read, pixels).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) })
        }
        let section = try file.readSection(x: 100..<103, y: 20..<22)
        XCTAssertEqual(section.pixels, [20, 21].flatMap { y in (100..<103).map { pixels[$0 + side * y] } })
    }

    // MARK: - Atomicity

    func testRefusesToReplaceExistingFile() throws {
        let target = path("existing.fits")
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: target))
        assertThrowsFITSError(try FITSWriter(path: target), mentioning: target) { $0 == .outputExists(path: target) }
        XCTAssertEqual(try String(contentsOfFile: target, encoding: .utf8), "keep me")
    }

    func testFileAppearingDuringWriteIsKept() throws {
        let target = path("race.fits")
        let writer = try FITSWriter(path: target)
        try writer.appendImage([1, 2], shape: [2])
        try Data("other".utf8).write(to: URL(fileURLWithPath: target))
        assertThrowsFITSError(try writer.commit(), mentioning: target) { $0 == .outputExists(path: target) }
        XCTAssertEqual(try String(contentsOfFile: target, encoding: .utf8), "other")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path), ["race.fits"])
    }

    func testOverwriteReplaces() throws {
        let target = path("replace.fits")
        try Data("old".utf8).write(to: URL(fileURLWithPath: target))
        let writer = try FITSWriter(path: target, overwrite: true)
        try writer.appendImage([5, 6], shape: [2])
        try writer.commit()
        XCTAssertEqual(try FITSFile(path: target).readImage().pixels, [5, 6])
    }

    func testUnfinishedOrFailedWriteLeavesNothing() throws {
        do {
            let writer = try FITSWriter(path: path("abandoned.fits"))
            try writer.appendImage([1, 2, 3], shape: [3])
        }
        let failing = try FITSWriter(path: path("failed.fits"))
        assertThrowsFITSError(try failing.appendImage([1, 2, 3], shape: [2, 2])) {
            $0 == .shapeMismatch(path: self.path("failed.fits"), expected: [2, 2], received: 3)
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path), [])
    }
}
