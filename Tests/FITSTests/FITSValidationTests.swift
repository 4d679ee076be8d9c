// Damaged headers give a typed error naming the keyword before cfitsio divides by,
// allocates from or loops over their values (issue 14: SIGFPE, hangs, huge allocations).
@testable import FITS
import Foundation
import TestSupport
import XCTest

final class FITSValidationTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = try makeTemporaryDirectory("fits-validation")
    }

    override func tearDown() {
        try? FileManager.default.removeItem(at: directory)
    }

    /// A copy of fixture `name` with the value of the `occurrence`-th card `keyword`
    /// replaced by `value` (columns 11-80, the card layout kept).
    private func edited(_ name: String, _ keyword: String, _ value: String, occurrence: Int = 1) throws -> String {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: fixture(name))))
        let key = Array(keyword.padding(toLength: 8, withPad: " ", startingAt: 0).utf8) + Array("= ".utf8)
        var seen = 0
        for offset in stride(from: 0, to: bytes.count - 80, by: 80) where Array(bytes[offset..<offset + 10]) == key {
            seen += 1
            guard seen == occurrence else { continue }
            let text = Array(String(repeating: " ", count: max(0, 20 - value.count)).utf8) + Array(value.utf8)
            let padded = text + [UInt8](repeating: 0x20, count: 70 - text.count)
            bytes.replaceSubrange(offset + 10..<offset + 80, with: padded)
            let path = directory.appendingPathComponent("\(keyword)-\(occurrence)-\(name)").path
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            return path
        }
        XCTFail("\(name) has no card \(keyword) #\(occurrence)")
        return fixture(name)
    }

    /// Each damaged card, the keyword the error must name, and a read that reaches it.
    func testDamagedKeywordsAreNamed() throws {
        let cases: [(file: String, keyword: String, value: String, named: String)] = [
            ("rice.fits", "ZTILE1", "0", "ZTILE1"),                   // cfitsio divides by it (SIGFPE)
            ("rice.fits", "ZVAL1", "0.0", "ZVAL1"),                   // BLOCKSIZE 0: SIGFPE in the Rice decoder
            ("rice.fits", "ZVAL2", "3", "ZVAL2"),                     // BYTEPIX
            ("rice.fits", "ZNAXIS1", "9223372036854775807", "ZNAXIS1...ZNAXIS2"),
            ("rice.fits", "ZNAXIS2", "4000000", "NAXIS2"),            // 100,000 tiles in a 40-row table
            ("rice.fits", "ZBITPIX", "17", "ZBITPIX"),
            ("rice.fits", "ZTILE2", "-5", "ZTILE2"),
            ("bitpix16.fits", "NAXIS2", "9223372036854775807", "NAXIS1...NAXIS2"),  // SIGSEGV before
            ("mef.fits", "TFORM1", "'2147483647E'", "TFORM1"),
        ]
        for item in cases {
            let path = try edited(item.file, item.keyword, item.value)
            assertThrowsFITSError(try readEverything(path), mentioning: path) {
                guard case let .invalidKeyword(_, _, keyword, _, expected) = $0 else { return false }
                return keyword == item.named && !expected.isEmpty
            }
        }
    }

    /// Sizes that do not fit in the file are `.truncated`, found from the header alone.
    func testHugeDataIsTruncatedNotAllocated() throws {
        let path = try edited("bitpix16.fits", "NAXIS2", "100000000")
        assertThrowsFITSError(try FITSFile(path: path).readImage(), mentioning: path) {
            if case let .truncated(_, hdu, expected, actual) = $0 {
                // Header block + the data padded to whole 2,880-byte blocks.
                return hdu == 0 && expected == 2880 + (20 * 100_000_000 * 2 + 2879) / 2880 * 2880 && actual == 5760
            }
            return false
        }
        // The same for a table's rows (NAXIS2 of HDU 3, the third NAXIS2 card).
        let rows = try edited("mef.fits", "NAXIS2", "999999999999", occurrence: 3)
        assertThrowsFITSError(try readEverything(rows), mentioning: rows) {
            if case let .truncated(_, hdu, _, _) = $0 { return hdu == 3 }
            return false
        }
    }

    /// ZPCOUNT of 2^32 made cfitsio's header conversion zero-fill a 4 GB memory file (a
    /// 2-minute hang). The header is converted card by card now: it reads at once and
    /// shows what the file says.
    func testHugeZPCOUNTReadsQuickly() throws {
        let path = try edited("gzip.fits", "ZPCOUNT", "4294967296")
        let start = Date()
        let header = try FITSFile(path: path).header(1)
        XCTAssertEqual(header.integer("PCOUNT"), 4_294_967_296)
        XCTAssertLessThan(Date().timeIntervalSince(start), 2)
        XCTAssertEqual(try FITSFile(path: path).readImage(1).pixels.count,
                       try FITSFile(path: fixture("gzip.fits")).readImage(1).pixels.count)
    }

    /// The converted header of a compressed HDU equals the one cfitsio builds where
    /// cfitsio manages (fixtures written by astropy 8: structural cards first, no table
    /// or compression keywords).
    func testCompressedHeadersKeepOnlyImageCards() throws {
        for name in ["rice.fits", "gzip.fits", "hcompress.fits", "plio.fits"] {
            let header = try FITSFile(path: fixture(name)).header(1)
            let keywords = header.records.map(\.keyword)
            XCTAssertEqual(Array(keywords.prefix(3)), ["XTENSION", "BITPIX", "NAXIS"], name)
            XCTAssertEqual(header.string("XTENSION"), "IMAGE", name)
            for table in ["TFIELDS", "TTYPE1", "TFORM1", "ZIMAGE", "ZCMPTYPE", "ZTILE1", "ZNAME1", "ZBITPIX", "THEAP"] {
                XCTAssertNil(header[table], "\(name) shows \(table)")
            }
            let info = try FITSFile(path: fixture(name)).hduInfo(1)
            XCTAssertEqual(header.integer("NAXIS"), info.shape.count, name)
            XCTAssertEqual(header.integer("NAXIS1"), info.shape[0], name)
        }
    }

    /// The inputs the fuzzers found (fuzz/regressions/fits, replayed by scripts/fuzz.sh
    /// too) read or give a typed error naming the file; before, cfitsio crashed on each.
    /// The damaged PLIO and HCOMPRESS tiles (compressed-*, image-*) are `.damagedData`.
    func testFuzzRegressions() throws {
        let folder = repositoryRoot.appendingPathComponent("fuzz/regressions/fits")
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        XCTAssertGreaterThanOrEqual(names.count, 4)
        for name in names {
            let path = folder.appendingPathComponent(name).path
            let damagedTiles = name.hasPrefix("compressed-") || name.hasPrefix("image-")
            do {
                try readEverything(path)
                XCTAssertFalse(damagedTiles, "\(name) read without error")
            } catch let error as FITSError {
                XCTAssertTrue(error.localizedDescription.contains(path), error.localizedDescription)
                if damagedTiles, case .damagedData = error {} else if damagedTiles {
                    XCTFail("\(name): \(error)")
                }
            }
        }
    }

    /// The three findings diagnosed after the first fuzz runs, each stopped before cfitsio
    /// by the check named in its error (fuzz/regressions/fits, docs/fits.md "Fuzzing").
    func testFuzzFindingsStoppedBeforeCfitsio() throws {
        let folder = repositoryRoot.appendingPathComponent("fuzz/regressions/fits")
        // 0xFF bytes in cards 6-7 (or a damaged GCOUNT keyword) of a table header:
        // cfitsio's ffgttb left the field count unset and ffbinit callocs from it.
        // An XTENSION card with bytes before its "=" (cfitsio still reads 'BINTABLE' from it).
        let tables = [("header-table-cards-e82fa763da67.fits", 1, "PCOUNT", "card 6 with bytes outside printable ASCII"),
                      ("table-table-cards-bacf8598d865.fits", 3, "GCOUNT", "card 7 with bytes outside printable ASCII"),
                      ("table-xtension-value-after-garbage-a25b2720b114.fits", 1, "XTENSION", "card 1 with bytes outside printable ASCII")]
        for (name, hdu, named, found) in tables {
            let path = folder.appendingPathComponent(name).path
            assertThrowsFITSError(try FITSFile(path: path), mentioning: path) {
                guard case let .invalidKeyword(_, errorHDU, keyword, value, expected) = $0 else { return false }
                return errorHDU == hdu && keyword == named && value == found && expected.contains("TFIELDS")
            }
        }
        // A second ZTILEn card (a string) after ZCMPTYPE: cfitsio read that one and divided by
        // zero in imcomp_get_compressed_image_par (found by the run that tested the fixes).
        for (name, named) in [("header-duplicate-ztile1-976abe7f7d2e.fits", "ZTILE1"),
                              ("table-duplicate-ztile2-6d319ab9f1ad.fits", "ZTILE2")] {
            let path = folder.appendingPathComponent(name).path
            assertThrowsFITSError(try FITSFile(path: path), mentioning: path) {
                guard case let .invalidKeyword(_, hdu, keyword, value, _) = $0 else { return false }
                return hdu == 1 && keyword == named && value == "(two cards)"
            }
        }
        // "ZTILE1  =0                   7": cfitsio reads "=" in column 9 as a value
        // indicator, takes 0 and leaves "7" as the comment, then divides by it.
        let trailing = folder.appendingPathComponent("header-ztile-value-with-trailing-digits.fits").path
        assertThrowsFITSError(try FITSFile(path: trailing), mentioning: trailing) {
            guard case let .invalidKeyword(_, hdu, keyword, value, _) = $0 else { return false }
            return hdu == 1 && keyword == "ZTILE1" && value == "0                   7"
        }
        // "TTYPE1  = <70 bytes without quotes>": cfitsio keeps the unquoted token as the column
        // name and strcpy's it into its 70-byte ttype (glibc's fortify check aborted in ffgtbp).
        let ttype = folder.appendingPathComponent("header-ttype-unquoted-70-bytes-525cd6d2be4a.fits").path
        assertThrowsFITSError(try FITSFile(path: ttype).hdus(), mentioning: ttype) {
            guard case let .invalidKeyword(_, hdu, keyword, value, _) = $0 else { return false }
            return hdu == 1 && keyword == "TTYPE1" && value == "(70 bytes without quotes)"
        }
        // "ZIMAGE  =   TX EEND ... T": cfitsio reads the logical from its first character (true),
        // so the header is a compressed image's and "ZTILE2  =     0             10" is checked.
        let zimage = folder.appendingPathComponent("table-zimage-tx-ztile2-0-fde218fb0457.fits").path
        assertThrowsFITSError(try FITSFile(path: zimage).hdus(), mentioning: zimage) {
            guard case let .invalidKeyword(_, hdu, keyword, value, _) = $0 else { return false }
            return hdu == 1 && keyword == "ZTILE2" && value == "0             10"
        }
        // A damaged table whose string column cfitsio fails to read part-way: the rows it did not
        // write were unterminated buffers (ASan: strlen past the end). Now a typed error, or
        // strings no longer than the field. (The ASan replay is scripts/fuzz.sh's regression step.)
        let strings = folder.appendingPathComponent("table-string-column-unterminated-67d4da2460c3.fits").path
        do {
            let file = try FITSFile(path: strings)
            for info in try file.hdus() where info.kind == .binaryTable {
                let table = try file.readTable(.index(info.index))
                if case let .string(names)? = table["NAME"]?.values {
                    XCTAssert(names.allSatisfy { $0.utf8.count <= 8 }, "\(names)")
                }
            }
        } catch let error as FITSError {
            XCTAssert("\(error)".contains(strings), "\(error)")
        }
        // Keywords as cfitsio names them (to the first blank or "="): "ZIMAGE =    TX" and
        // "ZIMAGE )=    T" are ZIMAGE, so these headers are compressed images' and their bad
        // ZNAXIS1 ("0 30") and ZTILE2 (0) are refused before cfitsio divides by them.
        for (name, keyword) in [("table-zimage-keyword-equals-col8-279e69315b33.fits", "ZNAXIS1"),
                                ("header-zimage-keyword-paren-c1f0f5b27d77.fits", "ZTILE2")] {
            let path = folder.appendingPathComponent(name).path
            assertThrowsFITSError(try FITSFile(path: path).hdus(), mentioning: path) {
                guard case let .invalidKeyword(_, hdu, found, _, _) = $0 else { return false }
                return hdu == 1 && found == keyword
            }
        }
        // "XTENSION=' BINTABLE'": cfitsio ignores the leading blank, so a binary table and a
        // compressed image whose ZTILE2 = 0 it divided by. The card itself breaks the standard's
        // "= " and is refused first; written properly, and as 'A3DTABLE' and '3DTABLE' (binary
        // tables to cfitsio too), the header is checked as a compressed image's.
        let blank = folder.appendingPathComponent("table-xtension-leading-blank-ztile2-0-1214835ca94e.fits")
        assertThrowsFITSError(try FITSFile(path: blank.path).hdus(), mentioning: blank.path) {
            guard case let .invalidKeyword(_, hdu, keyword, _, _) = $0 else { return false }
            return hdu == 1 && keyword == "XTENSION"
        }
        let bytes = try Data(contentsOf: blank)
        let scratch = try makeTemporaryDirectory("xtension")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let card = 2880  // the table header's first card
        XCTAssertEqual(String(decoding: bytes[card..<card + 20], as: UTF8.self), "XTENSION=' BINTABLE'")
        for spelling in ["' BINTABLE'", "'A3DTABLE'", "'3DTABLE'"] {
            let path = scratch.appendingPathComponent("blend.fits").path
            var changed = bytes
            let text = "XTENSION= \(spelling)".padding(toLength: 80, withPad: " ", startingAt: 0)
            changed.replaceSubrange(card..<card + 80, with: Data(text.utf8))
            try changed.write(to: URL(fileURLWithPath: path))
            assertThrowsFITSError(try FITSFile(path: path).hdus(), mentioning: path) {
                guard case let .invalidKeyword(_, hdu, keyword, value, _) = $0 else { return false }
                return hdu == 1 && keyword == "ZTILE2" && value == "0"
            }
        }
        XCTAssertEqual(FITSFile.tableType("  TABLE"), .ascii)
        XCTAssertEqual(FITSFile.tableType(" bintable"), .binary)
        XCTAssertNil(FITSFile.tableType("IMAGE"))
        let cards: [(String, String?, String?)] = [("ZIMAGE )=                    T", "ZIMAGE", "T"),
                                                   ("ZTILE1 X = 5", "ZTILE1", "5"), ("ZTILE1  =0   7", "ZTILE1", "0   7"),
                                                   ("HISTORY ZTILE1 = 4", nil, nil), ("        = 3", nil, nil),
                                                   ("ZTILE1", nil, nil)]
        for (text, name, value) in cards {
            let card = ArraySlice(Array(text.padding(toLength: 80, withPad: " ", startingAt: 0).utf8))
            let parsed = FITSFile.valueCard(card)
            XCTAssertEqual(parsed?.name, name, text)
            XCTAssertEqual(parsed.map { FITSFile.valueText($0.value) }, value, text)
        }
        // "ZVAL2   =             (      2": cfitsio's ffc2j overflowed its error message
        // (glibc aborted); a ZVALn that is no number is refused.
        let zval = folder.appendingPathComponent("header-zval2-not-a-number-2050565c352a.fits").path
        assertThrowsFITSError(try FITSFile(path: zval).hdus(), mentioning: zval) {
            guard case let .invalidKeyword(_, hdu, keyword, value, _) = $0 else { return false }
            return hdu == 1 && keyword == "ZVAL2" && value == "(      2"
        }
        // Rice tile data changed: the decoder would read past the tile.
        let rice = folder.appendingPathComponent("image-rice-tile-data-dbf5db9dd6ef.fits").path
        assertThrowsFITSError(try FITSFile(path: rice).readImage(1), mentioning: rice) {
            guard case let .damagedData(_, hdu, what) = $0 else { return false }
            return hdu == 1 && what.hasPrefix("Rice tile ") && what.contains("30 pixels")
                && what.contains("blocks of 32, 2 bytes per pixel")
        }
        // A GZIP tile whose stream lacks its last byte: cfitsio reallocated forever.
        let gzip = folder.appendingPathComponent("compressed-gzip-tile-truncated-47bf050ae55b.fits").path
        let start = Date()
        assertThrowsFITSError(try FITSFile(path: gzip).readImage(1), mentioning: gzip) {
            guard case let .damagedData(_, hdu, what) = $0 else { return false }
            return hdu == 1 && what == "GZIP tile 1 ends before its compressed stream does (50 bytes)"
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 2)
    }

    /// The tile checks accept every valid compressed fixture, section reads included, and
    /// a Rice header whose ZNAME1/ZNAME2 are swapped reads as cfitsio takes it (ZVAL1 as
    /// the block size by position).
    func testTileChecksAcceptValidTiles() throws {
        for name in ["rice.fits", "gzip.fits", "hcompress.fits", "plio.fits", "compressed_bzero.fits", "compressed_two_ext.fits"] {
            let path = fixture(name)
            guard FileManager.default.fileExists(atPath: path) else { continue }
            XCTAssertNoThrow(try readEverything(path), name)
        }
        XCTAssertTrue(FITSFile.riceParameters(zval1: "2", zval2: "32") == (32, 2))
        XCTAssertTrue(FITSFile.riceParameters(zval1: nil, zval2: nil) == (32, 4))
    }

    /// A Rice tile's bit stream must end within the tile; a gzip stream must end within
    /// its bytes and stay below its bound.
    func testRiceWalkAndInflateBound() throws {
        // One 16-bit pixel (first value), then a block with FS = -1 (4 zero bits): all
        // pixels equal; needs exactly 3 bytes.
        XCTAssertTrue(FITSFile.riceTileFits([0, 7, 0], pixels: 30, blockSize: 32, bytePix: 2))
        XCTAssertFalse(FITSFile.riceTileFits([0, 7], pixels: 30, blockSize: 32, bytePix: 2))
        // FS = 0 (bits 0001) then all-zero bytes: the leading-zero count runs off the end.
        XCTAssertFalse(FITSFile.riceTileFits([0, 7, 0x10, 0, 0, 0], pixels: 30, blockSize: 32, bytePix: 2))
        let zeros = try gzipped([UInt8](repeating: 0, count: 4096))
        XCTAssertNil(FITSFile.gzipTileProblem(zeros, limit: 4096))
        XCTAssertEqual(FITSFile.gzipTileProblem(zeros, limit: 4095), "inflates to more than 4095 bytes (511 pixels of at most 8 bytes)")
        XCTAssertEqual(FITSFile.gzipTileProblem(Array(zeros.dropLast()), limit: 4096),
                       "ends before its compressed stream does (\(zeros.count - 1) bytes)")
        XCTAssertNotNil(FITSFile.gzipTileProblem([0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff], limit: 4096))
    }

    private func gzipped(_ bytes: [UInt8]) throws -> [UInt8] {
        let input = directory.appendingPathComponent("plain.bin")
        try Data(bytes).write(to: input)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/gzip")
        process.arguments = ["-kf", input.path]
        try process.run()
        process.waitUntilExit()
        return [UInt8](try Data(contentsOf: input.appendingPathExtension("gz")))
    }

    /// Everything `astrolabe inspect --stats` reads: every HDU's description, header and,
    /// for images and tables, data.
    private func readEverything(_ path: String) throws {
        let file = try FITSFile(path: path)
        for info in try file.hdus() {
            _ = try file.header(.index(info.index))
            if info.kind == .image, info.elementCount > 0 { _ = try file.readImage(.index(info.index)) }
            if info.kind == .binaryTable { _ = try file.readTable(.index(info.index)) }
        }
    }
}
