// Fused LSTM recurrence: the whole sequence in one op with a hand-written backward.
import Foundation

extension Tensor {
    /// The LSTM recurrence over a sequence whose input projection is already done:
    /// `a_t = projected[:, t] + h_{t-1} W_hhᵀ` (no recurrent term at `t = 0`),
    /// `[i, f, g, o] = [σ, σ, tanh, σ](a_t)` (PyTorch's gate order), `c_t = f c_{t-1} + i g`,
    /// `h_t = o tanh(c_t)`; `h_{-1} = c_{-1} = 0`.
    ///
    /// - `self` (`projected`): `[N, T, 4H]`, `x_t W_ihᵀ + b_ih + b_hh`; `weightHH`: `[4H, H]`.
    /// - Returns `[N, T, 2H]`: `h_t` in `[..., 0..<H]`, `c_t` in `[..., H..<2H]`.
    ///
    /// Fused because the step-by-step graph is ~15 tiny ops per step (a 128-step sequence is
    /// ~2,000 nodes, each allocating, and OpenBLAS threads spin on every tiny product). Here
    /// each step is one small `gemm` plus one pass over the gates. Sequences are independent,
    /// so each worker runs the whole recurrence for its own rows of the batch (no per-step
    /// synchronisation). The backward is backpropagation through time, one `gemm` per step for
    /// `dh_{t-1}`, then `dW_hh` as one `gemm` over every step.
    public func lstmRecurrence(weightHH: Tensor) -> Tensor {
        precondition(rank == 3 && shape[2] % 4 == 0, "lstmRecurrence: projected input \(shape) must be [N, T, 4H]")
        let (n, steps, h4) = (shape[0], shape[1], shape[2])
        let h = h4 / 4
        precondition(weightHH.shape == [h4, h], "lstmRecurrence: weightHH \(weightHH.shape) must be [\(h4), \(h)]")
        let out = Tensor(uninitializedShape: [n, steps, 2 * h])
        let recording = GradMode.isEnabled && (tracksGradient || weightHH.tracksGradient)
        // Gate activations: every step [N, T, 4H] for the backward, else one step [N, 1, 4H].
        let gates = Tensor(uninitializedShape: recording ? shape : [n, 1, h4])
        let p = storage.pointer, y = out.storage.pointer, a = gates.storage.pointer, w = weightHH.storage.pointer
        let rowY = steps * 2 * h, rowA = recording ? steps * h4 : h4
        Threading.parallelChunks(n, costPerItem: steps * h4 * h) { _, rows in
            let m = rows.count
            for t in 0..<steps {
                let at = a + rows.lowerBound * rowA + (recording ? t * h4 : 0)
                // Gates start as the projected input; the recurrent term is added by gemm (beta 1).
                for r in 0..<m { (at + r * rowA).update(from: p + ((rows.lowerBound + r) * steps + t) * h4, count: h4) }
                if t > 0 {
                    gemm(transB: true, m: m, n: h4, k: h, a: y + rows.lowerBound * rowY + (t - 1) * 2 * h, lda: rowY,
                         b: w, ldb: h, beta: 1, c: at, ldc: rowA)
                }
                for r in 0..<m {
                    let g = at + r * rowA, yt = y + (rows.lowerBound + r) * rowY + t * 2 * h
                    for j in 0..<h {
                        let i = lstmSigmoid(g[j]), f = lstmSigmoid(g[h + j])
                        let gg = lstmTanh(g[2 * h + j]), o = lstmSigmoid(g[3 * h + j])
                        g[j] = i; g[h + j] = f; g[2 * h + j] = gg; g[3 * h + j] = o
                        let c = (t > 0 ? f * yt[j - h] : 0) + i * gg   // yt[j - h] is c_{t-1}
                        yt[h + j] = c
                        yt[j] = o * lstmTanh(c)
                    }
                }
            }
        }
        guard recording else { return out }
        // The closure keeps the gate activations and the output's storage (not the output
        // itself, which owns the node: that would be a cycle).
        let states = out.storage
        return Tensor.record("lstmRecurrence", [self, weightHH], out) { [self, gates, states] grad in
            let a = gates.storage.pointer, y = states.pointer, gy = grad.storage.pointer
            let dProjected = Tensor(uninitializedShape: self.shape)
            let da = dProjected.storage.pointer
            Threading.parallelChunks(n, costPerItem: steps * h4 * h) { _, rows in
                let m = rows.count
                // Gradients flowing back from step t + 1 into h_t and c_t, for these rows.
                var dhNext = [Float](repeating: 0, count: m * h), dcNext = [Float](repeating: 0, count: m * h)
                for t in stride(from: steps - 1, through: 0, by: -1) {
                    for r in 0..<m {
                        let row = rows.lowerBound + r
                        let g = a + row * rowA + t * h4, yt = y + row * rowY + t * 2 * h, gyt = gy + row * rowY + t * 2 * h
                        let d = da + (row * steps + t) * h4
                        for j in 0..<h {
                            let i = g[j], f = g[h + j], gg = g[2 * h + j], o = g[3 * h + j]
                            let tc = lstmTanh(yt[h + j])
                            let dh = gyt[j] + dhNext[r * h + j]
                            let dc = gyt[h + j] + dcNext[r * h + j] + dh * o * (1 - tc * tc)
                            let cPrevious: Float = t > 0 ? yt[j - h] : 0
                            d[j] = dc * gg * i * (1 - i)
                            d[h + j] = dc * cPrevious * f * (1 - f)
                            d[2 * h + j] = dc * i * (1 - gg * gg)
                            d[3 * h + j] = dh * tc * o * (1 - o)
                            dcNext[r * h + j] = dc * f
                        }
                    }
                    guard t > 0 else { break }
                    // dh_{t-1} = da_t W_hh.
                    dhNext.withUnsafeMutableBufferPointer { dh in
                        gemm(m: m, n: h, k: h4, a: da + (rows.lowerBound * steps + t) * h4, lda: steps * h4,
                             b: w, ldb: h, c: dh.baseAddress!, ldc: h)
                    }
                }
            }
            var dw: Tensor? = nil
            if weightHH.tracksGradient {
                // dW_hh = Σ_t da_tᵀ h_{t-1}: one gemm over [N·T] rows, with h_{-1} = 0.
                let previous = Tensor(repeating: 0, shape: [n * steps, h])
                let hp = previous.storage.pointer
                for r in 0..<n { for t in 1..<Swift.max(steps, 1) {
                    (hp + (r * steps + t) * h).update(from: y + r * rowY + (t - 1) * 2 * h, count: h)
                } }
                let result = Tensor(uninitializedShape: weightHH.shape)
                gemm(transA: true, m: h4, n: h, k: n * steps, a: da, lda: h4, b: hp, ldb: h, c: result.storage.pointer, ldc: h)
                dw = result
            }
            return [self.tracksGradient ? dProjected : nil, dw]
        }
    }
}

/// `1 / (1 + e^-x)`, never exponentiating a large positive number.
@inline(__always) private func lstmSigmoid(_ x: Float) -> Float {
    x >= 0 ? 1 / (1 + Foundation.exp(-x)) : { let e = Foundation.exp(x); return e / (1 + e) }()
}

/// `tanh x = sign(x) (1 - 2 / (e^{2|x|} + 1))`: one `expf` (glibc's `tanhf` goes through the
/// slower `expm1f`); the absolute error stays below 1e-7, and `e^{2|x|}` overflowing to
/// infinity gives exactly ±1.
@inline(__always) private func lstmTanh(_ x: Float) -> Float {
    let t = 1 - 2 / (Foundation.exp(2 * Swift.abs(x)) + 1)
    return x < 0 ? -t : t
}
