// Light-curve preparation as stages: cuts, per-object flux normalisation, band encoding,
// time differences; the step features a recurrent network reads, mask last.
import AstroBase
import Foundation

/// How `normalize_flux` picks each object's flux scale.
public enum FluxNormalization: String, ConfigName, Codable {
    /// The largest |flux| of the object's points.
    case maxAbs = "max_abs"
    /// The median flux_err of the object's points (fluxes in units of the typical noise).
    case medianError = "median_error"
}

/// One step of light-curve preparation. A model file records its list, so inference
/// prepares curves exactly as training did; the augmentations (`randomTruncate`,
/// `randomEarlyCut`) run only in training.
///
/// Cuts (`earlyCut`, `truncate` and the augmentations) change which points a curve keeps; they
/// come before `normalizeFlux`, whose scale comes from the points kept (checked when decoded).
/// The step features are, in this order: flux and flux_err divided by the scale, then per
/// stage in list order its own features, then the mask (1 at every real step).
public enum SequenceStage: Equatable, Sendable {
    /// TASKS.md's early curve: points up to 10 days after the first flux / flux_err > 5.
    case earlyCut
    /// The first `maxPoints` points.
    case truncate(maxPoints: Int)
    /// Training only: with probability `p`, the curve cut after a point drawn uniformly
    /// (at least `minPoints` kept), so the network learns partial curves.
    case randomTruncate(probability: Double, minPoints: Int)
    /// Training only: with probability `p`, the curve cut `d` days after its first
    /// flux / flux_err > 5, `d` uniform in `minDays...maxDays` (the early cut with a random
    /// window; curves without a detection keep every point).
    case randomEarlyCut(probability: Double, minDays: Double, maxDays: Double)
    /// Flux and flux_err divided by a per-object scale; with `scaleFeature`, log10 of the
    /// scale (in FLUXCAL) minus 2 is a step feature (the brightness the division removed).
    case normalizeFlux(FluxNormalization, scaleFeature: Bool)
    /// One-hot g, r, i (3 features).
    case encodeBands
    /// Days since the previous point and since the first point, each divided by `scale`
    /// (2 features).
    case timeDifferences(scale: Double)

    public var isAugmentation: Bool {
        switch self {
        case .randomTruncate, .randomEarlyCut: return true
        default: return false
        }
    }

    var isCut: Bool {
        switch self {
        case .earlyCut, .truncate, .randomTruncate, .randomEarlyCut: return true
        default: return false
        }
    }

    /// Features the stage adds per step.
    var featureCount: Int {
        switch self {
        case .earlyCut, .truncate, .randomTruncate, .randomEarlyCut: return 0
        case let .normalizeFlux(_, scaleFeature): return scaleFeature ? 1 : 0
        case .encodeBands: return 3
        case .timeDifferences: return 2
        }
    }

    public var name: String {
        switch self {
        case .earlyCut: return SequenceStageName.earlyCut.rawValue
        case .truncate: return SequenceStageName.truncate.rawValue
        case .randomTruncate: return SequenceStageName.randomTruncate.rawValue
        case .randomEarlyCut: return SequenceStageName.randomEarlyCut.rawValue
        case .normalizeFlux: return SequenceStageName.normalizeFlux.rawValue
        case .encodeBands: return SequenceStageName.encodeBands.rawValue
        case .timeDifferences: return SequenceStageName.timeDifferences.rawValue
        }
    }
}

/// A light curve prepared for a recurrent network: `[steps, featureCount]` row-major, the
/// mask (1) as the last feature of every step.
public struct PreparedSequence: Sendable {
    public var objectID: Int64
    public var steps: Int
    public var featureCount: Int
    public var features: [Float]
    /// The times of the steps (for pictures of per-step outputs).
    public var mjd: [Double]
}

/// A list of sequence stages applied in order.
public struct SequencePreparation: Sendable, Equatable {
    public let stages: [SequenceStage]

