// Malformed and missing inputs give a typed FITSError with a clear message, never a crash.
import FITS
import Foundation
import TestSupport
import XCTest

final class FITSErrorTests: XCTestCase {
    func testTruncatedFile() {
        let path = fixture("truncated.fits")
        assertThrowsFITSError(try FITSFile(path: path).readImage(), mentioning: path) {
            if case let .truncated(_, hdu, expected, actual) = $0 {
                return hdu == 0 && expected == 2 * 2880 && actual == 3880
            }
            return false
        }
        // Listing the HDUs already notices it (what `inspect` does).
        assertThrowsFITSError(try FITSFile(path: path).hdus(), mentioning: path) {
            if case .truncated = $0 { return true }
            return false
        }
    }

    /// A file cut inside its header, and one cut inside the padding of its last block
    /// (astropy would warn; cfitsio cannot read it), are `.truncated` too; and no
    /// cfitsio message of one file leaks into the next file's error.
    func testTruncatedHeaderAndPadding() throws {
        let directory = try makeTemporaryDirectory("fits-truncated")
        defer { try? FileManager.default.removeItem(at: directory) }
        let whole = try Data(contentsOf: URL(fileURLWithPath: fixture("bitpix16.fits")))
        let header = directory.appendingPathComponent("header-cut.fits").path
        let padding = directory.appendingPathComponent("padding-cut.fits").path
        try whole.prefix(1000).write(to: URL(fileURLWithPath: header))
        try whole.prefix(2880 + 480 + 10).write(to: URL(fileURLWithPath: padding))  // data: 480 bytes
        assertThrowsFITSError(try FITSFile(path: header), mentioning: header) {
            $0 == .truncated(path: header, hdu: 0, expectedBytes: 2880, actualBytes: 1000)
        }
        assertThrowsFITSError(try FITSFile(path: padding).hdus(), mentioning: padding) {
            $0 == .truncated(path: padding, hdu: 0, expectedBytes: 5760, actualBytes: 3370)
        }
        do {
            _ = try FITSFile(path: fixture("garbage.fits"))
        } catch {
            XCTAssertFalse(error.localizedDescription.contains("header-cut"), error.localizedDescription)
        }
    }

    func testGarbageHeader() {
        let path = fixture("garbage.fits")
        assertThrowsFITSError(try FITSFile(path: path), mentioning: path) {
            if case let .cfitsio(status, message, operation, _, _) = $0 {
                return status != 0 && operation == "open" && !message.isEmpty
            }
            return false
        }
    }

    /// Binary noise: cfitsio quotes the bytes it found; the message stays printable ASCII
    /// on one line.
    func testBinaryNoiseGivesPrintableMessage() throws {
        let directory = try makeTemporaryDirectory("fits-noise")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("noise.fits").path
        var state: UInt32 = 12345
        let bytes = (0..<6000).map { _ -> UInt8 in
            state = state &* 1_664_525 &+ 1_013_904_223
            return UInt8(truncatingIfNeeded: state >> 24)
        }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        assertThrowsFITSError(try FITSFile(path: path), mentioning: path) {
            guard case let .cfitsio(_, message, _, _, _) = $0 else { return false }
            return message.unicodeScalars.allSatisfy { (0x20...0x7e).contains($0.value) }
        }
    }

    /// A short file that does not begin as FITS does is named for what it is, not "truncated";
    /// a FITS header cut short is still `.truncated`.
    func testShortNonFITSFileIsNotCalledTruncated() throws {
        let directory = try makeTemporaryDirectory("fits-text")
        defer { try? FileManager.default.removeItem(at: directory) }
        let text = directory.appendingPathComponent("page.fits").path
        try Data("<html>\n\tnot found".utf8).write(to: URL(fileURLWithPath: text))
        assertThrowsFITSError(try FITSFile(path: text), mentioning: text) { $0 == .notFITS(path: text, start: "<html>..not found") }
        XCTAssert(FITSError.notFITS(path: text, start: "<html>").localizedDescription.contains("is not a FITS file: it begins with '<html>'"))
        let cut = directory.appendingPathComponent("cut.fits").path
        try Data("SIMPLE  =                    T".utf8).write(to: URL(fileURLWithPath: cut))
        assertThrowsFITSError(try FITSFile(path: cut), mentioning: cut) {
            if case .truncated = $0 { return true }
            return false
        }
    }

    func testZeroBytes() {
        let path = fixture("empty.fits")
        assertThrowsFITSError(try FITSFile(path: path), mentioning: path) { $0 == .emptyFile(path: path) }
    }

