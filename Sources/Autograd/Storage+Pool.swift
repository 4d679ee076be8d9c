// Recycling of large tensor buffers.
import Foundation

#if os(Linux)
/// glibc's `mallopt` (declared in `<malloc.h>`, which the Glibc module does not export).
@_silgen_name("mallopt") private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
private let glibcMmapThreshold: Int32 = -3   // M_MMAP_THRESHOLD
#endif

/// Keeps freed tensor buffers of 1 MiB and more, by exact byte count, for the next
/// allocation of the same size.
///
/// A training step allocates the same activation and gradient sizes every step. Left to
/// glibc's malloc, those blocks move from `mmap` into its heaps once the dynamic mmap
/// threshold has grown past them (it grows on every free of a mapped block), and heap
/// fragmentation makes the resident set creep up step after step (the BENCH.md U-Net: 1.5 GB
/// after 4 steps, 2.6 GB after 13). Here the threshold is fixed at 1 MiB, so a large block
/// that is not recycled goes back to the system when freed, and recycled blocks cost no page
/// faults. At most `capacity` bytes are kept; blocks beyond that are freed.
final class BufferPool: @unchecked Sendable {
    static let shared = BufferPool()
    /// Smaller buffers go straight to malloc.
    static let minimumBytes = 1 << 20
    private let capacity = 256 << 20
    private var free: [Int: [UnsafeMutableRawPointer]] = [:]
    private var cachedBytes = 0
    private let lock = NSLock()

    private init() {
        #if os(Linux)
        _ = glibcMallopt(glibcMmapThreshold, Int32(BufferPool.minimumBytes))
        #endif
    }

    /// A 64-byte aligned block of `byteCount` bytes (a recycled one when there is one).
    func allocate(byteCount: Int) -> UnsafeMutableRawPointer {
        lock.lock()
        if let block = free[byteCount]?.popLast() {
            cachedBytes -= byteCount
            lock.unlock()
            return block
        }
        lock.unlock()
        return UnsafeMutableRawPointer.allocate(byteCount: byteCount, alignment: 64)
    }

    /// Takes back a block from `allocate(byteCount:)`.
    func release(_ block: UnsafeMutableRawPointer, byteCount: Int) {
        lock.lock()
        if cachedBytes + byteCount <= capacity {
            free[byteCount, default: []].append(block)
            cachedBytes += byteCount
            lock.unlock()
            return
        }
        lock.unlock()
        block.deallocate()
    }
}