    /// Checks the order rule (cuts before `normalize_flux`).
    public init(_ stages: [SequenceStage]) throws {
        if let normalize = stages.firstIndex(where: { if case .normalizeFlux = $0 { return true }; return false }),
           let cut = stages[normalize...].first(where: \.isCut) {
            throw SequenceStageError.order(stage: cut.name, reason: "cuts come before normalize_flux, whose scale comes from the points kept")
        }
        if stages.filter({ if case .normalizeFlux = $0 { return true }; return false }).count > 1 {
            throw SequenceStageError.order(stage: "normalize_flux", reason: "appears more than once")
        }
        self.stages = stages
    }

    /// The stages inference runs (augmentations removed).
    public var inferenceStages: [SequenceStage] { stages.filter { !$0.isAugmentation } }

    /// Features per step, the mask included.
    public var featureCount: Int { 2 + stages.map(\.featureCount).reduce(0, +) + 1 }

    /// Applies the cuts only (what the network will see of the curve).
    public func cut(_ curve: LightCurve, training: Bool, rng: inout SeededGenerator) -> LightCurve {
        var curve = curve
        for stage in stages {
            switch stage {
            case .earlyCut: curve = curve.earlyCut
            case let .truncate(maxPoints): curve.points = Array(curve.points.prefix(maxPoints))
            case let .randomTruncate(probability, minPoints):
                guard training, curve.points.count > minPoints, rng.uniform() < probability else { continue }
                curve.points = Array(curve.points.prefix(rng.integer(minPoints...curve.points.count)))
            case let .randomEarlyCut(probability, minDays, maxDays):
                guard training, rng.uniform() < probability else { continue }
                curve = curve.cut(daysAfterDetection: minDays + (maxDays - minDays) * rng.uniform())
            default: continue
            }
        }
        return curve
    }

    /// The step features of `curve`. An empty curve (every point cut) is one zero step
    /// with the mask set, so every object gets an output.
    public func prepare(_ curve: LightCurve, training: Bool = false, rng: inout SeededGenerator) -> PreparedSequence {
        let kept = cut(curve, training: training, rng: &rng)
        let points = kept.points
        let steps = max(points.count, 1)
        let width = featureCount
        var features = [Float](repeating: 0, count: steps * width)
        var scale = 1.0
        for stage in stages {
            if case let .normalizeFlux(method, _) = stage { scale = Self.scale(points, method) }
        }
        for (t, p) in points.enumerated() {
            features[t * width] = Float(p.flux / scale)
            features[t * width + 1] = Float(p.fluxError / scale)
        }
        var column = 2
        for stage in stages {
            switch stage {
            case let .normalizeFlux(_, scaleFeature) where scaleFeature:
                let value = Float(Foundation.log10(scale) - 2)
                for t in 0..<steps { features[t * width + column] = value }
            case .encodeBands:
                for (t, p) in points.enumerated() { features[t * width + column + p.band.index] = 1 }
            case let .timeDifferences(dayScale):
                for (t, p) in points.enumerated() {
                    let previous = t > 0 ? points[t - 1].mjd : p.mjd
                    features[t * width + column] = Float((p.mjd - previous) / dayScale)
                    features[t * width + column + 1] = Float((p.mjd - points[0].mjd) / dayScale)
                }
            default: break
            }
            column += stage.featureCount
        }
        for t in 0..<steps { features[t * width + width - 1] = 1 }
        return PreparedSequence(objectID: curve.objectID, steps: steps, featureCount: width, features: features,
                                mjd: points.map(\.mjd))
    }

    /// The per-object scale, never zero (1 for a curve without points or fluxes).
    static func scale(_ points: [LightCurvePoint], _ method: FluxNormalization) -> Double {
        let value: Double
        switch method {
        case .maxAbs: value = points.map { abs($0.flux) }.max() ?? 1
        case .medianError:
            let errors = points.map(\.fluxError).sorted()
            value = errors.isEmpty ? 1 : (errors.count % 2 == 1 ? errors[errors.count / 2]
                : 0.5 * (errors[errors.count / 2 - 1] + errors[errors.count / 2]))
        }
        return value > 0 && value.isFinite ? value : 1
    }
}

