// Recycling of large tensor buffers.
import Foundation

#if os(Linux)
/// glibc's `mallopt` (declared in `<malloc.h>`, which the Glibc module does not export).
@_silgen_name("mallopt") private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
private let glibcMmapThreshold: Int32 = -3   // M_MMAP_THRESHOLD
#endif

/// Keeps freed tensor buffers of 1 MiB and more, by size class, for the next allocation of
/// that class.
///
/// A size class spans an eighth of a doubling (`sizeClass`): blocks are allocated at the
/// class's upper bound, so batches whose shapes differ a little (sequences bucketed by
/// length) reuse each other's blocks. The rounded-up tail is at most 1/8 of a block and,
/// being `mmap`ped, costs no resident memory until touched.
///
/// A training step allocates the same activation and gradient sizes every step. Left to
/// glibc's malloc, those blocks move from `mmap` into its heaps once the dynamic mmap
/// threshold has grown past them (it grows on every free of a mapped block), and heap
/// fragmentation makes the resident set creep up step after step (the BENCH.md U-Net: 1.5 GB
/// after 4 steps, 2.6 GB after 13). Here the threshold is fixed at 1 MiB, so a large block
/// that is not recycled goes back to the system when freed, and recycled blocks cost no page
/// faults. At most `capacity` bytes are kept; blocks beyond that are freed.
///
/// The cache adds little to the footprint's high-water mark: live and cached bytes together
/// stay within the larger of `capacity` and `slack` above the most bytes ever live at once
/// (`highWater`). When a new block would break that, cached blocks are freed first (the
/// smallest that makes room, else the largest), so a large network's peak is its live
/// tensors' peak plus at most `slack`, not plus every block cached for sizes the step is not
/// using at that moment (the BENCH.md U-Net's peak RSS in training: 784 MB with a plain
/// 256 MiB cache, 714 MB so, for about 10 % more time per step in page faults); networks
/// whose live set is small keep the whole cache.
final class BufferPool: @unchecked Sendable {
    static let shared = BufferPool()
    /// Smaller buffers go straight to malloc.
    static let minimumBytes = 1 << 20
    private let capacity: Int
    private var free: [Int: [UnsafeMutableRawPointer]] = [:]
    private var cachedBytes = 0
    /// Bytes of blocks handed out and not yet taken back, and their high-water mark.
    private var liveBytes = 0, peakLiveBytes = 0
    /// The most bytes ever live at once (not reset by `resetPeak`).
    private var highWater = 0
    /// How far live + cached may exceed `highWater`: with none, the sizes a step cycles
    /// through are freed and re-mapped every step (the U-Net: 650 MB peak, many more faults).
    private let slack: Int
    private let lock = NSLock()

    /// `shared` keeps 256 MiB at most with 64 MiB of slack; tests make their own.
    init(capacity: Int = 256 << 20, slack: Int = 64 << 20) {
        self.capacity = capacity
        self.slack = slack
        #if os(Linux)
        _ = glibcMallopt(glibcMmapThreshold, Int32(BufferPool.minimumBytes))
        #endif
    }

    /// The byte count blocks of `byteCount` are allocated with: `byteCount` rounded up to a
    /// multiple of 1/8 of its leading power of two.
    static func sizeClass(_ byteCount: Int) -> Int {
        let leading = Int.bitWidth - 1 - byteCount.leadingZeroBitCount
        let step = 1 << Swift.max(leading - 3, 0)
        return (byteCount + step - 1) / step * step
    }

    /// A 64-byte aligned block of at least `byteCount` bytes (a recycled one of its size class
    /// when there is one).
    func allocate(byteCount requested: Int) -> UnsafeMutableRawPointer {
        let byteCount = Self.sizeClass(requested)
        lock.lock()
        liveBytes += byteCount
        peakLiveBytes = Swift.max(peakLiveBytes, liveBytes)
        if let block = free[byteCount]?.popLast() {
            cachedBytes -= byteCount
            lock.unlock()
            return block
        }
        highWater = Swift.max(highWater, liveBytes)
        var evicted: [UnsafeMutableRawPointer] = []
        let allowed = Swift.max(highWater + slack, capacity)
        while liveBytes + cachedBytes > allowed, let (size, block) = popCached(covering: liveBytes + cachedBytes - allowed) {
            cachedBytes -= size
            evicted.append(block)
        }
        lock.unlock()
        for block in evicted { block.deallocate() }
        return UnsafeMutableRawPointer.allocate(byteCount: byteCount, alignment: 64)
    }

    /// Removes a cached block: the smallest one of at least `excess` bytes, else one of the
    /// largest size class (caller holds the lock).
    private func popCached(covering excess: Int) -> (Int, UnsafeMutableRawPointer)? {
        let sizes = free.compactMap { $0.value.isEmpty ? nil : $0.key }
        guard let size = sizes.filter({ $0 >= excess }).min() ?? sizes.max(),
              let block = free[size]?.popLast() else { return nil }
        return (size, block)
    }

    /// Takes back a block from `allocate(byteCount:)` (with the byte count it was asked for).
    func release(_ block: UnsafeMutableRawPointer, byteCount requested: Int) {
        let byteCount = Self.sizeClass(requested)
        lock.lock()
        liveBytes -= byteCount
        if cachedBytes + byteCount <= capacity {
            free[byteCount, default: []].append(block)
            cachedBytes += byteCount
            lock.unlock()
            return
        }
        lock.unlock()
        block.deallocate()
    }

    /// Live, peak and cached bytes (see `TensorMemory`).
    var counts: (live: Int, peak: Int, cached: Int) {
        lock.lock(); defer { lock.unlock() }
        return (liveBytes, peakLiveBytes, cachedBytes)
    }

    func resetPeak() {
        lock.lock(); defer { lock.unlock() }
        peakLiveBytes = liveBytes
    }
}

/// Where the memory of large tensors goes, for memory profiles (`astrolabe bench --model M`
/// with `ASTROLABE_MEMORY_PROFILE=1` prints it per phase of a training step). Counts the
/// buffers of 1 MiB and more (`BufferPool`: activations, gradients, optimiser state of large
/// layers) and the kernels' scratch buffers; smaller tensors go straight to malloc and are
/// not counted.
public struct TensorMemory: CustomStringConvertible {
    /// Bytes in live tensors now.
    public let liveBytes: Int
    /// The most `liveBytes` has been since the process started or the last `resetPeak()`.
    public let peakLiveBytes: Int
    /// Freed buffers the pool keeps for reuse (resident, not in any tensor).
    public let cachedBytes: Int
    /// Per-worker scratch of the convolution kernels: oneDNN's blocked copies of arguments,
    /// its scratchpads, im2col columns (grown to the largest layer, kept).
    public let scratchBytes: Int

    /// The counts now.
    public static var current: TensorMemory {
        let (live, peak, cached) = BufferPool.shared.counts
        return TensorMemory(liveBytes: live, peakLiveBytes: peak, cachedBytes: cached,
                            scratchBytes: DNNLScratch.totalBytes + Workspace.shared.totalBytes)
    }

    /// Starts a new high-water mark at the bytes live now.
    public static func resetPeak() { BufferPool.shared.resetPeak() }

    public var description: String {
        func mb(_ b: Int) -> String { String(Int((Double(b) / 1_048_576).rounded())) }
        return "live \(mb(liveBytes)) MiB (peak \(mb(peakLiveBytes))), pool cache \(mb(cachedBytes)), scratch \(mb(scratchBytes))"
    }
}
