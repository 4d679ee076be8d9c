// FITSHeader: an ordered list of header cards with typed values.
import CFITSIO
import Foundation

/// The value of a header keyword, typed as FITS types it.
public enum HeaderValue: Equatable, Sendable, CustomStringConvertible {
    case string(String)
    case integer(Int)
    case float(Double)
    case logical(Bool)
    /// No value: COMMENT, HISTORY, blank cards, or a keyword with an undefined value.
    case none

    /// The value as a `Double` when it is numeric (an integer or a float).
    public var doubleValue: Double? {
        switch self {
        case let .integer(value): return Double(value)
        case let .float(value): return value
        default: return nil
        }
    }

    /// The value as an `Int` when it is an integer (or a float with an integral value).
    public var intValue: Int? {
        switch self {
        case let .integer(value): return value
        case let .float(value) where value.rounded() == value && abs(value) < 9.2e18: return Int(value)
        default: return nil
        }
    }

    /// The value as written in a FITS card (strings quoted, logicals `T`/`F`).
    public var description: String {
        switch self {
        case let .string(value): return "'\(value.replacingOccurrences(of: "'", with: "''"))'"
        case let .integer(value): return String(value)
        case let .float(value): return formatFITSDouble(value)
        case let .logical(value): return value ? "T" : "F"
        case .none: return ""
        }
    }
}

/// One header card: keyword, typed value and comment. For COMMENT and HISTORY cards
/// `value` is `.none` and `comment` holds the text. A CONTINUE long string is one
/// record holding the joined string.
public struct HeaderRecord: Equatable, Sendable {
    public var keyword: String
    public var value: HeaderValue
    public var comment: String

    public init(_ keyword: String, _ value: HeaderValue, comment: String = "") {
        self.keyword = keyword.uppercased()
        self.value = value
        self.comment = comment
    }
}

/// A FITS header: the records in file order, with typed look-ups.
///
/// Read with `FITSFile.header(_:)`. For a tile-compressed image this is the header of
/// the image it holds (as astropy shows it), not that of the binary table storing it.
public struct FITSHeader: Equatable, Sendable {
    public var records: [HeaderRecord]

    public init(_ records: [HeaderRecord] = []) {
        self.records = records
    }

    /// The first record with `keyword` (case-insensitive), if any.
    public func record(_ keyword: String) -> HeaderRecord? {
        let key = keyword.uppercased()
        return records.first { $0.keyword == key }
    }

    /// The value of the first record with `keyword`, or nil when absent.
    public subscript(_ keyword: String) -> HeaderValue? {
        record(keyword)?.value
    }

    /// The keyword's value when it is a string.
    public func string(_ keyword: String) -> String? {
        if case let .string(value)? = self[keyword] { return value }
        return nil
    }

    /// The keyword's value when it is an integer.
    public func integer(_ keyword: String) -> Int? { self[keyword]?.intValue }

    /// The keyword's value when it is numeric.
    public func double(_ keyword: String) -> Double? { self[keyword]?.doubleValue }

    /// The keyword's value when it is logical.
    public func logical(_ keyword: String) -> Bool? {
        if case let .logical(value)? = self[keyword] { return value }
        return nil
    }

    /// The texts of the COMMENT cards, in order.
    public var comments: [String] { records.filter { $0.keyword == "COMMENT" }.map(\.comment) }

    /// The texts of the HISTORY cards, in order.
    public var history: [String] { records.filter { $0.keyword == "HISTORY" }.map(\.comment) }

    /// Sets `keyword` (replacing its first record, or appending one).
    public mutating func set(_ keyword: String, _ value: HeaderValue, comment: String? = nil) {
        let key = keyword.uppercased()
        if let index = records.firstIndex(where: { $0.keyword == key }) {
            records[index].value = value
            if let comment { records[index].comment = comment }
        } else {
            records.append(HeaderRecord(key, value, comment: comment ?? ""))
        }
    }

    /// The records describing the world coordinate system (CTYPEi, CRVALi, CRPIXi,
    /// CDELTi, CDi_j, PCi_j, PVi_m, CUNITi, CROTAi, EQUINOX, RADESYS, LONPOLE,
    /// LATPOLE, WCSAXES, MJD-OBS, DATE-OBS, ..., alternate-WCS letters included).
    public var wcsRecords: [HeaderRecord] {
        records.filter { Self.isWCSKeyword($0.keyword) }
    }

