// Fused GRU recurrence: the whole sequence in one op with a hand-written backward.
import CKernels
import Foundation

extension Tensor {
    /// The GRU recurrence over a sequence whose input projection is already done, in
    /// PyTorch's gate order (reset, update, new):
    /// `[a_r, a_z, a_n] = h_{t-1} W_hhᵀ + b_hh`, `r = σ(p_r + a_r)`, `z = σ(p_z + a_z)`,
    /// `n = tanh(p_n + r ⊙ a_n)`, `h_t = (1 − z) ⊙ n + z ⊙ h_{t-1}`; `h_{-1} = 0`.
    ///
    /// - `self` (`projected`): `[N, T, 3H]`, `p_t = x_t W_ihᵀ + b_ih`, or `x_t W_ihᵀ` alone when
    ///   `biasIH` (`[3H]`) is given: the recurrence adds it (no pass over the projection to add
    ///   it first); `weightHH`: `[3H, H]`; `biasHH`: `[3H]` (kept apart from `b_ih` because `r`
    ///   scales its `n` part).
    /// - Returns every `h_t`, `[N, T, H]`.
    ///
    /// Fused for the reasons `lstmRecurrence` gives (a step-by-step graph is ~15 tiny ops per
    /// step): each step is one small `gemm` for the recurrent product plus one vectorised pass
    /// over the gates, each worker running the whole recurrence for its rows of the batch. The
    /// backward is backpropagation through time, one `gemm` per step for `dh_{t-1}`, then
    /// `dW_hh` as one `gemm` over every step. On CPUs with AVX-512 and `H` a multiple of 16,
    /// the recurrence and the step-by-step backward run the kernels of `Sources/CKernels`
    /// (`RecurrentKernels`) instead of the per-step `gemm` calls and Swift loops.
    public func gruRecurrence(weightHH: Tensor, biasHH: Tensor, biasIH: Tensor? = nil) -> Tensor {
        precondition(rank == 3 && shape[2] % 3 == 0, "gruRecurrence: projected input \(shape) must be [N, T, 3H]")
        let (n, steps, h3) = (shape[0], shape[1], shape[2])
        let h = h3 / 3
        precondition(weightHH.shape == [h3, h] && biasHH.shape == [h3] && (biasIH?.shape ?? [h3]) == [h3],
                     "gruRecurrence: weightHH \(weightHH.shape), biasHH \(biasHH.shape) and biasIH \(biasIH?.shape ?? []) "
                     + "must be [\(h3), \(h)], [\(h3)] and [\(h3)]")
        let vectorKernels = RecurrentKernels.applies(hidden: h)
        if let biasIH, !vectorKernels { return (self + biasIH).gruRecurrence(weightHH: weightHH, biasHH: biasHH) }
        let out = Tensor(uninitializedShape: [n, steps, h])
        let recording = GradMode.isEnabled && (tracksGradient || weightHH.tracksGradient || biasHH.tracksGradient
                                               || biasIH?.tracksGradient == true)
        // Per step `(r, z, n, a_n)` [4H]: every step for the backward, else (portable path) one
        // step of scratch.
        let h4 = 4 * h
        let gates = Tensor(uninitializedShape: recording ? [n, steps, h4] : vectorKernels ? [1] : [n, 1, h4])
        let p = storage.pointer, y = out.storage.pointer, a = gates.storage.pointer
        let w = weightHH.storage.pointer, bias = biasHH.storage.pointer
        let rowY = steps * h, rowA = recording ? steps * h4 : h4
        if vectorKernels {
            let packed = UnsafeMutablePointer<Float>.allocate(capacity: h3 * h)
            defer { packed.deallocate() }
            astro_gru_pack_recurrent(w, h, packed)
            Threading.parallelChunks(n, costPerItem: steps * h3 * h) { _, rows in
                let lo = rows.lowerBound
                astro_gru_forward(p + lo * steps * h3, steps * h3, packed, bias, biasIH?.storage.pointer, y + lo * rowY, rowY,
                                  recording ? a + lo * rowA : nil, rowA, rows.count, steps, h)
            }
        } else {
            Threading.parallelChunks(n, costPerItem: steps * h3 * h) { _, rows in
                let lo = rows.lowerBound, m = rows.count
                for t in 0..<steps {
                    let at = a + lo * rowA + (recording ? t * h4 : 0)
                    // The recurrent term starts as b_hh; gemm adds h_{t-1} W_hhᵀ (beta 1).
                    for r in 0..<m { (at + r * rowA).update(from: bias, count: h3) }
                    if t > 0 {
                        gemm(transB: true, m: m, n: h3, k: h, a: y + lo * rowY + (t - 1) * h, lda: rowY,
                             b: w, ldb: h, beta: 1, c: at, ldc: rowA)
                    }
                    for r in 0..<m {
                        gruCellForward(projected: p + ((lo + r) * steps + t) * h3, gates: at + r * rowA,
                                       state: y + (lo + r) * rowY + t * h, hasPrevious: t > 0, h: h)
                    }
                }
            }
        }
        guard recording else { return out }
        // The closure keeps the gate activations and the output's storage (not the output
        // itself, which owns the node: that would be a cycle).
        let states = out.storage
        return Tensor.record("gruRecurrence", [self, weightHH, biasHH] + (biasIH.map { [$0] } ?? []), out) {
            [self, gates, states] grad in
            let a = gates.storage.pointer, y = states.pointer, gy = grad.storage.pointer
            let dProjected = Tensor(uninitializedShape: self.shape)
            // Gradient of the recurrent pre-activations `h_{t-1} W_hhᵀ + b_hh`: [N, T, 3H].
            let dRecurrent = Tensor(uninitializedShape: self.shape)
            let dp = dProjected.storage.pointer, da = dRecurrent.storage.pointer
            Threading.parallelChunks(n, costPerItem: steps * h3 * h) { _, rows in
                let lo = rows.lowerBound, m = rows.count
                if vectorKernels {
                    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: 2 * m * h)
                    defer { scratch.deallocate() }
                    astro_gru_backward(a + lo * rowA, rowA, y + lo * rowY, rowY, gy + lo * rowY, rowY, w,
                                       dp + lo * steps * h3, da + lo * steps * h3, steps * h3, scratch, m, steps, h)
                    return
                }
                // Gradient flowing back from step t + 1 into h_t, for these rows.
                let dhNext = UnsafeMutablePointer<Float>.allocate(capacity: m * h)
                dhNext.initialize(repeating: 0, count: m * h)
                defer { dhNext.deallocate() }
                for t in stride(from: steps - 1, through: 0, by: -1) {
                    for r in 0..<m {
                        let row = lo + r, offset = (row * steps + t) * h3
                        gruCellBackward(gates: a + row * rowA + t * h4, state: y + row * rowY + t * h,
                                        gradient: gy + row * rowY + t * h, dh: dhNext + r * h,
                                        dProjected: dp + offset, dRecurrent: da + offset, hasPrevious: t > 0, h: h)
                    }
                    guard t > 0 else { break }
                    // dh_{t-1} = z ⊙ dh_t (left by the cell) + da_t W_hh.
                    gemm(m: m, n: h, k: h3, a: da + (lo * steps + t) * h3, lda: steps * h3,
                         b: w, ldb: h, beta: 1, c: dhNext, ldc: h)
                }
            }
            var dw: Tensor? = nil
            if weightHH.tracksGradient {
                // dW_hh = Σ_t da_tᵀ h_{t-1}: one gemm over [N·T] rows, with h_{-1} = 0.
                let previous = Tensor(repeating: 0, shape: [n * steps, h])
                let hp = previous.storage.pointer
                for r in 0..<n where steps > 1 {
                    (hp + r * steps * h + h).update(from: y + r * rowY, count: (steps - 1) * h)
                }
                let result = Tensor(uninitializedShape: weightHH.shape)
                gemm(transA: true, m: h3, n: h, k: n * steps, a: da, lda: h3, b: hp, ldb: h, c: result.storage.pointer, ldc: h)
                dw = result
            }
            // The column sums of `[N·T, 3H]` gradients: a bias's gradient.
            func columnSums(_ d: UnsafeMutablePointer<Float>) -> Tensor {
                let result = Tensor(repeating: 0, shape: [h3])
                let s = result.storage.pointer
                for row in 0..<(n * steps) {
                    let r = d + row * h3
                    for k in 0..<h3 { s[k] += r[k] }
                }
                return result
            }
            let db = biasHH.tracksGradient ? columnSums(da) : nil
            let dbIH = biasIH?.tracksGradient == true ? columnSums(dp) : nil
            return [self.tracksGradient ? dProjected : nil, dw, db] + (biasIH == nil ? [] : [dbIH])
        }
    }

    /// A whole GRU layer over `self` `[N, T, F]`: the input projection `x_t W_ihᵀ + b_ih`
    /// (`weightIH` `[3H, F]`, `biasIH` `[3H]`) and the recurrence of
    /// `gruRecurrence(weightHH:biasHH:)`. Returns every `h_t`, `[N, T, H]`.
    public func gru(weightIH: Tensor, biasIH: Tensor, biasHH: Tensor, weightHH: Tensor) -> Tensor {
        precondition(rank == 3, "gru: input \(shape) must be [N, T, F]")
        let h3 = weightHH.shape[0]
        precondition(weightIH.shape == [h3, shape[2]] && biasIH.shape == [h3] && biasHH.shape == [h3]
                     && weightHH.rank == 2 && h3 == 3 * weightHH.shape[1],
                     "gru: weights \(weightIH.shape), \(weightHH.shape), biases \(biasIH.shape), \(biasHH.shape) do not fit input \(shape)")
        return matmul(transposed: weightIH).gruRecurrence(weightHH: weightHH, biasHH: biasHH, biasIH: biasIH)
    }
}

