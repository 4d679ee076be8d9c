// FITSFile: an open FITS file, its HDUs and their headers.
import CFITSIO
import Foundation

/// Selects an HDU by 0-based index (as astropy counts) or by EXTNAME.
///
/// Integer and string literals convert: `file.header(1)`, `file.readImage("SCI")`.
public enum HDUSelector: Equatable, Sendable, ExpressibleByIntegerLiteral,
    ExpressibleByStringLiteral, CustomStringConvertible {
    case index(Int)
    case name(String)

    public init(integerLiteral value: Int) { self = .index(value) }
    public init(stringLiteral value: String) { self = .name(value) }

    /// Parses command-line text: digits select by index, anything else by EXTNAME.
    public init(parsing text: String) {
        if let index = Int(text), index >= 0 { self = .index(index) } else { self = .name(text) }
    }

    public var description: String {
        switch self {
        case let .index(index): return "\(index)"
        case let .name(name): return "'\(name)'"
        }
    }
}

extension HDUSelector: Codable {
    /// Written as in a pipeline file: an index from 0 (`0`) or an EXTNAME (`SCI`).
    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let index = try? c.decode(Int.self) {
            guard index >= 0 else {
                throw DecodingError.dataCorruptedError(in: c, debugDescription: "An HDU index counts from 0; got \(index).")
            }
            self = .index(index)
        } else {
            self = .name(try c.decode(String.self))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case let .index(index): try c.encode(index)
        case let .name(name): try c.encode(name)
        }
    }
}

/// The kind of an HDU. A tile-compressed image is an `.image`.
public enum HDUKind: String, Sendable {
    case image, binaryTable = "bintable", asciiTable = "table"
}

/// What `FITSFile.hduInfo(_:)` reports about one HDU without reading its data.
public struct HDUInfo: Equatable, Sendable {
    /// 0-based position in the file.
    public var index: Int
    public var kind: HDUKind
    /// EXTNAME, or "PRIMARY" for HDU 0 without one (as astropy names it).
    public var extensionName: String
    /// The BITPIX of the values after BSCALE/BZERO (`fits_get_img_equivtype`):
    /// 16 with BZERO 32768 reads as 20 (cfitsio's USHORT_IMG). Tables: 8.
    public var bitpix: Int
    /// The BITPIX stored in the file (for a compressed image: ZBITPIX).
    public var storedBitpix: Int
    /// NAXIS1, NAXIS2, ... (tables: [row bytes, rows]).
    public var shape: [Int]
    /// ZCMPTYPE of a tile-compressed image (e.g. "RICE_1"), else nil.
    public var compression: String?

    /// The number of pixels (or table bytes).
    public var elementCount: Int { shape.isEmpty ? 0 : shape.reduce(1, *) }
}

/// An open FITS file. The cfitsio handle is closed when the object goes away (or by
/// `close()`); every failure throws `FITSError`.
///
/// Thread safety: the installed cfitsio is built reentrant (`FITSFile.isReentrant`),
/// so different files can be read from different threads at once. One `FITSFile`
/// serialises its own calls with a lock, and all `FITSFile`s of the same path share a
/// lock, because cfitsio shares one buffer between handles of a file opened twice.
public final class FITSFile {
    /// The path as given.
    public let path: String
    var handle: UnsafeMutablePointer<fitsfile>?
    let lock: NSLock
    /// The file's size as cfitsio sees it (uncompressed), for truncation checks.
    private(set) var diskSize: Int?
    /// Where each HDU's header starts and its data end (padded to 2,880 bytes), as the
    /// headers say (`validateHeaders` fills them at open).
    var headerStarts: [Int] = []
    var dataEnds: [Int] = []
    /// HDUs 0..<verifiedHDUs are where cfitsio looks for them too (see `move`).
    var verifiedHDUs = 1
    /// Compressed HDUs whose tiles `validateTiles` has checked.
    var tilesChecked: Set<Int> = []

