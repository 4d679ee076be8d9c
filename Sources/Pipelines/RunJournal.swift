import Foundation
import Glibc

/// The record of a batch run, kept beside its output so that a run that was
/// interrupted (Ctrl-C, a crash, a killed job) continues where it stopped, and
/// the lock that keeps two processes from writing the same output.
///
/// One JSON object per line:
/// - `{"pid": 123}`: the process that holds the run (written when it takes the lock);
/// - `{"file": ..., "reading": true}`: the file is being read (written before it is opened);
/// - `{"file": ..., "read": true}`: reading it is over (it was read or failed);
/// - `{"file": ..., "prediction": {...}}`: finished, with its typed result (numbers as JSON numbers);
/// - `{"file": ..., "error": ...}`: failed.
///
/// Lines are appended (results flushed to disk per batch); a torn last line (the
/// process died mid-write) is ignored on reading. On resume, finished files are
/// not redone and failed ones are tried again, except a file that was being read
/// when the process died (say cfitsio raised SIGFPE on it): it is recorded as
/// failed, "the process died while reading it", so the run goes on without it.
/// When several files were being read at that moment (reader threads), they are
/// `suspects`: the resumed run reads them one at a time first, so a second crash
/// names the culprit alone.
///
/// The journal is locked (`flock`) for the whole run: a second process on the
/// same output stops at once with `PipelineError.outputBusy`, naming the holder's PID.
public final class RunJournal: @unchecked Sendable {
    public struct Entry: Codable, Equatable, Sendable {
        public var file: String
        public var prediction: Prediction?
        public var error: String?
        public var reading: Bool?
        public var read: Bool?
        /// Whether the input lies in the model's training domain (with its prediction).
        public var domain: DomainCheck?

        public init(file: String, prediction: Prediction? = nil, error: String? = nil, reading: Bool? = nil, read: Bool? = nil,
                    domain: DomainCheck? = nil) {
            self.file = file
            self.domain = domain
            self.prediction = prediction
            self.error = error
            self.reading = reading
            self.read = read
        }
    }

    struct Holder: Codable { var pid: Int32 }

    public static let diedWhileReading = "the process died while reading it"

    public let url: URL
    public private(set) var finished: [String: Prediction] = [:]
    public private(set) var failed: [String: String] = [:]
    /// Domain checks of finished files, when the model records its observation.
    public private(set) var domains: [String: DomainCheck] = [:]
    /// Files that a crashed run was reading (now in `failed` and not retried).
    public private(set) var died: Set<String> = []
    /// Files that a crashed run was reading together with others: to be read one at a time.
    public private(set) var suspects: Set<String> = []
    /// How many files were already finished when this run started.
    public let resumedCount: Int
    private let handle: FileHandle
    private let lock = NSLock()

    /// Opens (or with `resume: false`, restarts) the journal at `url` and takes its lock.
    public init(url: URL, resume: Bool, output: String? = nil) throws {
        self.url = url
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let fd = try Self.openLocked(url, output: output ?? url.path)
        handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        var newlyDied = [String]()
        if resume {
            let data = try handle.readToEnd() ?? Data()
            var reading = Set<String>()
            let decoder = JSONDecoder()
            for line in data.split(separator: UInt8(ascii: "\n")) {
                guard let entry = try? decoder.decode(Entry.self, from: Data(line)) else {
                    // A new run began: what an earlier run left in flight is retried as usual.
                    if (try? decoder.decode(Holder.self, from: Data(line))) != nil { reading.removeAll() }
                    continue
                }
                if let prediction = entry.prediction {
                    finished[entry.file] = prediction
                    domains[entry.file] = entry.domain
                    failed[entry.file] = nil
                    reading.remove(entry.file)
                } else if let error = entry.error {
                    failed[entry.file] = error
                    reading.remove(entry.file)
                    if error == Self.diedWhileReading { died.insert(entry.file) }
                } else if entry.reading == true {
                    reading.insert(entry.file)
                } else if entry.read == true {
                    reading.remove(entry.file)
                }
            }
            if reading.count == 1, let file = reading.first {
                failed[file] = Self.diedWhileReading
                died.insert(file)
                newlyDied.append(file)
            } else {
                suspects = reading
            }
        } else {
            guard ftruncate(fd, 0) == 0 else { throw Self.ioError("cannot empty the run journal", url) }
        }
        resumedCount = finished.count
        try handle.seekToEnd()
        // Start on a fresh line in case the previous run died mid-line, then name the holder.
        var first = Data(resume && (try? handle.offset()) ?? 0 > 0 ? "\n".utf8 : "".utf8)
        first.append(try JSONEncoder().encode(Holder(pid: getpid())))
        first.append(UInt8(ascii: "\n"))
        for file in newlyDied.sorted() {
            first.append(try Self.encoder.encode(Entry(file: file, error: Self.diedWhileReading)))
            first.append(UInt8(ascii: "\n"))
        }
        try handle.write(contentsOf: first)
        try handle.synchronize()
    }

