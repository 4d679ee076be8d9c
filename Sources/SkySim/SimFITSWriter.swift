// Minimal FITS writer for the simulator: a seam over cfitsio, meant to be swapped for the
// FITS module's writer once that lands. Keep it small and self-contained.
import CFITSIO
import Foundation

/// A header keyword value.
public enum HeaderValue: Sendable, Equatable {
    case string(String)
    case integer(Int)
    case real(Double)
    case logical(Bool)
}

/// One header card: keyword (≤ 8 characters), value, comment.
public struct HeaderCard: Sendable, Equatable {
    public let keyword: String
    public let value: HeaderValue
    public let comment: String
    public init(_ keyword: String, _ value: HeaderValue, _ comment: String = "") {
        precondition(keyword.count <= 8, "HeaderCard: keyword '\(keyword)' is longer than 8 characters")
        self.keyword = keyword; self.value = value; self.comment = comment
    }
}

/// Errors of the simulator: file output and bad settings.
public enum SkySimError: Error, LocalizedError, Equatable {
    /// A cfitsio call failed: the operation, the file, cfitsio's status and text.
    case fits(operation: String, path: String, status: Int32, message: String)
    /// Any other I/O failure (directory creation, rename, CSV write).
    case io(operation: String, path: String, reason: String)
    /// An option out of range: which, what was given, what is allowed.
    case invalidSetting(name: String, received: String, expected: String)

    public var errorDescription: String? {
        switch self {
        case let .fits(operation, path, status, message):
            return "FITS \(operation) failed for '\(path)': cfitsio status \(status) (\(message))."
        case let .io(operation, path, reason):
            let text = reason.hasSuffix(".") ? String(reason.dropLast()) : reason
            return "\(operation) failed for '\(path)': \(text)."
        case let .invalidSetting(name, received, expected):
            return "Invalid \(name): got \(received), expected \(expected)."
        }
    }
}

/// Writes simulator images: a float32 primary image (2-D, or 3-D cube with NAXIS3 bands)
/// plus an optional uint8 `TRUTH` image extension, atomically (temporary file + rename).
///
/// No DATE or checksum keywords are written, so equal inputs give byte-identical files.
enum SimFITSWriter {
    /// cfitsio keeps a process-wide table of open files; serialising our writes keeps this
    /// seam correct whatever thread-safety options the installed library was built with.
    private static let lock = NSLock()

    /// - Parameters:
    ///   - pixels: row-major float32 data, `shape` = [NAXIS1, NAXIS2(, NAXIS3)].
    ///   - truth: optional uint8 image of shape [NAXIS1, NAXIS2], written as EXTNAME='TRUTH'.
    static func write(pixels: [Float], shape: [Int], header: [HeaderCard],
                      truth: [UInt8]? = nil, truthHeader: [HeaderCard] = [], to url: URL) throws {
        precondition(pixels.count == shape.reduce(1, *), "SimFITSWriter: \(pixels.count) pixels for shape \(shape)")
        let path = url.path
        let temporary = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())").path
        lock.lock(); defer { lock.unlock() }
        unlink(temporary)
        var file: UnsafeMutablePointer<fitsfile>?
        try check(path, "create") { ffinit(&file, temporary, &$0) }
        var closed = false
        defer { if !closed { var s: Int32 = 0; ffclos(file, &s); unlink(temporary) } }

        var axes = shape.map { Int($0) }
        try check(path, "create primary image") { ffcrim(file, FLOAT_IMG, Int32(axes.count), &axes, &$0) }
        try writeCards(header, file, path)
        var data = pixels
        try check(path, "write primary pixels") { ffppr(file, TFLOAT, 1, Int64(data.count), &data, &$0) }

        if let truth {
            precondition(truth.count == shape[0] * shape[1], "SimFITSWriter: truth map does not match the image")
            var truthAxes = [shape[0], shape[1]]
            try check(path, "create TRUTH extension") { ffcrim(file, BYTE_IMG, 2, &truthAxes, &$0) }
            try writeCards([HeaderCard("EXTNAME", .string("TRUTH"), "per-pixel class map")] + truthHeader, file, path)
            var bytes = truth
            try check(path, "write TRUTH pixels") { ffppr(file, TBYTE, 1, Int64(bytes.count), &bytes, &$0) }
        }
        try check(path, "close") { ffclos(file, &$0) }
        closed = true
        if rename(temporary, path) != 0 {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw SkySimError.io(operation: "rename of the temporary FITS file", path: path, reason: reason)
        }
    }

    private static func writeCards(_ cards: [HeaderCard], _ file: UnsafeMutablePointer<fitsfile>?, _ path: String) throws {
        for card in cards {
            let operation = "write keyword \(card.keyword)"
            switch card.value {
            case .string(let text):
                try check(path, operation) { status in
                    ffpkys(file, card.keyword, text, card.comment, &status)
                }
            case .integer(let value):
                try check(path, operation) { ffpkyj(file, card.keyword, Int64(value), card.comment, &$0) }
            case .real(let value):
                try check(path, operation) { ffpkyd(file, card.keyword, value, -15, card.comment, &$0) }
            case .logical(let value):
                try check(path, operation) { ffpkyl(file, card.keyword, value ? 1 : 0, card.comment, &$0) }
            }
        }
    }

    /// Runs one cfitsio call and turns a non-zero status into `SkySimError.fits`.
    private static func check(_ path: String, _ operation: String, _ call: (inout Int32) -> Int32) throws {
        var status: Int32 = 0
        _ = call(&status)
        guard status == 0 else {
            var text = [CChar](repeating: 0, count: 31)
            ffgerr(status, &text)
            throw SkySimError.fits(operation: operation, path: path, status: status,
                                   message: String(cString: text))
        }
    }
}