    /// Whether the linked cfitsio was built thread-safe (`fits_is_reentrant()`).
    public static var isReentrant: Bool { fits_is_reentrant() != 0 }

    /// Opens `path` for reading. Gzip-compressed files (`.gz`) are read transparently.
    ///
    /// Throws `.fileNotFound`, `.notAFile` (a directory), `.emptyFile`, or `.cfitsio`
    /// when the file is not FITS (e.g. "first keyword not SIMPLE").
    public init(path: String) throws {
        self.path = path
        lock = PathLocks.shared.acquire(path)
        var status: Int32 = 0
        var pointer: UnsafeMutablePointer<fitsfile>?
        // ffdkopn: no extended-filename syntax, so '[' in a name is just a character.
        // Under the path's lock: a second open of a path attaches to the first's buffers.
        lock.lock()
        ffdkopn(&pointer, path, READONLY, &status)
        lock.unlock()
        if status != 0 {
            if let pointer { var ignored: Int32 = 0; ffclos(pointer, &ignored) }
            PathLocks.shared.release(path)
            // Only now look at the path (one stat per file saved on the common path).
            // cfitsioError also clears cfitsio's message stack, which must not leak into
            // the next file's error.
            let error = cfitsioError(status, operation: "open", path: path, hdu: nil)
            throw Self.classifyOpenFailure(path: path, status: status) ?? error
        }
        handle = pointer
        // cfitsio's own size: the uncompressed one for a gzipped file held in memory.
        diskSize = pointer.map { Int($0.pointee.Fptr.pointee.filesize) }
        if let pointer {
            lock.lock()
            defer { lock.unlock() }
            do {
                try validateHeaders(pointer)
            } catch {
                var ignored: Int32 = 0
                ffclos(pointer, &ignored)
                handle = nil
                PathLocks.shared.release(path)
                throw error
            }
        }
    }

    /// The typed error for a path cfitsio could not open, when the path explains it.
    private static func classifyOpenFailure(path: String, status: Int32) -> FITSError? {
        var info = stat()
        guard stat(path, &info) == 0 else {
            if errno == ENOENT || errno == ENOTDIR { return .fileNotFound(path: path) }
            return .unsupported(path: path, hdu: nil, what: "cannot read it (\(String(cString: strerror(errno))))")
        }
        if (info.st_mode & S_IFMT) != S_IFREG { return .notAFile(path: path) }
        if info.st_size == 0 { return .emptyFile(path: path) }
        // A header cut short: FITS files are whole 2,880-byte blocks.
        let size = Int(info.st_size)
        if size % 2880 != 0, status == READ_ERROR || status == END_OF_FILE {
            // Shorter than one header block and not beginning as FITS does: something else.
            if size < 2880, let handle = FileHandle(forReadingAtPath: path) {
                let head = (try? handle.read(upToCount: 20)) ?? Data()
                try? handle.close()
                if !head.starts(with: Array("SIMPLE".utf8).prefix(head.count)), !head.starts(with: [0x1f, 0x8b]) {
                    let start = String(head.map { (0x20...0x7e).contains($0) ? Character(UnicodeScalar($0)) : "." })
                    return .notFITS(path: path, start: start)
                }
            }
            return .truncated(path: path, hdu: 0, expectedBytes: (size / 2880 + 1) * 2880, actualBytes: size)
        }
        return nil
    }

    /// Whether the bytes on disk are the FITS file itself (not gzip-compressed, which
    /// cfitsio inflates into memory), so that data can be read from it directly.
    var isPlainFile: Bool {
        var info = stat()
        return stat(path, &info) == 0 && diskSize == Int(info.st_size)
    }

    deinit {
        if let handle {
            var status: Int32 = 0
            lock.lock()
            ffclos(handle, &status)
            lock.unlock()
            ffcmsg()
            PathLocks.shared.release(path)
        }
    }

