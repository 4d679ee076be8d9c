// Storage, random numbers and the small parallel-for used by the kernels.
import CBLAS
import CKernels
import Dispatch
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

// MARK: - Random numbers

/// A seeded generator (SplitMix64 seeding xoshiro256**), reproducible across platforms.
public struct SeededGenerator: RandomNumberGenerator {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var z = seed
        func splitMix(_ z: inout UInt64) -> UInt64 {
            z &+= 0x9E37_79B9_7F4A_7C15
            var x = z
            x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
            x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
            return x ^ (x >> 31)
        }
        s = (splitMix(&z), splitMix(&z), splitMix(&z), splitMix(&z))
    }

    public mutating func next() -> UInt64 {
        let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0; s.3 ^= s.1; s.1 ^= s.2; s.0 ^= s.3
        s.2 ^= t
        s.3 = (s.3 << 45) | (s.3 >> 19)
        return result
    }

    /// Uniform in [0, 1) with 24 random bits.
    @inline(__always) public mutating func nextUnit() -> Float {
        Float(next() >> 40) * (1.0 / 16_777_216.0)
    }

    /// Standard normal by Box-Muller (one of the pair is discarded for simplicity).
    @inline(__always) public mutating func nextNormal() -> Float {
        let u1 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        let u2 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        return Float((-2 * Foundation.log(1 - u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2))
    }
}

// MARK: - Threads

/// How many worker threads the kernels use (the benchmark machine has 2 cores).
public enum Threading {
    /// Worker count for `parallelChunks`; also the OpenBLAS thread count outside parallel regions.
    nonisolated(unsafe) public static var workerCount: Int = max(1, min(ProcessInfo.processInfo.activeProcessorCount, 8))

    /// OpenBLAS is kept single-threaded; `gemm` and the kernels split work over our workers.
    static func singleThreadedBLAS() { _ = blasConfigured }
    private static let blasConfigured: Bool = { openblas_set_num_threads(1); return true }()

    private static let workerFlag = ThreadFlag()

    /// Whether this thread is running a worker's share of a parallel region (nested
    /// splitting would oversubscribe the cores).
    static var isWorkerThread: Bool { workerFlag.isSet }

    /// Runs `body(worker)` for `0..<count` concurrently, each marked as a worker thread and,
    /// unless turned off, pinned to its own CPU for the length of its share.
    static func forEachWorker(_ count: Int, _ body: (Int) -> Void) {
        let pin = pinWorkers && count <= onlineCPUs
        DispatchQueue.concurrentPerform(iterations: count) { w in
            let wasWorker = workerFlag.isSet
            workerFlag.isSet = true
            defer { workerFlag.isSet = wasWorker }
            let mask = UnsafeMutablePointer<UInt8>.allocate(capacity: affinityBytes)
            defer { mask.deallocate() }
            let pinned = pin && astro_thread_pin(Int32(w), mask) == 0
            body(w)
            if pinned { astro_thread_restore(mask) }
        }
    }

    /// Whether each worker of a parallel region is pinned to its own CPU while it runs its
    /// share (`ASTROLABE_PIN=0` turns it off). Measured: without it, the LSTM benchmark ran
    /// in one of two modes per process, ~78k or ~41k sequences/s, the slow one equal to
    /// running on a single CPU (`taskset -c 0`): the scheduler kept the woken worker on the
    /// caller's CPU, so the caller ran both halves. Pinned: 75-79k in every process.
    static let pinWorkers = ProcessInfo.processInfo.environment["ASTROLABE_PIN"] != "0"
    static let onlineCPUs = ProcessInfo.processInfo.activeProcessorCount
    static let affinityBytes = astro_affinity_bytes()

    /// Splits `0..<count` into at most `workerCount` contiguous chunks and runs them concurrently
    /// when `count * costPerItem` is large enough to pay for a thread hop; `body(chunk, range)`.
    /// OpenBLAS is single-threaded (see `gemm`), so the cores are not oversubscribed.
    public static func parallelChunks(_ count: Int, costPerItem: Int = 1,
                                      _ body: (_ worker: Int, _ range: Range<Int>) -> Void) {
        let workers = min(workerCount, count)
        if workers <= 1 || count * costPerItem < 32_768 {
            body(0, 0..<count)
            return
        }
        singleThreadedBLAS()
        forEachWorker(workers) { w in
            let lo = count * w / workers, hi = count * (w + 1) / workers
            if lo < hi { body(w, lo..<hi) }
        }
    }
}

/// A boolean per thread (a pthread key), false on every thread until set there.
struct ThreadFlag: @unchecked Sendable {
    private let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    var isSet: Bool {
        get { pthread_getspecific(key) != nil }
        nonmutating set { pthread_setspecific(key, newValue ? UnsafeRawPointer(bitPattern: 1) : nil) }
    }
}

/// Per-worker scratch buffers reused across calls (im2col columns), grown on demand.
/// Only touched from inside `parallelChunks`, one slot per worker, so no locking is needed.
final class Workspace {
    nonisolated(unsafe) static let shared = Workspace()
    // Raw tables, not Swift arrays: workers write different slots concurrently, which a
    // class-owned array would flag as an exclusivity violation.
    private let buffers = UnsafeMutablePointer<UnsafeMutablePointer<Float>?>.allocate(capacity: 32)
    private let sizes = UnsafeMutablePointer<Int>.allocate(capacity: 32)

    private init() {
        buffers.initialize(repeating: nil, count: 32)
        sizes.initialize(repeating: 0, count: 32)
    }

    /// A buffer of at least `count` floats for `worker` (< 16) and `slot` (0 or 1); contents undefined.
    func buffer(worker: Int, slot: Int = 0, count: Int) -> UnsafeMutablePointer<Float> {
        let i = worker * 2 + slot
        if sizes[i] < count {
            if let old = buffers[i] { UnsafeMutableRawPointer(old).deallocate() }
            let raw = UnsafeMutableRawPointer.allocate(byteCount: count * 4, alignment: 64)
            buffers[i] = raw.bindMemory(to: Float.self, capacity: count)
            sizes[i] = count
        }
        return buffers[i]!
    }
}
