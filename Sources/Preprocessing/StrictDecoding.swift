import Foundation

// MARK: - Strict decoding of YAML/JSON options
//
// Stages and pipeline files are decoded with Codable, but unlike plain Codable every
// mapping rejects keys it does not know (with a "did you mean"), so a typo never
// silently falls back to a default. Valid names come from `CaseIterable` enums. Errors
// carry their coding path, which the pipeline loader turns into a line and column of
// the YAML file.

/// A coding key for any string or index.
public struct ConfigKey: CodingKey, Hashable {
    public var stringValue: String
    public var intValue: Int?
    public init(_ string: String) { stringValue = string }
    public init?(stringValue: String) { self.stringValue = stringValue }
    public init?(intValue: Int) { stringValue = String(intValue); self.intValue = intValue }
}

/// Names of YAML keys or options: a `String` enum whose raw values are the YAML spellings,
/// so the valid names of an error message are the enum's cases.
public protocol ConfigName: RawRepresentable, CaseIterable, Sendable where RawValue == String {}

extension ConfigName {
    /// Every YAML spelling, in declaration order.
    public static var names: [String] { allCases.map(\.rawValue) }
}

/// A keyed container that knows the keys its type accepts and rejects any other.
public struct StrictContainer {
    /// nil for a value written without parameters: every key is then absent.
    let container: KeyedDecodingContainer<ConfigKey>?
    let codingPath: [CodingKey]
    public let known: [String]
    public let section: String

    /// Reads the mapping of `decoder`; throws for the first key not in `known`.
    public init(_ decoder: Decoder, section: String, known: [String]) throws {
        let container = try decoder.container(keyedBy: ConfigKey.self)
        self.container = container
        codingPath = container.codingPath
        self.known = known
        self.section = section
        for key in container.allKeys where !known.contains(key.stringValue) {
            throw DecodingError.dataCorrupted(.init(
                codingPath: decoder.codingPath + [key],
                debugDescription: "Unknown key '\(key.stringValue)' in \(section)."
                    + NearMiss.hint(for: key.stringValue, among: known)
                    + (known.isEmpty ? " \(section) takes no keys." : " Known keys: \(known.joined(separator: ", ")).")))
        }
    }

    /// A container with every key absent (a name written without parameters).
    public init(absentAt codingPath: [CodingKey], section: String, known: [String]) {
        container = nil
        self.codingPath = codingPath
        self.known = known
        self.section = section
    }

    /// Reads the mapping of `decoder`, whose valid keys are the cases of `keys`.
    public init<Key: ConfigName>(_ decoder: Decoder, section: String, keys: Key.Type) throws {
        try self.init(decoder, section: section, known: Key.names)
    }

    public func has(_ key: String) -> Bool { container?.contains(ConfigKey(key)) ?? false }

    /// The keys present in the mapping.
    public var presentKeys: [String] { container?.allKeys.map(\.stringValue) ?? [] }

    public func optional<T: Decodable>(_ key: String, _ type: T.Type = T.self) throws -> T? {
        precondition(known.contains(key), "StrictContainer: '\(key)' read but not declared for \(section)")
        return try container?.decodeIfPresent(T.self, forKey: ConfigKey(key))
    }

    public func required<T: Decodable>(_ key: String, _ type: T.Type = T.self) throws -> T {
        guard let value: T = try optional(key) else { throw missing(key) }
        return value
    }

    func missing(_ key: String) -> DecodingError {
        .keyNotFound(ConfigKey(key), .init(codingPath: codingPath,
                                           debugDescription: "\(section) needs the key '\(key)'."))
    }

    /// A string decoded into one of `choices`, with a near-miss hint.
    public func choice<T>(_ key: String, _ choices: [String: T]) throws -> T? {
        guard let text: String = try optional(key) else { return nil }
        guard let value = choices[text] else {
            throw DecodingError.dataCorrupted(.init(
                codingPath: codingPath + [ConfigKey(key)],
                debugDescription: "'\(text)' is not a valid \(key) in \(section)."
                    + NearMiss.hint(for: text, among: Array(choices.keys))
                    + " Choose one of: \(choices.keys.sorted().joined(separator: ", "))."))
        }
        return value
    }

    /// A string decoded into a case of `T` by its raw value, with a near-miss hint.
    public func choice<T: ConfigName>(_ key: String, _ type: T.Type = T.self) throws -> T? {
        try choice(key, Dictionary(uniqueKeysWithValues: T.allCases.map { ($0.rawValue, $0) }))
    }

