// TensorStorage: the aligned Float32 buffer behind every tensor.
import Foundation

/// A contiguous, 64-byte aligned Float32 buffer, freed when the last tensor using it goes.
///
/// Kernels read and write through `pointer` directly: no bounds checks, no ARC traffic
/// per element. Reshaped tensors share one storage (see `Tensor`'s semantics note).
public final class TensorStorage {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int
    /// Set by `Tensor.freeze()`: the contents never change again, so derived layouts may be cached.
    public internal(set) var isFrozen = false
    /// The arithmetic of inference convolutions with this storage as their weights (frozen only).
    public internal(set) var inferencePrecision = InferencePrecision.float32
    /// Cached derived layouts of frozen contents (see `derivedLayout`), freed with the storage.
    var derived: [Data: UnsafeMutableRawPointer] = [:]

    /// Uninitialised storage of `count` floats; callers fill every element.
    public init(uninitializedCount count: Int) {
        self.count = count
        let bytes = max(count, 1) * 4
        let raw = bytes >= BufferPool.minimumBytes ? BufferPool.shared.allocate(byteCount: bytes)
            : UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    public convenience init(repeating value: Float, count: Int) {
        self.init(uninitializedCount: count)
        pointer.initialize(repeating: value, count: count)
    }

    deinit {
        for p in derived.values { p.deallocate() }
        let bytes = max(count, 1) * 4
        if bytes >= BufferPool.minimumBytes {
            BufferPool.shared.release(UnsafeMutableRawPointer(pointer), byteCount: bytes)
        } else {
            UnsafeMutableRawPointer(pointer).deallocate()
        }
    }
}
