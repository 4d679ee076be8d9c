import AstroBase
import CBLAS
import Foundation

/// The Fréchet distance between two sets of feature vectors, each summarised by a Gaussian
/// (Heusel et al. 2017's FID when the features are Inception's):
/// `|μ1 − μ2|² + Tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^{1/2})`, with unbiased covariances (numpy's `np.cov`).
///
/// The trace of the matrix square root is computed as `Σ √λ` over the eigenvalues of the
/// symmetric `Σ1^{1/2} Σ2 Σ1^{1/2}` (similar to `Σ1 Σ2`), both from LAPACK's `dsyev`
/// (OpenBLAS), in double precision; eigenvalues below zero (round-off) count as zero.
public enum FrechetDistance {
    /// Mean and unbiased covariance of `rows` (each a feature vector of the same length).
    public struct Gaussian: Equatable, Sendable {
        public var mean: [Double]
        /// Row-major `d × d`.
        public var covariance: [Double]
        public var count: Int
        public var dimension: Int { mean.count }

        public init(_ rows: [[Double]]) throws {
            guard rows.count >= 2, let d = rows.first?.count, d > 0 else {
                throw FrechetError.tooFewSamples(count: rows.count)
            }
            guard rows.allSatisfy({ $0.count == d }) else { throw FrechetError.dimensionMismatch(d, rows.first { $0.count != d }!.count) }
            guard rows.allSatisfy({ $0.allSatisfy(\.isFinite) }) else { throw FrechetError.nonFinite }
            let n = rows.count
            var mean = [Double](repeating: 0, count: d)
            for row in rows { for j in 0..<d { mean[j] += row[j] } }
            for j in 0..<d { mean[j] /= Double(n) }
            var centred = [Double](repeating: 0, count: n * d)
            for (i, row) in rows.enumerated() { for j in 0..<d { centred[i * d + j] = row[j] - mean[j] } }
            var covariance = [Double](repeating: 0, count: d * d)
            // Σ = Xcᵀ Xc / (n − 1)
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(d), Int32(d), Int32(n), 1 / Double(n - 1),
                        centred, Int32(d), centred, Int32(d), 0, &covariance, Int32(d))
            self.mean = mean
            self.covariance = covariance
            count = n
        }
    }

    public enum FrechetError: Error, Equatable, LocalizedError {
        case tooFewSamples(count: Int)
        case dimensionMismatch(Int, Int)
        case nonFinite
        case lapack(info: Int)

        public var errorDescription: String? {
            switch self {
            case let .tooFewSamples(count): return "Fréchet distance: a set needs at least 2 feature vectors; got \(count)"
            case let .dimensionMismatch(a, b): return "Fréchet distance: feature vectors of length \(a) and \(b) cannot be compared"
            case .nonFinite: return "Fréchet distance: the features contain NaN or infinite values"
            case let .lapack(info): return "Fréchet distance: LAPACK dsyev failed (info \(info))"
            }
        }
    }

    /// The distance between the Gaussians of two feature sets.
    public static func distance(_ a: [[Double]], _ b: [[Double]]) throws -> Double {
        try distance(Gaussian(a), Gaussian(b))
    }

    public static func distance(_ a: Gaussian, _ b: Gaussian) throws -> Double {
        let d = a.dimension
        guard b.dimension == d else { throw FrechetError.dimensionMismatch(d, b.dimension) }
        var meanTerm = 0.0
        for j in 0..<d { meanTerm += (a.mean[j] - b.mean[j]) * (a.mean[j] - b.mean[j]) }
        var trace = 0.0
        for j in 0..<d { trace += a.covariance[j * d + j] + b.covariance[j * d + j] }
        // S = Σ1^{1/2} = V diag(√λ) Vᵀ (symmetric, so row- and column-major agree).
        let (values, vectors) = try eigen(a.covariance, d)
        var scaled = vectors
        for col in 0..<d {
            let s = max(values[col], 0).squareRoot()
            for row in 0..<d { scaled[col * d + row] *= s }   // column-major: column `col` of V
        }
        var root = [Double](repeating: 0, count: d * d)
        cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, Int32(d), Int32(d), Int32(d), 1, scaled, Int32(d),
                    vectors, Int32(d), 0, &root, Int32(d))
        // M = S Σ2 S, symmetric positive semi-definite with the eigenvalues of Σ1 Σ2.
        var product = [Double](repeating: 0, count: d * d), m = [Double](repeating: 0, count: d * d)
        cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, Int32(d), Int32(d), Int32(d), 1, root, Int32(d),
                    b.covariance, Int32(d), 0, &product, Int32(d))
        cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, Int32(d), Int32(d), Int32(d), 1, product, Int32(d),
                    root, Int32(d), 0, &m, Int32(d))
        // Symmetrise against round-off before the decomposition.
        for i in 0..<d { for j in (i + 1)..<d { let s = (m[i * d + j] + m[j * d + i]) / 2; m[i * d + j] = s; m[j * d + i] = s } }
        let (mu, _) = try eigen(m, d, vectors: false)
        let rootTrace = mu.reduce(0) { $0 + max($1, 0).squareRoot() }
        return max(0, meanTerm + trace - 2 * rootTrace)
    }

    /// Eigenvalues (ascending) and, when asked, eigenvectors (column-major) of a symmetric matrix.
    static func eigen(_ matrix: [Double], _ n: Int, vectors: Bool = true) throws -> (values: [Double], vectors: [Double]) {
        switch SymmetricEigen.decompose(matrix, n, vectors: vectors) {
        case let .success(result): return result
        case let .failure(failure): throw FrechetError.lapack(info: failure.info)
        }
    }
}