    func testDirectory() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        assertThrowsFITSError(try FITSFile(path: directory.path), mentioning: directory.path) {
            $0 == .notAFile(path: directory.path)
        }
    }

    func testMissingFile() {
        let path = fixture("no-such-file.fits")
        assertThrowsFITSError(try FITSFile(path: path), mentioning: path) { $0 == .fileNotFound(path: path) }
    }

    func testMissingHDUByIndexAndName() throws {
        let path = fixture("mef.fits")
        let file = try FITSFile(path: path)
        assertThrowsFITSError(try file.readImage(7), mentioning: path) {
            $0 == .hduNotFound(path: path, selector: "7", count: 4)
        }
        assertThrowsFITSError(try file.header("NOPE"), mentioning: path) {
            $0 == .hduNotFound(path: path, selector: "'NOPE'", count: 4)
        }
        // The handle is still usable afterwards.
        XCTAssertEqual(try file.readImage("SCI").shape, [20, 12])
    }

    func testTableIsNotAnImage() throws {
        let path = fixture("mef.fits")
        let file = try FITSFile(path: path)
        assertThrowsFITSError(try file.readImage("CAT"), mentioning: path) { $0 == .notAnImage(path: path, hdu: 3) }
        assertThrowsFITSError(try file.readImage(0), mentioning: path) { $0 == .notAnImage(path: path, hdu: 0) }
        assertThrowsFITSError(try file.readTable(1), mentioning: path) { $0 == .notATable(path: path, hdu: 1) }
    }

    func testSectionOutOfBounds() throws {
        let path = fixture("bitpix-32.fits")
        let file = try FITSFile(path: path)
        assertThrowsFITSError(try file.readSection(x: 10..<21, y: 0..<5), mentioning: path) {
            if case .sectionOutOfBounds = $0 { return true }
            return false
        }
        assertThrowsFITSError(try file.readSection(x: 0..<0, y: 0..<5), mentioning: path) {
            if case .sectionOutOfBounds = $0 { return true }
            return false
        }
    }

    func testBufferOfWrongSize() throws {
        let path = fixture("bitpix-32.fits")
        var buffer = [Float](repeating: 0, count: 10)
        assertThrowsFITSError(try buffer.withUnsafeMutableBufferPointer { try FITSFile(path: path).readImage(into: $0) },
                              mentioning: path) { $0 == .shapeMismatch(path: path, expected: [20, 12], received: 10) }
    }

    /// Use after close() is a typed error, not a crash; close() twice is harmless.
    func testUseAfterClose() throws {
        let path = fixture("bitpix8.fits")
        let file = try FITSFile(path: path)
        try file.close()
        try file.close()
        assertThrowsFITSError(try file.readImage(), mentioning: path) { $0 == .closed(path: path) }
        let writer = try FITSWriter(path: FileManager.default.temporaryDirectory
            .appendingPathComponent("closed-\(getpid()).fits").path)
        try writer.commit()
        defer { try? FileManager.default.removeItem(atPath: writer.path) }
        assertThrowsFITSError(try writer.appendImage(mask: [1], shape: [1]), mentioning: writer.path) {
            $0 == .closed(path: writer.path)
        }
        XCTAssertEqual(try FITSFile(path: writer.path).hduCount(), 1)  // an empty primary HDU
    }

    /// Every message says what is wrong and names the file.
    func testMessagesAreOneLineAndNameTheFile() {
        let errors: [FITSError] = [
            .cfitsio(status: 252, message: "1st key not SIMPLE", operation: "open", path: "a.fits", hdu: nil),
            .fileNotFound(path: "a.fits"), .notAFile(path: "a.fits"), .emptyFile(path: "a.fits"),
            .truncated(path: "a.fits", hdu: 0, expectedBytes: 10, actualBytes: 5), .notFITS(path: "a.fits", start: "<html>"),
            .hduNotFound(path: "a.fits", selector: "3", count: 1), .notAnImage(path: "a.fits", hdu: 1),
            .notATable(path: "a.fits", hdu: 0), .unsupported(path: "a.fits", hdu: 2, what: "vector column"),
            .outputExists(path: "a.fits"), .shapeMismatch(path: "a.fits", expected: [2, 2], received: 3),
            .sectionOutOfBounds(path: "a.fits", hdu: 0, section: "x 0..<9", shape: [4, 4]),
            .closed(path: "a.fits"),
        ]
        for error in errors {
            let message = error.localizedDescription
            XCTAssertTrue(message.contains("a.fits"), message)
            XCTAssertFalse(message.contains("\n"), message)
        }
    }
}
