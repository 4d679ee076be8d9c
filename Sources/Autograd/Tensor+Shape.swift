// Shape manipulation: reshape, permute/transpose, slicing, concatenate/stack, pad.

extension Tensor {
    /// Same elements, new shape (one entry may be -1); shares storage with `self`.
    public func reshaped(to newShape: [Int]) -> Tensor {
        var s = newShape
        if let i = s.firstIndex(of: -1) {
            let known = s.enumerated().filter { $0.offset != i }.map(\.element).reduce(1, *)
            precondition(known > 0 && count % known == 0, "reshaped: cannot reshape \(shape) to \(newShape)")
            s[i] = count / known
        }
        precondition(s.reduce(1, *) == count, "reshaped: cannot reshape \(shape) (\(count) elements) to \(newShape)")
        if s == shape && node == nil && !requiresGrad { return self }
        let out = Tensor(shape: s, storage: storage)
        let inShape = shape
        return Tensor.record("reshape", [self], out) { g in [g.reshaped(to: inShape)] }
    }

    /// `[N, ...]` to `[N, rest]` (or from another start axis).
    public func flattened(startAxis: Int = 1) -> Tensor {
        let a = axis(startAxis, op: "flattened")
        return reshaped(to: Array(shape[..<a]) + [shape[a...].reduce(1, *)])
    }

    /// Inserts a size-1 axis at `axis`.
    public func unsqueezed(axis a: Int) -> Tensor {
        var s = shape
        s.insert(1, at: a < 0 ? a + rank + 1 : a)
        return reshaped(to: s)
    }

    /// Removes size-1 axes (all, or just `axis`).
    public func squeezed(axis a: Int? = nil) -> Tensor {
        if let a {
            let ax = axis(a, op: "squeezed")
            precondition(shape[ax] == 1, "squeezed: axis \(a) of \(shape) is not 1")
            var s = shape; s.remove(at: ax)
            return reshaped(to: s)
        }
        return reshaped(to: shape.filter { $0 != 1 })
    }

    /// Axes reordered: output axis i is input axis `permutation[i]`. Copies.
    public func permuted(_ permutation: [Int]) -> Tensor {
        precondition(permutation.sorted() == Array(0..<rank),
                     "permuted: \(permutation) is not a permutation of the axes of \(shape)")
        let out = Tensor(uninitializedShape: permutation.map { shape[$0] })
        var inStrides = [Int](repeating: 1, count: rank)
        for i in stride(from: rank - 2, through: 0, by: -1) { inStrides[i] = inStrides[i + 1] * shape[i + 1] }
        stridedCopy(from: storage.pointer, strides: permutation.map { inStrides[$0] },
                    to: out.storage.pointer, shape: out.shape)
        var inverse = permutation
        for (i, p) in permutation.enumerated() { inverse[p] = i }
        return Tensor.record("permute", [self], out) { g in [g.permuted(inverse)] }
    }

    /// Swaps two axes (the last two by default: a matrix transpose). Copies.
    public func transposed(_ a: Int = -2, _ b: Int = -1) -> Tensor {
        var p = Array(0..<rank)
        p.swapAt(axis(a, op: "transposed"), axis(b, op: "transposed"))
        return permuted(p)
    }

    /// The elements `range` along `axis`. Copies.
    public func sliced(axis a: Int, _ range: Range<Int>) -> Tensor {
        let ax = axis(a, op: "sliced")
        precondition(range.lowerBound >= 0 && range.upperBound <= shape[ax],
                     "sliced: range \(range) out of bounds for axis \(ax) of \(shape)")
        let (outer, n, inner) = split(around: ax)
        var s = shape; s[ax] = range.count
        let out = Tensor(uninitializedShape: s)
        let x = storage.pointer, o = out.storage.pointer, m = range.count * inner
        for i in 0..<outer { (o + i * m).update(from: x + (i * n + range.lowerBound) * inner, count: m) }
        return Tensor.record("slice", [self], out) { g in
            [g.padded(axis: ax, before: range.lowerBound, after: n - range.upperBound)]
        }
    }

    /// The entries `indices` along `axis`, in that order (PyTorch's `index_select`): column
    /// permutations and the split of a coupling layer's features. Indices may repeat; the
    /// gradient adds back into each selected entry. Copies.
    public func indexSelected(axis a: Int, _ indices: [Int]) -> Tensor {
        let ax = axis(a, op: "indexSelected")
        let (outer, n, inner) = split(around: ax)
        precondition(indices.allSatisfy { $0 >= 0 && $0 < n },
                     "indexSelected: indices \(indices) out of range for axis \(ax) of \(shape)")
        var s = shape; s[ax] = indices.count
        let out = Tensor(uninitializedShape: s)
        let x = storage.pointer, o = out.storage.pointer, m = indices.count
        for i in 0..<outer { for (j, k) in indices.enumerated() {
            (o + (i * m + j) * inner).update(from: x + (i * n + k) * inner, count: inner)
        } }
        let inShape = shape
        return Tensor.record("indexSelect", [self], out) { g in
            let dx = Tensor.zeros(inShape)
            let d = dx.storage.pointer, gp = g.storage.pointer
            for i in 0..<outer { for (j, k) in indices.enumerated() {
                let src = gp + (i * m + j) * inner, dst = d + (i * n + k) * inner
                for e in 0..<inner { dst[e] += src[e] }
            } }
            return [dx]
        }
    }

    /// Element `index` along axis 0, with that axis removed (`x[i]`).
    public subscript(index: Int) -> Tensor {
        sliced(axis: 0, index..<(index + 1)).squeezed(axis: 0)
    }

