import Foundation

// MARK: - The YAML/JSON form of stages
//
// Each stage is a one-key mapping, `name: {parameters}`, or a bare name when it
// takes none (`- standardize`). Unknown stage names and parameter keys are
// rejected with a "did you mean" hint (`StrictContainer`); every error carries its
// coding path, which the pipeline loader turns into a line and column.

/// The YAML name of every stage.
public enum StageName: String, ConfigName {
    case fillBlanks = "fill_blanks", subtractBackground = "subtract_background", scaleByNoise = "scale_by_noise"
    case asinh, normalize, standardize, clip, resize
    case centerCrop = "center_crop", pad
    case gaussianNoise = "gaussian_noise", poissonNoise = "poisson_noise", skyJitter = "sky_jitter"
    case psfBlur = "psf_blur", flip, rotate90, rotate, shift
    case randomCrop = "random_crop", fluxScale = "flux_scale"
    case subtractMeshBackground = "subtract_mesh_background", estimateNoise = "estimate_noise"
    case matchZeroPoint = "match_zero_point", matchPixelScale = "match_pixel_scale", matchPSF = "match_psf"
    case fitSize = "fit_size", headerChannel = "header_channel", maskNeighbours = "mask_neighbours"
    case pedestal, cosmicRays = "cosmic_rays", maskPixels = "mask_pixels", correlatedNoise = "correlated_noise"

    /// The parameter keys the stage accepts.
    public var parameters: [StageParameter] {
        switch self {
        case .fillBlanks: return [.fill, .mask]
        case .subtractBackground, .standardize: return []
        case .scaleByNoise: return [.sigma, .measured, .keyword, .bandKeywords]
        case .asinh: return [.softening, .scale]
        case .normalize: return [.interval, .stretch]
        case .clip: return [.min, .max]
        case .resize: return [.size, .height, .width, .method]
        case .centerCrop: return [.size, .height, .width]
        case .pad: return [.size, .top, .bottom, .left, .right, .mode, .value]
        case .gaussianNoise: return [.sigma, .p]
        case .poissonNoise: return [.gain, .p]
        case .skyJitter, .fluxScale: return [.range, .p]
        case .psfBlur: return [.fwhm, .p]
        case .flip, .rotate90: return [.p]
        case .rotate: return [.degrees, .p]
        case .shift: return [.max, .p]
        case .randomCrop: return [.size, .p]
        case .subtractMeshBackground: return [.mesh, .filter, .estimator, .sigma, .iterations, .when, .border]
        case .estimateNoise: return [.keyword, .bandKeywords]
        case .matchZeroPoint: return [.zeroPoint]
        case .matchPixelScale: return [.pixelScale]
        case .matchPSF: return [.fwhm]
        case .fitSize: return [.size, .height, .width]
        case .headerChannel: return [.keyword, .range]
        case .maskNeighbours: return [.threshold, .minPeak, .minProminence, .kronFactor, .grow, .core, .centralRadius, .keyword, .bandKeywords]
        case .pedestal: return [.level, .gradient, .p]
        case .cosmicRays: return [.count, .length, .amplitude, .p]
        case .maskPixels: return [.columns, .spots, .edge, .p]
        case .correlatedNoise: return [.sigma, .length, .p]
        }
    }
}

/// Every parameter key of a stage, as written in YAML.
public enum StageParameter: String, ConfigName {
    case fill, mask, sigma, measured, keyword, bandKeywords = "band_keywords", softening, scale
    case interval, stretch, min, max, size, height, width, method, top, bottom, left, right, mode, value
    case p, gain, range, fwhm, degrees
    case mesh, filter, estimator, iterations, when, zeroPoint = "zero_point", pixelScale = "pixel_scale"
    case level, gradient, count, length, amplitude, columns, spots, edge, border
    case threshold, minPeak = "min_peak", minProminence = "min_prominence", kronFactor = "kron_factor", grow, core, centralRadius = "central_radius"
}

/// The padding modes of `pad`, as written in YAML.
enum PaddingModeName: String, ConfigName { case constant, reflect, edge }

