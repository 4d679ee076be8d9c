// Readers of TASKS.md task 5's light-curve tables: `object_id,mjd,band,flux,flux_err` as CSV
// or as a FITS binary table (EXTNAME LIGHTCURVES), and the `object_id,label` catalog.
import AstroBase
import FITS
import Foundation

/// Problems with a light-curve table, naming the file and (1-based) row.
public enum LightCurveError: Error, Equatable, LocalizedError {
    case missingFile(path: String)
    /// The header lacks a required column.
    case missingColumn(file: String, column: String, found: [String])
    /// A value that is not a finite number (or not a positive flux_err, or not an integer id).
    case badValue(file: String, row: Int, column: String, value: String, expected: String)
    case unknownBand(file: String, row: Int, band: String)
    /// A row with fewer fields than the header.
    case shortRow(file: String, row: Int, fields: Int, expected: Int)
    case unknownClass(file: String, row: Int, name: String, known: [String])
    /// The file is neither CSV nor FITS, or its FITS file has no LIGHTCURVES table.
    case unsupported(file: String, reason: String)

    public var errorDescription: String? {
        switch self {
        case let .missingFile(path):
            return "\(path): no such light-curve table."
        case let .missingColumn(file, column, found):
            return "\(file): the light-curve table has no column '\(column)' (found: \(found.joined(separator: ", "))); "
                + "TASKS.md's layout is object_id,mjd,band,flux,flux_err."
        case let .badValue(file, row, column, value, expected):
            return "\(file), row \(row): \(column) is '\(value)', expected \(expected)."
        case let .unknownBand(file, row, band):
            return "\(file), row \(row): unknown band '\(band)'; the bands are "
                + PhotometricBand.allCases.map(\.rawValue).joined(separator: ", ") + "."
        case let .shortRow(file, row, fields, expected):
            return "\(file), row \(row): \(fields) fields, expected at least \(expected) (as many as the header names)."
        case let .unknownClass(file, row, name, known):
            return "\(file), row \(row): unknown class '\(name)'." + NearMiss.hint(for: name, among: known)
                + " Known: \(known.joined(separator: ", "))."
        case let .unsupported(file, reason):
            return "\(file): \(reason)"
        }
    }
}

/// A light-curve table on disk (CSV or FITS, told apart by the extension), read as whole
/// objects. CSV files are streamed: a first pass over the ids checks whether each object's
/// rows are contiguous (TASKS.md's layout, which readers must not rely on); if they are,
/// objects are handed over as they complete, in file order, with a bounded memory; if not,
/// the rows are grouped in memory first (objects in order of first appearance). A FITS
/// table is read the same way, in blocks of rows (cfitsio).
public struct LightCurveTable: Sendable {
    public enum Format: Sendable { case csv, fits }
    public let url: URL
    public let format: Format
    /// The FITS HDU of the table (by EXTNAME; the first binary table when there is none).
    public static let extensionName = "LIGHTCURVES"
    public static let columns = ["object_id", "mjd", "band", "flux", "flux_err"]
    /// Rows per block read from a FITS table.
    var fitsBlockRows = 1 << 16

    public init(url: URL) throws {
        guard FileManager.default.fileExists(atPath: url.path) else { throw LightCurveError.missingFile(path: url.path) }
        self.url = url
        let name = url.lastPathComponent.lowercased()
        if name.hasSuffix(".csv") || name.hasSuffix(".txt") {
            format = .csv
        } else if [".fits", ".fit", ".fts", ".fits.gz", ".fit.gz"].contains(where: name.hasSuffix) {
            format = .fits
        } else {
            throw LightCurveError.unsupported(file: url.path, reason: "a light-curve table is a .csv or a .fits file")
        }
    }

    /// Every object, in order of first appearance.
    public func readAll() throws -> [LightCurve] {
        var all: [LightCurve] = []
        try forEachBatch(size: 4096) { all += $0 }
        return all
    }

