import Foundation

/// Progress of long work: on a terminal a single redrawn line with a bar, the
/// rate, the ETA and any live values (loss, accuracy); elsewhere (CI logs,
/// files, pipes) plain lines at most every `plainInterval` seconds and at the end.
public final class ProgressBar {
    public let total: Int
    public let label: String
    public let unit: String
    private let output: FileHandle
    private let isTerminal: Bool
    private let start: Date
    private var lastDraw = Date.distantPast
    private let plainInterval: TimeInterval
    private let width = 28
    public private(set) var completed = 0

    /// - Parameters:
    ///   - total: units of work (batches, files, images).
    ///   - unit: what a unit is, for the rate ("img", "file", "batch").
    ///   - output: standard error by default, so results on standard output stay clean.
    public init(total: Int, label: String, unit: String = "it", output: FileHandle = .standardError,
                forceTerminal: Bool? = nil, plainInterval: TimeInterval = 10) {
        self.total = Swift.max(0, total)
        self.label = label
        self.unit = unit
        self.output = output
        self.isTerminal = forceTerminal ?? (isatty(output.fileDescriptor) == 1)
        self.plainInterval = plainInterval
        self.start = Date()
    }

    /// Advances by `count` units and redraws (throttled) with `values`.
    public func advance(by count: Int = 1, values: KeyValuePairs<String, Double> = [:]) {
        completed = Swift.min(total, completed + count)
        let now = Date()
        let finished = completed == total
        let interval = isTerminal ? 0.1 : plainInterval
        guard finished || now.timeIntervalSince(lastDraw) >= interval else { return }
        lastDraw = now
        write(line(now: now, values: values), finished: finished)
    }

    /// The text of the progress line (public for tests and custom displays).
    public func line(now: Date = Date(), values: KeyValuePairs<String, Double> = [:]) -> String {
        let elapsed = Swift.max(1e-9, now.timeIntervalSince(start))
        let rate = Double(completed) / elapsed
        let fraction = total > 0 ? Double(completed) / Double(total) : 1
        var parts = [String]()
        if isTerminal {
            let filled = Int((fraction * Double(width)).rounded(.down))
            parts.append("\(label) [" + String(repeating: "█", count: filled)
                         + String(repeating: "·", count: width - filled) + "]")
        } else {
            parts.append(label)
        }
        parts.append("\(completed)/\(total)")
        parts.append(String(format: "%.1f %@/s", rate, unit))
        if completed < total, rate > 0 {
            parts.append("ETA " + Self.duration(Double(total - completed) / rate))
        } else {
            parts.append(Self.duration(elapsed))
        }
        for (key, value) in values { parts.append("\(key) " + Self.format(value)) }
        return parts.joined(separator: "  ")
    }

    private func write(_ text: String, finished: Bool) {
        let data: String
        if isTerminal {
            data = "\r\u{1B}[K" + text + (finished ? "\n" : "")
        } else {
            data = text + "\n"
        }
        output.write(Data(data.utf8))
    }

    /// `1:02:03`, `2:03` or `4.2s`.
    public static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "?" }
        if seconds < 60 { return String(format: "%.1fs", seconds) }
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, (s / 60) % 60, s % 60)
                         : String(format: "%d:%02d", s / 60, s % 60)
    }

    static func format(_ value: Double) -> String {
        abs(value) >= 1000 || (abs(value) < 1e-3 && value != 0) ? String(format: "%.3g", value) : String(format: "%.4f", value)
    }
}
