// `astrolabe inspect`: the HDUs, headers and pixel statistics of FITS files.
import ArgumentParser
import Autograd
import FITS
import Foundation
import NN
import Pipelines

/// Lists HDUs (index, type, EXTNAME, BITPIX, shape, compression) and header cards,
/// like astropy's `fitsinfo` and `fitsheader`; `--stats` adds pixel statistics and
/// `--json` prints one JSON object per file. A file that cannot be read gives one line
/// `astrolabe: FILE: message` on stderr; the others are still shown, and the exit
/// status is 1.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the HDUs and header of FITS files, or what a model file records.",
        discussion: """
            HDU indices count from 0 as in astropy; a tile-compressed image counts as the image \
            HDU it holds. Shapes are in header order (NAXIS1, NAXIS2, ...). Statistics cover the \
            finite pixels after BSCALE/BZERO; "blank" counts BLANK and NaN pixels. For a model \
            file (.safetensors) it prints the architecture, the recipe (task, input, stages, \
            classes or targets), the observation the model was trained for and its provenance.
            """)

    @Argument(help: "FITS files (gzip-compressed ones too) or model files (.safetensors).")
    var files: [String]

    @Option(name: [.short, .long], help: "Show only this header keyword (repeatable).")
    var keyword: [String] = []

    @Option(help: "Show only this HDU, by index or EXTNAME (repeatable).")
    var hdu: [String] = []

    @Flag(help: "Add min, max, mean, std of the finite pixels and the blank count per image HDU.")
    var stats = false

    @Flag(help: "Print one JSON object per file (one per line).")
    var json = false

    @Flag(help: "Include the header keywords in the JSON output (all, or those given with --keyword).")
    var header = false

    @Flag(help: "List the HDUs only, without header cards (text output).")
    var brief = false

    func run() throws {
        var failed = false
        for path in files {
            if path.lowercased().hasSuffix(".safetensors") {
                do { print(try Self.modelReport(path)) } catch {
                    failed = true
                    let message = (error as? LocalizedError)?.errorDescription ?? "\(error)"
                    FileHandle.standardError.write(Data("astrolabe: \(path): \(message)\n".utf8))
                }
                continue
            }
            do {
                let report = try FileReport(path: path, hduSelectors: hdu.map(HDUSelector.init(parsing:)),
                                            keywords: keyword, withStats: stats)
                print(json ? report.jsonLine(withHeader: header || !keyword.isEmpty)
                           : report.text(withHeader: !brief))
            } catch {
                failed = true
                let message = (error as? LocalizedError)?.errorDescription ?? "\(error)"
                FileHandle.standardError.write(Data("astrolabe: \(path): \(message)\n".utf8))
            }
        }
        if failed { throw ExitCode(1) }
    }
}

extension Inspect {
    /// A model file: architecture, parameter count, recipe, observation and provenance.
    static func modelReport(_ path: String) throws -> String {
        let file = try Safetensors(contentsOf: URL(fileURLWithPath: path))
        let parameters = file.tensors.values.reduce(0) { $0 + $1.shape.reduce(1, *) }
        var lines = ["Model file: \(path)", "tensors       \(file.tensors.count), \(parameters) values"]
        if let architecture = file.metadata[ModelFile.architectureKey] {
            lines.append("architecture  \(architecture)")
            let decoded = try? JSONDecoder().decode(Architecture.self, from: Data(architecture.utf8))
            if let precision = (try? decoded?.precision()) ?? nil, precision != .float32 {
                lines.append("precision     convolutions in \(precision.rawValue) at inference"
                             + (precision.runsHere ? " (on this machine)"
                                : "; float32 on this machine (no \(precision.rawValue) instructions, or ASTROLABE_BFLOAT16=off)"))
            }
        } else {
            lines.append("architecture  not recorded: a plain state dict (predict --raw with --arch)")
        }
        if let json = file.metadata[ModelFile.preprocessingKey] {
            lines += try ModelRecipe.decode(json, path: path).descriptionLines
        } else {
            lines.append("recipe        not recorded: the file was not trained by Astrolabe")
        }
        return lines.joined(separator: "\n")
    }
}

/// Everything `inspect` shows about one file, read before anything is printed so that
/// a failing file prints nothing on stdout.
struct FileReport {
    struct Entry {
        var info: HDUInfo
        var header: FITSHeader
        var statistics: ImageStatistics?
    }

    var path: String
    var entries: [Entry]
    var keywords: [String]
    var withStats: Bool

    init(path: String, hduSelectors: [HDUSelector], keywords: [String], withStats: Bool) throws {
        self.path = path
        self.keywords = keywords.map { $0.uppercased() }
        self.withStats = withStats
        let file = try FITSFile(path: path)
        let all = try file.hdus()
        let selected = hduSelectors.isEmpty ? all.map(\.index) : try hduSelectors.map { try file.index(of: $0) }
        entries = try selected.map { index in
            let info = all[index]
            var statistics: ImageStatistics?
            if withStats, info.kind == .image, info.elementCount > 0 {
                statistics = try file.readImage(.index(index)).statistics
            }
            return Entry(info: info, header: try file.header(.index(index)), statistics: statistics)
        }
        try file.close()
    }