    /// Every record a derived image of the same pixels keeps: all but the structural
    /// keywords and those describing the pixel values (BUNIT, DATAMIN, DATAMAX). A map made
    /// from this image keeps its WCS in any convention (FITS WCS, DSS plate solutions
    /// PLTRAH/AMDX1..., SIP, TPV distortions) and its observation keywords.
    public var derivedImageRecords: [HeaderRecord] {
        records.filter { !Self.isStructural($0.keyword) && !["BUNIT", "DATAMIN", "DATAMAX"].contains($0.keyword) }
    }

    /// Copies the WCS records of `source` (see `wcsRecords`) into this header, replacing
    /// records with the same keyword: an output map keeps its input's sky coordinates.
    public mutating func copyWCS(from source: FITSHeader) {
        for record in source.wcsRecords {
            set(record.keyword, record.value, comment: record.comment)
        }
    }

    /// Whether `keyword` belongs to the world coordinate system (FITS WCS papers I-III).
    public static func isWCSKeyword(_ keyword: String) -> Bool {
        var key = Substring(keyword.uppercased())
        let exact: Set<Substring> = ["EQUINOX", "EPOCH", "RADESYS", "RADECSYS", "LONPOLE", "LATPOLE",
                                     "WCSAXES", "WCSNAME", "MJD-OBS", "MJDREF", "DATE-OBS",
                                     "RESTFRQ", "RESTFREQ", "RESTWAV", "SPECSYS", "OBSGEO-X",
                                     "OBSGEO-Y", "OBSGEO-Z", "DATEREF", "MJD-AVG", "DATE-AVG"]
        // Alternate descriptions end in a letter A-Z (CTYPE1A, RADESYSB).
        if let last = key.last, last.isLetter, key.count > 1,
           exact.contains(key.dropLast()) || key.dropLast().last?.isNumber == true {
            key = key.dropLast()
        }
        if exact.contains(key) { return true }
        for prefix in ["CTYPE", "CRVAL", "CRPIX", "CDELT", "CUNIT", "CROTA", "CRDER", "CSYER", "CNAME"] {
            if key.hasPrefix(prefix), let rest = Optional(key.dropFirst(prefix.count)),
               !rest.isEmpty, rest.allSatisfy(\.isNumber) { return true }
        }
        for prefix in ["CD", "PC", "PV", "PS"] {
            guard key.hasPrefix(prefix) else { continue }
            let parts = key.dropFirst(prefix.count).split(separator: "_", omittingEmptySubsequences: false)
            if parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isNumber) }) { return true }
        }
        return false
    }

    /// Keywords that describe the data layout; writers set them and never copy them.
    static let structuralKeywords: Set<String> = [
        "SIMPLE", "BITPIX", "NAXIS", "EXTEND", "XTENSION", "PCOUNT", "GCOUNT", "TFIELDS",
        "BSCALE", "BZERO", "BLANK", "END", "CHECKSUM", "DATASUM", "EXTNAME", "LONGSTRN",
        "ZIMAGE", "ZBITPIX", "ZNAXIS", "ZCMPTYPE", "ZTILELEN", "ZQUANTIZ", "ZDITHER0",
        "ZSIMPLE", "ZEXTEND", "ZTENSION", "ZPCOUNT", "ZGCOUNT", "ZHECKSUM", "ZDATASUM", "THEAP",
    ]

    /// Whether a writer must skip `keyword` because it sets it itself.
    static func isStructural(_ keyword: String) -> Bool {
        if structuralKeywords.contains(keyword) { return true }
        for prefix in ["NAXIS", "ZNAXIS", "ZTILE", "ZNAME", "ZVAL", "TTYPE", "TFORM", "TUNIT",
                       "TSCAL", "TZERO", "TNULL", "TDISP", "TDIM"] where keyword.hasPrefix(prefix) {
            let rest = keyword.dropFirst(prefix.count)
            if !rest.isEmpty, rest.allSatisfy(\.isNumber) { return true }
        }
        return false
    }
}

