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
    /// Segmentation: where the class map was written.
    case segmentation(SegmentationMap)
    /// The network's outputs as they are (`astrolabe predict --raw`).
    case logits([Double])
}

/// Class probabilities of one input.
public struct ClassProbabilities: Codable, Equatable, Sendable {
    /// In class-index order; they sum to 1.
    public var probabilities: [Double]
    /// The energy score −log Σ exp(logit) of the network output (Liu et al. 2020): an
    /// out-of-distribution score, lower (more negative) for images like the training data.
    public var energy: Double?

    public init(probabilities: [Double], energy: Double? = nil) {
        self.probabilities = probabilities
        self.energy = energy
    }

    /// The softmax of `logits`, computed in Double after subtracting the maximum
    /// (so large logits neither overflow nor lose the small probabilities).
    public init<C: Collection>(logits: C) where C.Element == Float {
        let m = Double(logits.max() ?? 0)
        let e = logits.map { Foundation.exp(Double($0) - m) }
        let total = e.reduce(0, +)
        probabilities = e.map { $0 / total }
        energy = -(m + Foundation.log(total))
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

    public init(values: [Double], sigmas: [Double]? = nil) {
        self.values = values
        self.sigmas = sigmas
    }
}

/// A segmentation output: the class map's path, relative to the output folder.
public struct SegmentationMap: Codable, Equatable, Sendable {
    public var output: String

    public init(output: String) { self.output = output }
}

// MARK: - Journal form

/// `{"classes": {"probabilities": [...]}}`, `{"regression": {"values": [...], "sigmas": [...]}}`,
/// `{"segmentation": {"output": "x.fits"}}` or `{"logits": [...]}`: numbers stay JSON numbers.
extension Prediction: Codable {
    enum CodingKeys: String, CodingKey { case classes, regression, segmentation, logits }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if let value = try c.decodeIfPresent(ClassProbabilities.self, forKey: .classes) {
            self = .classes(value)
        } else if let value = try c.decodeIfPresent(RegressionEstimate.self, forKey: .regression) {
            self = .regression(value)
        } else if let value = try c.decodeIfPresent(SegmentationMap.self, forKey: .segmentation) {
            self = .segmentation(value)
        } else if let value = try c.decodeIfPresent([Double].self, forKey: .logits) {
            self = .logits(value)
        } else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                debugDescription: "a prediction needs one of: classes, regression, segmentation, logits"))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case let .classes(value): try c.encode(value, forKey: .classes)
        case let .regression(value): try c.encode(value, forKey: .regression)
        case let .segmentation(value): try c.encode(value, forKey: .segmentation)
        case let .logits(value): try c.encode(value, forKey: .logits)
        }
    }
}

/// Whether an input lies in the training domain of the model (its recorded observation),
/// judged on the image as the network sees it (after observation matching): the
/// quantities outside the domain, and those the header did not give (assumed).
public struct DomainCheck: Codable, Equatable, Sendable {
    /// `pixel_scale`, `psf`, `depth` when outside the model's ranges.
    public var outside: [String]
    /// The same names where the value was assumed rather than read or measured.
    public var unknown: [String]

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
        self.init(outside: outside, unknown: unknown)
    }
}