    /// Closes the file now, reporting any error; later calls throw.
    public func close() throws {
        lock.lock()
        defer { lock.unlock() }
        guard let pointer = handle else { return }
        handle = nil
        var status: Int32 = 0
        ffclos(pointer, &status)
        PathLocks.shared.release(path)
        try check(status, "close", path: path)
    }

    /// Runs `body` with the handle under the file's lock.
    func withHandle<T>(_ body: (UnsafeMutablePointer<fitsfile>) throws -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        guard let pointer = handle else { throw FITSError.closed(path: path) }
        return try body(pointer)
    }

    // MARK: - HDUs

    /// The number of HDUs in the file (those whose headers `validateHeaders` checked).
    public func hduCount() throws -> Int {
        try withHandle { _ in headerStarts.count }
    }

    /// Moves cfitsio to HDU `index` (0-based); the caller holds the lock.
    ///
    /// cfitsio reads the header of every HDU it passes. The first time it goes past an
    /// HDU, it is first asked where it will look for the next header, and that must be
    /// where `validateHeaders` found and checked it: otherwise cfitsio would read a
    /// header nobody checked (a damaged size card makes the two disagree).
    func move(_ pointer: UnsafeMutablePointer<fitsfile>, to index: Int) throws {
        guard index < headerStarts.count else {
            throw FITSError.hduNotFound(path: path, selector: "\(index)", count: headerStarts.count)
        }
        var status: Int32 = 0
        var type: Int32 = 0
        while verifiedHDUs <= index {
            let next = verifiedHDUs
            ffmahd(pointer, Int32(next), &type, &status)  // HDU next - 1, already verified
            var headStart: Int64 = 0, dataStart: Int64 = 0, dataEnd: Int64 = 0
            ffghadll(pointer, &headStart, &dataStart, &dataEnd, &status)
            try check(status, "move to HDU", path: path, hdu: next - 1)
            guard Int(dataEnd) == headerStarts[next] else {
                throw FITSError.damagedData(path: path, hdu: next,
                                            what: "its header starts at byte \(headerStarts[next]) by the sizes in "
                                                + "HDU \(next - 1)'s header, but cfitsio would read it at byte \(dataEnd)")
            }
            verifiedHDUs += 1
        }
        ffmahd(pointer, Int32(index + 1), &type, &status)
        try check(status, "move to HDU", path: path, hdu: index)
        repairQuantizeLevel(pointer)
    }

    /// Works around a cfitsio 4.2 bug: after passing a losslessly compressed float HDU
    /// (ZQUANTIZ = 'NONE') it keeps `quantize_level = NO_QUANTIZE` for the next
    /// compressed HDUs and then returns the quantised integers of a lossy HDU undecoded.
    /// astropy and cfitsio 4.6 read such files correctly; so does this after the reset.
    private func repairQuantizeLevel(_ pointer: UnsafeMutablePointer<fitsfile>) {
        let file = pointer.pointee.Fptr!
        guard file.pointee.compressimg == 1, file.pointee.quantize_level == 9999 else { return }
        if let method = readString(pointer, "ZQUANTIZ"), method.uppercased() != "NONE" {
            file.pointee.quantize_level = 0
        }
    }

    /// The 0-based index of the HDU that `selector` names. EXTNAME matching ignores case
    /// and, for "PRIMARY", also finds HDU 0.
    public func index(of selector: HDUSelector) throws -> Int {
        switch selector {
        case let .index(index):
            try withHandle { try move($0, to: index) }
            return index
        case let .name(name):
            let count = try hduCount()
            for index in 0..<count where try hduInfo(.index(index)).extensionName.uppercased() == name.uppercased() {
                return index
            }
            throw FITSError.hduNotFound(path: path, selector: "'\(name)'", count: count)
        }
    }