    /// Hands over the objects in batches of up to `size`, in order of first appearance.
    public func forEachBatch(size: Int, _ body: ([LightCurve]) throws -> Void) throws {
        precondition(size > 0, "LightCurveTable.forEachBatch: size must be positive")
        let contiguous: Bool
        let rows: (((Int64, LightCurvePoint)) throws -> Void) throws -> Void
        switch format {
        case .csv:
            let scanner = CSVScanner(url: url)
            contiguous = try scanner.idsAreContiguous()
            rows = scanner.rows
        case .fits:
            let reader = try FITSRowReader(url: url, blockRows: fitsBlockRows)
            contiguous = try reader.idsAreContiguous()
            rows = reader.rows
        }
        var grouper = Grouper(contiguous: contiguous)
        var batch: [LightCurve] = []
        try rows { row in
            if let done = grouper.add(row) {
                batch.append(done)
                if batch.count == size { try body(batch); batch.removeAll(keepingCapacity: true) }
            }
        }
        for curve in grouper.finish() {
            batch.append(curve)
            if batch.count == size { try body(batch); batch.removeAll(keepingCapacity: true) }
        }
        if !batch.isEmpty { try body(batch) }
    }
}

extension LightCurveTable {
    /// As `forEachBatch(size:_:)`, with the reading on a thread of its own, one batch ahead
    /// of `body` (which runs on the caller's thread), so reading and `body`'s work overlap.
    /// An error of either side stops both and is rethrown.
    public func forEachBatchReadingAhead(size: Int, _ body: ([LightCurve]) throws -> Void) throws {
        let channel = BatchChannel()
        let reader = Thread { [self] in
            do {
                try forEachBatch(size: size) { batch in
                    guard channel.put(batch) else { throw CancellationError() }
                }
                channel.finish(nil)
            } catch {
                channel.finish(error)
            }
        }
        reader.stackSize = 8 << 20
        reader.start()
        defer { channel.cancelAndWait() }
        while let batch = try channel.take() { try body(batch) }
    }
}

/// One batch of curves handed from a reading thread to its consumer.
private final class BatchChannel: @unchecked Sendable {
    private let condition = NSCondition()
    private var pending: [LightCurve]?
    private var finished = false
    private var failure: Error?
    private var cancelled = false

    /// Waits until the slot is free; false when the consumer has stopped.
    func put(_ batch: [LightCurve]) -> Bool {
        condition.lock(); defer { condition.unlock() }
        while pending != nil && !cancelled { condition.wait() }
        guard !cancelled else { return false }
        pending = batch
        condition.broadcast()
        return true
    }

    func finish(_ error: Error?) {
        condition.lock(); defer { condition.unlock() }
        finished = true
        if !(error is CancellationError) { failure = error }
        condition.broadcast()
    }

    /// The next batch, nil at the end; rethrows the reader's error.
    func take() throws -> [LightCurve]? {
        condition.lock(); defer { condition.unlock() }
        while pending == nil && !finished { condition.wait() }
        if let batch = pending {
            pending = nil
            condition.broadcast()
            return batch
        }
        if let failure { throw failure }
        return nil
    }

    /// Stops the reader (if still running) and waits for it to finish.
    func cancelAndWait() {
        condition.lock(); defer { condition.unlock() }
        cancelled = true
        condition.broadcast()
        while !finished { condition.wait() }
    }
}

// MARK: - FITS

/// Reads the LIGHTCURVES binary table in blocks of rows (cfitsio), so a table of any length
/// is streamed as the CSV reader streams.
struct FITSRowReader {
    let path: String
    let file: FITSFile
    let hdu: Int
    let rowCount: Int
    /// Rows per block read.
    let blockRows: Int

    init(url: URL, blockRows: Int) throws {
        precondition(blockRows > 0, "FITSRowReader: blockRows must be positive")
        self.blockRows = blockRows
        path = url.path
        file = try FITSFile(path: path)
        let hdus = try file.hdus()
        let named = hdus.first { $0.kind == .binaryTable && $0.extensionName.uppercased() == LightCurveTable.extensionName }
        guard let table = named ?? hdus.first(where: { $0.kind == .binaryTable }) else {
            throw LightCurveError.unsupported(file: path, reason: "no binary table (EXTNAME \(LightCurveTable.extensionName)) in this FITS file")
        }
        hdu = table.index
        rowCount = try file.tableRowCount(.index(hdu))
        let found = try file.readTable(.index(hdu), rows: 0..<0).columns.map(\.name)
        for name in LightCurveTable.columns where !found.contains(where: { $0.lowercased() == name }) {
            throw LightCurveError.missingColumn(file: path, column: name, found: found)
        }
    }

    /// Calls `body` with each block of rows (only `columns`) and its first 0-based row.
    private func blocks(_ columns: [String], _ body: (FITSTable, Int) throws -> Void) throws {
        var first = 0
        while first < rowCount {
            let range = first..<min(rowCount, first + blockRows)
            try body(try file.readTable(.index(hdu), rows: range, columns: columns), first)
            first = range.upperBound
        }
    }

