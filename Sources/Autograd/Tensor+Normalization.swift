// Batch normalisation (training and inference) and dropout.
import Foundation

/// `sum(p[j] - shift)` or `sum((p[j] - shift)^2)` over `count` floats, in 4 x 16 SIMD lanes
/// (a sequential float sum cannot vectorise and ran at one add per 4 cycles).
@inline(__always)
func laneSum(_ p: UnsafeMutablePointer<Float>, _ count: Int, shift: Float, squared: Bool) -> Float {
    var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
    let s = SIMD16<Float>(repeating: shift)
    let raw = UnsafeRawPointer(p)
    var j = 0
    @inline(__always) func term(_ k: Int) -> SIMD16<Float> {
        let d = raw.loadUnaligned(fromByteOffset: 4 * k, as: SIMD16<Float>.self) - s
        return squared ? d * d : d
    }
    while j + 64 <= count { a0 += term(j); a1 += term(j + 16); a2 += term(j + 32); a3 += term(j + 48); j += 64 }
    while j + 16 <= count { a0 += term(j); j += 16 }
    var total = ((a0 + a1) + (a2 + a3)).sum()
    while j < count { let d = p[j] - shift; total += squared ? d * d : d; j += 1 }
    return total
}

/// `(sum g[j], sum g[j] (x[j] - mean))` over `count` floats, in SIMD lanes.
@inline(__always)
func gradientSums(_ g: UnsafeMutablePointer<Float>, _ x: UnsafeMutablePointer<Float>, _ count: Int,
                  mean: Float) -> (Float, Float) {
    var s0 = SIMD16<Float>(), s1 = SIMD16<Float>(), t0 = SIMD16<Float>(), t1 = SIMD16<Float>()
    let mu = SIMD16<Float>(repeating: mean)
    let gr = UnsafeRawPointer(g), xr = UnsafeRawPointer(x)
    var j = 0
    while j + 32 <= count {
        let g0 = gr.loadUnaligned(fromByteOffset: 4 * j, as: SIMD16<Float>.self)
        let g1 = gr.loadUnaligned(fromByteOffset: 4 * j + 64, as: SIMD16<Float>.self)
        s0 += g0; s1 += g1
        t0 += g0 * (xr.loadUnaligned(fromByteOffset: 4 * j, as: SIMD16<Float>.self) - mu)
        t1 += g1 * (xr.loadUnaligned(fromByteOffset: 4 * j + 64, as: SIMD16<Float>.self) - mu)
        j += 32
    }
    var sg = (s0 + s1).sum(), sgx = (t0 + t1).sum()
    while j < count { sg += g[j]; sgx += g[j] * (x[j] - mean); j += 1 }
    return (sg, sgx)
}

/// Synchronised batch norm: sums per-channel statistics over the processes of a
/// data-parallel job, so that batch norm normalises with the statistics of the global batch
/// (PyTorch's `SyncBatchNorm`). Every process calls `sum` in the same order (forward: counts
/// and sums, then squared deviations; backward: the two gradient sums).
public protocol BatchStatisticsReducer: AnyObject {
    /// Replaces `values` by their sum over the processes.
    func sum(_ values: inout [Double])
    /// This process's share of the global batch (its samples / all samples), by which its
    /// loss enters the global mean loss.
    var share: Double { get }
}

