import CBLAS
import Foundation

/// Class-conditional Gaussians with one shared covariance on a classifier's penultimate
/// features (Lee et al. 2018): the squared Mahalanobis distance from an image's features to
/// the nearest class mean is an out-of-distribution score that looks at what the network saw,
/// not only at how confident its output is (the energy score).
///
/// Stored whitened: `W = Λ^{-1/2} Vᵀ` from the eigen-decomposition `V Λ Vᵀ` of the shrunk
/// covariance `(1 − s) Σ + s (tr Σ / d) I` (Σ pooled over the classes, unbiased), and the
/// class means `W μ_k`; the distance of `f` is `min_k |W f − W μ_k|²`.
public struct FeatureDensity: Codable, Equatable, Sendable {
    /// Feature length `d`.
    public var dimension: Int
    /// `W`, row-major `d × d`.
    public var whitening: [Float]
    /// `W μ_k` per class (classes without fitting samples are left out).
    public var means: [[Float]]
    /// The shrinkage `s` toward the mean variance.
    public var shrinkage: Double
    /// The feature vectors it was fitted on.
    public var count: Int
    /// The distance above which an image is unlike the data it was fitted on (nil: none set).
    public var threshold: Double?

    enum CodingKeys: String, CodingKey { case dimension, whitening, means, shrinkage, count, threshold }

    public init(dimension: Int, whitening: [Float], means: [[Float]], shrinkage: Double, count: Int, threshold: Double?) {
        self.dimension = dimension; self.whitening = whitening; self.means = means
        self.shrinkage = shrinkage; self.count = count; self.threshold = threshold
    }

    /// Decodes and checks the sizes (`d × d` whitening, `d` per mean), so that a damaged
    /// recipe is an error when the model file is read, not a wrong read at inference.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(dimension: try c.decode(Int.self, forKey: .dimension), whitening: try c.decode([Float].self, forKey: .whitening),
                  means: try c.decode([[Float]].self, forKey: .means), shrinkage: try c.decode(Double.self, forKey: .shrinkage),
                  count: try c.decode(Int.self, forKey: .count), threshold: try c.decodeIfPresent(Double.self, forKey: .threshold))
        guard dimension > 0, whitening.count == dimension * dimension, !means.isEmpty, means.allSatisfy({ $0.count == dimension }),
              whitening.allSatisfy(\.isFinite), means.allSatisfy({ $0.allSatisfy(\.isFinite) }) else {
            throw DecodingError.dataCorruptedError(forKey: .whitening, in: c, debugDescription:
                "a feature density of dimension \(dimension) needs \(dimension)x\(dimension) finite whitening values "
                + "(got \(whitening.count)) and class means of \(dimension) finite values")
        }
    }

    public enum DensityError: Error, Equatable, LocalizedError {
        case tooFewSamples(count: Int, classes: Int)
        case dimensionMismatch(expected: Int, got: Int)
        case nonFinite

        public var errorDescription: String? {
            switch self {
            case let .tooFewSamples(count, classes):
                return "feature density: \(count) feature vectors in \(classes) classes; it needs more vectors than classes "
                    + "and at least 2 in some class"
            case let .dimensionMismatch(expected, got):
                return "feature density: feature vectors of length \(got), expected \(expected)"
            case .nonFinite: return "feature density: the features contain NaN or infinite values"
            }
        }
    }

    /// Fits the class means and the shared covariance of `features` labelled `labels` (indices).
    public static func fit(features: [[Double]], labels: [Int], shrinkage: Double = 0.01) throws -> FeatureDensity {
        let classes = Set(labels).sorted()
        guard features.count == labels.count, features.count > classes.count, let d = features.first?.count, d > 0,
              classes.contains(where: { c in labels.filter { $0 == c }.count >= 2 }) else {
            throw DensityError.tooFewSamples(count: features.count, classes: classes.count)
        }
        if let bad = features.first(where: { $0.count != d }) { throw DensityError.dimensionMismatch(expected: d, got: bad.count) }
        guard features.allSatisfy({ $0.allSatisfy(\.isFinite) }) else { throw DensityError.nonFinite }
        var means = [Int: [Double]]()
        for c in classes {
            let rows = zip(features, labels).filter { $0.1 == c }.map(\.0)
            var mean = [Double](repeating: 0, count: d)
            for row in rows { for j in 0..<d { mean[j] += row[j] } }
            means[c] = mean.map { $0 / Double(rows.count) }
        }
        let n = features.count
        var centred = [Double](repeating: 0, count: n * d)
        for (i, (row, c)) in zip(features, labels).enumerated() {
            let mean = means[c]!
            for j in 0..<d { centred[i * d + j] = row[j] - mean[j] }
        }
        // Pooled within-class covariance: Xcᵀ Xc / (n − K).
        var covariance = [Double](repeating: 0, count: d * d)
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(d), Int32(d), Int32(n), 1 / Double(n - classes.count),
                    centred, Int32(d), centred, Int32(d), 0, &covariance, Int32(d))
        let meanVariance = (0..<d).reduce(0) { $0 + covariance[$1 * d + $1] } / Double(d)
        for i in 0..<d {
            for j in 0..<d { covariance[i * d + j] *= 1 - shrinkage }
            covariance[i * d + i] += shrinkage * meanVariance
        }
        let (values, vectors) = try FrechetDistance.eigen(covariance, d)
        let floor = max(values.last ?? 0, .leastNormalMagnitude) * 1e-12
        var whitening = [Float](repeating: 0, count: d * d)
        for r in 0..<d {
            let scale = 1 / max(values[r], floor).squareRoot()
            for j in 0..<d { whitening[r * d + j] = Float(vectors[r * d + j] * scale) }   // column r of V (column-major)
        }
        var density = FeatureDensity(dimension: d, whitening: whitening, means: [], shrinkage: shrinkage, count: n, threshold: nil)
        density.means = classes.map { c in density.whitened(means[c]!.map { Float($0) }) }
        return density
    }

    /// `W f`.
    func whitened(_ feature: [Float]) -> [Float] {
        var z = [Float](repeating: 0, count: dimension)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(dimension), Int32(dimension), 1, whitening, Int32(dimension),
                    feature, 1, 0, &z, 1)
        return z
    }

    /// The squared Mahalanobis distance of `feature` to the nearest class mean.
    public func distance(_ feature: [Float]) throws -> Double {
        guard feature.count == dimension else { throw DensityError.dimensionMismatch(expected: dimension, got: feature.count) }
        let z = whitened(feature)
        return means.map { mean in zip(z, mean).reduce(0.0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) } }.min() ?? .infinity
    }
}