    /// The records to show: all, or those named with `--keyword` (in that order).
    func records(of header: FITSHeader) -> [HeaderRecord] {
        keywords.isEmpty ? header.records : keywords.flatMap { key in header.records.filter { $0.keyword == key } }
    }

    // MARK: - Text

    func text(withHeader: Bool) -> String {
        var lines = ["Filename: \(path)",
                     "No.  Name                Type      BITPIX  Dimensions        Compression"]
        for entry in entries {
            let info = entry.info
            let dims = info.kind == .image ? (info.shape.isEmpty ? "()" : info.shape.map(String.init).joined(separator: " x "))
                                           : "\(info.shape[1]) rows"
            lines.append(pad(String(info.index), 3, right: true) + "  " + pad(info.extensionName, 18) + "  "
                         + pad(info.kind.rawValue, 8) + "  " + pad(String(info.storedBitpix), 6, right: true) + "  "
                         + pad(dims, 16) + "  " + (info.compression ?? "-"))
            if let s = entry.statistics {
                lines.append("     stats: min \(number(s.minimum))  max \(number(s.maximum))  "
                             + "mean \(number(s.mean))  std \(number(s.standardDeviation))  blank \(s.blankCount)")
            }
        }
        if withHeader {
            for entry in entries {
                lines.append("")
                lines.append("HDU \(entry.info.index) (\(entry.info.extensionName)) header:")
                lines += records(of: entry.header).map(card)
            }
        }
        return lines.joined(separator: "\n")
    }

    private func card(_ record: HeaderRecord) -> String {
        switch (record.keyword, record.value) {
        case ("COMMENT", _), ("HISTORY", _), ("", _):
            return pad(record.keyword, 8) + "  " + record.comment
        default:
            let value = record.value.description
            let comment = record.comment.isEmpty ? "" : " / " + record.comment
            let line = pad(record.keyword, 8) + "= " + pad(value, 20, right: !value.hasPrefix("'")) + comment
            return String(line.reversed().drop(while: { $0 == " " }).reversed())
        }
    }

    private func number(_ value: Double?) -> String {
        value.map { String(format: "%.6g", $0) } ?? "-"
    }

    private func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
        let fill = String(repeating: " ", count: max(0, width - text.count))
        return right ? fill + text : text + fill
    }

    // MARK: - JSON

    func jsonLine(withHeader: Bool) -> String {
        let hdus: [JSONValue] = entries.map { entry in
            let info = entry.info
            var fields: [(String, JSONValue)] = [
                ("index", .int(info.index)), ("extname", .string(info.extensionName)),
                ("type", .string(info.kind.rawValue)), ("bitpix", .int(info.storedBitpix)),
                ("naxis", .array(info.shape.map(JSONValue.int))),
                ("compression", info.compression.map(JSONValue.string) ?? .null),
            ]
            if withStats {
                fields.append(("stats", entry.statistics.map { s in
                    .object([("min", .number(s.minimum)), ("max", .number(s.maximum)), ("mean", .number(s.mean)),
                             ("std", .number(s.standardDeviation)), ("blank", .int(s.blankCount))])
                } ?? .null))
            }
            if withHeader {
                var cards: [(String, JSONValue)] = []
                for record in records(of: entry.header) where !["COMMENT", "HISTORY", ""].contains(record.keyword) {
                    cards.append((record.keyword, JSONValue(record.value)))
                }
                for key in keywords where !cards.contains(where: { $0.0 == key }) { cards.append((key, .null)) }
                fields.append(("header", .object(cards)))
            }
            return .object(fields)
        }
        return JSONValue.object([("file", .string(path)), ("hdus", .array(hdus))]).rendered
    }
}

/// A JSON value with ordered object keys (the output shape is documented in that order).
/// Non-finite numbers become `null`: JSON has no NaN.
indirect enum JSONValue {
    case string(String), int(Int), number(Double?), bool(Bool), null
    case array([JSONValue]), object([(String, JSONValue)])

    init(_ value: HeaderValue) {
        switch value {
        case let .string(text): self = .string(text)
        case let .integer(number): self = .int(number)
        case let .float(number): self = .number(number)
        case let .logical(flag): self = .bool(flag)
        case .none: self = .null
        }
    }

    var rendered: String {
        switch self {
        case let .string(text): return Self.quoted(text)
        case let .int(number): return String(number)
        case let .number(number):
            guard let number, number.isFinite else { return "null" }
            return "\(number)"
        case let .bool(flag): return flag ? "true" : "false"
        case .null: return "null"
        case let .array(items): return "[" + items.map(\.rendered).joined(separator: ", ") + "]"
        case let .object(fields):
            return "{" + fields.map { Self.quoted($0.0) + ": " + $0.1.rendered }.joined(separator: ", ") + "}"
        }
    }

    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
