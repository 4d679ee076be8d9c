// 2-D convolution and transposed convolution (fused forward/backward on im2col + sgemm).
//
// Fused rather than composed from pad/slice/matmul: the unfolded columns are the largest
// temporaries in a CNN, so they live in reused per-worker buffers and are recomputed in the
// backward pass instead of being kept alive by the graph.

extension Tensor {
    /// Cross-correlation, as PyTorch's `conv2d`.
    ///
    /// `out[n, f, y, x] = bias[f] + sum_{c,i,j} w[f, c, i, j] * in[n, c, y*s + i*d - p, x*s + j*d - p]`
    ///
    /// - `self` (input): `[N, C, H, W]`; `weight`: `[F, C, KH, KW]`; `bias`: `[F]`.
    /// - Returns `[N, F, H', W']`, `H' = (H + 2p - d(KH - 1) - 1) / s + 1` (`.same`: `ceil(H / s)`).
    ///
    /// Images are processed in groups on `Threading.workerCount` threads; small feature maps
    /// are batched into one wide sgemm so that deep layers (2x2 maps) still run at sgemm speed.
    public func conv2d(weight: Tensor, bias: Tensor? = nil, stride: Size2 = 1, padding: Padding = .valid,
                       dilation: Size2 = 1) -> Tensor {
        precondition(rank == 4 && weight.rank == 4 && weight.shape[1] == shape[1],
                     "conv2d: input \(shape) and weight \(weight.shape) must be [N, C, H, W] and [F, C, KH, KW]")
        let f = weight.shape[0]
        if let bias { precondition(bias.shape == [f], "conv2d: bias \(bias.shape) for \(f) filters") }
        let n = shape[0]
        let g = ConvGeometry(channels: shape[1], height: shape[2], width: shape[3],
                             kernel: Size2(weight.shape[2], weight.shape[3]), stride: stride,
                             padding: padding, dilation: dilation, op: "conv2d")
        if let out = convolvedWithOneDNN(transposed: false, weight: weight, bias: bias, outputShape: [n, f, g.outH, g.outW],
                                         stride: stride, dilation: dilation, padBefore: Size2(g.padTop, g.padLeft),
                                         padAfter: Size2(g.padBottom, g.padRight)) {
            return out
        }
        let out = Tensor(uninitializedShape: [n, f, g.outH, g.outW])
        let plan = ConvPlan(g, batch: n)
        let x = storage.pointer, w = weight.storage.pointer, o = out.storage.pointer
        let inStride = g.channels * g.inPixels, outStride = f * g.outPixels
        Threading.parallelChunks(plan.groupCount, costPerItem: 1 << 20) { worker, groups in
            for group in groups {
                let (first, size) = plan.images(of: group)
                let ld = size * g.outPixels
                let cols = plan.columns(worker: worker, first: first, size: size, input: x)
                if size == 1 {
                    gemm(m: f, n: ld, k: g.patch, a: w, lda: g.patch, b: cols, ldb: ld,
                         c: o + first * outStride, ldc: ld)
                } else {
                    // [F, size*OHW] -> size images of [F, OHW]
                    let tmp = Workspace.shared.buffer(worker: worker, slot: 1, count: f * ld)
                    gemm(m: f, n: ld, k: g.patch, a: w, lda: g.patch, b: cols, ldb: ld, c: tmp, ldc: ld)
                    for j in 0..<size { for fi in 0..<f {
                        (o + (first + j) * outStride + fi * g.outPixels)
                            .update(from: tmp + fi * ld + j * g.outPixels, count: g.outPixels)
                    } }
                }
                if let bias {
                    let b = bias.storage.pointer
                    for j in 0..<size { for fi in 0..<f {
                        let row = o + (first + j) * outStride + fi * g.outPixels, v = b[fi]
                        for p in 0..<g.outPixels { row[p] += v }
                    } }
                }
            }
        }
        let inputs = bias.map { [self, weight, $0] } ?? [self, weight]
        let (saved, inShape, needsInputGradient) = (savedForBackward, shape, tracksGradient)
        return Tensor.record("conv2d", inputs, out) { gOut in
            let input = saved.values()
            defer { withExtendedLifetime(input) {} }
            let x = input.storage.pointer
            let gp = gOut.storage.pointer
            let dx = needsInputGradient ? Tensor(repeating: 0, shape: inShape) : nil
            let needW = weight.tracksGradient
            let workers = Swift.min(Threading.workerCount, plan.groupCount)
            // One partial weight gradient per worker, summed at the end (no shared writes).
            let dwParts = needW ? (0..<Swift.max(workers, 1)).map { _ in Tensor(repeating: 0, shape: weight.shape) } : []
            Threading.parallelChunks(plan.groupCount, costPerItem: 1 << 20) { worker, groups in
                for group in groups {
                    let (first, size) = plan.images(of: group)
                    let ld = size * g.outPixels
                    // The output gradient of the group as [F, size*OHW].
                    var gcols = UnsafePointer(gp + first * outStride)
                    if size > 1 {
                        let tmp = Workspace.shared.buffer(worker: worker, slot: 1, count: f * ld)
                        for j in 0..<size { for fi in 0..<f {
                            (tmp + fi * ld + j * g.outPixels)
                                .update(from: gp + (first + j) * outStride + fi * g.outPixels, count: g.outPixels)
                        } }
                        gcols = UnsafePointer(tmp)
                    }
                    if needW {
                        let cols = plan.columns(worker: worker, first: first, size: size, input: x)
                        gemm(transB: true, m: f, n: g.patch, k: ld, a: gcols, lda: ld, b: cols, ldb: ld,
                             beta: 1, c: dwParts[worker].storage.pointer, ldc: g.patch)
                    }
                    if let dx {
                        let d = dx.storage.pointer + first * inStride
                        if g.isPointwise && size == 1 {
                            gemm(transA: true, m: g.patch, n: ld, k: f, a: w, lda: g.patch, b: gcols, ldb: ld,
                                 c: d, ldc: ld)
                        } else {
                            let dcols = Workspace.shared.buffer(worker: worker, slot: 0, count: g.patch * ld)
                            gemm(transA: true, m: g.patch, n: ld, k: f, a: w, lda: g.patch, b: gcols, ldb: ld,
                                 c: dcols, ldc: ld)
                            for j in 0..<size {
                                col2im(dcols + j * g.outPixels, ld: ld, g, d + j * inStride)
                            }
                        }
                    }
                }
            }
            var dw: Tensor? = nil
            if needW {
                dw = dwParts[0]
                for part in dwParts.dropFirst() {
                    let p = dw!.storage.pointer, q = part.storage.pointer
                    for i in 0..<weight.count { p[i] += q[i] }
                }
            }
            var grads: [Tensor?] = [dx, dw]
            if let bias { grads.append(bias.tracksGradient ? gOut.sum(axes: [0, 2, 3]) : nil) }
            return grads
        }
    }
}