// MARK: - One cell, one sequence, one step

/// `projected` `[3H]` (`p_r, p_z, p_n`) and `gates` `[4H]` holding the recurrent term
/// `(a_r, a_z, a_n)` in its first `3H` → `gates` = `(r, z, n, a_n)`; writes `h_t` to `state`
/// `[H]`, with `h_{t-1}` at `state - H` (the previous step of the row) when `hasPrevious`.
@inline(__always)
private func gruCellForward(projected p: UnsafeMutablePointer<Float>, gates g: UnsafeMutablePointer<Float>,
                            state y: UnsafeMutablePointer<Float>, hasPrevious: Bool, h: Int) {
    var j = 0
    while j + 8 <= h {
        let an = loadVector(g + 2 * h + j)
        let r = vectorSigmoid(loadVector(p + j) + loadVector(g + j))
        let z = vectorSigmoid(loadVector(p + h + j) + loadVector(g + h + j))
        let nn = vectorTanh(loadVector(p + 2 * h + j) + r * an)
        storeVector(r, g + j); storeVector(z, g + h + j); storeVector(nn, g + 2 * h + j); storeVector(an, g + 3 * h + j)
        let previous: SIMD8<Float> = hasPrevious ? loadVector(y - h + j) : .zero
        storeVector(nn + z * (previous - nn), y + j)
        j += 8
    }
    while j < h {
        let an = g[2 * h + j]
        let r = scalarSigmoid(p[j] + g[j]), z = scalarSigmoid(p[h + j] + g[h + j])
        let nn = scalarTanh(p[2 * h + j] + r * an)
        g[j] = r; g[h + j] = z; g[2 * h + j] = nn; g[3 * h + j] = an
        let previous: Float = hasPrevious ? y[j - h] : 0
        y[j] = nn + z * (previous - nn)
        j += 1
    }
}

