import Foundation
import Preprocessing
import Yams

/// A problem in a pipeline file, located at a line and column where possible.
public struct ConfigError: Error, Equatable, LocalizedError {
    public var file: String
    public var line: Int?
    public var column: Int?
    /// The dotted key path (`model.train.epochs`, `stages[2].asinh`).
    public var keyPath: String
    public var message: String

    public var errorDescription: String? {
        var location = file
        if let line { location += ":\(line)" + (column.map { ":\($0)" } ?? "") }
        return "\(location): " + (keyPath.isEmpty ? "" : "\(keyPath): ") + message
    }
}

/// Reads pipeline files: YAML → validated `PipelineConfig`, with `--set`
/// overrides applied first and every error located in the file.
public enum PipelineLoader {
    /// Parses `text` (the contents of `file`), applying `overrides` (`key.path=value`).
    public static func parse(_ text: String, file: String, overrides: [String] = []) throws -> PipelineConfig {
        var node: Node
        do {
            guard let composed = try Yams.compose(yaml: text) else {
                throw ConfigError(file: file, line: nil, column: nil, keyPath: "", message: "the file is empty.")
            }
            node = composed
        } catch let error as YamlError {
            throw locate(error, file: file)
        }
        for override in overrides { try apply(override, to: &node, file: file) }
        do {
            return try YAMLDecoder().decode(PipelineConfig.self, from: node)
        } catch let error as DecodingError {
            throw locate(error, in: node, file: file)
        }
    }