    private func column(_ table: FITSTable, _ name: String) throws -> ColumnValues {
        guard let column = table.columns.first(where: { $0.name.lowercased() == name }) else {
            throw LightCurveError.missingColumn(file: path, column: name, found: table.columns.map(\.name))
        }
        return column.values
    }

    private func ids(_ table: FITSTable) throws -> [Int64] {
        switch try column(table, "object_id") {
        case let .int64(v): return v
        case let .int32(v): return v.map(Int64.init)
        default:
            throw LightCurveError.badValue(file: path, row: 1, column: "object_id", value: "a non-integer column",
                                           expected: "an integer column (J or K)")
        }
    }

    private func numbers(_ table: FITSTable, _ name: String) throws -> [Double] {
        switch try column(table, name) {
        case let .double(v): return v
        case let .float(v): return v.map(Double.init)
        case let .int32(v): return v.map(Double.init)
        case let .int64(v): return v.map(Double.init)
        case .string:
            throw LightCurveError.badValue(file: path, row: 1, column: name, value: "a string column", expected: "a numeric column")
        }
    }

    /// Whether each object's rows are contiguous (the object_id column only).
    func idsAreContiguous() throws -> Bool {
        var seen = Set<Int64>()
        var last: Int64?
        var contiguous = true
        try blocks(["object_id"]) { table, _ in
            guard contiguous else { return }
            for id in try ids(table) where id != last {
                if seen.contains(id) { contiguous = false; return }
                seen.insert(id)
                last = id
            }
        }
        return contiguous
    }

    /// Every row as (object_id, point), validated.
    func rows(_ body: ((Int64, LightCurvePoint)) throws -> Void) throws {
        try blocks(LightCurveTable.columns) { table, first in
            let ids = try ids(table)
            let mjd = try numbers(table, "mjd"), flux = try numbers(table, "flux"), error = try numbers(table, "flux_err")
            guard case let .string(bands) = try column(table, "band") else {
                throw LightCurveError.badValue(file: path, row: first + 1, column: "band", value: "a numeric column",
                                               expected: "a string column")
            }
            for k in 0..<ids.count {
                let band = bands[k].trimmingCharacters(in: .whitespaces)
                try body((ids[k], try RowValidator.point(file: path, row: first + k + 1, mjd: mjd[k], band: band,
                                                          flux: flux[k], error: error[k])))
            }
        }
    }
}

// MARK: - Rows

/// Checks one row's values; the one place that decides what a valid point is.
enum RowValidator {
    static func point(file: String, row: Int, mjd: Double, band: String, flux: Double, error: Double) throws -> LightCurvePoint {
        guard let b = PhotometricBand(rawValue: band) else { throw LightCurveError.unknownBand(file: file, row: row, band: band) }
        guard mjd.isFinite else { throw LightCurveError.badValue(file: file, row: row, column: "mjd", value: "\(mjd)", expected: "a finite number of days") }
        guard flux.isFinite else { throw LightCurveError.badValue(file: file, row: row, column: "flux", value: "\(flux)", expected: "a finite flux") }
        guard error.isFinite && error > 0 else {
            throw LightCurveError.badValue(file: file, row: row, column: "flux_err", value: "\(error)", expected: "a positive, finite error")
        }
        return LightCurvePoint(mjd: mjd, band: b, flux: flux, fluxError: error)
    }
}

/// Collects rows into objects: with contiguous ids an object is complete when the id
/// changes; otherwise everything waits for `finish()`.
struct Grouper {
    let contiguous: Bool
    private var order: [Int64] = []
    private var points: [Int64: [LightCurvePoint]] = [:]
    private var current: (id: Int64, points: [LightCurvePoint])?

    init(contiguous: Bool) { self.contiguous = contiguous }

    mutating func add(_ row: (Int64, LightCurvePoint)) -> LightCurve? {
        let (id, point) = row
        if contiguous {
            if current?.id == id { current!.points.append(point); return nil }
            let done = current.map { LightCurve(objectID: $0.id, points: $0.points) }
            current = (id, [point])
            return done
        }
        if points[id] == nil { order.append(id); points[id] = [] }
        points[id]!.append(point)
        return nil
    }

    mutating func finish() -> [LightCurve] {
        if contiguous { return current.map { [LightCurve(objectID: $0.id, points: $0.points)] } ?? [] }
        return order.map { LightCurve(objectID: $0, points: points[$0]!) }
    }
}

