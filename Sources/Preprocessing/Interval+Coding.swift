import Foundation

/// The YAML/JSON form of an `Interval`: `minmax`, `zscale`, `{percentile: 99.5}`,
/// `{lower: 1, upper: 99}` (percentiles), `{min: 0, max: 1000}` (manual), or
/// `{zscale: {contrast: 0.25, samples: 1000}}`.
struct IntervalCoding: Codable {
    var value: Interval
    init(_ value: Interval) { self.value = value }

    init(from decoder: Decoder) throws {
        if let single = try? decoder.singleValueContainer(), let name = try? single.decode(String.self) {
            switch name {
            case "minmax", "min_max": value = .minMax
            case "zscale": value = .zscale(.init())
            default:
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription:
                    "Unknown interval '\(name)'." + NearMiss.hint(for: name, among: ["minmax", "zscale"])
                    + " Known: minmax, zscale, {percentile: P}, {lower: P1, upper: P2}, {min: A, max: B}."))
            }
            return
        }
        let c = try decoder.container(keyedBy: AnyKey.self)
        if let p = try c.decodeIfPresent(Double.self, forKey: AnyKey("percentile")) {
            value = .percentile(p)
        } else if let lo = try c.decodeIfPresent(Double.self, forKey: AnyKey("lower")),
                  let hi = try c.decodeIfPresent(Double.self, forKey: AnyKey("upper")) {
            value = .asymmetricPercentile(lower: lo, upper: hi)
        } else if let lo = try c.decodeIfPresent(Double.self, forKey: AnyKey("min")),
                  let hi = try c.decodeIfPresent(Double.self, forKey: AnyKey("max")) {
            value = .manual(min: lo, max: hi)
        } else if c.contains(AnyKey("zscale")) {
            let z = try c.nestedContainer(keyedBy: AnyKey.self, forKey: AnyKey("zscale"))
            var p = Interval.ZScale()
            p.samples = try z.decodeIfPresent(Int.self, forKey: AnyKey("samples")) ?? p.samples
            p.contrast = try z.decodeIfPresent(Double.self, forKey: AnyKey("contrast")) ?? p.contrast
            p.maxReject = try z.decodeIfPresent(Double.self, forKey: AnyKey("max_reject")) ?? p.maxReject
            p.minPixels = try z.decodeIfPresent(Int.self, forKey: AnyKey("min_pixels")) ?? p.minPixels
            p.rejectionSigma = try z.decodeIfPresent(Double.self, forKey: AnyKey("krej")) ?? p.rejectionSigma
            p.maxIterations = try z.decodeIfPresent(Int.self, forKey: AnyKey("max_iterations")) ?? p.maxIterations
            value = .zscale(p)
        } else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription:
                "An interval is minmax, zscale, {percentile: P}, {lower: P1, upper: P2} or {min: A, max: B}; "
                + "found keys \(c.allKeys.map(\.stringValue))."))
        }
    }

    func encode(to encoder: Encoder) throws {
        switch value {
        case .minMax:
            var s = encoder.singleValueContainer(); try s.encode("minmax")
        case let .zscale(p) where p == Interval.ZScale():
            var s = encoder.singleValueContainer(); try s.encode("zscale")
        case let .zscale(p):
            var c = encoder.container(keyedBy: AnyKey.self)
            var z = c.nestedContainer(keyedBy: AnyKey.self, forKey: AnyKey("zscale"))
            try z.encode(p.samples, forKey: AnyKey("samples"))
            try z.encode(p.contrast, forKey: AnyKey("contrast"))
            try z.encode(p.maxReject, forKey: AnyKey("max_reject"))
            try z.encode(p.minPixels, forKey: AnyKey("min_pixels"))
            try z.encode(p.rejectionSigma, forKey: AnyKey("krej"))
            try z.encode(p.maxIterations, forKey: AnyKey("max_iterations"))
        case let .percentile(p):
            var c = encoder.container(keyedBy: AnyKey.self); try c.encode(p, forKey: AnyKey("percentile"))
        case let .asymmetricPercentile(lo, hi):
            var c = encoder.container(keyedBy: AnyKey.self)
            try c.encode(lo, forKey: AnyKey("lower")); try c.encode(hi, forKey: AnyKey("upper"))
        case let .manual(lo, hi):
            var c = encoder.container(keyedBy: AnyKey.self)
            try c.encode(lo, forKey: AnyKey("min")); try c.encode(hi, forKey: AnyKey("max"))
        }
    }
}

/// The YAML/JSON form of a `Stretch`: `linear`, `sqrt`, `histeq`, or a one-key
/// mapping with its parameter: `{power: 2}`, `{log: 1000}`, `{asinh: 0.1}`, `{sinh: 0.333}`.
struct StretchCoding: Codable {
    var value: Stretch
    init(_ value: Stretch) { self.value = value }
    static let names = ["linear", "sqrt", "histeq", "power", "log", "asinh", "sinh"]

    init(from decoder: Decoder) throws {
        if let single = try? decoder.singleValueContainer(), let name = try? single.decode(String.self) {
            switch name {
            case "linear": value = .linear()
            case "sqrt": value = .sqrt
            case "histeq": value = .histogramEqualization
            case "log": value = .log()
            case "asinh": value = .asinh()
            case "sinh": value = .sinh()
            default:
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription:
                    "Unknown stretch '\(name)'." + NearMiss.hint(for: name, among: Self.names)
                    + " Known: \(Self.names.joined(separator: ", "))."))
            }
            return
        }
        let c = try decoder.container(keyedBy: AnyKey.self)
        guard c.allKeys.count == 1, let key = c.allKeys.first else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription:
                "A stretch is a name or one name with its parameter, e.g. {asinh: 0.1}."))
        }
        let a = try c.decode(Double.self, forKey: key)
        switch key.stringValue {
        case "power": value = .power(a)
        case "log": value = .log(a: a)
        case "asinh": value = .asinh(a: a)
        case "sinh": value = .sinh(a: a)
        case "linear": value = .linear(slope: a)
        default:
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath + [key], debugDescription:
                "Unknown stretch '\(key.stringValue)'." + NearMiss.hint(for: key.stringValue, among: Self.names)))
        }
    }

    func encode(to encoder: Encoder) throws {
        func one(_ name: String, _ a: Double) throws {
            var c = encoder.container(keyedBy: AnyKey.self); try c.encode(a, forKey: AnyKey(name))
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
