import FITS
import Foundation
import Preprocessing

/// What a model said about one input, as numbers: the one result type that
/// `astrolabe run`, `predict`, `evaluate` and the run journal share. Writers
/// (CSV, FITS table, reports) format it; nothing parses it back from text.
///
/// A new task adds one case here, its result type, and its columns in `ResultTable`.
public enum Prediction: Equatable, Sendable {
    /// Classification and lens finding: per-class probabilities (a softmax).
    case classes(ClassProbabilities)
    /// Regression: values in the catalog's units, with 1σ uncertainties when the model predicts them.
    case regression(RegressionEstimate)
    /// Regression with a posterior per input: medians, percentiles (and draws).
    case posterior(PosteriorEstimate)
    /// Segmentation: where the class map was written.
    case segmentation(SegmentationMap)
    /// Deblending: where the central galaxy's image was written.
    case deblended(DeblendedImage)
    /// The network's outputs as they are (`astrolabe predict --raw`).
    case logits([Double])

    /// The squared Mahalanobis distance of the network's features to held-out training-like
    /// data (`FeatureDensity`), for results that carry one (class models and regressions whose
    /// model records a density).
    public var featureDistance: Double? {
        get {
            switch self {
            case let .classes(p): return p.featureDistance
            case let .regression(r): return r.featureDistance
            case let .posterior(p): return p.featureDistance
            default: return nil
            }
        }
        set {
            switch self {
            case var .classes(p): p.featureDistance = newValue; self = .classes(p)
            case var .regression(r): r.featureDistance = newValue; self = .regression(r)
            case var .posterior(p): p.featureDistance = newValue; self = .posterior(p)
            default: break
            }
        }
    }

    /// A class model's energy score (`ClassProbabilities.energy`; nil for other results).
    public var energy: Double? {
        if case let .classes(p) = self { return p.energy }
        return nil
    }

    /// The out-of-distribution flags of this row (the one rule for tables and reports):
    /// `atypical` when its energy is above `energyThreshold`, `unfamiliar` when its feature
    /// distance is above `featureThreshold`.
    public func oodFlags(energyThreshold: Double?, featureThreshold: Double?) -> [String] {
        var flags = [String]()
        if let energyThreshold, let energy, energy > energyThreshold { flags.append("atypical") }
        if let featureThreshold, let featureDistance, featureDistance > featureThreshold { flags.append("unfamiliar") }
        return flags
    }

    /// A regression's values per target: a posterior's medians, a regression's values (nil otherwise).
    public var pointEstimates: [Double]? {
        switch self {
        case let .posterior(estimate): return estimate.medians
        case let .regression(estimate): return estimate.values
        default: return nil
        }
    }
}

/// Class probabilities of one input.
public struct ClassProbabilities: Codable, Equatable, Sendable {
    /// In class-index order; they sum to 1.
    public var probabilities: [Double]
    /// The energy score −log Σ exp(logit) of the network output (Liu et al. 2020): an
    /// out-of-distribution score, lower (more negative) for images like the training data.
    public var energy: Double?
    /// The squared Mahalanobis distance of the network's penultimate features to the nearest
    /// class mean of held-out training-like data (`FeatureDensity`; nil when the model records none):
    /// an out-of-distribution score on what the network saw, higher for images unlike those.
    public var featureDistance: Double?

    public init(probabilities: [Double], energy: Double? = nil, featureDistance: Double? = nil) {
        self.probabilities = probabilities
        self.energy = energy
        self.featureDistance = featureDistance
    }

    /// The softmax of `logits / temperature`, computed in Double after subtracting the
    /// maximum (so large logits neither overflow nor lose the small probabilities). The
    /// energy is that of the logits themselves (temperature 1), so its domain threshold does
    /// not move when a model is recalibrated.
    public init<C: Collection>(logits: C, temperature: Double = 1) where C.Element == Float {
        let m = Double(logits.max() ?? 0)
        let e = logits.map { Foundation.exp((Double($0) - m) / temperature) }
        let total = e.reduce(0, +)
        probabilities = e.map { $0 / total }
        energy = -(m + Foundation.log(temperature == 1 ? total : logits.reduce(0) { $0 + Foundation.exp(Double($1) - m) }))
    }