/// Reads a CSV light-curve table line by line in 1 MiB chunks, parsing numbers in place
/// (strtod on the file's bytes; no string per field).
struct CSVScanner {
    let url: URL
    /// `url.path`, computed once (messages and row checks name it on every row).
    let path: String

    init(url: URL) {
        self.url = url
        path = url.path
    }

    /// Calls `body` with each line's bytes (no line end) and its 1-based line number. The
    /// byte after each line is readable and is not part of a number ('\n', '\r' or ',').
    func lines(_ body: (UnsafeBufferPointer<UInt8>, Int) throws -> Void) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw LightCurveError.missingFile(path: path) }
        defer { try? handle.close() }
        var carry: [UInt8] = []
        var number = 0
        var finished = false
        while !finished {
            let chunk = handle.readData(ofLength: 1 << 20)
            if chunk.isEmpty {
                finished = true
                if carry.isEmpty { break }
                carry.append(10)
            } else {
                carry += chunk
            }
            let consumed = try carry.withUnsafeBufferPointer { buffer -> Int in
                let base = buffer.baseAddress!
                var start = 0
                while start < buffer.count, let found = memchr(base + start, 10, buffer.count - start) {
                    let end = base.distance(to: found.assumingMemoryBound(to: UInt8.self))
                    var stop = end
                    if stop > start && base[stop - 1] == 13 { stop -= 1 }
                    number += 1
                    try body(UnsafeBufferPointer(start: base + start, count: stop - start), number)
                    start = end + 1
                }
                return start
            }
            carry.removeSubrange(..<consumed)
        }
    }

    /// The header's column positions.
    struct Layout { var id = 0, mjd = 0, band = 0, flux = 0, error = 0, count = 0 }

    /// The line's fields as text (headers and messages).
    static func fields(_ line: UnsafeBufferPointer<UInt8>) -> [Substring] {
        String(decoding: line, as: UTF8.self).split(separator: ",", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces)[...] }
    }

    /// The byte ranges of the line's fields (trimmed of spaces), at most `limit` of them.
    static func fieldRanges(_ line: UnsafeBufferPointer<UInt8>, into ranges: inout [Range<Int>]) {
        ranges.removeAll(keepingCapacity: true)
        var start = 0
        for k in 0...line.count where k == line.count || line[k] == 44 {
            var a = start, b = k
            while a < b && line[a] == 32 { a += 1 }
            while b > a && line[b - 1] == 32 { b -= 1 }
            ranges.append(a..<b)
            start = k + 1
        }
    }

    static func isBlank(_ line: UnsafeBufferPointer<UInt8>) -> Bool { line.allSatisfy { $0 == 32 || $0 == 13 } }

    static func text(_ line: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: line[range]), as: UTF8.self)
    }

    /// A number filling the whole field, or nil.
    static func double(_ line: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Double? {
        guard !range.isEmpty else { return nil }
        let base = UnsafeRawPointer(line.baseAddress! + range.lowerBound).assumingMemoryBound(to: CChar.self)
        var end: UnsafeMutablePointer<CChar>?
        let value = strtod(base, &end)
        let expected = UnsafeRawPointer(line.baseAddress! + range.upperBound)
        guard let end, UnsafeRawPointer(end) == expected else { return nil }
        return value
    }

    /// An integer filling the whole field, or nil.
    static func integer(_ line: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Int64? {
        guard !range.isEmpty else { return nil }
        var k = range.lowerBound
        let negative = line[k] == 45
        if negative || line[k] == 43 { k += 1 }
        guard k < range.upperBound else { return nil }
        var value: Int64 = 0
        while k < range.upperBound {
            let digit = Int64(line[k]) - 48
            guard (0...9).contains(digit) else { return nil }
            let (times, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times.addingReportingOverflow(digit)
            guard !o1 && !o2 else { return nil }
            value = sum
            k += 1
        }
        return negative ? -value : value
    }

    func layout(_ header: [Substring]) throws -> Layout {
        let names = header.map { $0.lowercased() }
        func index(_ name: String) throws -> Int {
            guard let i = names.firstIndex(of: name) else {
                throw LightCurveError.missingColumn(file: path, column: name, found: header.map(String.init))
            }
            return i
        }
        return Layout(id: try index("object_id"), mjd: try index("mjd"), band: try index("band"),
                      flux: try index("flux"), error: try index("flux_err"), count: header.count)
    }

    func objectID(_ line: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, row: Int) throws -> Int64 {
        guard let id = Self.integer(line, range) else {
            throw LightCurveError.badValue(file: path, row: row, column: "object_id", value: Self.text(line, range), expected: "an integer")
        }
        return id
    }

    /// Whether each object's rows are contiguous (ids only; values are checked by `rows`).
    func idsAreContiguous() throws -> Bool {
        var layout: Layout?
        var seen = Set<Int64>()
        var last: Int64?
        var contiguous = true
        var ranges: [Range<Int>] = []
        try lines { line, _ in
            if !contiguous || Self.isBlank(line) { return }
            guard let columns = layout else { layout = try self.layout(Self.fields(line)); return }
            Self.fieldRanges(line, into: &ranges)
            guard ranges.count > columns.id, let id = Self.integer(line, ranges[columns.id]) else { return }
            if id != last {
                if seen.contains(id) { contiguous = false }
                seen.insert(id)
                last = id
            }
        }
        return contiguous
    }

    /// Every data row as (object_id, point), validated; blank lines are skipped.
    func rows(_ body: ((Int64, LightCurvePoint)) throws -> Void) throws {
        var layout: Layout?
        var ranges: [Range<Int>] = []
        try lines { line, number in
            if Self.isBlank(line) { return }
            guard let c = layout else { layout = try self.layout(Self.fields(line)); return }
            Self.fieldRanges(line, into: &ranges)
            guard ranges.count >= c.count else {
                throw LightCurveError.shortRow(file: path, row: number, fields: ranges.count, expected: c.count)
            }
            func numeric(_ index: Int, _ column: String) throws -> Double {
                guard let value = Self.double(line, ranges[index]) else {
                    throw LightCurveError.badValue(file: path, row: number, column: column, value: Self.text(line, ranges[index]),
                                                   expected: "a number")
                }
                return value
            }
            let id = try objectID(line, ranges[c.id], row: number)
            let bandRange = ranges[c.band]
            let band: String
            if bandRange.count == 1 {
                switch line[bandRange.lowerBound] {
                case 103: band = "g"
                case 114: band = "r"
                case 105: band = "i"
                default: band = Self.text(line, bandRange)
                }
            } else {
                band = Self.text(line, bandRange)
            }
            let point = try RowValidator.point(file: path, row: number, mjd: try numeric(c.mjd, "mjd"), band: band,
                                               flux: try numeric(c.flux, "flux"), error: try numeric(c.error, "flux_err"))
            try body((id, point))
        }
        if layout == nil {
            throw LightCurveError.missingColumn(file: path, column: "object_id", found: [])
        }
    }
}

// MARK: - Catalog

/// `catalog.csv` of a light-curve data set: `object_id,label` with class names.
public enum LightCurveCatalog {
    /// object_id → class.
    public static func read(_ url: URL) throws -> [Int64: LightCurveClass] {
        let scanner = CSVScanner(url: url)
        guard FileManager.default.fileExists(atPath: url.path) else { throw LightCurveError.missingFile(path: url.path) }
        var header: (id: Int, label: Int, count: Int)?
        var labels: [Int64: LightCurveClass] = [:]
        try scanner.lines { line, number in
            if CSVScanner.isBlank(line) { return }
            let fields = CSVScanner.fields(line)
            guard let h = header else {
                let names = fields.map { $0.lowercased() }
                guard let id = names.firstIndex(of: "object_id") else {
                    throw LightCurveError.missingColumn(file: url.path, column: "object_id", found: fields.map(String.init))
                }
                guard let label = names.firstIndex(of: "label") else {
                    throw LightCurveError.missingColumn(file: url.path, column: "label", found: fields.map(String.init))
                }
                header = (id, label, fields.count)
                return
            }
            guard fields.count >= h.count else {
                throw LightCurveError.shortRow(file: url.path, row: number, fields: fields.count, expected: h.count)
            }
            guard let id = Int64(fields[h.id]) else {
                throw LightCurveError.badValue(file: url.path, row: number, column: "object_id", value: String(fields[h.id]),
                                               expected: "an integer")
            }
            let text = String(fields[h.label])
            let kind = LightCurveClass(rawValue: text) ?? Int(text).flatMap { LightCurveClass.allCases.indices.contains($0) ? LightCurveClass.allCases[$0] : nil }
            guard let kind else {
                throw LightCurveError.unknownClass(file: url.path, row: number, name: text, known: LightCurveClass.names)
            }
            labels[id] = kind
        }
        return labels
    }
}
