import Foundation
import Preprocessing

// MARK: - Strict decoding helpers
//
// Pipeline files are decoded with Codable, but unlike plain Codable every
// mapping rejects keys it does not know (with a "did you mean"), so a typo never
// silently falls back to a default. Errors carry their coding path; `ConfigError`
// turns that into a line and column of the YAML file.

struct ConfigKey: CodingKey, Hashable {
    var stringValue: String
    var intValue: Int?
    init(_ string: String) { stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { stringValue = String(intValue); self.intValue = intValue }
}

/// A keyed container that knows the keys its type accepts.
struct StrictContainer {
    let container: KeyedDecodingContainer<ConfigKey>
    let known: [String]
    let section: String

    init(_ decoder: Decoder, section: String, known: [String]) throws {
        container = try decoder.container(keyedBy: ConfigKey.self)
        self.known = known
        self.section = section
        for key in container.allKeys where !known.contains(key.stringValue) {
            throw DecodingError.dataCorrupted(.init(
                codingPath: decoder.codingPath + [key],
                debugDescription: "Unknown key '\(key.stringValue)' in \(section)."
                    + NearMiss.hint(for: key.stringValue, among: known)
                    + " Known keys: \(known.joined(separator: ", "))."))
        }
    }

    func has(_ key: String) -> Bool { container.contains(ConfigKey(key)) }

    func optional<T: Decodable>(_ key: String, _ type: T.Type = T.self) throws -> T? {
        precondition(known.contains(key), "StrictContainer: '\(key)' read but not declared for \(section)")
        return try container.decodeIfPresent(T.self, forKey: ConfigKey(key))
    }

    func required<T: Decodable>(_ key: String, _ type: T.Type = T.self) throws -> T {
        guard let value: T = try optional(key) else {
            throw DecodingError.keyNotFound(ConfigKey(key), .init(
                codingPath: container.codingPath,
                debugDescription: "\(section) needs the key '\(key)'."))
        }
        return value
    }

    /// A string decoded into one of `choices`, with a near-miss hint.
    func choice<T>(_ key: String, _ choices: [String: T]) throws -> T? {
        guard let text: String = try optional(key) else { return nil }
        guard let value = choices[text] else {
            throw DecodingError.dataCorrupted(.init(
                codingPath: container.codingPath + [ConfigKey(key)],
                debugDescription: "'\(text)' is not a valid \(key) in \(section)."
                    + NearMiss.hint(for: text, among: Array(choices.keys))
                    + " Choose one of: \(choices.keys.sorted().joined(separator: ", "))."))
        }
        return value
    }

    func invalid(_ key: String, _ message: String) -> DecodingError {
        .dataCorrupted(.init(codingPath: container.codingPath + [ConfigKey(key)], debugDescription: message))
    }
}

/// A value written either as a bare name or as `name: {parameters}`, such as
/// `optimizer: adam` or `optimizer: {adam: {learning_rate: 0.001}}`.
struct NamedChoice {
    var name: String
    var parameters: Decoder?
    var path: [CodingKey]

    init(_ decoder: Decoder) throws {
        path = decoder.codingPath
        if let single = try? decoder.singleValueContainer(), let text = try? single.decode(String.self) {
            name = text
            parameters = nil
            return
        }
        let c = try decoder.container(keyedBy: ConfigKey.self)
        guard c.allKeys.count == 1, let key = c.allKeys.first else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription:
                "Expected a name, or one name with its parameters (e.g. {adam: {learning_rate: 0.001}}); "
                + "found keys \(c.allKeys.map(\.stringValue))."))
        }
        name = key.stringValue
        parameters = try? c.superDecoder(forKey: key)
        path = decoder.codingPath + [key]
    }

    func unknown(_ what: String, among names: [String]) -> DecodingError {
        .dataCorrupted(.init(codingPath: path, debugDescription:
            "Unknown \(what) '\(name)'." + NearMiss.hint(for: name, among: names)
            + " Known: \(names.joined(separator: ", "))."))
    }

    /// The parameters as a strict container (an empty one when none were given).
    func strict(_ section: String, known: [String]) throws -> StrictContainer? {
        guard let parameters else { return nil }
        if let single = try? parameters.singleValueContainer(), single.decodeNil() { return nil }
        return try StrictContainer(parameters, section: section, known: known)
    }
}
