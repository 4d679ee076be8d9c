import Foundation

/// The YAML/JSON form of an `Interval`: `minmax`, `zscale`, `{percentile: 99.5}`,
/// `{lower: 1, upper: 99}` (percentiles), `{min: 0, max: 1000}` (manual), or
/// `{zscale: {contrast: 0.25, samples: 1000}}`.
struct IntervalCoding: Codable {
    var value: Interval
    init(_ value: Interval) { self.value = value }

    /// The intervals written as a bare name (`min_max` is accepted for `minmax`).
    enum Name: String, ConfigName { case minmax, zscale }
    /// The keys of the mapping forms.
    enum Key: String, ConfigName { case percentile, lower, upper, min, max, zscale }
    /// The parameters of `{zscale: {...}}` (astropy's `ZScaleInterval` names; `krej` is its rejection sigma).
    enum ZScaleKey: String, ConfigName {
        case samples, contrast, maxReject = "max_reject", minPixels = "min_pixels", krej
        case maxIterations = "max_iterations"
    }

    static let forms = "minmax, zscale, {percentile: P}, {lower: P1, upper: P2}, {min: A, max: B}"

    init(from decoder: Decoder) throws {
        if let single = try? decoder.singleValueContainer(), let text = try? single.decode(String.self) {
            switch Name(rawValue: text == "min_max" ? "minmax" : text) {
            case .minmax: value = .minMax
            case .zscale: value = .zscale(.init())
            case nil:
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription:
                    "Unknown interval '\(text)'." + NearMiss.hint(for: text, among: Name.names) + " Known: \(Self.forms)."))
            }
            return
        }
        let c = try StrictContainer(decoder, section: "interval", keys: Key.self)
        if let p: Double = try c.optional("percentile") {
            value = .percentile(p)
        } else if let lo: Double = try c.optional("lower"), let hi: Double = try c.optional("upper") {
            value = .asymmetricPercentile(lower: lo, upper: hi)
        } else if let lo: Double = try c.optional("min"), let hi: Double = try c.optional("max") {
            value = .manual(min: lo, max: hi)
        } else if c.has("zscale") {
            let z = try c.optional("zscale", ZScaleCoding.self)!
            value = .zscale(z.value)
        } else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription:
                "An interval is \(Self.forms); found keys \(c.presentKeys)."))
        }
    }

    /// The parameters of `{zscale: {...}}`, each defaulting to astropy's.
    struct ZScaleCoding: Decodable {
        var value = Interval.ZScale()
        init(from decoder: Decoder) throws {
            let z = try StrictContainer(decoder, section: "zscale", keys: ZScaleKey.self)
            value.samples = try z.optional("samples") ?? value.samples
            value.contrast = try z.optional("contrast") ?? value.contrast
            value.maxReject = try z.optional("max_reject") ?? value.maxReject
            value.minPixels = try z.optional("min_pixels") ?? value.minPixels
            value.rejectionSigma = try z.optional("krej") ?? value.rejectionSigma
            value.maxIterations = try z.optional("max_iterations") ?? value.maxIterations
        }
    }

    func encode(to encoder: Encoder) throws {
        switch value {
        case .minMax:
            var s = encoder.singleValueContainer(); try s.encode("minmax")
        case let .zscale(p) where p == Interval.ZScale():
            var s = encoder.singleValueContainer(); try s.encode("zscale")
        case let .zscale(p):
            var c = encoder.container(keyedBy: ConfigKey.self)
            var z = c.nestedContainer(keyedBy: ConfigKey.self, forKey: ConfigKey("zscale"))
            try z.encode(p.samples, forKey: ConfigKey("samples"))
            try z.encode(p.contrast, forKey: ConfigKey("contrast"))
            try z.encode(p.maxReject, forKey: ConfigKey("max_reject"))
            try z.encode(p.minPixels, forKey: ConfigKey("min_pixels"))
            try z.encode(p.rejectionSigma, forKey: ConfigKey("krej"))
            try z.encode(p.maxIterations, forKey: ConfigKey("max_iterations"))
        case let .percentile(p):
            var c = encoder.container(keyedBy: ConfigKey.self); try c.encode(p, forKey: ConfigKey("percentile"))
        case let .asymmetricPercentile(lo, hi):
            var c = encoder.container(keyedBy: ConfigKey.self)
            try c.encode(lo, forKey: ConfigKey("lower")); try c.encode(hi, forKey: ConfigKey("upper"))
        case let .manual(lo, hi):
            var c = encoder.container(keyedBy: ConfigKey.self)
            try c.encode(lo, forKey: ConfigKey("min")); try c.encode(hi, forKey: ConfigKey("max"))
        }
    }
}

/// The YAML/JSON form of a `Stretch`: `linear`, `sqrt`, `histeq`, or a one-key
/// mapping with its parameter: `{power: 2}`, `{log: 1000}`, `{asinh: 0.1}`, `{sinh: 0.333}`,
/// `{linear: slope}`.
struct StretchCoding: Codable {
    var value: Stretch
    init(_ value: Stretch) { self.value = value }

    enum Name: String, ConfigName { case linear, sqrt, histeq, power, log, asinh, sinh }

    init(from decoder: Decoder) throws {
        let choice = try NamedChoice(decoder, what: "stretch", example: "{asinh: 0.1}")
        let name = try choice.name(Name.self, what: "stretch")
        guard let parameters = choice.parameters else {
            switch name {
            case .linear: value = .linear()
            case .sqrt: value = .sqrt
            case .histeq: value = .histogramEqualization
            case .log: value = .log()
            case .asinh: value = .asinh()
            case .sinh: value = .sinh()
            case .power:
                throw DecodingError.dataCorrupted(.init(codingPath: choice.path, debugDescription:
                    "The power stretch needs its exponent, e.g. {power: 2}."))
            }
            return
        }
        let a = try parameters.singleValueContainer().decode(Double.self)
        switch name {
        case .power: value = .power(a)
        case .log: value = .log(a: a)
        case .asinh: value = .asinh(a: a)
        case .sinh: value = .sinh(a: a)
        case .linear: value = .linear(slope: a)
        case .sqrt, .histeq:
            throw DecodingError.dataCorrupted(.init(codingPath: choice.path, debugDescription:
                "The \(name.rawValue) stretch takes no parameter: write '\(name.rawValue)'."))
        }
    }

    func encode(to encoder: Encoder) throws {
        func one(_ name: String, _ a: Double) throws {
            var c = encoder.container(keyedBy: ConfigKey.self); try c.encode(a, forKey: ConfigKey(name))
        }
        switch value {
        case .linear(1, 0): var s = encoder.singleValueContainer(); try s.encode("linear")
        case let .linear(slope, _): try one("linear", slope)
        case .sqrt: var s = encoder.singleValueContainer(); try s.encode("sqrt")
        case .histogramEqualization: var s = encoder.singleValueContainer(); try s.encode("histeq")
        case let .power(a): try one("power", a)
        case let .log(a): try one("log", a)
        case let .asinh(a): try one("asinh", a)
        case let .sinh(a): try one("sinh", a)
        }
    }
}