// MARK: - Parsing cards

extension FITSHeader {
    /// Parses concatenated 80-character cards (as `fits_convert_hdr2str` returns them).
    /// Joins CONTINUE cards onto the string before them, as astropy does.
    init(cards: UnsafePointer<CChar>, count: Int, path: String, hdu: Int) throws {
        var records: [HeaderRecord] = []
        records.reserveCapacity(count)
        var card = [CChar](repeating: 0, count: 81)
        var name = [CChar](repeating: 0, count: Int(FLEN_KEYWORD) + 1)
        var value = [CChar](repeating: 0, count: Int(FLEN_VALUE) + 1)
        var comment = [CChar](repeating: 0, count: Int(FLEN_COMMENT) + 1)
        for index in 0..<count {
            for column in 0..<80 { card[column] = cards[index * 80 + column] }
            card[80] = 0
            var status: Int32 = 0
            var length: Int32 = 0
            ffgknm(&card, &name, &length, &status)
            ffpsvc(&card, &value, &comment, &status)
            try check(status, "parse header card \(index + 1)", path: path, hdu: hdu)
            let keyword = String(cString: name)
            if keyword == "END" { break }
            let commentText = String(cString: comment)
            if keyword == "CONTINUE", let last = records.indices.last,
               case let .string(previous) = records[last].value, previous.hasSuffix("&") {
                // ffpsvc treats CONTINUE as a comment card; its value is the quoted string.
                let raw = String(cString: card).dropFirst(8).trimmingCharacters(in: .whitespaces)
                let (text, rest) = Self.splitQuoted(raw)
                records[last].value = .string(String(previous.dropLast()) + text)
                if !rest.isEmpty { records[last].comment += (records[last].comment.isEmpty ? "" : " ") + rest }
                continue
            }
            let parsed = try Self.typedValue(String(cString: value), path: path, hdu: hdu)
            records.append(HeaderRecord(keyword, parsed, comment: commentText))
        }
        self.init(records)
    }

    /// Types a value string as cfitsio's `fits_get_keytype` does.
    static func typedValue(_ text: String, path: String, hdu: Int) throws -> HeaderValue {
        if text.isEmpty { return .none }
        if text.hasPrefix("'") { return .string(splitQuoted(text).text) }
        switch text {
        case "T": return .logical(true)
        case "F": return .logical(false)
        default: break
        }
        if let value = Int(text) { return .integer(value) }
        if let value = Double(text.replacingOccurrences(of: "D", with: "E")) { return .float(value) }
        // Complex values "(re, im)" and anything else stay as written.
        return .string(text)
    }

    /// Splits `'it''s' / comment` into the unquoted string (trailing blanks removed,
    /// doubled quotes undone) and what follows a `/`.
    static func splitQuoted(_ raw: String) -> (text: String, rest: String) {
        let chars = Array(raw)
        guard chars.first == "'" else { return ("", raw) }
        var text = ""
        var index = 1
        while index < chars.count {
            if chars[index] == "'" {
                if index + 1 < chars.count, chars[index + 1] == "'" {
                    text.append("'")
                    index += 2
                    continue
                }
                break
            }
            text.append(chars[index])
            index += 1
        }
        var rest = index + 1 < chars.count ? String(chars[(index + 1)...]) : ""
        rest = rest.trimmingCharacters(in: .whitespaces)
        if rest.hasPrefix("/") { rest = String(rest.dropFirst()).trimmingCharacters(in: .whitespaces) }
        while text.hasSuffix(" ") { text.removeLast() }
        return (text, rest)
    }
}

/// Formats a double with the fewest significant digits that read back identically,
/// with an upper-case exponent as FITS requires (`0.1`, `1.5E-07`).
func formatFITSDouble(_ value: Double) -> String {
    guard value.isFinite else { return value.isNaN ? "NaN" : (value > 0 ? "Inf" : "-Inf") }
    var text = "\(value)".uppercased()
    if !text.contains(".") && !text.contains("E") { text += ".0" }
    if text.contains("E"), !text.contains(".") {
        text = text.replacingOccurrences(of: "E", with: ".0E")
    }
    return text
}
