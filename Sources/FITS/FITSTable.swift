// FITSTable: binary tables of scalar numeric and string columns (catalogs of results).
import CFITSIO
import Foundation

/// The values of one table column.
public enum ColumnValues: Equatable, Sendable {
    case float([Float])
    case double([Double])
    case int32([Int32])
    case int64([Int64])
    case string([String])

    /// The number of rows.
    public var count: Int {
        switch self {
        case let .float(values): return values.count
        case let .double(values): return values.count
        case let .int32(values): return values.count
        case let .int64(values): return values.count
        case let .string(values): return values.count
        }
    }

    /// TFORM: E, D, J, K, or wA with w the longest string's UTF-8 length (at least 1).
    var format: String {
        switch self {
        case .float: return "E"
        case .double: return "D"
        case .int32: return "J"
        case .int64: return "K"
        case let .string(values): return "\(max(values.map(\.utf8.count).max() ?? 1, 1))A"
        }
    }
}

/// A named column with an optional unit (TUNITn).
public struct FITSColumn: Equatable, Sendable {
    public var name: String
    public var values: ColumnValues
    public var unit: String?

    public init(_ name: String, _ values: ColumnValues, unit: String? = nil) {
        self.name = name
        self.values = values
        self.unit = unit
    }
}

/// A binary table: columns of equal length, in order.
public struct FITSTable: Equatable, Sendable {
    public var columns: [FITSColumn]

    public init(_ columns: [FITSColumn]) {
        self.columns = columns
    }

    /// The number of rows (0 for no columns).
    public var rowCount: Int { columns.first?.values.count ?? 0 }

    /// The column called `name` (case-insensitive), if any.
    public subscript(_ name: String) -> FITSColumn? {
        columns.first { $0.name.uppercased() == name.uppercased() }
    }
}

// MARK: - Writing

extension FITSWriter {
    /// Appends a BINTABLE HDU holding `table` (after an empty primary HDU when the file
    /// has none yet), with `header`'s non-structural keywords.
    public func appendTable(_ table: FITSTable, extensionName: String? = nil,
                            header: FITSHeader = FITSHeader()) throws {
        let rows = table.rowCount
        if let bad = table.columns.first(where: { $0.values.count != rows }) {
            throw FITSError.shapeMismatch(path: path, expected: [rows], received: bad.values.count)
        }
        try withHandle { pointer in
            var status: Int32 = 0
            if hduCount == 0 { try createEmptyPrimary(pointer) }
            let hdu = hduCount
            var names = table.columns.map { strdup($0.name) }
            var formats = table.columns.map { strdup($0.values.format) }
            var units = table.columns.map { strdup($0.unit ?? "") }
            defer { (names + formats + units).forEach { free($0) } }
            ffcrtb(pointer, BINARY_TBL, Int64(rows), Int32(table.columns.count), &names, &formats, &units,
                   extensionName, &status)
            try check(status, "create binary table", path: path, hdu: hdu)
            try writeRecords(header, to: pointer, hdu: hdu)
            for (offset, column) in table.columns.enumerated() where rows > 0 {
                let number = Int32(offset + 1)
                switch column.values {
                case var .float(values): ffpcl(pointer, TFLOAT, number, 1, 1, Int64(rows), &values, &status)
                case var .double(values): ffpcl(pointer, TDOUBLE, number, 1, 1, Int64(rows), &values, &status)
                case var .int32(values): ffpcl(pointer, TINT, number, 1, 1, Int64(rows), &values, &status)
                case var .int64(values): ffpcl(pointer, TLONGLONG, number, 1, 1, Int64(rows), &values, &status)
                case let .string(values):
                    var pointers = values.map { strdup($0) }
                    ffpcls(pointer, number, 1, 1, Int64(rows), &pointers, &status)
                    pointers.forEach { free($0) }
                }
                try check(status, "write column \(column.name)", path: path, hdu: hdu)
            }
            hduCount = hdu + 1
        }
    }
}

// MARK: - Reading

extension FITSFile {
    /// The number of rows of the binary table of HDU `selector`.
    public func tableRowCount(_ selector: HDUSelector) throws -> Int {
        let info = try hduInfo(selector)
        guard info.kind == .binaryTable else { throw FITSError.notATable(path: path, hdu: info.index) }
        return try withHandle { pointer in
            try move(pointer, to: info.index)
            var status: Int32 = 0
            var rowCount: Int64 = 0
            ffgnrwll(pointer, &rowCount, &status)
            try check(status, "read table size", path: path, hdu: info.index)
            return Int(rowCount)
        }
    }

