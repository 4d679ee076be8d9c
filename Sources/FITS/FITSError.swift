// FITSError: the one error type of the FITS module, and the one helper that turns
// a cfitsio status into it.
import CFITSIO
import Foundation

/// Everything that can go wrong reading or writing a FITS file.
///
/// Each case carries the path and, where one is involved, the HDU (counted from 0,
/// as in astropy). `errorDescription` says what is wrong, what was expected and what
/// to do; the command-line tool prints it after the file name.
public enum FITSError: Error, Equatable, LocalizedError {
    /// cfitsio reported a non-zero status. `message` is cfitsio's own text (its status
    /// description followed by its error-message stack); `operation` names the call.
    case cfitsio(status: Int32, message: String, operation: String, path: String, hdu: Int?)
    /// No file or directory exists at `path`.
    case fileNotFound(path: String)
    /// `path` exists but is a directory or another non-regular file.
    case notAFile(path: String)
    /// The file has zero bytes.
    case emptyFile(path: String)
    /// The file ends before the data of `hdu` does.
    case truncated(path: String, hdu: Int, expectedBytes: Int, actualBytes: Int)
    /// The file is shorter than a FITS header block and does not begin as FITS files do
    /// (`SIMPLE`): not a cut-off FITS file but something else; `start` is its first bytes.
    case notFITS(path: String, start: String)
    /// No HDU matches `selector` (an index or an EXTNAME); the file has `count` HDUs.
    case hduNotFound(path: String, selector: String, count: Int)
    /// The HDU is a table (or has no data) where an image was needed.
    case notAnImage(path: String, hdu: Int)
    /// The HDU is not a binary table where one was needed.
    case notATable(path: String, hdu: Int)
    /// The file uses something this module does not read or write.
    case unsupported(path: String, hdu: Int?, what: String)
    /// A write would replace an existing file and `overwrite` was not set.
    case outputExists(path: String)
    /// Pixel or column data do not match the declared shape.
    case shapeMismatch(path: String, expected: [Int], received: Int)
    /// A section lies (partly) outside the image.
    case sectionOutOfBounds(path: String, hdu: Int, section: String, shape: [Int])
    /// A file was used after `close()`, or a writer after `commit()` or a failed write.
    case closed(path: String)
    /// A header keyword has a value that cannot describe valid data (checked before
    /// cfitsio uses it to size, allocate or divide): `value` as found, `expected` in words.
    case invalidKeyword(path: String, hdu: Int, keyword: String, value: String, expected: String)
    /// The data of an HDU are damaged in a way cfitsio would not survive (`what` says where).
    case damagedData(path: String, hdu: Int, what: String)

    public var errorDescription: String? {
        switch self {
        case let .cfitsio(status, message, operation, path, hdu):
            return "\(operation) failed\(Self.hduText(hdu)) in \(path): \(message) "
                + "(cfitsio status \(status)); check that the file is a complete, valid FITS file."
        case let .fileNotFound(path):
            return "no such file: \(path); check the path and the current directory."
        case let .notAFile(path):
            return "\(path) is a directory, not a FITS file; pass the files inside it (e.g. \(path)/*.fits)."
        case let .emptyFile(path):
            return "\(path) is empty (0 bytes); a FITS file holds at least one 2880-byte header block."
        case let .truncated(path, hdu, expected, actual):
            return "\(path) is truncated: HDU \(hdu) needs \(expected) bytes but the file has \(actual); "
                + "the copy or download was probably interrupted."
        case let .notFITS(path, start):
            return "\(path) is not a FITS file: it begins with '\(start)' where a FITS file begins with 'SIMPLE  ='; "
                + "check that it is the file you meant (a text or web page saved as .fits?)."
        case let .hduNotFound(path, selector, count):
            return "\(path) has no HDU \(selector); it has \(count) HDU\(count == 1 ? "" : "s") "
                + "(indices 0...\(max(count - 1, 0))); use `astrolabe inspect` to list them."
        case let .notAnImage(path, hdu):
            return "HDU \(hdu) of \(path) is not an image (a table or an empty HDU); select an image HDU."
        case let .notATable(path, hdu):
            return "HDU \(hdu) of \(path) is not a binary table; select a BINTABLE HDU."
        case let .unsupported(path, hdu, what):
            return "\(path)\(Self.hduText(hdu)): unsupported: \(what)."
        case let .outputExists(path):
            return "\(path) already exists; choose another name or pass overwrite (--overwrite) to replace it."
        case let .shapeMismatch(path, expected, received):
            let count = expected.reduce(1, *)
            return "\(path): shape \(expected) needs \(count) values but \(received) were given."
        case let .sectionOutOfBounds(path, hdu, section, shape):
            return "section \(section) is outside image HDU \(hdu) of \(path), whose shape is \(shape) "
                + "(NAXIS1, NAXIS2, ...); ranges are 0-based and half-open."
        case let .closed(path):
            return "\(path) is closed (closed, committed or after a failed write); open or create it again."
        case let .invalidKeyword(path, hdu, keyword, value, expected):
            return "\(path) (HDU \(hdu)): invalid \(keyword) = \(value); expected \(expected). "
                + "The header is damaged or was written wrongly."
        case let .damagedData(path, hdu, what):
            return "\(path) (HDU \(hdu)): damaged data: \(what); the file is corrupt."
        }
    }

    private static func hduText(_ hdu: Int?) -> String {
        hdu.map { " (HDU \($0))" } ?? ""
    }
}

/// Turns a cfitsio status into a thrown `FITSError.cfitsio`, or does nothing for 0.
///
/// Every cfitsio call in this module goes through here. The message joins cfitsio's
/// short status text (`fits_get_errstatus`) with its error-message stack
/// (`fits_read_errmsg`), which names the keyword or byte offset at fault. The stack
/// is process-wide in cfitsio; under concurrent failures a message may belong to
/// another thread's error, the status text never does.
@inline(__always)
func check(_ status: Int32, _ operation: @autoclosure () -> String,
           path: String, hdu: Int? = nil) throws {
    if status != 0 {
        throw cfitsioError(status, operation: operation(), path: path, hdu: hdu)
    }
}

/// Builds the error for a non-zero cfitsio status and clears cfitsio's message stack.
func cfitsioError(_ status: Int32, operation: String, path: String, hdu: Int?) -> FITSError {
    var text = [CChar](repeating: 0, count: Int(FLEN_ERRMSG) + 1)
    ffgerr(status, &text)
    var message = String(cString: text)
    var stack: [String] = []
    var line = [CChar](repeating: 0, count: Int(FLEN_ERRMSG) + 1)
    while ffgmsg(&line) != 0 {
        // Entries may quote raw file bytes: keep the message printable and on one line.
        let bytes = line.prefix { $0 != 0 }.map { byte -> UInt8 in
            let value = UInt8(bitPattern: byte)
            return (0x20...0x7e).contains(value) ? value : (value == 0x0a || value == 0x09 ? 0x20 : 0x3f)
        }
        let entry = String(decoding: bytes, as: UTF8.self).split(separator: " ").joined(separator: " ")
        if !entry.isEmpty, !stack.contains(entry) { stack.append(entry) }
        if stack.count > 8 { break }
    }
    ffcmsg()
    if !stack.isEmpty { message += " - " + stack.joined(separator: "; ") }
    return .cfitsio(status: status, message: message, operation: operation, path: path, hdu: hdu)
}