/// A badly ordered or repeated stage list.
public enum SequenceStageError: Error, Equatable, LocalizedError {
    case order(stage: String, reason: String)
    public var errorDescription: String? {
        switch self {
        case let .order(stage, reason): return "Sequence stage '\(stage)': \(reason)."
        }
    }
}

// MARK: - Batching

/// Batches of prepared sequences padded only to their own longest member.
///
/// Sequences are bucketed by length: the (shuffled, in training) order is cut into pools of
/// `poolBatches` batches, each pool sorted by length and cut into batches, and the batches
/// shuffled again; so a batch holds sequences of nearly one length and padding is a few
/// percent of the steps, while batches still mix the whole data set over epochs.
public struct SequenceBatcher: Sendable {
    public var batchSize: Int
    public var poolBatches: Int

    public init(batchSize: Int, poolBatches: Int = 32) {
        precondition(batchSize > 0 && poolBatches > 0, "SequenceBatcher: batch size and pool must be positive")
        self.batchSize = batchSize; self.poolBatches = poolBatches
    }

    /// Index lists of the batches over `lengths`; shuffled when `rng` is given.
    public func batches(lengths: [Int], rng: inout SeededGenerator?) -> [[Int]] {
        var order = Array(lengths.indices)
        if var generator = rng { order = generator.permutation(order.count).map { order[$0] }; rng = generator }
        var batches: [[Int]] = []
        let pool = batchSize * poolBatches
        var start = 0
        while start < order.count {
            let chunk = order[start..<min(order.count, start + pool)].sorted { (lengths[$0], $0) < (lengths[$1], $1) }
            var k = 0
            while k < chunk.count {
                batches.append(Array(chunk[k..<min(chunk.count, k + batchSize)]))
                k += batchSize
            }
            start += pool
        }
        if var generator = rng { batches = generator.permutation(batches.count).map { batches[$0] }; rng = generator }
        return batches
    }

    /// `[N, T, F]` with `T` the longest member; padding steps are zero (mask 0).
    public static func tensorData(_ sequences: [PreparedSequence]) -> (shape: [Int], data: [Float]) {
        let steps = sequences.map(\.steps).max() ?? 1
        let width = sequences.first?.featureCount ?? 1
        var data = [Float](repeating: 0, count: sequences.count * steps * width)
        for (row, sequence) in sequences.enumerated() {
            precondition(sequence.featureCount == width, "SequenceBatcher: feature counts differ (\(sequence.featureCount), \(width))")
            let offset = row * steps * width
            for k in 0..<sequence.features.count { data[offset + k] = sequence.features[k] }
        }
        return ([sequences.count, steps, width], data)
    }

    /// The fraction of padded steps over `batches` (0 without padding).
    public static func paddingFraction(lengths: [Int], batches: [[Int]]) -> Double {
        var padded = 0, total = 0
        for batch in batches {
            let longest = batch.map { lengths[$0] }.max() ?? 0
            total += longest * batch.count
            padded += batch.map { longest - lengths[$0] }.reduce(0, +)
        }
        return total > 0 ? Double(padded) / Double(total) : 0
    }
}

// MARK: - YAML

/// The YAML name of every sequence stage.
public enum SequenceStageName: String, ConfigName {
    case earlyCut = "early_cut", truncate, randomTruncate = "random_truncate", randomEarlyCut = "random_early_cut"
    case normalizeFlux = "normalize_flux"
    case encodeBands = "encode_bands", timeDifferences = "time_differences"

    var parameters: [SequenceStageParameter] {
        switch self {
        case .earlyCut, .encodeBands: return []
        case .truncate: return [.maxPoints]
        case .randomTruncate: return [.p, .minPoints]
        case .randomEarlyCut: return [.p, .days]
        case .normalizeFlux: return [.method, .scaleFeature]
        case .timeDifferences: return [.scale]
        }
    }
}

