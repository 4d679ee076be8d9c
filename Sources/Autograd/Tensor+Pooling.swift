// Max, average and global average pooling; nearest and bilinear upsampling.

extension Tensor {
    private func planes(_ op: String) -> (planes: Int, h: Int, w: Int) {
        precondition(rank == 4, "\(op): input must be [N, C, H, W], got \(shape)")
        return (shape[0] * shape[1], shape[2], shape[3])
    }

    static func pooledSize(_ size: Int, _ k: Int, _ s: Int, _ p: Int, op: String) -> Int {
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
        // Winner positions (flat within the plane) for the backward scatter, only when recording.
        let recording = GradMode.isEnabled && tracksGradient
        let winners = UnsafeMutablePointer<Int32>.allocate(capacity: recording ? Swift.max(out.count, 1) : 1)
        let box = PointerBox(winners)
        let x = storage.pointer, o = out.storage.pointer
        let geometry = PoolGeometry(h: h, w: w, oh: oh, ow: ow, kernel: kernelSize, stride: s, padding: padding)
        Threading.parallelChunks(planes, costPerItem: oh * ow * kernelSize.height * kernelSize.width) { _, r in
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: maxPoolScratchCount(geometry))
            defer { scratch.deallocate() }
            for p in r {
                maxPoolPlane(x + p * h * w, o + p * oh * ow, recording ? winners + p * oh * ow : nil, geometry,
                             scratch: scratch)
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
        // Planes in parallel; each input row widened once, then copied to the other scale - 1 rows.
        Threading.parallelChunks(planes, costPerItem: oh * ow) { _, r in
            for p in r { for iy in 0..<h {
                let src = x + p * h * w + iy * w, dst = o + p * oh * ow + iy * scale * ow
                if scale == 2 {
                    for ix in 0..<w { let v = src[ix]; dst[2 * ix] = v; dst[2 * ix + 1] = v }
                } else {
                    for ix in 0..<w { let v = src[ix]; for k in 0..<scale { dst[ix * scale + k] = v } }
                }
                for k in 1..<scale { (dst + k * ow).update(from: dst, count: ow) }
            } }
        }
        let inShape = shape
        return Tensor.record("upsampledNearest", [self], out) { g in
            let dx = Tensor(uninitializedShape: inShape)
            let d = dx.storage.pointer, gp = g.storage.pointer
            // Each input pixel's gradient: the sum of its scale × scale block.
            Threading.parallelChunks(planes, costPerItem: oh * ow) { _, r in
                for p in r { for iy in 0..<h {
                    let dst = d + p * h * w + iy * w, src = gp + p * oh * ow + iy * scale * ow
                    if scale == 2 {
                        let next = src + ow
                        for ix in 0..<w { dst[ix] = (src[2 * ix] + src[2 * ix + 1]) + (next[2 * ix] + next[2 * ix + 1]) }
                    } else {
                        for ix in 0..<w {
                            var sum: Float = 0
                            for ky in 0..<scale { for kx in 0..<scale { sum += src[ky * ow + ix * scale + kx] } }
                            dst[ix] = sum
                        }
                    }
                } }
            }
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
/// One max-pooling problem's sizes (per plane).
struct PoolGeometry {
    let h: Int, w: Int, oh: Int, ow: Int, kernel: Size2, stride: Size2, padding: Size2
}

/// Max pooling of one plane: `dst[oy, ox]` is the window's maximum (a NaN wins, padding never
/// does; ties keep the first in row-major order) and `win`, when given, its flat index in the plane.
///
/// Strides 1 and 2 run 16 output columns at a time with SIMD, branch-free: each input row of
/// the window is copied into `scratch` between `-inf` margins (so edge windows need no special
/// case) and, for stride 2, read 32 wide and split into its even lanes. Other strides take a
/// scalar loop. Measured: the former scalar loop, whose "v > best" branch the predictor loses
/// on real data, was 18% of resnet18's inference time (docs/benchmarks.md).
/// `scratch` holds at least `maxPoolScratchCount(g)` floats.
@inline(__always)
func maxPoolPlane(_ src: UnsafeMutablePointer<Float>, _ dst: UnsafeMutablePointer<Float>,
                  _ win: UnsafeMutablePointer<Int32>?, _ g: PoolGeometry, scratch: UnsafeMutablePointer<Float>) {
    let (h, w, ow) = (g.h, g.w, g.ow)
    let (kh, kw, sh, sw, ph, pw) = (g.kernel.height, g.kernel.width, g.stride.height, g.stride.width,
                                    g.padding.height, g.padding.width)
    guard sw == 1 || sw == 2 else {
        for oy in 0..<g.oh {
            let y0 = oy * sh - ph
            let ky0 = Swift.max(0, -y0), ky1 = Swift.min(kh, h - y0)
            for ox in 0..<ow {
                let x0 = ox * sw - pw
                let kx0 = Swift.max(0, -x0), kx1 = Swift.min(kw, w - x0)
                var bi = (y0 + ky0) * w + x0 + kx0
                var best = src[bi]
                for ky in ky0..<ky1 {
                    let rowIndex = (y0 + ky) * w + x0
                    for kx in kx0..<kx1 {
                        let v = src[rowIndex + kx]
                        if v > best || v.isNaN { best = v; bi = rowIndex + kx }
                    }
                }
                dst[oy * ow + ox] = best
                win?[oy * ow + ox] = Int32(bi)
            }
        }
        return
    }
    let chunks = (ow + 15) / 16
    let padded = maxPoolScratchCount(g)
    scratch.update(repeating: -.infinity, count: padded)
    let laneStep = SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15) &* Int32(sw)
    // The first chunk's leftmost in-bounds columns (padding on the left clamps to column 0).
    var firstColumns = laneStep &- Int32(pw)
    for lane in 0..<16 where firstColumns[lane] < 0 { firstColumns[lane] = 0 }
    // Partial last chunk: computed in full, stored through these.
    var tailValues = SIMD16<Float>(), tailWinners = SIMD16<Int32>()
    for oy in 0..<g.oh {
        let y0 = oy * sh - ph
        let ky0 = Swift.max(0, -y0), ky1 = Swift.min(kh, h - y0)
        // Rows ky0..<ky1 of the window, each between -inf margins: scratch row r at r * stride.
        let rowStride = padded / kh
        for ky in ky0..<ky1 { (scratch + ky * rowStride + pw).update(from: src + (y0 + ky) * w, count: w) }
        for chunk in 0..<chunks {
            let ox = chunk * 16
            @inline(__always) func load(_ ky: Int, _ kx: Int) -> SIMD16<Float> {
                let p = UnsafeRawPointer(scratch + ky * rowStride + ox * sw + kx)
                return sw == 1 ? p.loadUnaligned(as: SIMD16<Float>.self) : p.loadUnaligned(as: SIMD32<Float>.self).evenHalf
            }
            var best = SIMD16<Float>(repeating: -.infinity)
            let values: SIMD16<Float>, winners: SIMD16<Int32>
            if win != nil {
                // Start at each window's first in-bounds element (valid even if every value is -inf).
                var bi: SIMD16<Int32> = (chunk == 0 ? firstColumns : laneStep &+ Int32(ox * sw - pw)) &+ Int32((y0 + ky0) * w)
                for ky in ky0..<ky1 { for kx in 0..<kw {
                    let v = load(ky, kx)
                    let better = (v .> best) .| (v .!= v)
                    best.replace(with: v, where: better)
                    let offset = Int32((y0 + ky) * w + ox * sw + kx - pw)
                    let index: SIMD16<Int32> = laneStep &+ offset
                    bi.replace(with: index, where: better)
                } }
                values = best; winners = bi
            } else {
                for ky in ky0..<ky1 { for kx in 0..<kw {
                    let v = load(ky, kx)
                    best.replace(with: v, where: (v .> best) .| (v .!= v))
                } }
                values = best; winners = SIMD16<Int32>()
            }
            let n = Swift.min(16, ow - ox)
            if n == 16 {
                UnsafeMutableRawPointer(dst + oy * ow + ox).storeBytes(of: values, as: SIMD16<Float>.self)
                if let win { UnsafeMutableRawPointer(win + oy * ow + ox).storeBytes(of: winners, as: SIMD16<Int32>.self) }
            } else {
                tailValues = values; tailWinners = winners
                withUnsafeBytes(of: &tailValues) { (dst + oy * ow + ox).update(from: $0.bindMemory(to: Float.self).baseAddress!, count: n) }
                if let win {
                    withUnsafeBytes(of: &tailWinners) { (win + oy * ow + ox).update(from: $0.bindMemory(to: Int32.self).baseAddress!, count: n) }
                }
            }
        }
    }
}

/// Floats of scratch `maxPoolPlane` needs: `kernel.height` rows of the input between margins,
/// long enough for the last chunk's 32-wide loads.
func maxPoolScratchCount(_ g: PoolGeometry) -> Int {
    let row = ((g.ow + 15) / 16 * 16) * g.stride.width + g.kernel.width + 32
    return Swift.max(row, g.w + 2 * g.padding.width + 32) * g.kernel.height
}

final class PointerBox<T> {
    let pointer: UnsafeMutablePointer<T>
    init(_ pointer: UnsafeMutablePointer<T>) { self.pointer = pointer }
    deinit { pointer.deallocate() }
}