    /// Describes HDU `selector` (kind, EXTNAME, BITPIX, shape, compression) without
    /// reading its data; throws `.truncated` when the file ends before its data do.
    public func hduInfo(_ selector: HDUSelector) throws -> HDUInfo {
        try hduInfo(selector, withName: true)
    }

    /// `withName: false` skips the EXTNAME look-up (an error path in cfitsio when the
    /// keyword is absent, as in most primary HDUs): readers do not need it.
    func hduInfo(_ selector: HDUSelector, withName: Bool) throws -> HDUInfo {
        let index: Int
        if case let .index(value) = selector { index = value } else { index = try self.index(of: selector) }
        return try withHandle { pointer in
            try move(pointer, to: index)
            try checkComplete(pointer, index: index)
            var status: Int32 = 0
            var type: Int32 = 0
            ffghdt(pointer, &type, &status)
            try check(status, "read HDU type", path: path, hdu: index)
            let kind: HDUKind = type == IMAGE_HDU ? .image : (type == BINARY_TBL ? .binaryTable : .asciiTable)
            var name = withName ? readString(pointer, "EXTNAME") ?? (index == 0 ? "PRIMARY" : "") : ""
            if kind != .image {
                var rows: Int64 = 0
                var columns: Int32 = 0
                ffgnrwll(pointer, &rows, &status)
                ffgncl(pointer, &columns, &status)
                try check(status, "read table size", path: path, hdu: index)
                var rowBytes = 0
                if let value = readString(pointer, "NAXIS1"), let bytes = Int(value) { rowBytes = bytes }
                return HDUInfo(index: index, kind: kind, extensionName: name, bitpix: 8, storedBitpix: 8,
                               shape: [rowBytes, Int(rows)], compression: nil)
            }
            var equivalent: Int32 = 0
            var stored: Int32 = 0
            var naxis: Int32 = 0
            ffgiet(pointer, &equivalent, &status)
            ffgidt(pointer, &stored, &status)
            ffgidm(pointer, &naxis, &status)
            try check(status, "read image parameters", path: path, hdu: index)
            var naxes = [Int64](repeating: 0, count: Int(max(naxis, 1)))
            ffgiszll(pointer, naxis, &naxes, &status)
            try check(status, "read image size", path: path, hdu: index)
            let compressed = fits_is_compressed_image(pointer, &status) != 0
            status = 0
            let compression = compressed ? (readString(pointer, "ZCMPTYPE") ?? "unknown") : nil
            // cfitsio names an unnamed compressed HDU COMPRESSED_IMAGE; a second EXTNAME
            // may follow with the image's own name (as astropy reads it).
            if compressed, withName, name == "COMPRESSED_IMAGE" {
                name = try compressedImageHeader(pointer, index: index).string("EXTNAME") ?? name
            }
            return HDUInfo(index: index, kind: .image, extensionName: name, bitpix: Int(equivalent),
                           storedBitpix: Int(stored), shape: naxes.prefix(Int(naxis)).map { Int($0) },
                           compression: compression)
        }
    }

    /// Describes every HDU of the file.
    public func hdus() throws -> [HDUInfo] {
        try (0..<hduCount()).map { try hduInfo(.index($0)) }
    }

    /// Reads a keyword's raw value as a string (quotes removed), nil when absent.
    func readString(_ pointer: UnsafeMutablePointer<fitsfile>, _ keyword: String) -> String? {
        var status: Int32 = 0
        var value = [CChar](repeating: 0, count: Int(FLEN_VALUE) + 1)
        ffgkys(pointer, keyword, &value, nil, &status)
        if status != 0 { ffcmsg(); return nil }
        return String(cString: value).trimmingCharacters(in: .whitespaces)
    }