/// How a batch is split into groups of images that share one sgemm.
struct ConvPlan {
    let geometry: ConvGeometry
    let batch: Int
    let groupSize: Int

    init(_ g: ConvGeometry, batch: Int) {
        geometry = g
        self.batch = batch
        // Aim for at least ~256 sgemm columns per call, but keep a group per worker.
        let want = Swift.max(1, (256 + g.outPixels - 1) / Swift.max(g.outPixels, 1))
        let perWorker = Swift.max(1, (batch + Threading.workerCount - 1) / Threading.workerCount)
        groupSize = Swift.min(want, perWorker)
    }

    var groupCount: Int { (batch + groupSize - 1) / groupSize }

    func images(of group: Int) -> (first: Int, size: Int) {
        let first = group * groupSize
        return (first, Swift.min(groupSize, batch - first))
    }

    /// The unfolded columns `[C*KH*KW, size*OHW]` of images `first..<first+size`; pointwise
    /// single images are used in place.
    func columns(worker: Int, first: Int, size: Int, input x: UnsafePointer<Float>) -> UnsafePointer<Float> {
        let g = geometry
        let image = g.channels * g.inPixels
        if g.isPointwise && size == 1 { return x + first * image }
        let ld = size * g.outPixels
        let cols = Workspace.shared.buffer(worker: worker, slot: 0, count: g.patch * ld)
        for j in 0..<size { im2col(x + (first + j) * image, g, cols + j * g.outPixels, ld: ld) }
        return UnsafePointer(cols)
    }
}