    /// The most probable class (the first one on ties).
    public var predicted: Int {
        probabilities.indices.max { probabilities[$0] < probabilities[$1] } ?? 0
    }
}

/// Regression targets of one input, in the units of the training catalog.
public struct RegressionEstimate: Codable, Equatable, Sendable {
    /// In `ModelRecipe.targetNames` order.
    public var values: [Double]
    /// 1σ per target; nil when the model predicts no uncertainty.
    public var sigmas: [Double]?
    /// With `sigmas`: per target the percentiles 16, 84, 2.5 and 97.5 of the model's
    /// Gaussian, taken where it is Gaussian (the learned scale: log10 for a log target) and
    /// carried to catalog units, so they are exact for `r_e` too.
    public var percentiles: [[Double]]?
    /// As `ClassProbabilities.featureDistance`: nil when the model records no feature density.
    public var featureDistance: Double?

    public init(values: [Double], sigmas: [Double]? = nil, percentiles: [[Double]]? = nil, featureDistance: Double? = nil) {
        self.values = values
        self.sigmas = sigmas
        self.percentiles = percentiles
        self.featureDistance = featureDistance
    }
}

/// The posterior of one input's regression targets, in catalog units and
/// `ModelRecipe.targetNames` order: medians and the central 68 % (`p16`–`p84`) and 95 %
/// (`p025`–`p975`) credible intervals of TASKS.md.
public struct PosteriorEstimate: Codable, Equatable, Sendable {
    public var medians: [Double]
    public var p16: [Double]
    public var p84: [Double]
    public var p025: [Double]
    public var p975: [Double]
    /// Draws `[S, k]` (row-major, catalog units) of the posterior the percentiles came from,
    /// kept only when a run asks for them (`outputs.posterior_samples`, `evaluate`); not stored
    /// in the run journal.
    public var samples: [Double]?
    /// As `ClassProbabilities.featureDistance`: nil when the model records no feature density.
    public var featureDistance: Double?
    /// What the draws came from: nil for the network's flow, `ProfileRefinement.source` for a
    /// profile fit's likelihood (the `posterior_from` column).
    public var source: String?

    enum CodingKeys: String, CodingKey { case medians, p16, p84, p025, p975, featureDistance, source }

    public init(medians: [Double], p16: [Double], p84: [Double], p025: [Double], p975: [Double], samples: [Double]? = nil,
                featureDistance: Double? = nil) {
        self.medians = medians; self.p16 = p16; self.p84 = p84; self.p025 = p025; self.p975 = p975; self.samples = samples
        self.featureDistance = featureDistance
    }
}

/// A segmentation output: the class map's path, relative to the output folder.
public struct SegmentationMap: Codable, Equatable, Sendable {
    public var output: String

    public init(output: String) { self.output = output }
}

/// A deblending output: the deblended image's path, relative to the output folder.
public struct DeblendedImage: Codable, Equatable, Sendable {
    public var output: String

    public init(output: String) { self.output = output }
}

// MARK: - Journal form