    deinit { try? handle.close() }

    public func isFinished(_ file: String) -> Bool { finished[file] != nil }

    /// Whether a resumed run should leave `file` alone: finished, or the file a crashed run died on.
    public func isSettled(_ file: String) -> Bool { finished[file] != nil || died.contains(file) }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    /// Records a batch of outcomes and flushes them to disk.
    public func record(_ entries: [Entry]) throws {
        var data = Data()
        for entry in entries {
            data.append(try Self.encoder.encode(entry))
            data.append(UInt8(ascii: "\n"))
        }
        lock.lock()
        defer { lock.unlock() }
        for entry in entries {
            if let prediction = entry.prediction {
                finished[entry.file] = prediction
                domains[entry.file] = entry.domain
                failed[entry.file] = nil
            } else if let error = entry.error {
                failed[entry.file] = error
            }
        }
        try handle.write(contentsOf: data)
        try handle.synchronize()
    }

    /// Marks `file` as being read (`true`) or read (`false`). Written, not synced:
    /// it must survive the process dying, which the page cache already ensures.
    public func markReading(_ file: String, _ reading: Bool) throws {
        var data = try Self.encoder.encode(reading ? Entry(file: file, reading: true) : Entry(file: file, read: true))
        data.append(UInt8(ascii: "\n"))
        lock.lock()
        defer { lock.unlock() }
        try handle.write(contentsOf: data)
    }

    /// Releases the lock and leaves the journal for a later resume, as an interrupted run does.
    public func close() throws {
        try handle.close()
    }

    /// Removes the journal once the outputs are complete (and releases the lock).
    public func finish() throws {
        try FileManager.default.removeItem(at: url)
        try handle.close()
    }

    // MARK: - Lock

    /// Opens `url` for reading and appending, locked. If the lock is held, reads the
    /// holder's PID from the file and throws `outputBusy`. A journal that was removed
    /// or replaced while this process waited is opened again.
    static func openLocked(_ url: URL, output: String) throws -> Int32 {
        while true {
            let fd = open(url.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw ioError("cannot open the run journal", url) }
            if flock(fd, LOCK_EX | LOCK_NB) != 0 {
                let holder = lastHolder(url)
                Glibc.close(fd)
                throw PipelineError.outputBusy(output: output, journal: url.path, pid: holder)
            }
            // Still the file at this path? (The holder may have finished and removed it.)
            var opened = stat(), current = stat()
            if fstat(fd, &opened) == 0, stat(url.path, &current) == 0,
               opened.st_ino == current.st_ino, opened.st_dev == current.st_dev {
                return fd
            }
            Glibc.close(fd)
        }
    }

    /// The PID in the journal's last `{"pid": N}` line, if any.
    static func lastHolder(_ url: URL) -> Int32? {
        guard let data = FileManager.default.contents(atPath: url.path) else { return nil }
        let decoder = JSONDecoder()
        return data.split(separator: UInt8(ascii: "\n")).reversed()
            .lazy.compactMap { try? decoder.decode(Holder.self, from: Data($0)).pid }.first
    }

    static func ioError(_ what: String, _ url: URL) -> Error {
        CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: url.path,
            NSLocalizedDescriptionKey: "\(what) \(url.path): \(String(cString: strerror(errno)))"])
    }
}
