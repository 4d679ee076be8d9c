// Softmax and log-softmax along an axis.
import Foundation

// Fused rather than composed (exp / sum): the max is subtracted for stability, and the
// backward is one pass instead of a chain of broadcasts.

extension Tensor {
    /// `exp(x_i - max) / sum_j exp(x_j - max)` along `axis` (default: the last).
    public func softmax(axis a: Int = -1) -> Tensor {
        let ax = axis(a, op: "softmax")
        let (outer, n, inner) = split(around: ax)
        let out = Tensor(uninitializedShape: shape)
        softmaxKernel(storage.pointer, out.storage.pointer, outer: outer, n: n, inner: inner, log: false)
        let y = out.detached()
        return Tensor.record("softmax", [self], out) { g in
            // dx = y * (g - sum(g * y))
            let dx = Tensor(uninitializedShape: g.shape)
            let gp = g.storage.pointer, yp = y.storage.pointer, d = dx.storage.pointer
            for o in 0..<outer { for i in 0..<inner {
                let base = o * n * inner + i
                var s: Float = 0
                for k in 0..<n { s += gp[base + k * inner] * yp[base + k * inner] }
                for k in 0..<n { let j = base + k * inner; d[j] = yp[j] * (gp[j] - s) }
            } }
            return [dx]
        }
    }

    /// `x_i - max - log sum_j exp(x_j - max)` along `axis` (default: the last).
    public func logSoftmax(axis a: Int = -1) -> Tensor {
        let ax = axis(a, op: "logSoftmax")
        let (outer, n, inner) = split(around: ax)
        let out = Tensor(uninitializedShape: shape)
        softmaxKernel(storage.pointer, out.storage.pointer, outer: outer, n: n, inner: inner, log: true)
        let y = out.detached()
        return Tensor.record("logSoftmax", [self], out) { g in
            // dx = g - softmax * sum(g)
            let dx = Tensor(uninitializedShape: g.shape)
            let gp = g.storage.pointer, yp = y.storage.pointer, d = dx.storage.pointer
            for o in 0..<outer { for i in 0..<inner {
                let base = o * n * inner + i
                var s: Float = 0
                for k in 0..<n { s += gp[base + k * inner] }
                for k in 0..<n { let j = base + k * inner; d[j] = gp[j] - Foundation.exp(yp[j]) * s }
            } }
            return [dx]
        }
    }
}

/// Softmax or log-softmax of `[outer, n, inner]` along n. Where `inner ≥ 8` (a softmax over
/// the channels of an image), eight positions at a time with `vectorExp`; each exponential
/// is computed once.
func softmaxKernel(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                   outer: Int, n: Int, inner: Int, log: Bool) {
    guard n > 0 else { return }
    Threading.parallelChunks(outer, costPerItem: n * inner * 8) { _, r in
        for o in r {
            var i = 0
            while i + 8 <= inner {
                let base = o * n * inner + i
                var m = loadVector(x + base)
                for k in 1..<n {
                    let v = loadVector(x + base + k * inner)
                    m = m.replacing(with: v, where: v .> m)
                }
                var s = SIMD8<Float>()
                for k in 0..<n {
                    let e = vectorExp(loadVector(x + base + k * inner) - m)
                    s += e
                    if !log { storeVector(e, y + base + k * inner) }
                }
                if log {
                    var l = SIMD8<Float>()
                    for lane in 0..<8 { l[lane] = m[lane] + Foundation.log(s[lane]) }
                    for k in 0..<n { storeVector(loadVector(x + base + k * inner) - l, y + base + k * inner) }
                } else {
                    let inv = 1 / s
                    for k in 0..<n { storeVector(loadVector(y + base + k * inner) * inv, y + base + k * inner) }
                }
                i += 8
            }
            while i < inner {
                let base = o * n * inner + i
                var m = -Float.infinity
                for k in 0..<n { m = Swift.max(m, x[base + k * inner]) }
                var s: Float = 0
                if log {
                    for k in 0..<n { s += Foundation.exp(x[base + k * inner] - m) }
                    let l = m + Foundation.log(s)
                    for k in 0..<n { y[base + k * inner] = x[base + k * inner] - l }
                } else {
                    for k in 0..<n { let e = Foundation.exp(x[base + k * inner] - m); y[base + k * inner] = e; s += e }
                    let inv = 1 / s
                    for k in 0..<n { y[base + k * inner] *= inv }
                }
                i += 1
            }
        }
    }
}
