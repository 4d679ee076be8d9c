import Foundation

// MARK: - The YAML/JSON form of stages
//
// Each stage is a one-key mapping, `name: {parameters}`, or a bare name when it
// takes none (`- standardize`). Unknown stage names and parameter keys are
// rejected with a "did you mean" hint; every error carries its coding path,
// which the pipeline loader turns into a line and column.

struct AnyKey: CodingKey, Hashable {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ string: String) { stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { return nil }
}

/// The parameters of one stage: a keyed container that remembers which keys
/// were read, so that leftovers can be reported as unknown.
struct Parameters {
    let container: KeyedDecodingContainer<AnyKey>?
    let stage: String
    let path: [CodingKey]
    private(set) var allowed: [String] = []

    func has(_ key: String) -> Bool { container?.contains(AnyKey(key)) ?? false }

    mutating func value<T: Decodable>(_ key: String, _ type: T.Type = T.self) throws -> T? {
        allowed.append(key)
        guard let container, container.contains(AnyKey(key)) else { return nil }
        return try container.decode(T.self, forKey: AnyKey(key))
    }

    mutating func required<T: Decodable>(_ key: String, _ type: T.Type = T.self) throws -> T {
        guard let v: T = try value(key) else {
            throw DecodingError.keyNotFound(AnyKey(key), .init(
                codingPath: path, debugDescription: "Stage '\(stage)' needs the parameter '\(key)'."))
        }
        return v
    }

    mutating func range(_ key: String, default fallback: ClosedRange<Double>? = nil) throws -> ClosedRange<Double> {
        allowed.append(key)
        if let container, container.contains(AnyKey(key)) {
            if let pair = try? container.decode([Double].self, forKey: AnyKey(key)), pair.count == 2, pair[0] <= pair[1] {
                return pair[0]...pair[1]
            }
            if let single = try? container.decode(Double.self, forKey: AnyKey(key)) { return single...single }
            throw DecodingError.dataCorruptedError(forKey: AnyKey(key), in: container, debugDescription:
                "Stage '\(stage)': '\(key)' must be a number or a range [low, high] with low ≤ high.")
        }
        if let fallback { return fallback }
        return try required(key, [Double].self).first.map { $0...$0 } ?? 0...0
    }

    func rejectUnknownKeys() throws {
        guard let container else { return }
        for key in container.allKeys where !allowed.contains(key.stringValue) {
            throw DecodingError.dataCorrupted(.init(
                codingPath: path + [key],
                debugDescription: "Unknown parameter '\(key.stringValue)' for stage '\(stage)'."
                    + NearMiss.hint(for: key.stringValue, among: allowed)
                    + " Known: \(allowed.joined(separator: ", "))."))
        }
    }
}

extension Stage: Codable {
    /// Every stage name accepted in YAML.
    public static let names = [
        "fill_blanks", "subtract_background", "scale_by_noise", "asinh", "normalize", "standardize",
        "clip", "resize", "center_crop", "pad", "gaussian_noise", "poisson_noise", "sky_jitter",
        "psf_blur", "flip", "rotate90", "rotate", "shift", "random_crop", "flux_scale",
    ]