/// `{"classes": {"probabilities": [...]}}`, `{"regression": {"values": [...], "sigmas": [...]}}`,
/// `{"posterior": {"medians": [...], "p16": [...], ...}}`,
/// `{"segmentation": {"output": "x.fits"}}`, `{"deblended": {"output": "x.fits"}}` or `{"logits": [...]}`: numbers stay JSON numbers.
extension Prediction: Codable {
    enum CodingKeys: String, CodingKey { case classes, regression, posterior, segmentation, deblended, logits }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if let value = try c.decodeIfPresent(ClassProbabilities.self, forKey: .classes) {
            self = .classes(value)
        } else if let value = try c.decodeIfPresent(RegressionEstimate.self, forKey: .regression) {
            self = .regression(value)
        } else if let value = try c.decodeIfPresent(PosteriorEstimate.self, forKey: .posterior) {
            self = .posterior(value)
        } else if let value = try c.decodeIfPresent(SegmentationMap.self, forKey: .segmentation) {
            self = .segmentation(value)
        } else if let value = try c.decodeIfPresent(DeblendedImage.self, forKey: .deblended) {
            self = .deblended(value)
        } else if let value = try c.decodeIfPresent([Double].self, forKey: .logits) {
            self = .logits(value)
        } else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                debugDescription: "a prediction needs one of: classes, regression, posterior, segmentation, deblended, logits"))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case let .classes(value): try c.encode(value, forKey: .classes)
        case let .regression(value): try c.encode(value, forKey: .regression)
        case let .posterior(value): try c.encode(value, forKey: .posterior)
        case let .segmentation(value): try c.encode(value, forKey: .segmentation)
        case let .deblended(value): try c.encode(value, forKey: .deblended)
        case let .logits(value): try c.encode(value, forKey: .logits)
        }
    }
}

/// Whether an input lies in the training domain of the model (its recorded observation),
/// judged on the image as the network sees it (after observation matching): the
/// quantities outside the domain, and those the header did not give (assumed).
public struct DomainCheck: Codable, Equatable, Sendable {
    /// `pixel_scale`, `psf`, `depth` when outside the model's ranges; `neighbours` when
    /// `mask_neighbours` masked pixels of the image; `sky` and `correlated_noise` from the
    /// sky fit of a Sérsic regression (`SkyFitting`).
    public var outside: [String]
    /// The same names where the value was assumed rather than read or measured.
    public var unknown: [String]
    /// The `outside` name of an image whose neighbours `mask_neighbours` masked.
    public static let neighboursMasked = "neighbours"

    public init(outside: [String], unknown: [String]) {
        self.outside = outside
        self.unknown = unknown
    }

    /// `no` when something is outside, `unknown` when something was assumed, else `yes`.
    public var verdict: String { !outside.isEmpty ? "no" : unknown.isEmpty ? "yes" : "unknown" }

    /// For `observation` after matching: from the prepared sample's header and assumptions.
    public init(_ observation: Observation, _ sample: Sample) {
        let assumed = Set(sample.assumptions.map(\.subject))
        let flags = observation.domain(sample.header)
        var outside = [String](), unknown = [String]()
        for (name, flag, subject) in [("pixel_scale", flags.pixelScale, "PIXSCALE"), ("psf", flags.psf, "PSF_FWHM"),
                                      ("depth", flags.depth, "")] {
            if assumed.contains(subject) || flag == nil { unknown.append(name) } else if flag == false { outside.append(name) }
        }
        // Neighbours were masked: the values rest on pixels filled from the object's reflection or with noise.
        if let masked = sample.header[NeighbourMasking.maskedKeyword], masked > 0 { outside.append(Self.neighboursMasked) }
        self.init(outside: outside, unknown: unknown)
    }
}

extension FITSHeader {
    /// Records on an output image what the run judged and assumed about its input: `INDOMAIN`
    /// (`DomainCheck.verdict`) and `OUTDOMAI` (what is outside, `;`-separated) when the model
    /// records its observation, and each assumption as `COMMENT` cards of at most 70 characters
    /// split between words.
    mutating func annotate(domain: DomainCheck?, assumptions: [Assumption]) {
        if let domain {
            set("INDOMAIN", .string(domain.verdict), comment: "inside the model's training domain")
            if !domain.outside.isEmpty {
                set("OUTDOMAI", .string(domain.outside.joined(separator: ";")), comment: "outside the training domain")
            }
        }
        for note in assumptions {
            var line = ""
            for word in "astrolabe assumed: \(note.note)".split(separator: " ") {
                if !line.isEmpty && line.count + word.count + 1 > 70 {
                    records.append(HeaderRecord("COMMENT", .none, comment: line))
                    line = ""
                }
                line += (line.isEmpty ? "" : " ") + word
            }
            if !line.isEmpty { records.append(HeaderRecord("COMMENT", .none, comment: line)) }
        }
    }
}
