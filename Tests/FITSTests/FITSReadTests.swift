// Reading the astropy-written fixtures: layout, pixels, scaling, compression, sections.
@testable import FITS
import Foundation
import TestSupport
import XCTest

final class FITSReadTests: XCTestCase {
    /// Every fixture: the HDU list matches astropy's, and every image pixel matches.
    func testEveryFixtureMatchesAstropy() throws {
        XCTAssertGreaterThanOrEqual(expectedFixtures.count, 16)
        for (name, hdus) in expectedFixtures.sorted(by: { $0.key < $1.key }) {
            let file = try FITSFile(path: fixture(name))
            let infos = try file.hdus()
            XCTAssertEqual(infos.count, hdus.count, name)
            for (info, expected) in zip(infos, hdus) {
                let label = "\(name)[\(expected.index)]"
                XCTAssertEqual(info.index, expected.index, label)
                XCTAssertEqual(info.extensionName, expected.extensionName, label)
                XCTAssertEqual(info.kind == .image ? "image" : "bintable", expected.type, label)
                guard expected.type == "image" else { continue }
                XCTAssertEqual(info.storedBitpix, expected.bitpix, label)
                XCTAssertEqual(info.shape, expected.naxis, label)
                XCTAssertEqual(info.compression, expected.compression, label)
                guard let data = expected.data else { continue }
                let image = try file.readImage(.index(info.index))
                XCTAssertEqual(image.shape, expected.naxis, label)
                assertClose(image.pixels, data, tolerance: 1e-6, label)
                let wide = try file.readImage(.index(info.index), as: Double.self)
                // Quantized (compressed) floats dequantize in Double; astropy keeps float32.
                assertClose(wide.pixels, data, tolerance: info.compression == nil ? 1e-12 : 1e-6, "\(label) as Double")
                let stats = image.statistics
                XCTAssertEqual(stats.blankCount, Int(expected.stats["blank"]!), label)
                XCTAssertEqual(stats.minimum!, expected.stats["min"]!, accuracy: 1e-6 * max(1, abs(expected.stats["min"]!)))
                XCTAssertEqual(stats.maximum!, expected.stats["max"]!, accuracy: 1e-6 * max(1, abs(expected.stats["max"]!)))
                XCTAssertEqual(stats.mean!, expected.stats["mean"]!, accuracy: 1e-6 * max(1, abs(expected.stats["mean"]!)))
                XCTAssertEqual(stats.standardDeviation!, expected.stats["std"]!,
                               accuracy: 1e-5 * max(1, expected.stats["std"]!))
            }
        }
    }

    func testEquivalentBitpixOfScaledAndUnsignedIntegers() throws {
        XCTAssertEqual(try FITSFile(path: fixture("uint16.fits")).hduInfo(0).bitpix, 20)  // USHORT_IMG
        XCTAssertEqual(try FITSFile(path: fixture("scaled_int16.fits")).hduInfo(0).bitpix, -32)
        let uint16 = try FITSFile(path: fixture("uint16.fits")).readImage()
        XCTAssertGreaterThan(uint16.pixels.max()!, 32767)  // BZERO 32768 applied
    }

    func testBlankBecomesNaN() throws {
        let image = try FITSFile(path: fixture("scaled_int16.fits")).readImage()
        XCTAssertTrue(image[x: 0, y: 0].isNaN)
        XCTAssertTrue(image[x: 7, y: 5].isNaN)
        XCTAssertEqual(image.statistics.blankCount, 2)
        XCTAssertFalse(image[x: 1, y: 0].isNaN)
    }

    func testHDUsByIndexAndName() throws {
        let file = try FITSFile(path: fixture("mef.fits"))
        XCTAssertEqual(try file.index(of: "SCI"), 1)
        XCTAssertEqual(try file.index(of: "err"), 2)
        XCTAssertEqual(try file.index(of: "PRIMARY"), 0)
        XCTAssertEqual(try file.readImage("ERR").pixels.allSatisfy { $0 == 2.5 }, true)
        XCTAssertEqual(try file.readImage("SCI"), try file.readImage(1))
        XCTAssertEqual(try file.hduInfo("CAT").kind, .binaryTable)
        XCTAssertEqual(try file.header("SCI").string("EXTNAME"), "SCI")
    }

