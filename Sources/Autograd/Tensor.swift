// The tensor type: shape, contiguous row-major Float32 storage, gradient and graph node.

/// An n-dimensional Float32 array with reverse-mode autograd.
///
/// **Semantics.** `Tensor` is a reference type (a final class): autograd needs identity,
/// because a node's gradient must reach the very tensor that produced it, and parameters
/// are updated in place by optimisers. Operations never mutate their inputs; they return
/// new tensors. Storage is always contiguous row-major (NCHW for images); `permuted`,
/// `sliced` and friends copy, while `reshaped` shares the storage of its input (so an
/// in-place update of one is seen by the other, as with PyTorch views). The only in-place
/// mutators are explicit: `withUnsafeMutableBufferPointer`, `assign(_:)`, the optimisers,
/// and batch norm's running statistics.
public final class Tensor {
    /// Dimensions, outermost first; `[]` is a scalar.
    public let shape: [Int]
    /// Number of elements (product of `shape`).
    public let count: Int
    /// The elements; `var` only so that the engine can test it for unique ownership.
    public internal(set) var storage: TensorStorage
    /// The accumulated gradient after `backward()`; same shape as `self`.
    public var grad: Tensor?
    /// Whether gradients are tracked for this tensor; set on parameters.
    public var requiresGrad: Bool
    /// The operation that produced this tensor, while the graph is alive.
    var node: Node?

    // MARK: - Creation

    init(shape: [Int], storage: TensorStorage) {
        let n = shape.reduce(1, *)
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor: negative dimension in shape \(shape)")
        precondition(storage.count >= n, "Tensor: storage of \(storage.count) floats too small for shape \(shape)")
        self.shape = shape
        self.count = n
        self.storage = storage
        self.requiresGrad = false
    }

    /// Uninitialised tensor; internal, kernels fill every element.
    convenience init(uninitializedShape shape: [Int]) {
        self.init(shape: shape, storage: TensorStorage(uninitializedCount: shape.reduce(1, *)))
    }

    /// A tensor from row-major `data`; `data.count` must equal the product of `shape`.
    public convenience init(shape: [Int], data: [Float], requiresGrad: Bool = false) {
        precondition(data.count == shape.reduce(1, *),
                     "Tensor(shape:data:): \(data.count) values for shape \(shape)")
        self.init(uninitializedShape: shape)
        data.withUnsafeBufferPointer { storage.pointer.update(from: $0.baseAddress!, count: data.count) }
        self.requiresGrad = requiresGrad
    }

    /// A 1-D tensor.
    public convenience init(_ data: [Float], requiresGrad: Bool = false) {
        self.init(shape: [data.count], data: data, requiresGrad: requiresGrad)
    }

    /// A scalar (shape `[]`).
    public convenience init(scalar: Float, requiresGrad: Bool = false) {
        self.init(shape: [], data: [scalar], requiresGrad: requiresGrad)
    }

    /// A tensor filled with `value`.
    public convenience init(repeating value: Float, shape: [Int], requiresGrad: Bool = false) {
        self.init(shape: shape, storage: TensorStorage(repeating: value, count: shape.reduce(1, *)))
        self.requiresGrad = requiresGrad
    }

    public static func zeros(_ shape: [Int], requiresGrad: Bool = false) -> Tensor {
        Tensor(repeating: 0, shape: shape, requiresGrad: requiresGrad)
    }

    public static func ones(_ shape: [Int], requiresGrad: Bool = false) -> Tensor {
        Tensor(repeating: 1, shape: shape, requiresGrad: requiresGrad)
    }

    /// The one-hot codes `[labels.count, classCount]` of `labels` (each in `0..<classCount`).
    public static func oneHot(_ labels: [Int], classCount: Int) -> Tensor {
        var values = [Float](repeating: 0, count: labels.count * classCount)
        for (i, label) in labels.enumerated() {
            precondition((0..<classCount).contains(label), "Tensor.oneHot: label \(label) outside 0..<\(classCount)")
            values[i * classCount + label] = 1
        }
        return Tensor(shape: [labels.count, classCount], data: values)
    }

