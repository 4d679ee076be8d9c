import Autograd
import CSV
import Foundation

/// Problems with a data set's files and catalog.
public enum DatasetError: Error, Equatable, LocalizedError {
    case catalogNotFound(path: String)
    case unreadableCatalog(path: String, reason: String)
    case missingColumn(catalog: String, column: String, available: [String])
    case badValue(catalog: String, line: Int, column: String, value: String, expected: String)
    case listedFileMissing(catalog: String, line: Int, file: String)
    /// Several listed files are missing: all of them, as "line N: name".
    case listedFilesMissing(catalog: String, files: [String])
    case noFiles(path: String, pattern: String)
    case inconsistentShape(file: String, shape: [Int], expected: [Int])
    case sampleFailed(file: String, reason: String)

    public var errorDescription: String? {
        switch self {
        case let .catalogNotFound(path):
            return "\(path): no such catalog or folder."
        case let .unreadableCatalog(path, reason):
            return "\(path): cannot read the catalog: \(reason)."
        case let .missingColumn(catalog, column, available):
            return "\(catalog): the catalog has no column '\(column)'."
                + NearMiss.hint(for: column, among: available)
                + " Its columns: \(available.joined(separator: ", "))."
        case let .badValue(catalog, line, column, value, expected):
            return "\(catalog), line \(line): column '\(column)' holds '\(value)', expected \(expected)."
        case let .listedFileMissing(catalog, line, file):
            return "\(catalog), line \(line): the file '\(file)' does not exist."
        case let .listedFilesMissing(catalog, files):
            let shown = files.prefix(20).joined(separator: "; ")
            return "\(catalog): \(files.count) listed files do not exist (\(shown)"
                + (files.count > 20 ? "; and \(files.count - 20) more)." : ").")
        case let .noFiles(path, pattern):
            return "\(path): no file matches '\(pattern)'."
        case let .inconsistentShape(file, shape, expected):
            return "\(file): image shape \(shape) (channels, height, width) differs from the batch's \(expected). "
                + "Add a resize or center_crop stage, or check the input files."
        case let .sampleFailed(file, reason):
            // A reason that already names the file is not prefixed again.
            return reason.hasPrefix("\(file): ") ? reason : "\(file): \(reason)"
        }
    }
}

/// One input of a data set: a file and what is known about it.
public struct CatalogEntry: Equatable, Sendable {
    /// The file's location.
    public var url: URL
    /// The file as written in the catalog (or its base name for a folder/glob),
    /// which is what outputs print in their `file` column.
    public var name: String
    /// The class index, for classification catalogs.
    public var label: Int?
    /// Regression targets, in `Catalog.targetNames` order.
    public var targets: [Double]

    public init(url: URL, name: String, label: Int? = nil, targets: [Double] = []) {
        self.url = url
        self.name = name
        self.label = label
        self.targets = targets
    }
}

/// The inputs of a data set: a catalog CSV (`file,label` or `file,target,...`,
/// as TASKS.md lays out), a folder, or a glob.
public struct Catalog: Equatable, Sendable {
    public var entries: [CatalogEntry]
    public var targetNames: [String]
    /// Where it came from, for messages.
    public var source: String

    public init(entries: [CatalogEntry], targetNames: [String] = [], source: String = "") {
        self.entries = entries
        self.targetNames = targetNames
        self.source = source
    }

    public var count: Int { entries.count }