/// Every parameter key of a sequence stage, as written in YAML.
public enum SequenceStageParameter: String, ConfigName {
    case maxPoints = "max_points", p, minPoints = "min_points", days, method, scaleFeature = "scale_feature", scale
}

extension SequenceStage: Codable {
    public init(from decoder: Decoder) throws {
        let choice = try NamedChoice(decoder, what: "sequence stage", example: "'normalize_flux: {method: max_abs}'")
        let name = try choice.name(SequenceStageName.self, what: "sequence stage")
        let p = try choice.strict("sequence stage '\(name.rawValue)'", known: name.parameters.map(\.rawValue))
        switch name {
        case .earlyCut: self = .earlyCut
        case .encodeBands: self = .encodeBands
        case .truncate:
            let n: Int = try p.required("max_points")
            guard n > 0 else { throw p.invalid("max_points", "truncate: max_points must be positive, got \(n).") }
            self = .truncate(maxPoints: n)
        case .randomTruncate:
            let probability: Double = try p.optional("p") ?? 0.5
            let minimum: Int = try p.optional("min_points") ?? 3
            guard (0...1).contains(probability), minimum > 0 else {
                throw p.invalid("p", "random_truncate: p must be in [0, 1] and min_points positive.")
            }
            self = .randomTruncate(probability: probability, minPoints: minimum)
        case .randomEarlyCut:
            let probability: Double = try p.optional("p") ?? 0.5
            let days: [Double] = try p.optional("days") ?? [0, 30]
            guard (0...1).contains(probability) else { throw p.invalid("p", "random_early_cut: p must be in [0, 1], got \(probability).") }
            guard days.count == 2, days[0] <= days[1], days.allSatisfy(\.isFinite) else {
                throw p.invalid("days", "random_early_cut: days must be [low, high] with low <= high, got \(days).")
            }
            self = .randomEarlyCut(probability: probability, minDays: days[0], maxDays: days[1])
        case .normalizeFlux:
            self = .normalizeFlux(try p.choice("method", FluxNormalization.self) ?? .maxAbs,
                                  scaleFeature: try p.optional("scale_feature") ?? true)
        case .timeDifferences:
            let scale: Double = try p.optional("scale") ?? 20
            guard scale > 0 else { throw p.invalid("scale", "time_differences: scale must be positive days, got \(scale).") }
            self = .timeDifferences(scale: scale)
        }
    }

    public func encode(to encoder: Encoder) throws {
        let key = ConfigKey(name)
        if case .earlyCut = self { var single = encoder.singleValueContainer(); return try single.encode(name) }
        if case .encodeBands = self { var single = encoder.singleValueContainer(); return try single.encode(name) }
        var c = encoder.container(keyedBy: ConfigKey.self)
        var inner = c.nestedContainer(keyedBy: ConfigKey.self, forKey: key)
        switch self {
        case .earlyCut, .encodeBands: break
        case let .truncate(maxPoints):
            try inner.encode(maxPoints, forKey: ConfigKey("max_points"))
        case let .randomTruncate(probability, minPoints):
            try inner.encode(probability, forKey: ConfigKey("p"))
            try inner.encode(minPoints, forKey: ConfigKey("min_points"))
        case let .randomEarlyCut(probability, minDays, maxDays):
            try inner.encode(probability, forKey: ConfigKey("p"))
            try inner.encode([minDays, maxDays], forKey: ConfigKey("days"))
        case let .normalizeFlux(method, scaleFeature):
            try inner.encode(method.rawValue, forKey: ConfigKey("method"))
            try inner.encode(scaleFeature, forKey: ConfigKey("scale_feature"))
        case let .timeDifferences(scale):
            try inner.encode(scale, forKey: ConfigKey("scale"))
        }
    }
}
