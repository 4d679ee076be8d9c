// Header cards: typed values, comments, COMMENT/HISTORY, CONTINUE, compressed headers.
@testable import FITS
import Foundation
import TestSupport
import XCTest

final class FITSHeaderTests: XCTestCase {
    func testTypedValues() throws {
        let header = try FITSFile(path: fixture("header.fits")).header()
        XCTAssertEqual(header["OBJECT"], .string("M13"))
        XCTAssertEqual(header.record("OBJECT")?.comment, "target name")
        XCTAssertEqual(header["EXPTIME"], .float(120.5))
        XCTAssertEqual(header["NCOMBINE"], .integer(7))
        XCTAssertEqual(header["FLAT"], .logical(true))
        XCTAssertEqual(header.logical("DARK"), false)
        XCTAssertEqual(header.string("QUOTE"), "it's here")
        XCTAssertEqual(header.double("SMALL"), 1.5e-7)
        XCTAssertEqual(header.integer("BITPIX"), -32)
        XCTAssertEqual(header.logical("SIMPLE"), true)
    }

    func testEveryKeywordMatchesAstropy() throws {
        for (name, hdus) in expectedFixtures where !name.contains("gz") || name.hasSuffix(".fits") {
            let file = try FITSFile(path: fixture(name))
            for expected in hdus {
                let header = try file.header(.index(expected.index))
                for (key, value) in expected.header {
                    let label = "\(name)[\(expected.index)] \(key)"
                    guard let actual = header[key] else { XCTFail("missing \(label)"); continue }
                    switch (actual, value) {
                    case let (.string(a), b as String): XCTAssertEqual(a, b, label)
                    case let (.logical(a), b as Bool): XCTAssertEqual(a, b, label)
                    case let (a, b as NSNumber): XCTAssertEqual(a.doubleValue ?? .nan, b.doubleValue, label)
                    default: XCTFail("\(label): \(actual) vs \(value)")
                    }
                }
            }
        }
    }

    func testContinueLongStringIsJoined() throws {
        let header = try FITSFile(path: fixture("header.fits")).header()
        let expected = expectedFixtures["header.fits"]![0].header["LONGSTR"] as! String
        XCTAssertGreaterThan(expected.count, 68)
        XCTAssertEqual(header.string("LONGSTR"), expected)
        XCTAssertEqual(header.record("LONGSTR")?.comment, "a long string")
        XCTAssertFalse(header.records.contains { $0.keyword == "CONTINUE" })
    }

    func testCommentAndHistory() throws {
        let header = try FITSFile(path: fixture("header.fits")).header()
        XCTAssertEqual(header.comments, ["first comment", "second comment"])
        XCTAssertEqual(header.history, ["made by make_fixtures.py"])
    }

    func testCompressedImageShowsImageHeader() throws {
        let header = try FITSFile(path: fixture("rice.fits")).header(1)
        XCTAssertEqual(header.integer("BITPIX"), 16)
        XCTAssertEqual(header.integer("NAXIS1"), 30)
        XCTAssertEqual(header.string("XTENSION"), "IMAGE")
        XCTAssertNil(header["ZCMPTYPE"])
    }

    func testWCSRecords() throws {
        let header = try FITSFile(path: fixture("header.fits")).header()
        let keys = Set(header.wcsRecords.map(\.keyword))
        XCTAssertEqual(keys, ["CTYPE1", "CTYPE2", "CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2", "CD1_1", "CD2_2",
                              "RADESYS", "EQUINOX"])
        for keyword in ["PC1_2", "CDELT3", "CTYPE1A", "RADESYSB", "PV2_1", "WCSAXES", "LONPOLE"] {
            XCTAssertTrue(FITSHeader.isWCSKeyword(keyword), keyword)
        }
        for keyword in ["NAXIS1", "OBJECT", "CD", "PCOUNT", "CRPIX", "DATE"] {
            XCTAssertFalse(FITSHeader.isWCSKeyword(keyword), keyword)
        }
    }

    func testFloatFormattingRoundTrips() {
        for value in [0.1, 1.5e-7, 250.4235, -7.5e-5, 1e300, 123456789.123456789, 2.0 / 3.0] {
            let digits = significantDigits(value)
            XCTAssertEqual(Double(String(format: "%.\(digits)G", value)), value)
        }
        XCTAssertEqual(formatFITSDouble(1e-5), "1.0E-05")
        XCTAssertEqual(formatFITSDouble(2), "2.0")
    }
}