    /// Throws `.truncated` when the current HDU (with its padding to 2,880 bytes) runs
    /// past the end of the file. astropy accepts a missing final padding with a
    /// warning, but cfitsio reads whole blocks and fails on it, so it counts here.
    func checkComplete(_ pointer: UnsafeMutablePointer<fitsfile>, index: Int) throws {
        guard let diskSize else { return }
        var status: Int32 = 0
        var headStart: Int64 = 0, dataStart: Int64 = 0, dataEnd: Int64 = 0
        ffghadll(pointer, &headStart, &dataStart, &dataEnd, &status)
        try check(status, "locate HDU data", path: path, hdu: index)
        // cfitsio puts the end of a table with a gap before its heap (THEAP) at
        // THEAP + PCOUNT, although PCOUNT counts the gap: the header's own size counts.
        let end = index < dataEnds.count ? dataEnds[index] : Int(dataEnd)
        if end > diskSize {
            throw FITSError.truncated(path: path, hdu: index, expectedBytes: end, actualBytes: diskSize)
        }
    }

    // MARK: - Headers

    /// The header of HDU `selector`. For a tile-compressed image this is the image
    /// header (ZBITPIX shown as BITPIX, ...), as astropy shows it.
    public func header(_ selector: HDUSelector = 0) throws -> FITSHeader {
        let index = try self.index(of: selector)
        return try withHandle { pointer in
            try move(pointer, to: index)
            var status: Int32 = 0
            if fits_is_compressed_image(pointer, &status) != 0 {
                return try compressedImageHeader(pointer, index: index)
            }
            status = 0
            var cards: UnsafeMutablePointer<CChar>?
            var count: Int32 = 0
            ffhdr2str(pointer, 0, nil, 0, &cards, &count, &status)
            defer { if let cards { var ignored: Int32 = 0; fffree(cards, &ignored) } }
            try check(status, "read header", path: path, hdu: index)
            guard let cards else { return FITSHeader() }
            return try FITSHeader(cards: cards, count: Int(count), path: path, hdu: index)
        }
    }

    /// The header of the image held by the tile-compressed HDU at the current position,
    /// converted from the binary table's cards as astropy does (cfitsio's own
    /// `fits_convert_hdr2str` writes the image header into a memory file, which fails on
    /// some valid files, e.g. BSCALE before ZIMAGE, and sizes that file by ZNAXISn): XTENSION, BITPIX, NAXIS, NAXISn, PCOUNT and GCOUNT from ZTENSION,
    /// ZBITPIX, ZNAXIS, ZNAXISn, ZPCOUNT and ZGCOUNT; the table and compression keywords
    /// left out (also EXTNAME = 'COMPRESSED_IMAGE', the name cfitsio gives an unnamed
    /// one); every other card in file order.
    func compressedImageHeader(_ pointer: UnsafeMutablePointer<fitsfile>, index: Int) throws -> FITSHeader {
        var status: Int32 = 0
        var keyCount: Int32 = 0
        var more: Int32 = 0
        ffghsp(pointer, &keyCount, &more, &status)
        try check(status, "count header cards", path: path, hdu: index)
        var structural: [String: String] = [:]
        var others: [String] = []
        var card = [CChar](repeating: 0, count: Int(FLEN_CARD) + 1)
        for number in 0..<max(keyCount, 0) {
            ffgrec(pointer, number + 1, &card, &status)
            try check(status, "read header card \(number + 1)", path: path, hdu: index)
            let text = String(cString: card).padding(toLength: 80, withPad: " ", startingAt: 0)
            let keyword = text.prefix(8).trimmingCharacters(in: .whitespaces)
            if let target = Self.decompressedKeyword(keyword) {
                if structural[target] == nil {
                    structural[target] = target.padding(toLength: 8, withPad: " ", startingAt: 0) + text.dropFirst(8)
                }
            } else if !Self.isCompressionKeyword(keyword, card: text) {
                others.append(text)
            }
        }
        let axes = structural["NAXIS"].flatMap { Int($0.dropFirst(10).prefix(20).trimmingCharacters(in: .whitespaces)) } ?? 0
        var lines: [String] = [structural["XTENSION"] ?? "XTENSION= 'IMAGE   '           / Image extension"]
        for keyword in ["BITPIX", "NAXIS"] + (0..<max(0, min(axes, 999))).map({ "NAXIS\($0 + 1)" }) {
            if let line = structural[keyword] { lines.append(line) }
        }
        lines.append(structural["PCOUNT"] ?? "PCOUNT  =                    0 / number of parameters")
        lines.append(structural["GCOUNT"] ?? "GCOUNT  =                    1 / number of groups")
        for keyword in ["CHECKSUM", "DATASUM"] { if let line = structural[keyword] { lines.append(line) } }
        lines += others
        let joined = lines.map { $0.padding(toLength: 80, withPad: " ", startingAt: 0) }.joined()
        return try joined.withCString { try FITSHeader(cards: $0, count: lines.count, path: path, hdu: index) }
    }