    /// One of the 8 symmetries of a square image (the dihedral group D4) applied to the last
    /// two axes of `[..., H, H]`: bit 2 of `view` transposes H and W, bit 0 then mirrors W and
    /// bit 1 mirrors H. Views 0, 3, 5 and 6 are the rotations by 0°, 180°, 90° and 270°.
    /// Copies; the gradient is the inverse view's.
    public func dihedralView(_ view: Int) -> Tensor {
        precondition((0..<8).contains(view) && rank >= 2 && shape[rank - 1] == shape[rank - 2],
                     "dihedralView: view \(view) must be in 0..<8 and \(shape) end in a square")
        var x = view & 4 != 0 ? transposed(-2, -1) : self
        let reversed = Array((0..<shape[rank - 1]).reversed())
        if view & 1 != 0 { x = x.indexSelected(axis: rank - 1, reversed) }
        if view & 2 != 0 { x = x.indexSelected(axis: rank - 2, reversed) }
        return x
    }

    /// Elements `range` along axis 0 (`x[a..<b]`).
    public subscript(range: Range<Int>) -> Tensor { sliced(axis: 0, range) }

    /// Constant padding of one axis.
    public func padded(axis a: Int, before: Int, after: Int, value: Float = 0) -> Tensor {
        let ax = axis(a, op: "padded")
        precondition(before >= 0 && after >= 0, "padded: negative padding \(before), \(after)")
        let (outer, n, inner) = split(around: ax)
        var s = shape; s[ax] = n + before + after
        let out = Tensor(repeating: value, shape: s)
        let x = storage.pointer, o = out.storage.pointer, m = s[ax] * inner
        for i in 0..<outer { (o + i * m + before * inner).update(from: x + i * n * inner, count: n * inner) }
        return Tensor.record("pad", [self], out) { g in [g.sliced(axis: ax, before..<(before + n))] }
    }

    /// Constant padding: `padding[i] = (before, after)` for axis i (missing trailing entries are 0).
    public func padded(_ padding: [(before: Int, after: Int)], value: Float = 0) -> Tensor {
        precondition(padding.count <= rank, "padded: \(padding.count) pad pairs for shape \(shape)")
        var result = self
        for (i, p) in padding.enumerated() where p.before != 0 || p.after != 0 {
            result = result.padded(axis: i, before: p.before, after: p.after, value: value)
        }
        return result
    }

    /// Joins tensors along `axis`; other dimensions must agree.
    public static func concatenate(_ tensors: [Tensor], axis a: Int) -> Tensor {
        precondition(!tensors.isEmpty, "concatenate: no tensors")
        let first = tensors[0]
        let ax = first.axis(a, op: "concatenate")
        for t in tensors {
            var s1 = t.shape, s0 = first.shape
            precondition(s1.count == s0.count, "concatenate: shapes \(tensors.map(\.shape)) differ in rank")
            s1[ax] = 0; s0[ax] = 0
            precondition(s1 == s0, "concatenate: shapes \(tensors.map(\.shape)) differ off axis \(ax)")
        }
        var s = first.shape
        s[ax] = tensors.map { $0.shape[ax] }.reduce(0, +)
        let out = Tensor(uninitializedShape: s)
        let (outer, _, inner) = first.split(around: ax)
        let total = s[ax] * inner
        var offset = 0
        var ranges: [Range<Int>] = []
        for t in tensors {
            let m = t.shape[ax] * inner, x = t.storage.pointer, o = out.storage.pointer
            for i in 0..<outer { (o + i * total + offset).update(from: x + i * m, count: m) }
            ranges.append((offset / inner)..<(offset / inner + t.shape[ax]))
            offset += m
        }
        // Which parts need a gradient, not the parts themselves: the closure must not keep
        // their values alive (U-Net: the up-convolution's output, needed by no backward formula).
        let needed = tensors.map(\.tracksGradient)
        return record("concatenate", tensors, out) { g in
            zip(needed, ranges).map { need, r in need ? g.sliced(axis: ax, r) : nil }
        }
    }

    /// Stacks same-shape tensors along a new axis.
    public static func stack(_ tensors: [Tensor], axis a: Int = 0) -> Tensor {
        precondition(!tensors.isEmpty, "stack: no tensors")
        precondition(tensors.allSatisfy { $0.shape == tensors[0].shape }, "stack: shapes \(tensors.map(\.shape)) differ")
        return concatenate(tensors.map { $0.unsqueezed(axis: a) }, axis: a)
    }
}

/// Copies an n-d strided source into a contiguous destination of `shape`; the last axis is
/// the inner loop.
func stridedCopy(from src: UnsafePointer<Float>, strides: [Int], to dst: UnsafeMutablePointer<Float>, shape: [Int]) {
    let rank = shape.count
    let total = shape.reduce(1, *)
    guard rank > 0 else { if total == 1 { dst[0] = src[0] }; return }
    guard total > 0 else { return }
    let inner = shape[rank - 1], si = strides[rank - 1]
    var index = [Int](repeating: 0, count: rank)
    var off = 0
    for row in 0..<(total / inner) {
        let d = dst + row * inner
        if si == 1 { d.update(from: src + off, count: inner) } else { for j in 0..<inner { d[j] = src[off + j * si] } }
        var k = rank - 2
        while k >= 0 {
            index[k] += 1; off += strides[k]
            if index[k] < shape[k] { break }
            off -= strides[k] * shape[k]; index[k] = 0; k -= 1
        }
    }
}