    /// A number, or a range `[low, high]` with low ≤ high; `fallback` when absent.
    public func range(_ key: String, default fallback: ClosedRange<Double>? = nil) throws -> ClosedRange<Double> {
        guard has(key) else {
            if let fallback { return fallback }
            throw missing(key)
        }
        if let pair = try? optional(key, [Double].self), pair.count == 2, pair[0] <= pair[1] {
            return pair[0]...pair[1]
        }
        if let single = try? optional(key, Double.self) { return single...single }
        throw invalid(key, "\(section): '\(key)' must be a number or a range [low, high] with low ≤ high.")
    }

    public func invalid(_ key: String, _ message: String) -> DecodingError {
        .dataCorrupted(.init(codingPath: codingPath + [ConfigKey(key)], debugDescription: message))
    }
}

/// A `StrictContainer` whose keys are the cases of `Key`: every read names a case, so a key
/// read but not declared does not compile, and the error's list of valid keys is the enum.
public struct StrictKeyed<Key: ConfigName> {
    public let base: StrictContainer

    public init(_ decoder: Decoder, section: String) throws {
        base = try StrictContainer(decoder, section: section, known: Key.names)
    }

    public var section: String { base.section }
    public func has(_ key: Key) -> Bool { base.has(key.rawValue) }

    public func optional<T: Decodable>(_ key: Key, _ type: T.Type = T.self) throws -> T? {
        try base.optional(key.rawValue, type)
    }

    public func required<T: Decodable>(_ key: Key, _ type: T.Type = T.self) throws -> T {
        try base.required(key.rawValue, type)
    }

    public func choice<T>(_ key: Key, _ choices: [String: T]) throws -> T? { try base.choice(key.rawValue, choices) }

    public func choice<T: ConfigName>(_ key: Key, _ type: T.Type = T.self) throws -> T? {
        try base.choice(key.rawValue, type)
    }

    public func range(_ key: Key, default fallback: ClosedRange<Double>? = nil) throws -> ClosedRange<Double> {
        try base.range(key.rawValue, default: fallback)
    }

    public func invalid(_ key: Key, _ message: String) -> DecodingError { base.invalid(key.rawValue, message) }
}

/// A value written either as a bare name or as `name: {parameters}`, such as
/// `optimizer: adam`, `optimizer: {adam: {learning_rate: 0.001}}` or a stage
/// `- asinh: {softening: 1.0}`.
public struct NamedChoice {
    public var name: String
    public var parameters: Decoder?
    public var path: [CodingKey]

    /// `what` names the kind of value in the error for a mapping of several keys.
    public init(_ decoder: Decoder, what: String = "value", example: String = "{adam: {learning_rate: 0.001}}") throws {
        path = decoder.codingPath
        if let single = try? decoder.singleValueContainer(), let text = try? single.decode(String.self) {
            name = text
            parameters = nil
            return
        }
        let c = try decoder.container(keyedBy: ConfigKey.self)
        guard c.allKeys.count == 1, let key = c.allKeys.first else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription:
                "A \(what) is one name with its parameters, e.g. \(example); "
                + "found keys \(c.allKeys.map(\.stringValue))."))
        }
        name = key.stringValue
        parameters = try? c.superDecoder(forKey: key)
        path = decoder.codingPath + [key]
    }

    /// "Unknown `what` 'name'. Did you mean ...?", at `path` or the given coding path.
    public func unknown(_ what: String, among names: [String], at codingPath: [CodingKey]? = nil) -> DecodingError {
        .dataCorrupted(.init(codingPath: codingPath ?? path, debugDescription:
            "Unknown \(what) '\(name)'." + NearMiss.hint(for: name, among: names)
            + " Known: \(names.joined(separator: ", "))."))
    }

    /// The name as a case of `T`; throws `unknown(what, among: T.names)` otherwise.
    public func name<T: ConfigName>(_ type: T.Type, what: String) throws -> T {
        guard let value = T(rawValue: name) else { throw unknown(what, among: T.names) }
        return value
    }

    /// The parameters as a strict container (with every key absent when none were given).
    public func strict(_ section: String, known: [String]) throws -> StrictContainer {
        guard let parameters, !((try? parameters.singleValueContainer())?.decodeNil() ?? false) else {
            return StrictContainer(absentAt: path, section: section, known: known)
        }
        return try StrictContainer(parameters, section: section, known: known)
    }

    /// The parameters as a strict container keyed by the cases of `keys`.
    public func strict<Key: ConfigName>(_ section: String, keys: Key.Type) throws -> StrictContainer {
        try strict(section, known: Key.names)
    }
}

/// Lets a `NamedChoice` be decoded where a `Decodable` is expected (a keyed value, an array element).
public struct NamedChoiceBox: Decodable {
    public let choice: NamedChoice
    public init(from decoder: Decoder) throws { choice = try NamedChoice(decoder) }
}