    func testCubeReadsInFITSOrder() throws {
        let cube = try FITSFile(path: fixture("cube.fits")).readImage()
        XCTAssertEqual(cube.shape, [20, 12, 5])
        let expected = expectedFixtures["cube.fits"]![0].data!
        XCTAssertEqual(Double(cube[x: 3, y: 2, plane: 4]), expected[3 + 20 * (2 + 12 * 4)]!)
    }

    func testGzippedFileReadsTransparently() throws {
        let zipped = try FITSFile(path: fixture("gzipped.fits.gz")).readImage()
        let plain = try FITSFile(path: fixture("bitpix-32.fits")).readImage()
        XCTAssertEqual(zipped.shape, plain.shape)
        XCTAssertTrue(zip(zipped.pixels, plain.pixels).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) })
    }

    // MARK: - Sections

    /// A section equals the same region of a full read: plain, scaled, compressed, cube.
    func testSectionEqualsRegionOfFullRead() throws {
        let cases: [(String, HDUSelector, Range<Int>, Range<Int>, Range<Int>?)] = [
            ("bitpix-32.fits", 0, 3..<17, 2..<9, nil),
            ("scaled_int16.fits", 0, 0..<20, 0..<12, nil),
            ("bitpix64.fits", 0, 19..<20, 11..<12, nil),
            ("rice.fits", 1, 5..<25, 10..<33, nil),
            ("gzip.fits", 1, 0..<7, 8..<31, nil),
            ("mef.fits", "SCI", 4..<8, 4..<8, nil),
            ("cube.fits", 0, 2..<9, 1..<11, 1..<4),
        ]
        for (name, hdu, x, y, planes) in cases {
            let file = try FITSFile(path: fixture(name))
            let full = try file.readImage(hdu)
            let section = try file.readSection(hdu, x: x, y: y, planes: planes)
            let planeRange = planes ?? 0..<1
            XCTAssertEqual(section.shape, planes == nil ? [x.count, y.count] : [x.count, y.count, planeRange.count])
            var expected: [Float] = []
            for p in planeRange { for j in y { for i in x { expected.append(full[x: i, y: j, plane: p]) } } }
            XCTAssertEqual(section.pixels.count, expected.count, name)
            XCTAssertTrue(zip(section.pixels, expected).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) }, name)
        }
    }

    func testSectionOfWholeCubeDefaultsToAllPlanes() throws {
        let file = try FITSFile(path: fixture("cube.fits"))
        let section = try file.readSection(x: 0..<20, y: 0..<12)
        XCTAssertEqual(section.shape, [20, 12, 5])
        XCTAssertEqual(section.pixels, try file.readImage().pixels)
    }

    func testReadIntoBuffer() throws {
        let file = try FITSFile(path: fixture("bitpix16.fits"))
        var buffer = [Float](repeating: -1, count: 240)
        let shape = try buffer.withUnsafeMutableBufferPointer { try file.readImage(into: $0) }
        XCTAssertEqual(shape, [20, 12])
        XCTAssertEqual(buffer, try file.readImage().pixels)
    }

    // MARK: - Tables

    func testBinaryTableColumns() throws {
        let table = try FITSFile(path: fixture("mef.fits")).readTable("CAT")
        XCTAssertEqual(table.rowCount, 4)
        XCTAssertEqual(table.columns.map(\.name), ["ID", "FLUX", "MAG", "NAME"])
        XCTAssertEqual(table["ID"]?.values, .int32([0, 1, 2, 3]))
        XCTAssertEqual(table["FLUX"]?.values, .double([1.5, 2.25, -3.0, 1e10]))
        XCTAssertEqual(table["MAG"]?.values, .float([20.5, 21, 19.25, 18]))
        XCTAssertEqual(table["MAG"]?.unit, "mag")
        XCTAssertEqual(table["NAME"]?.values, .string(["m13", "ngc1300", "a", "b b"]))
    }
}
