import Foundation

/// The record of a batch run, kept beside its output so that a run that was
/// interrupted (Ctrl-C, a crash, a killed job) continues where it stopped.
///
/// One JSON object per line: `{"file": ..., "row": [...]}` for a finished file
/// (its output row, for tabular outputs) or `{"file": ..., "error": ...}` for a
/// failure. Lines are appended and flushed per batch; a torn last line (the
/// process died mid-write) is ignored on reading. Failed files are tried again
/// on resume; finished ones are not redone.
public final class RunJournal {
    public struct Entry: Codable, Equatable {
        public var file: String
        public var row: [String]?
        public var error: String?
    }

    public let url: URL
    public private(set) var finished: [String: [String]] = [:]
    public private(set) var failed: [String: String] = [:]
    /// How many files were already finished when this run started.
    public let resumedCount: Int
    private let handle: FileHandle

    /// Opens (or with `resume: false`, restarts) the journal at `url`.
    public init(url: URL, resume: Bool) throws {
        self.url = url
        let manager = FileManager.default
        try manager.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        if resume, let data = manager.contents(atPath: url.path) {
            let decoder = JSONDecoder()
            for line in data.split(separator: UInt8(ascii: "\n")) {
                guard let entry = try? decoder.decode(Entry.self, from: Data(line)) else { continue }
                if let row = entry.row {
                    finished[entry.file] = row
                    failed[entry.file] = nil
                } else if let error = entry.error {
                    failed[entry.file] = error
                }
            }
        }
        // A fresh run starts an empty journal; a resumed one appends to its journal.
        if !resume || !manager.fileExists(atPath: url.path) {
            guard manager.createFile(atPath: url.path, contents: nil) else {
                throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: url.path,
                    NSLocalizedDescriptionKey: "cannot create the run journal \(url.path)"])
            }
        }
        resumedCount = finished.count
        handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
        // Start on a fresh line in case the previous run died mid-line.
        if resume, let size = try? manager.attributesOfItem(atPath: url.path)[.size] as? Int, size > 0 {
            try handle.write(contentsOf: Data("\n".utf8))
        }
    }

    deinit { try? handle.close() }

    public func isFinished(_ file: String) -> Bool { finished[file] != nil }

    /// Records a batch of outcomes and flushes them to disk.
    public func record(_ entries: [Entry]) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var data = Data()
        for entry in entries {
            data.append(try encoder.encode(entry))
            data.append(UInt8(ascii: "\n"))
            if let row = entry.row {
                finished[entry.file] = row
                failed[entry.file] = nil
            } else if let error = entry.error {
                failed[entry.file] = error
            }
        }
        try handle.write(contentsOf: data)
        try handle.synchronize()
    }

    /// Removes the journal once the outputs are complete.
    public func finish() throws {
        try handle.close()
        try FileManager.default.removeItem(at: url)
    }
}
