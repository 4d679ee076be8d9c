// Threading: the worker count, the parallel-for the kernels split their work with, and
// the per-thread flag that marks a worker.
import CBLAS
import CKernels
import Dispatch
import Foundation

/// How many worker threads the kernels use (the benchmark machine has 2 cores).
public enum Threading {
    /// Worker count for `parallelChunks`; also the OpenBLAS thread count outside parallel regions.
    /// Process-wide configuration, like OpenBLAS's own thread count: only changed between
    /// parallel regions (tests that compare worker counts do), read when a region starts.
    nonisolated(unsafe) public static var workerCount: Int = max(1, min(ProcessInfo.processInfo.activeProcessorCount, 8))

    /// The first of this process's CPUs its workers are pinned to: worker `w` runs on the
    /// `firstCPU + w`-th CPU the process may use. Processes sharing a machine (the ranks of an
    /// MPI job) each take their own slice of the cores with it (see `shareCores`).
    nonisolated(unsafe) public static var firstCPU: Int = 0

    /// Gives this process its share of the machine when `processes` processes run on it and
    /// this one is number `index` among them: `cores / processes` workers (at least one), pinned
    /// to their own slice of the CPUs, so ranks × threads ≤ cores. `threads` replaces the share.
    public static func shareCores(index: Int, processes: Int, threads: Int? = nil) {
        let share = max(1, onlineCPUs / max(1, processes))
        workerCount = max(1, threads ?? share)
        firstCPU = (index * share) % max(1, onlineCPUs)
    }

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
        let first = firstCPU
        let pin = pinWorkers && first + count <= onlineCPUs
        DispatchQueue.concurrentPerform(iterations: count) { w in
            let wasWorker = workerFlag.isSet
            workerFlag.isSet = true
            defer { workerFlag.isSet = wasWorker }
            let mask = UnsafeMutablePointer<UInt8>.allocate(capacity: affinityBytes)
            defer { mask.deallocate() }
            let pinned = pin && astro_thread_pin(Int32(first + w), mask) == 0
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

    /// `(0..<count).map(transform)` with the items split over the workers as in
    /// `parallelChunks`; the results keep their order.
    public static func parallelMap<T>(_ count: Int, costPerItem: Int = 1, _ transform: (Int) -> T) -> [T] {
        var results = [T?](repeating: nil, count: count)
        results.withUnsafeMutableBufferPointer { out in
            parallelChunks(count, costPerItem: costPerItem) { _, range in
                for i in range { out[i] = transform(i) }
            }
        }
        return results.map { $0! }
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

/// OpenBLAS's kernels in this process: the core it runs, and, when `blas_core.c` replaced the
/// pre-AVX fallback OpenBLAS 0.3.21 takes for a CPU it does not know (before main), what it did.
public enum BLASKernels {
    /// OpenBLAS's core name (`openblas_get_corename`), e.g. `SkylakeX`, `Haswell`.
    public static var core: String { String(cString: openblas_get_corename()) }
    /// The sentence saying which core OpenBLAS chose and which one runs instead; nil when its choice stands.
    public static var note: String? {
        let text = String(cString: astro_blas_core_note())
        return text.isEmpty ? nil : text
    }
}