    public init(from decoder: Decoder) throws {
        let name: String
        var p: Parameters
        if let single = try? decoder.singleValueContainer(), let bare = try? single.decode(String.self) {
            name = bare
            p = Parameters(container: nil, stage: bare, path: decoder.codingPath)
        } else {
            let outer = try decoder.container(keyedBy: AnyKey.self)
            guard outer.allKeys.count == 1, let key = outer.allKeys.first else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription:
                    "A stage is one name with its parameters, e.g. 'asinh: {softening: 1.0}'; found keys "
                    + "\(outer.allKeys.map(\.stringValue))."))
            }
            name = key.stringValue
            let inner = try? outer.nestedContainer(keyedBy: AnyKey.self, forKey: key)
            p = Parameters(container: inner, stage: name, path: decoder.codingPath + [key])
        }
        self = try Self.decode(name: name, &p, path: decoder.codingPath)
        try p.rejectUnknownKeys()
    }

    static func decode(name: String, _ p: inout Parameters, path: [CodingKey]) throws -> Stage {
        func random(_ a: Augmentation) throws -> Stage {
            .augment(RandomAugmentation(a, probability: try p.value("p") ?? 1))
        }
        switch name {
        case "fill_blanks":
            let text = try p.value("fill", String.self) ?? "zero"
            let fills = ["keep": BlankFill.keep, "zero": .zero, "median": .median, "local_median": .localMedian]
            guard let fill = fills[text] else {
                throw DecodingError.dataCorrupted(.init(codingPath: p.path, debugDescription:
                    "fill_blanks: unknown fill '\(text)'." + NearMiss.hint(for: text, among: Array(fills.keys))
                    + " Known: \(fills.keys.sorted().joined(separator: ", "))."))
            }
            return .fillBlanks(fill, appendMask: try p.value("mask") ?? false)
        case "subtract_background": return .subtractBackground
        case "scale_by_noise":
            if let sigma: Double = try p.value("sigma") { return .scaleByNoise(.fixed(sigma)) }
            if try p.value("measured", Bool.self) == true { return .scaleByNoise(.measured) }
            return .scaleByNoise(.header(keyword: try p.value("keyword") ?? "SKYSIG",
                                         bandKeywords: try p.value("band_keywords") ?? []))
        case "asinh":
            let softening: Double = try p.value("softening") ?? 1
            guard softening > 0, softening.isFinite else {
                throw DecodingError.dataCorrupted(.init(codingPath: p.path, debugDescription:
                    "asinh: softening must be a positive number (about the sky noise), got \(softening)."))
            }
            return .asinh(AsinhScaling(softening: softening, scale: try p.value("scale") ?? 1))
        case "normalize":
            let interval = try p.value("interval", IntervalCoding.self)?.value ?? .minMax
            let stretch = try p.value("stretch", StretchCoding.self)?.value ?? .linear()
            return .normalize(ImageNormalization(interval: interval, stretch: stretch))
        case "standardize": return .standardize
        case "clip": return .clip(min: try p.value("min") ?? -.infinity, max: try p.value("max") ?? .infinity)
        case "resize", "center_crop":
            let size: Int? = try p.value("size")
            let h = try p.value("height") ?? size, w = try p.value("width") ?? size
            guard let h, let w, h > 0, w > 0 else {
                throw DecodingError.dataCorrupted(.init(codingPath: p.path, debugDescription:
                    "\(name) needs 'size' or 'height' and 'width', positive integers."))
            }
            if name == "center_crop" { return .centerCrop(height: h, width: w) }
            let method = try p.value("method", String.self) ?? "bilinear"
            guard let m = ResizeMethod(rawValue: method) else {
                throw DecodingError.dataCorrupted(.init(codingPath: p.path, debugDescription:
                    "resize: unknown method '\(method)'."
                    + NearMiss.hint(for: method, among: ResizeMethod.allCases.map(\.rawValue))))
            }
            return .resize(height: h, width: w, method: m)
        case "pad":
            let all = try p.value("size", Int.self) ?? 0
            let mode: PaddingMode
            switch try p.value("mode", String.self) ?? "constant" {
            case "reflect": mode = .reflect
            case "edge": mode = .edge
            case "constant": mode = .constant(try p.value("value") ?? 0)
            case let other:
                throw DecodingError.dataCorrupted(.init(codingPath: p.path, debugDescription:
                    "pad: unknown mode '\(other)'." + NearMiss.hint(for: other, among: ["reflect", "edge", "constant"])))
            }
            return .pad(top: try p.value("top") ?? all, bottom: try p.value("bottom") ?? all,
                        left: try p.value("left") ?? all, right: try p.value("right") ?? all, mode: mode)
        case "gaussian_noise": return try random(.gaussianNoise(sigma: p.range("sigma")))
        case "poisson_noise": return try random(.poissonNoise(gain: p.value("gain") ?? 1))
        case "sky_jitter": return try random(.skyJitter(p.range("range")))
        case "psf_blur": return try random(.psfBlur(fwhm: p.range("fwhm")))
        case "flip": return try random(.flip)
        case "rotate90": return try random(.rotate90)
        case "rotate": return try random(.rotate(degrees: p.range("degrees", default: 0...360)))
        case "shift": return try random(.shift(maxPixels: p.required("max")))
        case "random_crop": return try random(.randomCrop(size: p.required("size")))
        case "flux_scale": return try random(.fluxScale(p.range("range")))
        default:
            throw DecodingError.dataCorrupted(.init(codingPath: path, debugDescription:
                "Unknown stage '\(name)'." + NearMiss.hint(for: name, among: names)
                + " Known stages: \(names.joined(separator: ", "))."))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var outer = encoder.container(keyedBy: AnyKey.self)
        var c = outer.nestedContainer(keyedBy: AnyKey.self, forKey: AnyKey(name))
        func put<T: Encodable>(_ key: String, _ value: T) throws { try c.encode(value, forKey: AnyKey(key)) }
        func range(_ key: String, _ r: ClosedRange<Double>) throws { try put(key, [r.lowerBound, r.upperBound]) }
        switch self {
        case let .fillBlanks(fill, mask):
            let names: [BlankFill: String] = [.keep: "keep", .zero: "zero", .median: "median", .localMedian: "local_median"]
            try put("fill", names[fill]!)
            try put("mask", mask)
        case .subtractBackground, .standardize: break
        case let .scaleByNoise(source):
            switch source {
            case let .fixed(sigma): try put("sigma", sigma)
            case .measured: try put("measured", true)
            case let .header(keyword, bands):
                try put("keyword", keyword)
                if !bands.isEmpty { try put("band_keywords", bands) }
            }
        case let .asinh(s): try put("softening", s.softening); try put("scale", s.scale)
        case let .normalize(n):
            try put("interval", IntervalCoding(n.interval))
            try put("stretch", StretchCoding(n.stretch))
        case let .clip(lo, hi):
            if lo.isFinite { try put("min", lo) }
            if hi.isFinite { try put("max", hi) }
        case let .resize(h, w, method): try put("height", h); try put("width", w); try put("method", method.rawValue)
        case let .centerCrop(h, w): try put("height", h); try put("width", w)
        case let .pad(top, bottom, left, right, mode):
            try put("top", top); try put("bottom", bottom); try put("left", left); try put("right", right)
            switch mode {
            case .reflect: try put("mode", "reflect")
            case .edge: try put("mode", "edge")
            case let .constant(v): try put("mode", "constant"); try put("value", v)
            }
        case let .augment(random):
            try put("p", random.probability)
            switch random.augmentation {
            case let .gaussianNoise(r): try range("sigma", r)
            case let .poissonNoise(gain): try put("gain", gain)
            case let .skyJitter(r): try range("range", r)
            case let .psfBlur(r): try range("fwhm", r)
            case .flip, .rotate90: break
            case let .rotate(r): try range("degrees", r)
            case let .shift(m): try put("max", m)
            case let .randomCrop(size): try put("size", size)
            case let .fluxScale(r): try range("range", r)
            }
        }
    }
}
