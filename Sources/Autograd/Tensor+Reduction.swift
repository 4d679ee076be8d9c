// Reductions over axes: sum, mean, max, min, argmax, variance.

extension Tensor {
    /// Normalises a possibly negative axis, naming the op on failure.
    func axis(_ a: Int, op: String) -> Int {
        let r = a < 0 ? a + rank : a
        precondition(r >= 0 && r < rank, "\(op): axis \(a) out of range for shape \(shape)")
        return r
    }

    /// `(outer, n, inner)` so that `self` reads as `[outer, n, inner]` around `axis`.
    func split(around axis: Int) -> (Int, Int, Int) {
        (shape[..<axis].reduce(1, *), shape[axis], shape[(axis + 1)...].reduce(1, *))
    }

    func shapeReduced(_ axis: Int, keepDims: Bool) -> [Int] {
        var s = shape
        if keepDims { s[axis] = 1 } else { s.remove(at: axis) }
        return s
    }

    /// Sum over one axis without recording (used by `unbroadcast` and pullbacks).
    func summedKernel(axis: Int, keepDims: Bool = false) -> Tensor {
        let (outer, n, inner) = split(around: axis)
        let out = Tensor(repeating: 0, shape: shapeReduced(axis, keepDims: keepDims))
        let x = storage.pointer, o = out.storage.pointer
        Threading.parallelChunks(outer, costPerItem: n * inner) { _, r in
            for a in r {
                let dst = o + a * inner
                if inner == 1 {
                    var s: Float = 0
                    let src = x + a * n
                    for k in 0..<n { s += src[k] }
                    dst[0] = s
                } else {
                    for k in 0..<n {
                        let src = x + (a * n + k) * inner
                        for i in 0..<inner { dst[i] += src[i] }
                    }
                }
            }
        }
        return out
    }

    /// Sum of all elements (shape `[]`), or over `axes` (negative counts from the end).
    public func sum(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        guard let axes else {
            var s: Double = 0
            let x = storage.pointer
            for i in 0..<count { s += Double(x[i]) }
            let out = Tensor(scalar: Float(s))
            let inShape = shape
            return Tensor.record("sum", [self], out) { g in [Tensor(repeating: g.item, shape: inShape)] }
        }
        let normalized = Set(axes.map { axis($0, op: "sum") }).sorted(by: >)
        var result = self
        for a in normalized { result = result.summedKernel(axis: a, keepDims: true) }
        let kept = result.shape
        var finalShape = shape
        for a in normalized { if keepDims { finalShape[a] = 1 } else { finalShape.remove(at: a) } }
        let out = result.reshaped(to: finalShape).detached()
        let inShape = shape
        return Tensor.record("sum", [self], out) { g in [g.reshaped(to: kept).broadcastKernel(to: inShape)] }
    }

    /// Mean of all elements, or over `axes`.
    public func mean(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        let n = axes.map { $0.map { shape[axis($0, op: "mean")] }.reduce(1, *) } ?? count
        return sum(axes: axes, keepDims: keepDims) * (1 / Float(n))
    }

    /// Population variance (divide by n), or the unbiased estimate (n - 1) when asked.
    public func variance(axes: [Int]? = nil, keepDims: Bool = false, unbiased: Bool = false) -> Tensor {
        let n = axes.map { $0.map { shape[axis($0, op: "variance")] }.reduce(1, *) } ?? count
        let centered = self - mean(axes: axes, keepDims: true)
        let s = centered.squared().sum(axes: axes, keepDims: keepDims)
        return s * (1 / Float(unbiased ? n - 1 : n))
    }

    /// Materialises `self` broadcast to `target`, without recording.
    func broadcastKernel(to target: [Int]) -> Tensor {
        if shape == target { return self }
        return broadcastBinaryKernel(self, Tensor(repeating: 0, shape: target), op: "broadcast") { a, _ in a }
    }

    /// Running sum along `axis` (`out[..., k, ...] = sum_{j <= k} x[..., j, ...]`, PyTorch's
    /// `cumsum`): the knot positions of a spline from its bin widths. The gradient is the
    /// running sum of the output gradient taken from the other end.
    public func cumulativeSum(axis a: Int) -> Tensor {
        let ax = axis(a, op: "cumulativeSum")
        let (outer, n, inner) = split(around: ax)
        let out = cumulativeSumKernel(outer: outer, n: n, inner: inner, reverse: false)
        return Tensor.record("cumulativeSum", [self], out) { g in
            [g.cumulativeSumKernel(outer: outer, n: n, inner: inner, reverse: true)]
        }
    }