/// One step of backpropagation through time for one sequence: from the output gradient
/// `gradient` `[H]` plus `dh` carried from step `t + 1`, writes the gradients of the projected
/// input `dProjected` `[3H]` and of the recurrent term `dRecurrent` `[3H]` (they differ in the
/// `n` part, which `r` scales), and leaves `dh` = `z ⊙ ∂L/∂h_t`, the direct part of
/// `∂L/∂h_{t-1}` (the caller's gemm adds `dRecurrent W_hh`).
@inline(__always)
private func gruCellBackward(gates g: UnsafeMutablePointer<Float>, state y: UnsafeMutablePointer<Float>,
                             gradient gy: UnsafeMutablePointer<Float>, dh dhNext: UnsafeMutablePointer<Float>,
                             dProjected dp: UnsafeMutablePointer<Float>, dRecurrent da: UnsafeMutablePointer<Float>,
                             hasPrevious: Bool, h: Int) {
    var j = 0
    while j + 8 <= h {
        let r = loadVector(g + j), z = loadVector(g + h + j), nn = loadVector(g + 2 * h + j), an = loadVector(g + 3 * h + j)
        let dh = loadVector(gy + j) + loadVector(dhNext + j)
        let previous: SIMD8<Float> = hasPrevious ? loadVector(y - h + j) : .zero
        let dn = dh * (1 - z) * (1 - nn * nn)
        let dr = dn * an * r * (1 - r)
        let dz = dh * (previous - nn) * z * (1 - z)
        storeVector(dr, dp + j); storeVector(dz, dp + h + j); storeVector(dn, dp + 2 * h + j)
        storeVector(dr, da + j); storeVector(dz, da + h + j); storeVector(dn * r, da + 2 * h + j)
        storeVector(dh * z, dhNext + j)
        j += 8
    }
    while j < h {
        let r = g[j], z = g[h + j], nn = g[2 * h + j], an = g[3 * h + j]
        let dh = gy[j] + dhNext[j]
        let previous: Float = hasPrevious ? y[j - h] : 0
        let dn = dh * (1 - z) * (1 - nn * nn)
        let dr = dn * an * r * (1 - r)
        let dz = dh * (previous - nn) * z * (1 - z)
        dp[j] = dr; dp[h + j] = dz; dp[2 * h + j] = dn
        da[j] = dr; da[h + j] = dz; da[2 * h + j] = dn * r
        dhNext[j] = dh * z
        j += 1
    }
}