    /// Normal samples with the given mean and standard deviation, reproducible from `seed`.
    public static func randomNormal(_ shape: [Int], mean: Float = 0, standardDeviation: Float = 1,
                                    seed: UInt64, requiresGrad: Bool = false) -> Tensor {
        var rng = SeededGenerator(seed: seed)
        return randomNormal(shape, mean: mean, standardDeviation: standardDeviation,
                            generator: &rng, requiresGrad: requiresGrad)
    }

    public static func randomNormal(_ shape: [Int], mean: Float = 0, standardDeviation: Float = 1,
                                    generator: inout SeededGenerator, requiresGrad: Bool = false) -> Tensor {
        let t = Tensor(uninitializedShape: shape)
        let p = t.storage.pointer
        for i in 0..<t.count { p[i] = mean + standardDeviation * generator.nextNormal() }
        t.requiresGrad = requiresGrad
        return t
    }

    /// Uniform samples in `[lower, upper)`, reproducible from `seed`.
    public static func randomUniform(_ shape: [Int], lower: Float = 0, upper: Float = 1,
                                     seed: UInt64, requiresGrad: Bool = false) -> Tensor {
        var rng = SeededGenerator(seed: seed)
        return randomUniform(shape, lower: lower, upper: upper, generator: &rng, requiresGrad: requiresGrad)
    }

    public static func randomUniform(_ shape: [Int], lower: Float = 0, upper: Float = 1,
                                     generator: inout SeededGenerator, requiresGrad: Bool = false) -> Tensor {
        let t = Tensor(uninitializedShape: shape)
        let p = t.storage.pointer
        for i in 0..<t.count { p[i] = lower + (upper - lower) * generator.nextUnit() }
        t.requiresGrad = requiresGrad
        return t
    }

    /// `[0, 1, ..., n-1]` as floats.
    public static func arange(_ n: Int) -> Tensor {
        Tensor(shape: [n], data: (0..<n).map(Float.init))
    }

    // MARK: - Access

    public var rank: Int { shape.count }

    /// The elements in row-major order.
    public var scalars: [Float] { Array(UnsafeBufferPointer(start: storage.pointer, count: count)) }

    /// The single value of a one-element tensor.
    public var item: Float {
        precondition(count == 1, "item: tensor of shape \(shape) has \(count) elements, not 1")
        return storage.pointer[0]
    }

    /// The element at a full multi-index.
    public subscript(element index: [Int]) -> Float {
        get { storage.pointer[flatIndex(index)] }
        set { storage.pointer[flatIndex(index)] = newValue }
    }

    func flatIndex(_ index: [Int]) -> Int {
        precondition(index.count == shape.count, "subscript: index \(index) for shape \(shape)")
        var flat = 0
        for (i, d) in zip(index, shape) {
            precondition(i >= 0 && i < d, "subscript: index \(index) out of range for shape \(shape)")
            flat = flat * d + i
        }
        return flat
    }

    /// Direct access to the elements (in-place; not recorded by autograd).
    /// Writing to a frozen tensor (see `freeze()`) drops its cached derived layouts.
    public func withUnsafeMutableBufferPointer<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        storage.contentsWillChange()
        return try body(UnsafeMutableBufferPointer(start: storage.pointer, count: count))
    }

    /// Overwrites the elements with those of `other` (same element count); not recorded.
    public func assign(_ other: Tensor) {
        precondition(other.count == count, "assign: shape \(other.shape) into \(shape)")
        storage.contentsWillChange()
        storage.pointer.update(from: other.storage.pointer, count: count)
    }

    /// The same values (shared storage, like PyTorch's `detach`) with no graph history and `requiresGrad == false`.
    public func detached() -> Tensor {
        Tensor(shape: shape, storage: storage)
    }

    /// A deep copy of the values (new storage), no graph history.
    public func copy() -> Tensor {
        let t = Tensor(uninitializedShape: shape)
        t.storage.pointer.update(from: storage.pointer, count: count)
        return t
    }

    /// Sets `grad` to nil.
    public func zeroGrad() { grad = nil }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let values = count <= 16 ? "\(scalars)" : "\(Array(scalars.prefix(8))) ..."
        return "Tensor(shape: \(shape), \(values)\(requiresGrad ? ", requiresGrad" : ""))"
    }
}