    /// The image keyword a compressed HDU's `keyword` stands for (ZBITPIX: BITPIX), if any.
    static func decompressedKeyword(_ keyword: String) -> String? {
        switch keyword {
        case "ZTENSION": return "XTENSION"
        case "ZBITPIX": return "BITPIX"
        case "ZNAXIS": return "NAXIS"
        case "ZPCOUNT": return "PCOUNT"
        case "ZGCOUNT": return "GCOUNT"
        case "ZHECKSUM": return "CHECKSUM"
        case "ZDATASUM": return "DATASUM"
        default:
            if keyword.hasPrefix("ZNAXIS"), let axis = Int(keyword.dropFirst(6)), axis > 0 { return "NAXIS\(axis)" }
            return nil
        }
    }

    /// Whether a card of a compressed HDU describes the table or the compression (and
    /// so is not part of the image header).
    static func isCompressionKeyword(_ keyword: String, card: String) -> Bool {
        let exact: Set<String> = ["XTENSION", "BITPIX", "NAXIS", "PCOUNT", "GCOUNT", "TFIELDS", "THEAP",
                                  "CHECKSUM", "DATASUM", "ZIMAGE", "ZCMPTYPE", "ZQUANTIZ", "ZDITHER0",
                                  "ZSIMPLE", "ZEXTEND", "ZBLOCKED", "ZMASKCMP", "ZSCALE", "ZZERO", "ZBLANK", "END"]
        if exact.contains(keyword) { return true }
        for prefix in ["NAXIS", "TTYPE", "TFORM", "TUNIT", "TSCAL", "TZERO", "TNULL", "TDIM", "TDISP",
                       "ZTILE", "ZNAME", "ZVAL"] where keyword.hasPrefix(prefix) {
            let rest = keyword.dropFirst(prefix.count)
            if !rest.isEmpty, rest.allSatisfy(\.isNumber) { return true }
        }
        if keyword == "EXTNAME" {
            let value = card.dropFirst(10).split(separator: "/", maxSplits: 1).first ?? ""
            return value.trimmingCharacters(in: CharacterSet(charactersIn: " '")) == "COMPRESSED_IMAGE"
        }
        return false
    }
}

/// One lock per open path, shared by every `FITSFile` of that path and dropped when the
/// last one closes.
final class PathLocks: @unchecked Sendable {
    static let shared = PathLocks()
    private let guardLock = NSLock()
    private var entries: [String: (lock: NSLock, users: Int)] = [:]

    func acquire(_ path: String) -> NSLock {
        guardLock.lock()
        defer { guardLock.unlock() }
        let entry = entries[path] ?? (NSLock(), 0)
        entries[path] = (entry.lock, entry.users + 1)
        return entry.lock
    }

    func release(_ path: String) {
        guardLock.lock()
        defer { guardLock.unlock() }
        guard let entry = entries[path] else { return }
        entries[path] = entry.users <= 1 ? nil : (entry.lock, entry.users - 1)
    }
}
