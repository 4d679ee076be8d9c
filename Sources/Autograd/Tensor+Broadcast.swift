// Broadcasting: the shape rule, the strided binary kernel and the one `unbroadcast` helper.

/// NumPy broadcasting of two shapes (aligned on the right; 1 stretches).
public func broadcastShape(_ a: [Int], _ b: [Int], op: String = "broadcast") -> [Int] {
    let n = max(a.count, b.count)
    var out = [Int](repeating: 1, count: n)
    for i in 0..<n {
        let da = i < n - a.count ? 1 : a[i - (n - a.count)]
        let db = i < n - b.count ? 1 : b[i - (n - b.count)]
        precondition(da == db || da == 1 || db == 1, "\(op): shapes \(a) and \(b) do not broadcast")
        out[i] = da == 1 ? db : da
    }
    return out
}

/// Row-major strides of `shape` aligned to an output of rank `rank`, with 0 where broadcast.
func broadcastStrides(_ shape: [Int], to out: [Int]) -> [Int] {
    var strides = [Int](repeating: 0, count: out.count)
    var s = 1
    let offset = out.count - shape.count
    for i in stride(from: shape.count - 1, through: 0, by: -1) {
        strides[i + offset] = shape[i] == 1 && out[i + offset] != 1 ? 0 : s
        s *= shape[i]
    }
    return strides
}

/// `out[i] = f(a[ia], b[ib])` over the broadcast shape. Same-shape and scalar cases run as
/// flat loops; otherwise the last axis is the inner loop with strides 0 or 1.
@inline(__always)
func broadcastBinaryKernel(_ a: Tensor, _ b: Tensor, op: String,
                           _ f: (Float, Float) -> Float) -> Tensor {
    if a.shape == b.shape {
        let out = Tensor(uninitializedShape: a.shape)
        let o = out.storage.pointer, x = a.storage.pointer, y = b.storage.pointer
        Threading.parallelChunks(out.count, costPerItem: 1) { _, r in
            for i in r { o[i] = f(x[i], y[i]) }
        }
        return out
    }
    let shape = broadcastShape(a.shape, b.shape, op: op)
    let out = Tensor(uninitializedShape: shape)
    let o = out.storage.pointer, x = a.storage.pointer, y = b.storage.pointer
    if b.count == 1 {
        let v = y[0]
        for i in 0..<out.count { o[i] = f(x[i], v) }
        return out
    }
    if a.count == 1 {
        let v = x[0]
        for i in 0..<out.count { o[i] = f(v, y[i]) }
        return out
    }
    let rank = shape.count
    let sa = broadcastStrides(a.shape, to: shape), sb = broadcastStrides(b.shape, to: shape)
    let inner = shape[rank - 1], ia = sa[rank - 1], ib = sb[rank - 1]
    let rows = out.count / max(inner, 1)
    var index = [Int](repeating: 0, count: rank)
    var offA = 0, offB = 0
    for row in 0..<rows {
        let base = row * inner
        if ia == 1 && ib == 1 {
            for j in 0..<inner { o[base + j] = f(x[offA + j], y[offB + j]) }
        } else if ia == 0 && ib == 1 {
            let v = x[offA]
            for j in 0..<inner { o[base + j] = f(v, y[offB + j]) }
        } else if ia == 1 && ib == 0 {
            let v = y[offB]
            for j in 0..<inner { o[base + j] = f(x[offA + j], v) }
        } else {
            for j in 0..<inner { o[base + j] = f(x[offA + j * ia], y[offB + j * ib]) }
        }
        // Advance the multi-index over the outer axes.
        var d = rank - 2
        while d >= 0 {
            index[d] += 1; offA += sa[d]; offB += sb[d]
            if index[d] < shape[d] { break }
            offA -= sa[d] * shape[d]; offB -= sb[d] * shape[d]
            index[d] = 0
            d -= 1
        }
    }
    return out
}

extension Tensor {
    /// Sums `self` (a gradient of a broadcast result) back down to `shape`: the adjoint of
    /// broadcasting, shared by every binary op.
    func unbroadcast(to target: [Int]) -> Tensor {
        if shape == target { return self }
        let offset = shape.count - target.count
        var result = self
        // Leading axes that broadcasting added: sum them away as one flat [outer, rest] sum.
        if offset > 0 {
            let outer = shape[0..<offset].reduce(1, *)
            result = result.reshaped(to: [outer] + Array(shape[offset...])).summedKernel(axis: 0)
        }
        for (i, d) in target.enumerated() where d == 1 && result.shape[i] != 1 {
            result = result.summedKernel(axis: i, keepDims: true)
        }
        return result.shape == target ? result : result.reshaped(to: target)
    }

    /// Materialises `self` broadcast to `shape` (a copy); gradient sums back.
    public func expanded(to target: [Int]) -> Tensor {
        if shape == target { return self }
        let zeros = Tensor(repeating: 0, shape: target)
        let out = broadcastBinaryKernel(self, zeros, op: "expanded") { a, _ in a }
        precondition(out.shape == target, "expanded: \(shape) does not broadcast to \(target)")
        let inShape = shape
        return Tensor.record("expanded", [self], out) { g in [g.unbroadcast(to: inShape)] }
    }
}
