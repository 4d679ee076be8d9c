// FITSWriter: writes images and tables into a new FITS file, atomically.
import CFITSIO
import Foundation

/// How image pixels are stored on disk.
public enum PixelStorage: Equatable, Sendable {
    /// BITPIX -32, values as given (NaN stays NaN).
    case float32
    /// BITPIX 16 with BSCALE = `scale`, BZERO = `zero`: stored `round((v - zero) / scale)`,
    /// clamped to -32767...32767; NaN is stored as BLANK = -32768.
    case int16(scale: Double, zero: Double)
    /// BITPIX 8 (masks, class maps); written from `[UInt8]`.
    case uint8

    var bitpix: Int32 {
        switch self {
        case .float32: return FLOAT_IMG
        case .int16: return SHORT_IMG
        case .uint8: return BYTE_IMG
        }
    }
}

/// A tile-compression algorithm (FITS 4.0 section 10; the ZCMPTYPE value).
public enum CompressionAlgorithm: String, CaseIterable, Sendable {
    case rice = "RICE_1", gzip = "GZIP_1", gzip2 = "GZIP_2", hcompress = "HCOMPRESS_1", plio = "PLIO_1"

    var cfitsioCode: Int32 {
        switch self {
        case .rice: return RICE_1
        case .gzip: return GZIP_1
        case .gzip2: return GZIP_2
        case .hcompress: return HCOMPRESS_1
        case .plio: return PLIO_1
        }
    }
}

/// Tile compression of an image HDU (stored as a BINTABLE, read back as an image).
public struct TileCompression: Equatable, Sendable {
    public var algorithm: CompressionAlgorithm
    /// Float images only: cfitsio's quantize level. nil means cfitsio's default, 4
    /// (lossy: steps of noise / 4); 0 stores floats losslessly (GZIP only).
    public var quantizeLevel: Float?

    public init(_ algorithm: CompressionAlgorithm, quantizeLevel: Float? = nil) {
        self.algorithm = algorithm
        self.quantizeLevel = quantizeLevel
    }
}

/// Writes a new FITS file: HDUs are appended to a temporary file beside `path`,
/// which `commit()` moves into place. An unfinished or failed writer leaves no file
/// behind, and an existing file is never replaced unless `overwrite` is set (the
/// check and the move are one atomic `link`, so a file that appears meanwhile is kept).
public final class FITSWriter {
    /// The final path.
    public let path: String
    /// The temporary file written until `commit()`.
    public let temporaryPath: String
    public let overwrite: Bool
    var handle: UnsafeMutablePointer<fitsfile>?
    /// HDUs written so far.
    public internal(set) var hduCount = 0