    /// Running sums of `[outer, n, inner]` along n, from the start or (`reverse`) from the end.
    private func cumulativeSumKernel(outer: Int, n: Int, inner: Int, reverse: Bool) -> Tensor {
        let out = Tensor(uninitializedShape: shape)
        let x = storage.pointer, o = out.storage.pointer
        for a in 0..<outer { for i in 0..<inner {
            var s: Float = 0
            for step in 0..<n {
                let k = reverse ? n - 1 - step : step
                let j = (a * n + k) * inner + i
                s += x[j]; o[j] = s
            }
        } }
        return out
    }

    // MARK: - Max, min, argmax

    /// Index of the extreme along one axis for each output position, plus the values.
    private func extremeKernel(axis: Int, greater: Bool) -> (values: Tensor, indices: [Int32]) {
        let (outer, n, inner) = split(around: axis)
        precondition(n > 0, "max/min: empty axis \(axis) in shape \(shape)")
        let values = Tensor(uninitializedShape: shapeReduced(axis, keepDims: false))
        var indices = [Int32](repeating: 0, count: outer * inner)
        let x = storage.pointer, v = values.storage.pointer
        indices.withUnsafeMutableBufferPointer { idx in
            for a in 0..<outer {
                for i in 0..<inner {
                    var best = x[a * n * inner + i], bi = 0
                    for k in 1..<Swift.max(n, 1) {
                        let e = x[(a * n + k) * inner + i]
                        // First occurrence wins ties, like PyTorch's argmax; NaN propagates.
                        if greater ? (e > best || e.isNaN) : (e < best || e.isNaN) { best = e; bi = k }
                    }
                    v[a * inner + i] = best
                    idx[a * inner + i] = Int32(bi)
                }
            }
        }
        return (values, indices)
    }

    private func extreme(axis a: Int, keepDims: Bool, greater: Bool, op: String) -> Tensor {
        let ax = axis(a, op: op)
        let (values, indices) = extremeKernel(axis: ax, greater: greater)
        let out = values.reshaped(to: shapeReduced(ax, keepDims: keepDims)).detached()
        let (outer, n, inner) = split(around: ax)
        let inShape = shape
        // Gradient goes to the selected element only.
        return Tensor.record(op, [self], out) { g in
            let dx = Tensor(repeating: 0, shape: inShape)
            let d = dx.storage.pointer, gp = g.storage.pointer
            for o in 0..<outer { for i in 0..<inner {
                d[(o * n + Int(indices[o * inner + i])) * inner + i] = gp[o * inner + i]
            } }
            return [dx]
        }
    }

    /// Maximum over `axes` (all elements when nil).
    public func max(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        reduceExtreme(axes: axes, keepDims: keepDims, greater: true, op: "max")
    }

    /// Minimum over `axes` (all elements when nil).
    public func min(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        reduceExtreme(axes: axes, keepDims: keepDims, greater: false, op: "min")
    }

    private func reduceExtreme(axes: [Int]?, keepDims: Bool, greater: Bool, op: String) -> Tensor {
        guard let axes else {
            let flat = reshaped(to: [count]).extreme(axis: 0, keepDims: false, greater: greater, op: op)
            return keepDims ? flat.reshaped(to: shape.map { _ in 1 }) : flat
        }
        // One axis at a time, highest first, so the remaining axis numbers stay valid.
        var result = self
        for a in Set(axes.map { axis($0, op: op) }).sorted(by: >) {
            result = result.extreme(axis: a, keepDims: keepDims, greater: greater, op: op)
        }
        return result
    }

    /// Index of the maximum along `axis` (as Float values, shape without that axis); no gradient.
    public func argmax(axis a: Int) -> Tensor {
        let ax = axis(a, op: "argmax")
        let (_, indices) = extremeKernel(axis: ax, greater: true)
        return Tensor(shape: shapeReduced(ax, keepDims: false), data: indices.map(Float.init))
    }

    /// Index of the maximum along `axis` as integers (e.g. predicted classes).
    public func argmaxIndices(axis a: Int) -> [Int] {
        extremeKernel(axis: axis(a, op: "argmax"), greater: true).indices.map(Int.init)
    }
}