    /// Reads the binary table of HDU `selector`. Scalar columns are read as their own
    /// type (E, D, J, K, A; I and B as `int32`, scaled columns as `double`); vector
    /// columns throw `.unsupported`.
    /// - `rows`: the 0-based rows to read (clamped to the table; nil: all), so a long
    ///   table can be streamed in blocks.
    /// - `columns`: the names of the columns to read (case-insensitive; nil: all); names the
    ///   table lacks are left out.
    public func readTable(_ selector: HDUSelector, rows wanted: Range<Int>? = nil, columns names: [String]? = nil) throws -> FITSTable {
        let info = try hduInfo(selector)
        guard info.kind == .binaryTable else { throw FITSError.notATable(path: path, hdu: info.index) }
        let index = info.index
        return try withHandle { pointer in
            try move(pointer, to: index)
            var status: Int32 = 0
            var columnCount: Int32 = 0
            var rowCount: Int64 = 0
            ffgncl(pointer, &columnCount, &status)
            ffgnrwll(pointer, &rowCount, &status)
            try check(status, "read table size", path: path, hdu: index)
            let all = 0..<Int(rowCount)
            let range = wanted.map { $0.clamped(to: all) } ?? all
            let rows = range.count
            let lowered = names.map { Set($0.map { $0.lowercased() }) }
            var columns: [FITSColumn] = []
            for number in 1...max(Int32(1), columnCount) where columnCount > 0 {
                var type: Int32 = 0
                var repeatCount: Int64 = 0
                var width: Int64 = 0
                ffeqtyll(pointer, number, &type, &repeatCount, &width, &status)
                try check(status, "read column \(number) type", path: path, hdu: index)
                let name = readString(pointer, "TTYPE\(number)") ?? "COL\(number)"
                if let lowered, !lowered.contains(name.lowercased()) { continue }
                let unit = readString(pointer, "TUNIT\(number)").flatMap { $0.isEmpty ? nil : $0 }
                if type != TSTRING && repeatCount != 1 {
                    throw FITSError.unsupported(path: path, hdu: index,
                                                what: "vector column \(name) (repeat \(repeatCount))")
                }
                let values = try readColumn(pointer, number: number, type: type, firstRow: Int64(range.lowerBound) + 1, rows: rows,
                                            width: Int(max(width, repeatCount)), name: name, hdu: index)
                columns.append(FITSColumn(name, values, unit: unit))
            }
            return FITSTable(columns)
        }
    }

    /// `rows` values from the 1-based row `firstRow`.
    private func readColumn(_ pointer: UnsafeMutablePointer<fitsfile>, number: Int32, type: Int32, firstRow: Int64, rows: Int,
                            width: Int, name: String, hdu: Int) throws -> ColumnValues {
        var status: Int32 = 0
        var anyNull: Int32 = 0
        let count = Int64(rows)
        let values: ColumnValues
        switch type {
        case _ where rows == 0:
            values = type == TSTRING ? .string([]) : .double([])
        case TFLOAT:
            var data = [Float](repeating: 0, count: rows)
            var null = Float.nan
            ffgcv(pointer, TFLOAT, number, firstRow, 1, count, &null, &data, &anyNull, &status)
            values = .float(data)
        case TDOUBLE:
            var data = [Double](repeating: 0, count: rows)
            var null = Double.nan
            ffgcv(pointer, TDOUBLE, number, firstRow, 1, count, &null, &data, &anyNull, &status)
            values = .double(data)
        case TBYTE, TSBYTE, TSHORT, TUSHORT, TINT, TLONG:
            var data = [Int32](repeating: 0, count: rows)
            var null: Int32 = 0
            ffgcv(pointer, TINT, number, firstRow, 1, count, &null, &data, &anyNull, &status)
            values = .int32(data)
        case TLONGLONG, TUINT, TULONG:
            var data = [Int64](repeating: 0, count: rows)
            var null: Int64 = 0
            ffgcv(pointer, TLONGLONG, number, firstRow, 1, count, &null, &data, &anyNull, &status)
            values = .int64(data)
        case TSTRING:
            // `width`: the larger of the field's repeat and string width, what cfitsio writes
            // per row before its NUL. The buffers start zeroed and are read no further than
            // their end: when cfitsio fails part-way (a damaged table), rows it did not
            // write are empty, never unterminated (a fuzz finding: strlen past the buffer).
            let capacity = width + 1
            let buffers = (0..<rows).map { _ in
                let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: capacity)
                buffer.initialize(repeating: 0, count: capacity)
                return buffer
            }
            defer { buffers.forEach { $0.deallocate() } }
            var pointers: [UnsafeMutablePointer<CChar>?] = buffers
            var empty: CChar = 0
            ffgcvs(pointer, number, firstRow, 1, count, &empty, &pointers, &anyNull, &status)
            try check(status, "read column \(name)", path: path, hdu: hdu)
            values = .string(buffers.map {
                String(decoding: UnsafeRawBufferPointer(start: $0, count: strnlen($0, capacity)), as: UTF8.self)
            })
        default:
            throw FITSError.unsupported(path: path, hdu: hdu, what: "column \(name) of cfitsio type \(type)")
        }
        try check(status, "read column \(name)", path: path, hdu: hdu)
        return values
    }
}