    /// Starts a file at `path`. Throws `.outputExists` when it exists and `overwrite`
    /// is false, `.notAFile` when it is a directory.
    public init(path: String, overwrite: Bool = false) throws {
        self.path = path
        self.overwrite = overwrite
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            if isDirectory.boolValue { throw FITSError.notAFile(path: path) }
            if !overwrite { throw FITSError.outputExists(path: path) }
        }
        let url = URL(fileURLWithPath: path)
        let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        temporaryPath = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).\(getpid()).\(suffix).tmp").path
        var status: Int32 = 0
        var pointer: UnsafeMutablePointer<fitsfile>?
        ffdkinit(&pointer, temporaryPath, &status)
        try check(status, "create", path: path)
        handle = pointer
    }

    deinit {
        if let handle {
            var status: Int32 = 0
            ffclos(handle, &status)
            ffcmsg()
            unlink(temporaryPath)
        }
    }

    /// Runs `body` with the open handle; on error the writer closes and discards its file.
    func withHandle<T>(_ body: (UnsafeMutablePointer<fitsfile>) throws -> T) throws -> T {
        guard let pointer = handle else { throw FITSError.closed(path: path) }
        do {
            return try body(pointer)
        } catch {
            discard()
            throw error
        }
    }

    /// Closes and deletes the temporary file without writing `path`.
    public func discard() {
        guard let pointer = handle else { return }
        handle = nil
        var status: Int32 = 0
        ffclos(pointer, &status)
        ffcmsg()
        unlink(temporaryPath)
    }

    /// Closes the file and moves it to `path`. Throws `.outputExists` (and discards the
    /// new file) when `path` exists and `overwrite` is false.
    public func commit() throws {
        guard let pointer = handle else { throw FITSError.closed(path: path) }
        handle = nil
        var status: Int32 = 0
        if hduCount == 0 {
            // An empty file is not FITS: give it an empty primary HDU.
            ffcrimll(pointer, BYTE_IMG, 0, nil, &status)
            removeDefaultComments(pointer)
        }
        ffclos(pointer, &status)
        if status != 0 {
            unlink(temporaryPath)
            throw cfitsioError(status, operation: "close", path: path, hdu: nil)
        }
        if overwrite {
            if rename(temporaryPath, path) != 0 {
                let reason = String(cString: strerror(errno))
                unlink(temporaryPath)
                throw FITSError.unsupported(path: path, hdu: nil, what: "cannot move the new file into place (\(reason))")
            }
            return
        }
        // link() fails if `path` exists, atomically; some file systems lack hard links.
        if link(temporaryPath, path) == 0 {
            unlink(temporaryPath)
            return
        }
        let linkError = errno
        if linkError == EEXIST {
            unlink(temporaryPath)
            throw FITSError.outputExists(path: path)
        }
        if FileManager.default.fileExists(atPath: path) {
            unlink(temporaryPath)
            throw FITSError.outputExists(path: path)
        }
        if rename(temporaryPath, path) != 0 {
            let reason = String(cString: strerror(errno))
            unlink(temporaryPath)
            throw FITSError.unsupported(path: path, hdu: nil, what: "cannot move the new file into place (\(reason))")
        }
    }

    /// Writes `image` (pixels and non-structural header keywords) as the only image of a
    /// new file at `path`: atomically, and replacing an existing file only if `overwrite`.
    public static func write(_ image: FITSImage<Float>, to path: String, storage: PixelStorage = .float32,
                             compression: TileCompression? = nil, overwrite: Bool = false) throws {
        let writer = try FITSWriter(path: path, overwrite: overwrite)
        try writer.appendImage(image.pixels, shape: image.shape, storage: storage, header: image.header,
                               compression: compression)
        try writer.commit()
    }

    // MARK: - Images

    /// Appends an image HDU from `Float` pixels in FITS order (`shape` = NAXIS1, NAXIS2, ...),
    /// stored as `.float32` or `.int16(scale:zero:)`, with `header`'s keywords (structural
    /// ones are skipped; copy WCS with `FITSHeader.wcsRecords`).
    public func appendImage(_ pixels: [Float], shape: [Int], storage: PixelStorage = .float32,
                            header: FITSHeader = FITSHeader(), extensionName: String? = nil,
                            compression: TileCompression? = nil) throws {
        switch storage {
        case .float32:
            try appendImage(bitpix: FLOAT_IMG, shape: shape, count: pixels.count, header: header,
                            extensionName: extensionName, compression: compression) { pointer, status in
                var copy = pixels
                var first = [Int64](repeating: 1, count: shape.count)
                // Quantisation would turn NaN into garbage: cfitsio flags pixels equal to
                // a given null value as ZBLANK instead, so NaN becomes an unused sentinel.
                if compression != nil, var null = Self.nullSentinel(for: copy) {
                    for index in copy.indices where copy[index].isNaN { copy[index] = null }
                    ffppxnll(pointer, TFLOAT, &first, Int64(copy.count), &copy, &null, &status)
                } else {
                    ffppxll(pointer, TFLOAT, &first, Int64(copy.count), &copy, &status)
                }
            }
        case let .int16(scale, zero):
            let blank = Int16.min
            let raw = pixels.map { value -> Int16 in
                guard value.isFinite else { return value.isNaN ? blank : (value > 0 ? .max : -Int16.max) }
                let scaled = ((Double(value) - zero) / scale).rounded()
                return Int16(min(max(scaled, -32767), 32767))
            }
            var scaled = header
            scaled.records.removeAll { ["BSCALE", "BZERO", "BLANK"].contains($0.keyword) }
            try appendImage(bitpix: SHORT_IMG, shape: shape, count: raw.count, header: scaled,
                            extensionName: extensionName, compression: compression) { pointer, status in
                ffpkyd(pointer, "BSCALE", scale, -17, "physical = BZERO + BSCALE * stored", &status)
                ffpkyd(pointer, "BZERO", zero, -17, nil, &status)
                ffpkyj(pointer, "BLANK", Int64(blank), "stored value of undefined pixels", &status)
                // Re-read the header, then write the stored integers unscaled.
                ffrdef(pointer, &status)
                ffpscl(pointer, 1, 0, &status)
                var copy = raw
                var first = [Int64](repeating: 1, count: shape.count)
                ffppxll(pointer, TSHORT, &first, Int64(copy.count), &copy, &status)
            }
        case .uint8:
            throw FITSError.unsupported(path: path, hdu: hduCount, what: "uint8 images are written from [UInt8]: "
                                        + "use appendImage(mask:shape:)")
        }
    }

    /// A value absent from `pixels` to stand for NaN (-1e30 or just above), or nil
    /// when there is no NaN.
    static func nullSentinel(for pixels: [Float]) -> Float? {
        guard pixels.contains(where: \.isNaN) else { return nil }
        var sentinel: Float = -1e30
        while pixels.contains(sentinel) { sentinel = sentinel.nextUp }
        return sentinel
    }

    /// Appends a BITPIX 8 image (a mask or class map) in FITS order.
    public func appendImage(mask: [UInt8], shape: [Int], header: FITSHeader = FITSHeader(),
                            extensionName: String? = nil, compression: TileCompression? = nil) throws {
        try appendImage(bitpix: BYTE_IMG, shape: shape, count: mask.count, header: header,
                        extensionName: extensionName, compression: compression) { pointer, status in
            var copy = mask
            var first = [Int64](repeating: 1, count: shape.count)
            ffppxll(pointer, TBYTE, &first, Int64(copy.count), &copy, &status)
        }
    }

    /// Creates the HDU, writes keywords, then lets `writeData` write the pixels.
    func appendImage(bitpix: Int32, shape: [Int], count: Int, header: FITSHeader,
                             extensionName: String?, compression: TileCompression?,
                             writeData: (UnsafeMutablePointer<fitsfile>, inout Int32) -> Void) throws {
        try withHandle { pointer in
            guard !shape.isEmpty, shape.allSatisfy({ $0 > 0 }), shape.reduce(1, *) == count else {
                throw FITSError.shapeMismatch(path: path, expected: shape, received: count)
            }
            var status: Int32 = 0
            let hdu = hduCount
            if let compression {
                if hduCount == 0 {
                    // A compressed image lives in an extension; give it an empty primary.
                    try createEmptyPrimary(pointer)
                }
                fits_set_compression_type(pointer, compression.algorithm.cfitsioCode, &status)
                // cfitsio keeps these settings per file: set every one, every time.
                fits_set_quantize_level(pointer, compression.quantizeLevel ?? 4, &status)
                try check(status, "set tile compression \(compression.algorithm.rawValue)", path: path, hdu: hduCount)
            }
            var naxes = shape.map { Int64($0) }
            ffcrimll(pointer, bitpix, Int32(shape.count), &naxes, &status)
            try check(status, "create image HDU", path: path, hdu: hduCount)
            if hduCount == 0 { removeDefaultComments(pointer) }
            if compression != nil { fits_set_compression_type(pointer, 0, &status) }
            if let extensionName { ffpkys(pointer, "EXTNAME", extensionName, nil, &status) }
            try check(status, "write EXTNAME", path: path, hdu: hduCount)
            try writeRecords(header, to: pointer, hdu: hduCount)
            writeData(pointer, &status)
            try check(status, "write image data", path: path, hdu: hduCount)
            hduCount = max(hduCount, hdu) + 1
        }
    }

    /// Writes an empty primary HDU (NAXIS = 0), as a table or compressed image needs.
    func createEmptyPrimary(_ pointer: UnsafeMutablePointer<fitsfile>) throws {
        var status: Int32 = 0
        ffcrimll(pointer, BYTE_IMG, 0, nil, &status)
        try check(status, "create empty primary HDU", path: path, hdu: 0)
        removeDefaultComments(pointer)
        hduCount = 1
    }

    /// cfitsio adds two COMMENT cards citing the FITS paper to every primary header;
    /// astropy does not, and they would come back as the user's comments.
    func removeDefaultComments(_ pointer: UnsafeMutablePointer<fitsfile>) {
        for _ in 0..<2 {
            var status: Int32 = 0
            var card = [CChar](repeating: 0, count: 81)
            ffgcrd(pointer, "COMMENT", &card, &status)
            guard status == 0, String(cString: card).contains("FITS (Flexible Image Transport System)")
                    || String(cString: card).contains("and Astrophysics") else { ffcmsg(); return }
            ffdkey(pointer, "COMMENT", &status)
            ffcmsg()
        }
    }

    /// Writes `header`'s non-structural records, typed, in order. Long strings use the
    /// CONTINUE convention; floats get the fewest digits that read back identically.
    func writeRecords(_ header: FITSHeader, to pointer: UnsafeMutablePointer<fitsfile>, hdu: Int) throws {
        for record in header.records where !FITSHeader.isStructural(record.keyword) {
            var status: Int32 = 0
            let key = record.keyword
            let comment: String? = record.comment.isEmpty ? nil : record.comment
            switch (key, record.value) {
            case ("COMMENT", _): ffpcom(pointer, record.comment, &status)
            case ("HISTORY", _): ffphis(pointer, record.comment, &status)
            case ("", _): ffprec(pointer, String(repeating: " ", count: 8) + record.comment, &status)
            case let (_, .string(value)): ffpkls(pointer, key, value, comment, &status)
            case let (_, .integer(value)): ffpkyj(pointer, key, Int64(value), comment, &status)
            case let (_, .float(value)): ffpkyd(pointer, key, value, -significantDigits(value), comment, &status)
            case let (_, .logical(value)): ffpkyl(pointer, key, value ? 1 : 0, comment, &status)
            case (_, .none): ffpkyu(pointer, key, comment, &status)
            }
            try check(status, "write keyword \(key)", path: path, hdu: hdu)
        }
    }
}

/// The fewest significant digits (1...17) with which `%G` formatting of `value`
/// parses back to exactly `value`.
func significantDigits(_ value: Double) -> Int32 {
    guard value.isFinite, value != 0 else { return 1 }
    for digits in 1...16 where Double(String(format: "%.\(digits)G", value)) == value {
        return Int32(digits)
    }
    return 17
}
