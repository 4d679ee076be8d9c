// Eigen-decomposition of symmetric matrices (LAPACK's dsyev, which libopenblas exports).
import CBLAS

public enum SymmetricEigen {
    /// Eigenvalues (ascending) and, when asked, eigenvectors (column-major, one per column) of
    /// the symmetric `n × n` matrix `matrix` (column-major; its upper triangle is read), or
    /// LAPACK's `info` when the decomposition fails.
    public static func decompose(_ matrix: [Double], _ n: Int, vectors: Bool = true)
        -> Result<(values: [Double], vectors: [Double]), LAPACKFailure> {
        var a = matrix, w = [Double](repeating: 0, count: n)
        var jobz: CChar = vectors ? 86 : 78, uplo: CChar = 85   // 'V' / 'N', 'U'
        var size = Int32(n), lda = Int32(n), info: Int32 = 0, query: Int32 = -1
        var optimal = 0.0
        dsyev_(&jobz, &uplo, &size, &a, &lda, &w, &optimal, &query, &info)
        guard info == 0 else { return .failure(LAPACKFailure(info: Int(info))) }
        var lwork = Int32(max(1, Int(optimal)))
        var work = [Double](repeating: 0, count: Int(lwork))
        dsyev_(&jobz, &uplo, &size, &a, &lda, &w, &work, &lwork, &info)
        guard info == 0 else { return .failure(LAPACKFailure(info: Int(info))) }
        return .success((w, a))
    }

    /// A LAPACK routine's nonzero `info`.
    public struct LAPACKFailure: Error, Equatable, Sendable {
        public var info: Int
    }
}