extension BlankFill: ConfigName {}
extension ResizeMethod: ConfigName {}

extension Stage: Codable {
    /// Every stage name accepted in YAML.
    public static var names: [String] { StageName.names }

    public init(from decoder: Decoder) throws {
        let choice = try NamedChoice(decoder, what: "stage", example: "'asinh: {softening: 1.0}'")
        guard let name = StageName(rawValue: choice.name) else {
            throw choice.unknown("stage", among: StageName.names, at: decoder.codingPath)
        }
        self = try Self.decode(name, choice.strict("stage '\(name.rawValue)'", known: name.parameters.map(\.rawValue)))
    }

    static func decode(_ name: StageName, _ p: StrictContainer) throws -> Stage {
        func random(_ a: Augmentation) throws -> Stage {
            let probability: Double = try p.optional("p") ?? 1
            guard (0...1).contains(probability) else {
                throw p.invalid("p", "\(name.rawValue): p is the probability of applying it, in [0, 1], got \(probability).")
            }
            return .augment(RandomAugmentation(a, probability: probability))
        }
        func counts(_ key: String, default fallback: ClosedRange<Double>) throws -> ClosedRange<Double> {
            let r = try p.range(key, default: fallback)
            guard r.lowerBound >= 0, r.lowerBound.rounded() == r.lowerBound, r.upperBound.rounded() == r.upperBound,
                  r.upperBound < 1_000_000 else {
                throw p.invalid(key, "\(name.rawValue): \(key) must be a whole number ≥ 0 or [low, high] of them, got \(r).")
            }
            return r
        }
        func positive(_ key: String, default fallback: ClosedRange<Double>) throws -> ClosedRange<Double> {
            let r = try p.range(key, default: fallback)
            guard r.lowerBound >= 0, r.upperBound.isFinite else {
                throw p.invalid(key, "\(name.rawValue): \(key) must be a number ≥ 0 or [low, high] of them, got \(r).")
            }
            return r
        }
        switch name {
        case .fillBlanks:
            return .fillBlanks(try p.choice("fill", BlankFill.self) ?? .zero, appendMask: try p.optional("mask") ?? false)
        case .subtractBackground: return .subtractBackground
        case .scaleByNoise:
            if let sigma: Double = try p.optional("sigma") { return .scaleByNoise(.fixed(sigma)) }
            if try p.optional("measured", Bool.self) == true { return .scaleByNoise(.measured) }
            return .scaleByNoise(.header(keyword: try p.optional("keyword") ?? "SKYSIG",
                                         bandKeywords: try p.optional("band_keywords") ?? []))
        case .asinh:
            let softening: Double = try p.optional("softening") ?? 1
            guard softening > 0, softening.isFinite else {
                throw p.invalid("softening", "asinh: softening must be a positive number (about the sky noise), got \(softening).")
            }
            return .asinh(AsinhScaling(softening: softening, scale: try p.optional("scale") ?? 1))
        case .normalize:
            let interval = try p.optional("interval", IntervalCoding.self)?.value ?? .minMax
            let stretch = try p.optional("stretch", StretchCoding.self)?.value ?? .linear()
            return .normalize(ImageNormalization(interval: interval, stretch: stretch))
        case .standardize: return .standardize
        case .clip: return .clip(min: try p.optional("min") ?? -.infinity, max: try p.optional("max") ?? .infinity)
        case .subtractMeshBackground:
            let mesh = MeshBackground(mesh: try p.optional("mesh") ?? 64, filter: try p.optional("filter") ?? 3,
                                      estimator: try p.choice("estimator", MeshBackground.Estimator.self) ?? .sextractor,
                                      sigma: try p.optional("sigma") ?? 3, iterations: try p.optional("iterations") ?? 10,
                                      policy: try p.choice("when", MeshBackground.Policy.self) ?? .always,
                                      border: try p.optional("border") ?? 0)
            guard mesh.mesh > 0, mesh.filter > 0, mesh.sigma > 0, mesh.iterations > 0 else {
                throw p.invalid("mesh", "subtract_mesh_background: mesh, filter, sigma and iterations must be positive.")
            }
            guard mesh.border >= 0 else {
                throw p.invalid("border", "subtract_mesh_background: border must be 0 (meshes) or a positive number of pixels.")
            }
            return .subtractMeshBackground(mesh)
        case .estimateNoise:
            return .estimateNoise(keyword: try p.optional("keyword") ?? "SKYSIG", bandKeywords: try p.optional("band_keywords") ?? [])
        case .matchZeroPoint:
            let zp: Double = try p.required("zero_point")
            guard zp.isFinite else { throw p.invalid("zero_point", "match_zero_point: zero_point must be a number.") }
            return .matchZeroPoint(zp)
        case .matchPixelScale:
            let scale: Double = try p.required("pixel_scale")
            guard scale > 0, scale.isFinite else {
                throw p.invalid("pixel_scale", "match_pixel_scale: pixel_scale must be a positive number of arcsec per pixel.")
            }
            return .matchPixelScale(scale)
        case .matchPSF:
            let range = try p.range("fwhm")
            guard range.lowerBound > 0 else { throw p.invalid("fwhm", "match_psf: fwhm must be [min, max] in arcsec, positive.") }
            return .matchPSF(fwhm: range)
        case .headerChannel:
            let keyword: String = try p.required("keyword")
            let range = try p.range("range")
            guard !keyword.isEmpty, range.lowerBound.isFinite, range.upperBound.isFinite, range.upperBound > range.lowerBound else {
                throw p.invalid("range", "header_channel: range must be [low, high] with low < high (the keyword's training range, "
                                + "mapped to [-1, 1]), got \(range).")
            }
            return .headerChannel(keyword: keyword, range: range)
        case .maskNeighbours:
            let d = NeighbourMasking()
            let m = NeighbourMasking(threshold: try p.optional("threshold") ?? d.threshold,
                                     minimumPeak: try p.optional("min_peak") ?? d.minimumPeak,
                                     minimumProminence: try p.optional("min_prominence") ?? d.minimumProminence,
                                     kronFactor: try p.optional("kron_factor") ?? d.kronFactor,
                                     grow: try p.optional("grow") ?? d.grow, core: try p.optional("core") ?? d.core,
                                     centralRadius: try p.optional("central_radius") ?? d.centralRadius,
                                     keyword: try p.optional("keyword") ?? d.keyword,
                                     bandKeywords: try p.optional("band_keywords") ?? [])
            for (key, value) in [("threshold", m.threshold), ("min_peak", m.minimumPeak),
                                 ("min_prominence", m.minimumProminence)] where !(value > 0 && value.isFinite) {
                throw p.invalid(key, "mask_neighbours: \(key) must be a positive number of noise sigmas, got \(value).")
            }
            for (key, value) in [("kron_factor", m.kronFactor), ("core", m.core), ("grow", Double(m.grow)),
                                 ("central_radius", m.centralRadius)]
                where !(value >= 0 && value.isFinite) {
                throw p.invalid(key, "mask_neighbours: \(key) must be a number ≥ 0, got \(value).")
            }
            return .maskNeighbours(m)
        case .resize, .centerCrop, .fitSize:
            let size: Int? = try p.optional("size")
            let h = try p.optional("height") ?? size, w = try p.optional("width") ?? size
            guard let h, let w, h > 0, w > 0 else {
                throw p.invalid("size", "\(name.rawValue) needs 'size' or 'height' and 'width', positive integers.")
            }
            if name == .centerCrop { return .centerCrop(height: h, width: w) }
            if name == .fitSize { return .fitSize(height: h, width: w) }
            return .resize(height: h, width: w, method: try p.choice("method", ResizeMethod.self) ?? .bilinear)
        case .pad:
            let all = try p.optional("size", Int.self) ?? 0
            let mode: PaddingMode
            switch try p.choice("mode", PaddingModeName.self) ?? .constant {
            case .reflect: mode = .reflect
            case .edge: mode = .edge
            case .constant: mode = .constant(try p.optional("value") ?? 0)
            }
            return .pad(top: try p.optional("top") ?? all, bottom: try p.optional("bottom") ?? all,
                        left: try p.optional("left") ?? all, right: try p.optional("right") ?? all, mode: mode)
        case .gaussianNoise: return try random(.gaussianNoise(sigma: p.range("sigma")))
        case .poissonNoise: return try random(.poissonNoise(gain: p.optional("gain") ?? 1))
        case .skyJitter: return try random(.skyJitter(p.range("range")))
        case .psfBlur: return try random(.psfBlur(fwhm: p.range("fwhm")))
        case .flip: return try random(.flip)
        case .rotate90: return try random(.rotate90)
        case .rotate: return try random(.rotate(degrees: p.range("degrees", default: 0...360)))
        case .shift: return try random(.shift(maxPixels: p.required("max")))
        case .randomCrop: return try random(.randomCrop(size: p.required("size")))
        case .fluxScale: return try random(.fluxScale(p.range("range")))
        case .pedestal:
            return try random(.pedestal(level: p.range("level"), gradient: p.range("gradient", default: 0...0)))
        case .cosmicRays:
            return try random(.cosmicRays(count: counts("count", default: 1...3), length: positive("length", default: 1...12),
                                          amplitude: positive("amplitude", default: 10...300)))
        case .maskPixels:
            return try random(.maskPixels(columns: counts("columns", default: 0...1), spots: counts("spots", default: 0...2),
                                          edge: counts("edge", default: 0...0)))
        case .correlatedNoise:
            return try random(.correlatedNoise(sigma: positive("sigma", default: 0.5...1),
                                               length: positive("length", default: 0.5...1.5)))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var outer = encoder.container(keyedBy: ConfigKey.self)
        var c = outer.nestedContainer(keyedBy: ConfigKey.self, forKey: ConfigKey(name))
        func put<T: Encodable>(_ key: String, _ value: T) throws { try c.encode(value, forKey: ConfigKey(key)) }
        func range(_ key: String, _ r: ClosedRange<Double>) throws { try put(key, [r.lowerBound, r.upperBound]) }
        switch self {
        case let .fillBlanks(fill, mask):
            try put("fill", fill.rawValue)
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
        case let .subtractMeshBackground(m):
            try put("mesh", m.mesh); try put("filter", m.filter); try put("estimator", m.estimator.rawValue)
            try put("sigma", m.sigma); try put("iterations", m.iterations); try put("when", m.policy.rawValue)
            if m.border > 0 { try put("border", m.border) }
        case let .estimateNoise(keyword, bands):
            try put("keyword", keyword)
            if !bands.isEmpty { try put("band_keywords", bands) }
        case let .matchZeroPoint(zp): try put("zero_point", zp)
        case let .matchPixelScale(scale): try put("pixel_scale", scale)
        case let .matchPSF(r): try range("fwhm", r)
        case let .fitSize(h, w): try put("height", h); try put("width", w)
        case let .headerChannel(keyword, r): try put("keyword", keyword); try range("range", r)
        case let .maskNeighbours(m):
            try put("threshold", m.threshold); try put("min_peak", m.minimumPeak)
            try put("min_prominence", m.minimumProminence); try put("kron_factor", m.kronFactor)
            try put("grow", m.grow); try put("core", m.core); try put("central_radius", m.centralRadius)
            try put("keyword", m.keyword)
            if !m.bandKeywords.isEmpty { try put("band_keywords", m.bandKeywords) }
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
            case let .pedestal(level, gradient): try range("level", level); try range("gradient", gradient)
            case let .cosmicRays(count, length, amplitude):
                try range("count", count); try range("length", length); try range("amplitude", amplitude)
            case let .maskPixels(columns, spots, edge):
                try range("columns", columns); try range("spots", spots); try range("edge", edge)
            case let .correlatedNoise(sigma, length): try range("sigma", sigma); try range("length", length)
            }
        }
    }
}
