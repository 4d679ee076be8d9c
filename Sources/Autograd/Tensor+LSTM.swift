// Fused LSTM recurrence: the whole sequence in one op with a hand-written backward.
import CKernels
import Foundation

/// Whether the fused LSTM and GRU ops run the AVX-512 kernels of `Sources/CKernels/lstm_kernels.c`
/// (hidden size a multiple of 16, where `AVX512Kernels.enabled`) or the portable Swift loops.
enum RecurrentKernels {
    static func applies(hidden h: Int) -> Bool { AVX512Kernels.enabled && h % 16 == 0 }
}

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
    /// each step is one small `gemm` plus one vectorised pass over the gates. Sequences are
    /// independent, so each worker runs the whole recurrence for its own rows of the batch (no
    /// per-step synchronisation). The backward is backpropagation through time, one `gemm` per
    /// step for `dh_{t-1}`, then `dW_hh` as one `gemm` over every step. On CPUs with AVX-512
    /// and `H` a multiple of 16, both directions run the kernels of `Sources/CKernels`
    /// (`RecurrentKernels`) instead of these `gemm` calls and Swift loops.
    public func lstmRecurrence(weightHH: Tensor) -> Tensor {
        precondition(rank == 3 && shape[2] % 4 == 0, "lstmRecurrence: projected input \(shape) must be [N, T, 4H]")
        let (n, steps, h4) = (shape[0], shape[1], shape[2])
        let h = h4 / 4
        precondition(weightHH.shape == [h4, h], "lstmRecurrence: weightHH \(weightHH.shape) must be [\(h4), \(h)]")
        let out = Tensor(uninitializedShape: [n, steps, 2 * h])
        let recording = GradMode.isEnabled && (tracksGradient || weightHH.tracksGradient)
        let vectorKernels = RecurrentKernels.applies(hidden: h)
        // Gate activations: every step [N, T, 4H] for the backward, else (portable path) one
        // step [N, 1, 4H] of scratch.
        let gates = recording ? Tensor(uninitializedShape: shape)
            : vectorKernels ? Tensor(uninitializedShape: [1]) : Tensor(uninitializedShape: [n, 1, h4])
        let p = storage.pointer, y = out.storage.pointer, a = gates.storage.pointer, w = weightHH.storage.pointer
        let rowY = steps * 2 * h, rowA = recording ? steps * h4 : h4
        if vectorKernels {
            let packed = UnsafeMutablePointer<Float>.allocate(capacity: h4 * h)
            defer { packed.deallocate() }
            astro_lstm_pack_recurrent(w, h, packed)
            Threading.parallelChunks(n, costPerItem: steps * h4 * h) { _, rows in
                astro_lstm_forward(p + rows.lowerBound * steps * h4, steps * h4, nil, 0, 0, nil, nil, packed,
                                   y + rows.lowerBound * rowY, rowY, 1, recording ? a + rows.lowerBound * rowA : nil, rowA,
                                   rows.count, steps, h)
            }
        } else {
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
                        lstmCellForward(gates: at + r * rowA, state: y + (rows.lowerBound + r) * rowY + t * 2 * h,
                                        hasPrevious: t > 0, h: h)
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
            if vectorKernels {
                // Each worker adds its rows' Σ_t da_tᵀ h_{t-1} to its own [4H, H] slice.
                let workers = Threading.workerCount
                let partial = weightHH.tracksGradient ? Tensor(repeating: 0, shape: [workers, h4, h]) : nil
                let dwp = partial?.storage.pointer
                Threading.parallelChunks(n, costPerItem: steps * h4 * h) { worker, rows in
                    let lo = rows.lowerBound, m = rows.count
                    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: 2 * m * h)
                    defer { scratch.deallocate() }
                    astro_lstm_backward(a + lo * rowA, rowA, y + lo * rowY, rowY, gy + lo * rowY, rowY, w,
                                        da + lo * steps * h4, steps * h4, dwp.map { $0 + worker * h4 * h }, scratch,
                                        nil, 0, 0, nil, nil, 0, m, steps, h)
                }
                var dw: Tensor? = nil
                if let dwp {
                    let result = Tensor(uninitializedShape: weightHH.shape)
                    let r = result.storage.pointer
                    r.update(from: dwp, count: h4 * h)
                    for k in 1..<Swift.max(workers, 1) {
                        let src = dwp + k * h4 * h
                        for i in 0..<(h4 * h) { r[i] += src[i] }
                    }
                    dw = result
                }
                return [self.tracksGradient ? dProjected : nil, dw]
            }
            Threading.parallelChunks(n, costPerItem: steps * h4 * h) { _, rows in
                let m = rows.count
                // Gradients flowing back from step t + 1 into h_t and c_t, for these rows.
                let dhNext = UnsafeMutablePointer<Float>.allocate(capacity: m * h)
                let dcNext = UnsafeMutablePointer<Float>.allocate(capacity: m * h)
                dhNext.initialize(repeating: 0, count: m * h); dcNext.initialize(repeating: 0, count: m * h)
                defer { dhNext.deallocate(); dcNext.deallocate() }
                for t in stride(from: steps - 1, through: 0, by: -1) {
                    for r in 0..<m {
                        let row = rows.lowerBound + r
                        lstmCellBackward(gates: a + row * rowA + t * h4, state: y + row * rowY + t * 2 * h,
                                         gradient: gy + row * rowY + t * 2 * h, dh: dhNext + r * h, dc: dcNext + r * h,
                                         dGates: da + (row * steps + t) * h4, hasPrevious: t > 0, h: h)
                    }
                    guard t > 0 else { break }
                    // dh_{t-1} = da_t W_hh.
                    gemm(m: m, n: h, k: h4, a: da + (rows.lowerBound * steps + t) * h4, lda: steps * h4,
                         b: w, ldb: h, c: dhNext, ldc: h)
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

extension Tensor {
    /// A whole LSTM layer over `self` `[N, T, F]`: the input projection
    /// `x_t W_ihᵀ + b_ih + b_hh` (`weightIH` `[4H, F]`, biases `[4H]`) and the recurrence of
    /// `lstmRecurrence(weightHH:)`. Returns every `(h_t, c_t)` `[N, T, 2H]` or, with
    /// `lastStepOnly`, the last one `[N, 1, 2H]`.
    ///
    /// With the AVX-512 kernels the projection is computed inside the recurrence (no
    /// `[N, T, 4H]` tensor in the forward) and, when no gradient is recorded and
    /// `lastStepOnly` is set, only two steps of state are kept per sequence. Otherwise this is
    /// `(matmul + bias).lstmRecurrence(weightHH:)`.
    public func lstm(weightIH: Tensor, biasIH: Tensor, biasHH: Tensor, weightHH: Tensor,
                     lastStepOnly: Bool = false) -> Tensor {
        precondition(rank == 3, "lstm: input \(shape) must be [N, T, F]")
        let (n, steps, f) = (shape[0], shape[1], shape[2])
        let h4 = weightHH.shape[0], h = h4 / 4
        precondition(weightIH.shape == [h4, f] && biasIH.shape == [h4] && biasHH.shape == [h4]
                     && weightHH.shape == [h4, h] && h4 == 4 * h,
                     "lstm: weights \(weightIH.shape), \(weightHH.shape), biases \(biasIH.shape), \(biasHH.shape) do not fit input \(shape)")
        guard RecurrentKernels.applies(hidden: h), steps > 0 else {
            let states = (matmul(transposed: weightIH) + (biasIH + biasHH)).lstmRecurrence(weightHH: weightHH)
            return lastStepOnly ? states.sliced(axis: 1, (steps - 1)..<steps) : states
        }
        let inputs = [self, weightIH, biasIH, biasHH, weightHH]
        let recording = GradMode.isEnabled && inputs.contains(where: { $0.tracksGradient })
        let keepAll = recording || !lastStepOnly
        let slots = keepAll ? steps : 2
        let out = Tensor(uninitializedShape: [n, slots, 2 * h])
        let gates = recording ? Tensor(uninitializedShape: [n, steps, h4]) : nil
        let x = storage.pointer, y = out.storage.pointer, a = gates?.storage.pointer
        let rowY = slots * 2 * h, rowA = steps * h4
        let packedHH = UnsafeMutablePointer<Float>.allocate(capacity: h4 * h)
        let packedIH = UnsafeMutablePointer<Float>.allocate(capacity: h4 * f)
        let packedBias = UnsafeMutablePointer<Float>.allocate(capacity: h4)
        defer { packedHH.deallocate(); packedIH.deallocate(); packedBias.deallocate() }
        astro_lstm_pack_recurrent(weightHH.storage.pointer, h, packedHH)
        astro_lstm_pack_input(weightIH.storage.pointer, biasIH.storage.pointer, biasHH.storage.pointer, h, f,
                              packedIH, packedBias)
        Threading.parallelChunks(n, costPerItem: steps * h4 * (h + f)) { _, rows in
            let lo = rows.lowerBound
            astro_lstm_forward(nil, 0, x + lo * steps * f, steps * f, f, packedIH, packedBias, packedHH,
                               y + lo * rowY, rowY, keepAll ? 1 : 0, a.map { $0 + lo * rowA }, rowA,
                               rows.count, steps, h)
        }
        guard recording, let gates else {
            if keepAll { return out }
            let last = (steps - 1) % 2
            return out.sliced(axis: 1, last..<(last + 1))
        }
        // With `lastStepOnly` the node's output is a copy of the last step, and the backward
        // reads its gradient only (no [N, T, 2H] gradient of zeros elsewhere).
        let states = out.storage
        let output: Tensor
        if lastStepOnly {
            output = Tensor(uninitializedShape: [n, 1, 2 * h])
            let o = output.storage.pointer
            for r in 0..<n { (o + r * 2 * h).update(from: y + r * rowY + (steps - 1) * 2 * h, count: 2 * h) }
        } else {
            output = out
        }
        return Tensor.record("lstm", inputs, output) { [self, weightIH, biasIH, biasHH, weightHH, gates, states] grad in
            let a = gates.storage.pointer, y = states.pointer, gy = grad.storage.pointer
            let gradientRow = lastStepOnly ? 2 * h : rowY
            let dProjected = Tensor(uninitializedShape: [n, steps, h4])
            let da = dProjected.storage.pointer
            // Per worker: dW_hh [4H, H], then dW_ihᵀ [F, 4H], then dBias [4H], summed afterwards.
            let workers = Threading.workerCount, slice = h4 * h + f * h4 + h4
            let inputSide = weightIH.tracksGradient || biasIH.tracksGradient || biasHH.tracksGradient
            let partial = Tensor(repeating: 0, shape: [workers, slice])
            let pp = partial.storage.pointer
            Threading.parallelChunks(n, costPerItem: steps * h4 * (2 * h + f)) { worker, rows in
                let lo = rows.lowerBound, m = rows.count, mine = pp + worker * slice
                let scratch = UnsafeMutablePointer<Float>.allocate(capacity: 2 * m * h)
                defer { scratch.deallocate() }
                astro_lstm_backward(a + lo * rowA, rowA, y + lo * rowY, rowY, gy + lo * gradientRow, gradientRow,
                                    weightHH.storage.pointer, da + lo * rowA, rowA,
                                    weightHH.tracksGradient ? mine : nil, scratch,
                                    x + lo * steps * f, steps * f, f,
                                    inputSide ? mine + h4 * h : nil, inputSide ? mine + h4 * h + f * h4 : nil,
                                    lastStepOnly ? 1 : 0, m, steps, h)
            }
            for k in 1..<Swift.max(workers, 1) {
                let src = pp + k * slice
                for i in 0..<slice { pp[i] += src[i] }
            }
            var dx: Tensor? = nil
            if self.tracksGradient {
                // dx = dProjected W_ih: [N·T, 4H] x [4H, F].
                let result = Tensor(uninitializedShape: self.shape)
                gemm(m: n * steps, n: f, k: h4, a: da, lda: h4, b: weightIH.storage.pointer, ldb: f,
                     c: result.storage.pointer, ldc: f)
                dx = result
            }
            var dwih: Tensor? = nil
            if weightIH.tracksGradient {
                let result = Tensor(uninitializedShape: [h4, f])
                let r = result.storage.pointer, t = pp + h4 * h
                for g in 0..<h4 { for k in 0..<f { r[g * f + k] = t[k * h4 + g] } }
                dwih = result
            }
            func bias() -> Tensor {
                let result = Tensor(uninitializedShape: [h4])
                result.storage.pointer.update(from: pp + h4 * h + f * h4, count: h4)
                return result
            }
            var dwhh: Tensor? = nil
            if weightHH.tracksGradient {
                let result = Tensor(uninitializedShape: [h4, h])
                result.storage.pointer.update(from: pp, count: h4 * h)
                dwhh = result
            }
            return [dx, dwih, biasIH.tracksGradient ? bias() : nil, biasHH.tracksGradient ? bias() : nil, dwhh]
        }
    }
}

// MARK: - One cell, one sequence, one step

/// Gate pre-activations `gates` `[4H]` → activations (in place); `state` `[2H]` = `(h_t, c_t)`,
/// with `c_{t-1}` at `state - H` (the previous step's cell state) when `hasPrevious`.
@inline(__always)
private func lstmCellForward(gates g: UnsafeMutablePointer<Float>, state y: UnsafeMutablePointer<Float>,
                             hasPrevious: Bool, h: Int) {
    var j = 0
    while j + 8 <= h {
        let i = vectorSigmoid(loadVector(g + j)), f = vectorSigmoid(loadVector(g + h + j))
        let gg = vectorTanh(loadVector(g + 2 * h + j)), o = vectorSigmoid(loadVector(g + 3 * h + j))
        storeVector(i, g + j); storeVector(f, g + h + j); storeVector(gg, g + 2 * h + j); storeVector(o, g + 3 * h + j)
        let c = (hasPrevious ? f * loadVector(y - h + j) : .zero) + i * gg
        storeVector(c, y + h + j)
        storeVector(o * vectorTanh(c), y + j)
        j += 8
    }
    while j < h {
        let i = scalarSigmoid(g[j]), f = scalarSigmoid(g[h + j])
        let gg = scalarTanh(g[2 * h + j]), o = scalarSigmoid(g[3 * h + j])
        g[j] = i; g[h + j] = f; g[2 * h + j] = gg; g[3 * h + j] = o
        let c = (hasPrevious ? f * y[j - h] : 0) + i * gg
        y[h + j] = c
        y[j] = o * scalarTanh(c)
        j += 1
    }
}

/// One step of backpropagation through time for one sequence: from the output gradient
/// `gradient` `[2H]` (of `h_t`, `c_t`) plus `dh`, `dc` carried from step `t + 1`, writes the
/// gate pre-activation gradients `dGates` `[4H]` and leaves `dc` = `∂L/∂c_{t-1}` (`dh` is
/// then overwritten by the caller's gemm).
@inline(__always)
private func lstmCellBackward(gates g: UnsafeMutablePointer<Float>, state y: UnsafeMutablePointer<Float>,
                              gradient gy: UnsafeMutablePointer<Float>, dh dhNext: UnsafeMutablePointer<Float>,
                              dc dcNext: UnsafeMutablePointer<Float>, dGates d: UnsafeMutablePointer<Float>,
                              hasPrevious: Bool, h: Int) {
    var j = 0
    while j + 8 <= h {
        let i = loadVector(g + j), f = loadVector(g + h + j), gg = loadVector(g + 2 * h + j), o = loadVector(g + 3 * h + j)
        let tc = vectorTanh(loadVector(y + h + j))
        let dh = loadVector(gy + j) + loadVector(dhNext + j)
        let dc = loadVector(gy + h + j) + loadVector(dcNext + j) + dh * o * (1 - tc * tc)
        let cPrevious: SIMD8<Float> = hasPrevious ? loadVector(y - h + j) : .zero
        storeVector(dc * gg * i * (1 - i), d + j)
        storeVector(dc * cPrevious * f * (1 - f), d + h + j)
        storeVector(dc * i * (1 - gg * gg), d + 2 * h + j)
        storeVector(dh * tc * o * (1 - o), d + 3 * h + j)
        storeVector(dc * f, dcNext + j)
        j += 8
    }
    while j < h {
        let i = g[j], f = g[h + j], gg = g[2 * h + j], o = g[3 * h + j]
        let tc = scalarTanh(y[h + j])
        let dh = gy[j] + dhNext[j]
        let dc = gy[h + j] + dcNext[j] + dh * o * (1 - tc * tc)
        let cPrevious: Float = hasPrevious ? y[j - h] : 0
        d[j] = dc * gg * i * (1 - i)
        d[h + j] = dc * cPrevious * f * (1 - f)
        d[2 * h + j] = dc * i * (1 - gg * gg)
        d[3 * h + j] = dh * tc * o * (1 - o)
        dcNext[j] = dc * f
        j += 1
    }
}
