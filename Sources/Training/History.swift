import Foundation

/// What `fit` returns: per epoch, the value of every logged quantity
/// (`loss`, `accuracy`, `val_loss`, `val_accuracy`, `lr`, ...), in order.
public struct History: Equatable, Sendable, Codable {
    /// Quantity names in the order they were first logged.
    public private(set) var keys: [String] = []
    public private(set) var values: [String: [Double]] = [:]
    public var epochs: Int { values.values.map(\.count).max() ?? 0 }

    public init() {}

    /// Records one epoch's values.
    public mutating func append(_ epoch: [(String, Double)]) {
        for (key, _) in epoch {
            if values[key] == nil {
                keys.append(key)
                values[key] = [Double](repeating: .nan, count: epochs)
            }
        }
        let n = epochs + 1
        for key in keys {
            var column = values[key]!
            while column.count < n - 1 { column.append(.nan) }
            column.append(epoch.first { $0.0 == key }?.1 ?? .nan)
            values[key] = column
        }
    }

    public subscript(key: String) -> [Double]? { values[key] }

    /// The history as CSV: `epoch,<keys...>`, one row per epoch.
    public var csv: String {
        var lines = [(["epoch"] + keys).joined(separator: ",")]
        for e in 0..<epochs {
            lines.append(([String(e + 1)] + keys.map { key in
                let v = values[key]![e]
                return v.isNaN ? "" : String(v)
            }).joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// Writes `data` to `url` through a temporary file in the same folder and a
/// rename, so a reader never sees a half-written file and a crash never
/// destroys the previous version.
public func writeAtomically(_ data: Data, to url: URL) throws {
    let folder = url.deletingLastPathComponent()
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    let temporary = folder.appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).tmp")
    do {
        try data.write(to: temporary)
        if rename(temporary.path, url.path) != 0 {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: url.path,
                NSLocalizedDescriptionKey: "cannot rename \(temporary.path) to \(url.path): \(String(cString: strerror(errno)))"])
        }
    } catch {
        try? FileManager.default.removeItem(at: temporary)
        throw error
    }
}
