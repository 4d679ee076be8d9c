// Max, average and global average pooling; nearest and bilinear upsampling.

extension Tensor {
    private func planes(_ op: String) -> (planes: Int, h: Int, w: Int) {
        precondition(rank == 4, "\(op): input must be [N, C, H, W], got \(shape)")
        return (shape[0] * shape[1], shape[2], shape[3])
    }

    private static func pooledSize(_ size: Int, _ k: Int, _ s: Int, _ p: Int, op: String) -> Int {
        let o = (size + 2 * p - k) / s + 1
        precondition(o > 0 && k > 0 && s > 0 && p >= 0 && 2 * p <= k,
                     "\(op): window \(k), stride \(s), padding \(p) do not fit size \(size)")
        return o
    }

    /// Maximum over windows (padding never wins: it counts as -inf, as in PyTorch).
    ///
    /// - `self`: `[N, C, H, W]`; returns `[N, C, H', W']`, `H' = (H + 2p - k) / s + 1`.
    /// - `stride` defaults to the kernel size.
    public func maxPool2d(kernelSize: Size2, stride: Size2? = nil, padding: Size2 = 0) -> Tensor {
        let (planes, h, w) = planes("maxPool2d")
        let s = stride ?? kernelSize
        let oh = Tensor.pooledSize(h, kernelSize.height, s.height, padding.height, op: "maxPool2d")
        let ow = Tensor.pooledSize(w, kernelSize.width, s.width, padding.width, op: "maxPool2d")
        let out = Tensor(uninitializedShape: [shape[0], shape[1], oh, ow])
        // Winner positions (flat within the plane) for the backward scatter.
        let winners = UnsafeMutablePointer<Int32>.allocate(capacity: Swift.max(out.count, 1))
        let box = PointerBox(winners)
        let x = storage.pointer, o = out.storage.pointer
        Threading.parallelChunks(planes, costPerItem: oh * ow * kernelSize.height * kernelSize.width) { _, r in
            for p in r {
                let src = x + p * h * w, dst = o + p * oh * ow, win = winners + p * oh * ow
                for oy in 0..<oh { for ox in 0..<ow {
                    var best = -Float.infinity, bi: Int32 = -1
                    let y0 = oy * s.height - padding.height, x0 = ox * s.width - padding.width
                    for ky in Swift.max(0, -y0)..<Swift.min(kernelSize.height, h - y0) {
                        let row = src + (y0 + ky) * w
                        for kx in Swift.max(0, -x0)..<Swift.min(kernelSize.width, w - x0) {
                            let v = row[x0 + kx]
                            if v > best || bi < 0 || v.isNaN { best = v; bi = Int32((y0 + ky) * w + x0 + kx) }
                        }
                    }
                    dst[oy * ow + ox] = best
                    win[oy * ow + ox] = bi
                } }
            }
        }
        let inShape = shape
        return Tensor.record("maxPool2d", [self], out) { g in
            let dx = Tensor(repeating: 0, shape: inShape)
            let d = dx.storage.pointer, gp = g.storage.pointer, win = box.pointer
            Threading.parallelChunks(planes, costPerItem: oh * ow) { _, r in
                for p in r {
                    let dp = d + p * h * w
                    for i in (p * oh * ow)..<((p + 1) * oh * ow) { dp[Int(win[i])] += gp[i] }
                }
            }
            return [dx]
        }
    }

    /// Mean over windows; padded zeros count in the divisor (PyTorch's `count_include_pad=True`).
    ///
    /// - `self`: `[N, C, H, W]`; returns `[N, C, H', W']`.
    public func avgPool2d(kernelSize: Size2, stride: Size2? = nil, padding: Size2 = 0) -> Tensor {
        let (planes, h, w) = planes("avgPool2d")
        let s = stride ?? kernelSize
        let oh = Tensor.pooledSize(h, kernelSize.height, s.height, padding.height, op: "avgPool2d")
        let ow = Tensor.pooledSize(w, kernelSize.width, s.width, padding.width, op: "avgPool2d")
        let out = Tensor(uninitializedShape: [shape[0], shape[1], oh, ow])
        let scale = 1 / Float(kernelSize.height * kernelSize.width)
        let x = storage.pointer, o = out.storage.pointer
        // Visits every window's in-bounds pixels: body(outputIndex, inputIndex).
        func windows(_ p: Int, _ body: (Int, Int) -> Void) {
            for oy in 0..<oh { for ox in 0..<ow {
                let y0 = oy * s.height - padding.height, x0 = ox * s.width - padding.width
                for ky in Swift.max(0, -y0)..<Swift.min(kernelSize.height, h - y0) {
                    for kx in Swift.max(0, -x0)..<Swift.min(kernelSize.width, w - x0) {
                        body(p * oh * ow + oy * ow + ox, p * h * w + (y0 + ky) * w + x0 + kx)
                    }
                }
            } }
        }
        Threading.parallelChunks(planes, costPerItem: oh * ow * kernelSize.height * kernelSize.width) { _, r in
            for p in r {
                (o + p * oh * ow).update(repeating: 0, count: oh * ow)
                windows(p) { oi, ii in o[oi] += x[ii] * scale }
            }
        }
        let inShape = shape
        return Tensor.record("avgPool2d", [self], out) { g in
            let dx = Tensor(repeating: 0, shape: inShape)
            let d = dx.storage.pointer, gp = g.storage.pointer
            for p in 0..<planes { windows(p) { oi, ii in d[ii] += gp[oi] * scale } }
            return [dx]
        }
    }