    /// Reads and parses the pipeline at `path`.
    public static func load(_ path: String, overrides: [String] = []) throws -> PipelineConfig {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(file: path, line: nil, column: nil, keyPath: "",
                              message: "cannot read the pipeline file (missing, unreadable or not UTF-8).")
        }
        return try parse(text, file: path, overrides: overrides)
    }

    // MARK: - Overrides

    /// `model.train.epochs=3` or `stages[0].asinh.softening=2`: the value is read
    /// as YAML, so numbers, booleans, lists and mappings all work.
    static func apply(_ override: String, to node: inout Node, file: String) throws {
        guard let equals = override.firstIndex(of: "="), equals != override.startIndex else {
            throw ConfigError(file: file, line: nil, column: nil, keyPath: override,
                              message: "--set expects key.path=value, got '\(override)'.")
        }
        let path = String(override[..<equals])
        let valueText = String(override[override.index(after: equals)...])
        let value = (try? Yams.compose(yaml: valueText)).flatMap { $0 } ?? Node(valueText)
        let parts = parsePath(path)
        guard !parts.isEmpty else {
            throw ConfigError(file: file, line: nil, column: nil, keyPath: path, message: "empty key path in --set.")
        }
        node = try set(value, at: parts[...], in: node, fullPath: path, file: file)
    }

    enum PathPart: Equatable { case key(String), index(Int) }

    static func parsePath(_ path: String) -> [PathPart] {
        var parts = [PathPart]()
        for piece in path.split(separator: ".") {
            var text = Substring(piece)
            if let bracket = text.firstIndex(of: "[") {
                if bracket != text.startIndex { parts.append(.key(String(text[..<bracket]))) }
                text = text[bracket...]
                while text.hasPrefix("["), let close = text.firstIndex(of: "]") {
                    if let i = Int(text[text.index(after: text.startIndex)..<close]) { parts.append(.index(i)) }
                    text = text[text.index(after: close)...]
                }
            } else {
                parts.append(.key(String(text)))
            }
        }
        return parts
    }

    static func set(_ value: Node, at path: ArraySlice<PathPart>, in node: Node, fullPath: String, file: String) throws -> Node {
        guard let first = path.first else { return value }
        switch first {
        case let .key(key):
            var mapping = node.mapping ?? Node.Mapping([])
            if node.mapping == nil && node.scalar?.string.isEmpty == false {
                throw ConfigError(file: file, line: node.mark?.line, column: node.mark?.column, keyPath: fullPath,
                                  message: "--set cannot put a key under a plain value.")
            }
            let child = mapping[key] ?? Node.mapping(Node.Mapping([]))
            mapping[key] = try set(value, at: path.dropFirst(), in: child, fullPath: fullPath, file: file)
            return Node.mapping(mapping)
        case let .index(i):
            guard var sequence = node.sequence, sequence.indices.contains(i) else {
                throw ConfigError(file: file, line: node.mark?.line, column: node.mark?.column, keyPath: fullPath,
                                  message: "--set: no list element [\(i)] there.")
            }
            sequence[i] = try set(value, at: path.dropFirst(), in: sequence[i], fullPath: fullPath, file: file)
            return Node.sequence(sequence)
        }
    }

    // MARK: - Locating errors

    static func locate(_ error: YamlError, file: String) -> ConfigError {
        switch error {
        case let .scanner(_, problem, mark, _), let .parser(_, problem, mark, _):
            return ConfigError(file: file, line: mark.line, column: mark.column, keyPath: "",
                               message: "not valid YAML: \(problem).")
        default:
            return ConfigError(file: file, line: nil, column: nil, keyPath: "", message: "not valid YAML: \(error).")
        }
    }

    static func locate(_ error: DecodingError, in root: Node, file: String) -> ConfigError {
        let (path, message): ([CodingKey], String)
        switch error {
        case let .keyNotFound(key, context):
            path = context.codingPath
            message = context.debugDescription.hasPrefix("No value associated")
                ? "the key '\(key.stringValue)' is missing." : context.debugDescription
        case let .typeMismatch(type, context):
            path = context.codingPath
            message = "expected \(describe(type)), found \(found(at: path, in: root))."
        case let .valueNotFound(type, context):
            path = context.codingPath
            message = "expected \(describe(type)), found nothing."
        case let .dataCorrupted(context):
            path = context.codingPath
            message = context.debugDescription
        @unknown default:
            return ConfigError(file: file, line: nil, column: nil, keyPath: "", message: "\(error)")
        }
        // Walk the node tree along the coding path as far as it goes.
        var node: Node? = root
        var lastMark = root.mark
        for key in path {
            if let i = key.intValue, let sequence = node?.sequence, sequence.indices.contains(i) {
                node = sequence[i]
            } else if let mapping = node?.mapping {
                if let (k, v) = mapping.first(where: { $0.key.string == key.stringValue }) {
                    lastMark = k.mark ?? lastMark
                    node = v
                    continue
                }
                node = nil
            } else {
                node = nil
            }
            if let mark = node?.mark { lastMark = mark }
        }
        return ConfigError(file: file, line: lastMark?.line, column: lastMark?.column,
                           keyPath: keyPath(path), message: message)
    }

    /// What the file holds at `path`, for "expected X, found Y" messages.
    static func found(at path: [CodingKey], in root: Node) -> String {
        var node: Node? = root
        for key in path {
            if let i = key.intValue, let sequence = node?.sequence, sequence.indices.contains(i) {
                node = sequence[i]
            } else {
                node = node?.mapping?.first { $0.key.string == key.stringValue }?.value
            }
        }
        switch node {
        case let .scalar(scalar)?: return "'\(scalar.string)'"
        case .sequence?: return "a list"
        case .mapping?: return "a mapping"
        default: return "something else"
        }
    }

    static func keyPath(_ path: [CodingKey]) -> String {
        var text = ""
        for key in path {
            if let i = key.intValue { text += "[\(i)]" } else { text += (text.isEmpty ? "" : ".") + key.stringValue }
        }
        return text
    }

    static func describe(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type, is UInt64.Type: return "an integer"
        case is Double.Type, is Float.Type: return "a number"
        case is String.Type, is Node.Scalar.Type: return "a single value"
        case is Bool.Type: return "true or false"
        default:
            let name = "\(type)"
            return name.hasPrefix("Array") ? "a list" : name.hasPrefix("Dictionary") ? "a mapping" : name
        }
    }
}
