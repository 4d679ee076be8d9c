// Matrix products through OpenBLAS sgemm.
import CBLAS

/// Row-major `C = alpha op(A) op(B) + beta C` with `op(A)`: M x K, `op(B)`: K x N.
@inline(__always)
///
/// OpenBLAS always runs single-threaded (`Threading.singleThreadedBLAS`): a large product
/// called outside the workers is split here into one block of rows (or columns) of `C` per
/// worker. OpenBLAS's own pool spins and then yields while waiting; on a busy 2-core machine
/// those yields were ~15% of a `cnn` training step (`perf`: `do_sched_yield`, `__schedule`).
func gemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
          alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
          beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
    Threading.singleThreadedBLAS()
    let workers = Threading.workerCount
    func product(_ m: Int, _ n: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>) {
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
    guard workers > 1, m * n * k >= 1 << 20, Swift.max(m, n) >= 2 * workers, !Threading.isWorkerThread else {
        product(m, n, a, b, c)
        return
    }
    Threading.forEachWorker(workers) { w in
        if m >= n {   // rows of C (and of op(A))
            let lo = m * w / workers, hi = m * (w + 1) / workers
            product(hi - lo, n, a + (transA ? lo : lo * lda), b, c + lo * ldc)
        } else {      // columns of C (and of op(B))
            let lo = n * w / workers, hi = n * (w + 1) / workers
            product(m, hi - lo, a, b + (transB ? lo * ldb : lo), c + lo)
        }
    }
}

extension Tensor {
    /// Matrix product.
    ///
    /// - `[M, K] x [K, N]` returns `[M, N]`;
    /// - `[..., M, K] x [K, N]` applies the matrix to every row (a dense layer);
    /// - `[B..., M, K] x [B..., K, N]` returns `[B..., M, N]` (batched, same batch dims).
    public func matmul(_ other: Tensor) -> Tensor {
        precondition(rank >= 2 && other.rank >= 2, "matmul: needs rank >= 2, got \(shape) x \(other.shape)")
        let k = shape[rank - 1]
        precondition(other.shape[other.rank - 2] == k,
                     "matmul: inner dimensions differ: \(shape) x \(other.shape)")
        let n = other.shape[other.rank - 1]
        if other.rank == 2 {
            // Fold every leading axis into M: one large sgemm.
            let m = count / Swift.max(k, 1)
            let out = Tensor(uninitializedShape: Array(shape.dropLast()) + [n])
            gemm(m: m, n: n, k: k, a: storage.pointer, lda: k, b: other.storage.pointer, ldb: n,
                 c: out.storage.pointer, ldc: n)
            return Tensor.record("matmul", [self, other], out) { [self] g in
                var ga: Tensor? = nil, gb: Tensor? = nil
                if self.tracksGradient {
                    let t = Tensor(uninitializedShape: self.shape)
                    gemm(transB: true, m: m, n: k, k: n, a: g.storage.pointer, lda: n,
                         b: other.storage.pointer, ldb: n, c: t.storage.pointer, ldc: k)
                    ga = t
                }
                if other.tracksGradient {
                    let t = Tensor(uninitializedShape: other.shape)
                    gemm(transA: true, m: k, n: n, k: m, a: self.storage.pointer, lda: k,
                         b: g.storage.pointer, ldb: n, c: t.storage.pointer, ldc: n)
                    gb = t
                }
                return [ga, gb]
            }
        }
        let batchShape = Array(shape.dropLast(2))
        precondition(batchShape == Array(other.shape.dropLast(2)),
                     "matmul: batch dimensions differ: \(shape) x \(other.shape)")
        let m = shape[rank - 2], batch = batchShape.reduce(1, *)
        let out = Tensor(uninitializedShape: batchShape + [m, n])
        let a = storage.pointer, b = other.storage.pointer, c = out.storage.pointer
        for i in 0..<batch {
            gemm(m: m, n: n, k: k, a: a + i * m * k, lda: k, b: b + i * k * n, ldb: n, c: c + i * m * n, ldc: n)
        }
        return Tensor.record("batchedMatmul", [self, other], out) { [self] g in
            var ga: Tensor? = nil, gb: Tensor? = nil
            let gp = g.storage.pointer
            if self.tracksGradient {
                let t = Tensor(uninitializedShape: self.shape)
                for i in 0..<batch {
                    gemm(transB: true, m: m, n: k, k: n, a: gp + i * m * n, lda: n,
                         b: b + i * k * n, ldb: n, c: t.storage.pointer + i * m * k, ldc: k)
                }
                ga = t
            }
            if other.tracksGradient {
                let t = Tensor(uninitializedShape: other.shape)
                for i in 0..<batch {
                    gemm(transA: true, m: k, n: n, k: m, a: a + i * m * k, lda: k,
                         b: gp + i * m * n, ldb: n, c: t.storage.pointer + i * k * n, ldc: n)
                }
                gb = t
            }
            return [ga, gb]
        }
    }
}

extension Tensor {
    /// `self · otherᵀ` for a matrix `other` `[N, K]`: `[..., K]` → `[..., N]`, every leading axis
    /// folded into one `gemm` (`nn.Linear`'s `x Wᵀ`). The same as `matmul(other.transposed())`
    /// without copying `other` into its transpose on every call (and its gradient back).
    public func matmul(transposed other: Tensor) -> Tensor {
        precondition(rank >= 1 && other.rank == 2 && other.shape[1] == shape[rank - 1],
                     "matmul(transposed:): inner dimensions differ: \(shape) x \(other.shape)ᵀ")
        let k = other.shape[1], n = other.shape[0]
        let m = count / Swift.max(k, 1)
        let out = Tensor(uninitializedShape: Array(shape.dropLast()) + [n])
        gemm(transB: true, m: m, n: n, k: k, a: storage.pointer, lda: k, b: other.storage.pointer, ldb: k,
             c: out.storage.pointer, ldc: n)
        return Tensor.record("matmulTransposed", [self, other], out) { [self] g in
            var ga: Tensor? = nil, gb: Tensor? = nil
            if self.tracksGradient {   // g · other
                let t = Tensor(uninitializedShape: self.shape)
                gemm(m: m, n: k, k: n, a: g.storage.pointer, lda: n, b: other.storage.pointer, ldb: k,
                     c: t.storage.pointer, ldc: k)
                ga = t
            }
            if other.tracksGradient {   // gᵀ · self
                let t = Tensor(uninitializedShape: other.shape)
                gemm(transA: true, m: n, n: k, k: m, a: g.storage.pointer, lda: n, b: self.storage.pointer, ldb: k,
                     c: t.storage.pointer, ldc: k)
                gb = t
            }
            return [ga, gb]
        }
    }
}