    /// Mean over H and W: `[N, C, H, W]` to `[N, C]`.
    public func globalAvgPool2d() -> Tensor {
        precondition(rank == 4, "globalAvgPool2d: input must be [N, C, H, W], got \(shape)")
        return reshaped(to: [shape[0], shape[1], shape[2] * shape[3]]).mean(axes: [2])
    }

    // MARK: - Upsampling

    /// Nearest-neighbour upsampling by an integer factor: `[N, C, H, W]` to `[N, C, sH, sW]`.
    public func upsampledNearest(scale: Int) -> Tensor {
        let (planes, h, w) = planes("upsampledNearest")
        precondition(scale >= 1, "upsampledNearest: scale \(scale) must be >= 1")
        let oh = h * scale, ow = w * scale
        let out = Tensor(uninitializedShape: [shape[0], shape[1], oh, ow])
        let x = storage.pointer, o = out.storage.pointer
        for p in 0..<planes { for oy in 0..<oh {
            let src = x + p * h * w + (oy / scale) * w, dst = o + p * oh * ow + oy * ow
            for ox in 0..<ow { dst[ox] = src[ox / scale] }
        } }
        let inShape = shape
        return Tensor.record("upsampledNearest", [self], out) { g in
            let dx = Tensor(repeating: 0, shape: inShape)
            let d = dx.storage.pointer, gp = g.storage.pointer
            for p in 0..<planes { for oy in 0..<oh {
                let dst = d + p * h * w + (oy / scale) * w, src = gp + p * oh * ow + oy * ow
                for ox in 0..<ow { dst[ox / scale] += src[ox] }
            } }
            return [dx]
        }
    }

    /// Bilinear upsampling by an integer factor with `align_corners=False` (PyTorch's default):
    /// output pixel centres map to `(o + 0.5) / s - 0.5` in the input, clamped at the border.
    public func upsampledBilinear(scale: Int) -> Tensor {
        let (planes, h, w) = planes("upsampledBilinear")
        precondition(scale >= 1, "upsampledBilinear: scale \(scale) must be >= 1")
        let oh = h * scale, ow = w * scale
        func taps(_ o: Int, _ size: Int) -> (Int, Int, Float) {
            let src = Swift.max((Float(o) + 0.5) / Float(scale) - 0.5, 0)
            let i0 = Swift.min(Int(src), size - 1)
            let i1 = Swift.min(i0 + 1, size - 1)
            return (i0, i1, src - Float(i0))
        }
        let ty = (0..<oh).map { taps($0, h) }, tx = (0..<ow).map { taps($0, w) }
        let out = Tensor(uninitializedShape: [shape[0], shape[1], oh, ow])
        let x = storage.pointer, o = out.storage.pointer
        for p in 0..<planes { for oy in 0..<oh {
            let (y0, y1, fy) = ty[oy]
            let r0 = x + p * h * w + y0 * w, r1 = x + p * h * w + y1 * w, dst = o + p * oh * ow + oy * ow
            for ox in 0..<ow {
                let (x0, x1, fx) = tx[ox]
                let top = r0[x0] + (r0[x1] - r0[x0]) * fx, bottom = r1[x0] + (r1[x1] - r1[x0]) * fx
                dst[ox] = top + (bottom - top) * fy
            }
        } }
        let inShape = shape
        return Tensor.record("upsampledBilinear", [self], out) { g in
            let dx = Tensor(repeating: 0, shape: inShape)
            let d = dx.storage.pointer, gp = g.storage.pointer
            for p in 0..<planes { for oy in 0..<oh {
                let (y0, y1, fy) = ty[oy]
                let r0 = d + p * h * w + y0 * w, r1 = d + p * h * w + y1 * w, src = gp + p * oh * ow + oy * ow
                for ox in 0..<ow {
                    let (x0, x1, fx) = tx[ox]
                    let v = src[ox]
                    r0[x0] += v * (1 - fy) * (1 - fx); r0[x1] += v * (1 - fy) * fx
                    r1[x0] += v * fy * (1 - fx); r1[x1] += v * fy * fx
                }
            } }
            return [dx]
        }
    }
}

/// Owns a raw allocation captured by a pullback; freed with the graph.
final class PointerBox<T> {
    let pointer: UnsafeMutablePointer<T>
    init(_ pointer: UnsafeMutablePointer<T>) { self.pointer = pointer }
    deinit { pointer.deallocate() }
}