extension Tensor {
    /// Batch normalisation over every axis but 1 (channels), as PyTorch's `batch_norm`.
    ///
    /// `y = gamma (x - mean_c) / sqrt(var_c + eps) + beta`
    ///
    /// - `self`: `[N, C, ...]` (`[N, C, H, W]` for images, `[N, C]` after a dense layer);
    ///   `weight` (gamma), `bias` (beta), `runningMean`, `runningVariance`: `[C]`.
    /// - `training`: batch statistics are used, and the running ones are updated in place
    ///   (`r = (1 - momentum) r + momentum * stat`, unbiased variance, as PyTorch). Otherwise
    ///   the running statistics normalise and nothing is updated.
    ///
    /// - `synchronisation` (training only): the statistics are those of every process's
    ///   batch together (`BatchStatisticsReducer`), and so are the sums in the backward pass.
    ///
    /// Fused rather than composed from mean/variance ops: one pass for the statistics, one
    /// for the output, and a closed-form backward instead of a dozen broadcast nodes.
    public func batchNorm(weight: Tensor?, bias: Tensor?, runningMean: Tensor?, runningVariance: Tensor?,
                          training: Bool, momentum: Float = 0.1, epsilon: Float = 1e-5,
                          synchronisation: BatchStatisticsReducer? = nil) -> Tensor {
        precondition(rank >= 2, "batchNorm: input must be [N, C, ...], got \(shape)")
        let (n, c) = (shape[0], shape[1])
        let spatial = count / Swift.max(n * c, 1)
        for (name, t) in [("weight", weight), ("bias", bias), ("runningMean", runningMean), ("runningVariance", runningVariance)] {
            if let t { precondition(t.shape == [c], "batchNorm: \(name) \(t.shape) for input \(shape) with \(c) channels") }
        }
        precondition(training || (runningMean != nil && runningVariance != nil),
                     "batchNorm: inference needs runningMean and runningVariance")
        let m = n * spatial
        let sync = training ? synchronisation : nil
        precondition(!training || m > 1 || sync != nil, "batchNorm: training needs more than one value per channel, got \(shape)")
        var meanArr = [Float](repeating: 0, count: c), invStd = [Float](repeating: 0, count: c)
        let x = storage.pointer
        // Synchronised: the global batch's statistics, computed as one process computes
        // them (plane sums in Double, then the squared deviations from the float mean).
        var globalCount = m
        var syncMean = [Float](), syncVariance = [Float]()
        if let sync {
            var sums = [Double](repeating: 0, count: c + 1)
            sums.withUnsafeMutableBufferPointer { sp in
                let sp = sp.baseAddress!
                Threading.parallelChunks(c, costPerItem: m) { _, r in
                    for ch in r {
                        var s = 0.0
                        for i in 0..<n { s += Double(laneSum(x + (i * c + ch) * spatial, spatial, shift: 0, squared: false)) }
                        sp[ch] = s
                    }
                }
            }
            sums[c] = Double(m)
            sync.sum(&sums)
            globalCount = Int(sums[c].rounded())
            precondition(globalCount > 1, "batchNorm: training needs more than one value per channel over the processes")
            syncMean = (0..<c).map { Float(sums[$0] / Double(globalCount)) }
            var squares = [Double](repeating: 0, count: c)
            squares.withUnsafeMutableBufferPointer { sp in
                let sp = sp.baseAddress!
                Threading.parallelChunks(c, costPerItem: m) { _, r in
                    for ch in r {
                        var ss = 0.0
                        for i in 0..<n {
                            ss += Double(laneSum(x + (i * c + ch) * spatial, spatial, shift: syncMean[ch], squared: true))
                        }
                        sp[ch] = ss
                    }
                }
            }
            sync.sum(&squares)
            syncVariance = squares.map { Float($0 / Double(globalCount)) }
            if let runningMean, let runningVariance {
                let rm = runningMean.storage.pointer, rv = runningVariance.storage.pointer
                for ch in 0..<c {
                    rm[ch] = (1 - momentum) * rm[ch] + momentum * syncMean[ch]
                    rv[ch] = (1 - momentum) * rv[ch] + momentum * Float(squares[ch] / Double(globalCount - 1))
                }
            }
        }
        let out = Tensor(uninitializedShape: shape)
        let o = out.storage.pointer
        let gammaP = weight?.storage.pointer, betaP = bias?.storage.pointer
        meanArr.withUnsafeMutableBufferPointer { mp in invStd.withUnsafeMutableBufferPointer { ip in
            let mp = mp.baseAddress!, ip = ip.baseAddress!
            Threading.parallelChunks(c, costPerItem: m * 3) { _, r in
                for ch in r {
                    var mu: Float, v: Float
                    if sync != nil {
                        mu = syncMean[ch]; v = syncVariance[ch]
                    } else if training {
                        // Two passes (the shifted form keeps precision for large means), each
                        // plane summed in SIMD float lanes and the planes in Double.
                        var s = 0.0
                        for i in 0..<n { s += Double(laneSum(x + (i * c + ch) * spatial, spatial, shift: 0, squared: false)) }
                        let mud = s / Double(m)
                        var ss = 0.0
                        for i in 0..<n {
                            ss += Double(laneSum(x + (i * c + ch) * spatial, spatial, shift: Float(mud), squared: true))
                        }
                        mu = Float(mud); v = Float(ss / Double(m))
                        if let runningMean, let runningVariance {
                            let rm = runningMean.storage.pointer, rv = runningVariance.storage.pointer
                            rm[ch] = (1 - momentum) * rm[ch] + momentum * mu
                            rv[ch] = (1 - momentum) * rv[ch] + momentum * Float(ss / Double(m - 1))
                        }
                    } else {
                        mu = runningMean!.storage.pointer[ch]; v = runningVariance!.storage.pointer[ch]
                    }
                    let inv = 1 / (v + epsilon).squareRoot()
                    mp[ch] = mu; ip[ch] = inv
                    let scale = (gammaP?[ch] ?? 1) * inv, shift = (betaP?[ch] ?? 0) - mu * scale
                    for i in 0..<n {
                        let p = x + (i * c + ch) * spatial, q = o + (i * c + ch) * spatial
                        for j in 0..<spatial { q[j] = p[j] * scale + shift }
                    }
                }
            }
        } }
        let savedMean = meanArr, savedInv = invStd
        var inputs = [self]
        if let weight { inputs.append(weight) }
        if let bias { inputs.append(bias) }
        let recorded = Tensor.record("batchNorm", inputs, out) { [self] g in
            let gp = g.storage.pointer, x = self.storage.pointer
            let dx = self.tracksGradient ? Tensor(uninitializedShape: self.shape) : nil
            let dgamma = Tensor(uninitializedShape: [c]), dbeta = Tensor(uninitializedShape: [c])
            let dgp = dgamma.storage.pointer, dbp = dbeta.storage.pointer
            Threading.parallelChunks(c, costPerItem: m * 2) { _, r in
                for ch in r {
                    let mu = savedMean[ch], inv = savedInv[ch]
                    var sg: Float = 0, sgx: Float = 0
                    for i in 0..<n {
                        let (a, b) = gradientSums(gp + (i * c + ch) * spatial, x + (i * c + ch) * spatial, spatial, mean: mu)
                        sg += a; sgx += b * inv
                    }
                    dbp[ch] = sg; dgp[ch] = sgx
                }
            }
            guard let dx else { return [nil] + (weight != nil ? [dgamma] : []) + (bias != nil ? [dbeta] : []) }
            // The means of g and g·xhat over the batch; synchronised, over the global batch,
            // in units of the global mean loss (each process's sums weighted by its share),
            // brought back to this process's loss (divided by its share).
            var meanG = (0..<c).map { dbp[$0] / Float(m) }
            var meanGX = (0..<c).map { dgp[$0] / Float(m) }
            if let sync, training {
                let w = sync.share
                var sums = (0..<c).map { w * Double(dbp[$0]) } + (0..<c).map { w * Double(dgp[$0]) }
                sync.sum(&sums)
                meanG = (0..<c).map { Float(sums[$0] / (Double(globalCount) * w)) }
                meanGX = (0..<c).map { Float(sums[c + $0] / (Double(globalCount) * w)) }
            }
            Threading.parallelChunks(c, costPerItem: m) { _, r in
                for ch in r {
                    let mu = savedMean[ch], inv = savedInv[ch]
                    let gamma = gammaP?[ch] ?? 1, d = dx.storage.pointer
                    if training {
                        // dx = gamma inv / M (M g - sum g - xhat sum(g xhat))
                        let a = gamma * inv, mg = meanG[ch], mgx = meanGX[ch]
                        for i in 0..<n {
                            let p = x + (i * c + ch) * spatial, q = gp + (i * c + ch) * spatial, dp = d + (i * c + ch) * spatial
                            for j in 0..<spatial { dp[j] = a * (q[j] - mg - (p[j] - mu) * inv * mgx) }
                        }
                    } else {
                        let a = gamma * inv
                        for i in 0..<n {
                            let q = gp + (i * c + ch) * spatial, dp = d + (i * c + ch) * spatial
                            for j in 0..<spatial { dp[j] = a * q[j] }
                        }
                    }
                }
            }
            var grads: [Tensor?] = [dx]
            if weight != nil { grads.append(dgamma) }
            if bias != nil { grads.append(dbeta) }
            return grads
        }
        // For a ReLU after this one: its output can be recomputed from `self` (see `Rematerialized`).
        if Rematerialized.isEnabled, let node = recorded.node {
            let scale = (0..<c).map { (gammaP?[$0] ?? 1) * savedInv[$0] }
            node.channelAffine = ChannelAffine(input: self, scale: scale,
                                               shift: (0..<c).map { (betaP?[$0] ?? 0) - savedMean[$0] * scale[$0] })
        }
        return recorded
    }

    /// Inverted dropout: zeroes each element with probability `probability` and scales the
    /// rest by `1 / (1 - probability)`, so inference needs no rescaling. Identity when not
    /// `training`.
    public func dropout(probability: Float, training: Bool = true, generator: inout SeededGenerator) -> Tensor {
        precondition(probability >= 0 && probability < 1, "dropout: probability \(probability) not in [0, 1)")
        guard training, probability > 0 else { return self }
        let keep = 1 / (1 - probability)
        let mask = Tensor(uninitializedShape: shape)
        let mp = mask.storage.pointer
        for i in 0..<count { mp[i] = generator.nextUnit() < probability ? 0 : keep }
        return self * mask
    }
}