    /// Reads a catalog CSV with a header row. `file` names are relative to the
    /// catalog's folder. `labelColumn` may hold integers or names from
    /// `classNames`, and with `allowOutside` `OutsideClass.name`; `targetColumns` must hold
    /// numbers. Listed files must exist.
    public static func csv(_ url: URL, labelColumn: String? = nil, classNames: [String] = [],
                           targetColumns: [String] = [], fileColumn: String = "file",
                           allowOutside: Bool = false) throws -> Catalog {
        let path = url.path
        guard FileManager.default.fileExists(atPath: path) else { throw DatasetError.catalogNotFound(path: path) }
        // Read whole, then parse: CSVReader's InputStream path misreads the end of
        // a file on Linux (it reports a read error at EOF). Catalogs are small.
        let reader: CSVReader
        do {
            let text = try String(contentsOf: url, encoding: .utf8)
            reader = try CSVReader(string: text, hasHeaderRow: true, trimFields: true)
        } catch {
            throw DatasetError.unreadableCatalog(path: path, reason: error.localizedDescription)
        }
        let header = reader.headerRow ?? []
        for column in [fileColumn] + (labelColumn.map { [$0] } ?? []) + targetColumns where !header.contains(column) {
            throw DatasetError.missingColumn(catalog: path, column: column, available: header)
        }
        let folder = url.deletingLastPathComponent()
        var entries = [CatalogEntry]()
        var missing = [(line: Int, file: String)]()
        var line = 1
        while reader.next() != nil {
            line += 1
            let file = reader[fileColumn] ?? ""
            if file.isEmpty { continue }
            let fileURL = file.hasPrefix("/") ? URL(fileURLWithPath: file) : folder.appendingPathComponent(file)
            guard FileManager.default.fileExists(atPath: fileURL.path) else {
                missing.append((line, file))
                continue
            }
            var label: Int?
            if let labelColumn {
                let text = reader[labelColumn] ?? ""
                if let index = Int(text) {
                    label = index
                } else if let index = classNames.firstIndex(of: text) {
                    label = index
                } else if text == OutsideClass.name {
                    guard allowOutside else {
                        throw DatasetError.badValue(catalog: path, line: line, column: labelColumn, value: text,
                            expected: "a class index or one of \(classNames.joined(separator: ", ")) ('\(OutsideClass.name)' rows, "
                                + "of none of the classes, train only with loss: {cross_entropy: {outside_weight: w}})")
                    }
                    label = OutsideClass.label
                } else {
                    throw DatasetError.badValue(catalog: path, line: line, column: labelColumn, value: text,
                        expected: classNames.isEmpty ? "an integer class index"
                            : "a class index or one of \(classNames.joined(separator: ", "))")
                }
                let outside = allowOutside && label == OutsideClass.label
                if !outside, !classNames.isEmpty, !(0..<classNames.count).contains(label!) {
                    throw DatasetError.badValue(catalog: path, line: line, column: labelColumn, value: text,
                                                expected: "a class index in 0..<\(classNames.count)")
                }
            }
            var targets = [Double]()
            for column in targetColumns {
                let text = reader[column] ?? ""
                guard let value = Double(text), value.isFinite else {
                    throw DatasetError.badValue(catalog: path, line: line, column: column, value: text,
                                                expected: "a finite number")
                }
                targets.append(value)
            }
            entries.append(CatalogEntry(url: fileURL, name: file, label: label, targets: targets))
        }
        if let error = reader.error {
            throw DatasetError.unreadableCatalog(path: path, reason: "\(error)")
        }
        // Every missing file at once, so one fix-up pass suffices.
        if missing.count == 1 { throw DatasetError.listedFileMissing(catalog: path, line: missing[0].line, file: missing[0].file) }
        if missing.count > 1 {
            throw DatasetError.listedFilesMissing(catalog: path, files: missing.map { "line \($0.line): \($0.file)" })
        }
        return Catalog(entries: entries, targetNames: targetColumns, source: path)
    }

    /// Every file in `folder` whose name matches `pattern` (shell wildcards),
    /// sorted by name.
    public static func folder(_ folder: URL, pattern: String = "*.fits") throws -> Catalog {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw DatasetError.catalogNotFound(path: folder.path)
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path)
            .filter { fnmatch(pattern, $0, 0) == 0 }
            .sorted()
        guard !names.isEmpty else { throw DatasetError.noFiles(path: folder.path, pattern: pattern) }
        return Catalog(entries: names.map {
            CatalogEntry(url: folder.appendingPathComponent($0), name: $0, label: nil, targets: [])
        }, source: folder.path)
    }

    /// A folder, a catalog CSV, or a glob such as `data/*.fits`, told apart by
    /// what the path is.
    public static func resolve(_ path: String, labelColumn: String? = nil, classNames: [String] = [],
                               targetColumns: [String] = [], allowOutside: Bool = false) throws -> Catalog {
        let url = URL(fileURLWithPath: path)
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            if isDirectory.boolValue { return try folder(url) }
            if path.lowercased().hasSuffix(".csv") {
                return try csv(url, labelColumn: labelColumn, classNames: classNames, targetColumns: targetColumns,
                               allowOutside: allowOutside)
            }
            return Catalog(entries: [CatalogEntry(url: url, name: url.lastPathComponent, label: nil, targets: [])],
                           source: path)
        }
        if path.contains("*") || path.contains("?") || path.contains("[") {
            return try folder(url.deletingLastPathComponent(), pattern: url.lastPathComponent)
        }
        throw DatasetError.catalogNotFound(path: path)
    }

    /// A seeded shuffle, then the last `fraction` of the entries as validation.
    public func split(validationFraction fraction: Double, seed: UInt64) -> (training: Catalog, validation: Catalog) {
        precondition((0..<1).contains(fraction), "Catalog.split: fraction \(fraction) must be in [0, 1)")
        var rng = SeededGenerator(seed: seed)
        let order = rng.permutation(count)
        let validationCount = Int((Double(count) * fraction).rounded())
        let cut = count - validationCount
        let pick = { (range: Range<Int>) in range.map { entries[order[$0]] } }
        return (Catalog(entries: pick(0..<cut), targetNames: targetNames, source: source),
                Catalog(entries: pick(cut..<count), targetNames: targetNames, source: source))
    }
}
