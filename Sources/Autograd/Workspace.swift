// Workspace: per-worker scratch buffers of the kernels.
import Foundation

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

    /// Bytes held by all buffers (for `TensorMemory`; read without synchronisation).
    var totalBytes: Int { (0..<32).reduce(0) { $0 + sizes[$1] * 4 } }

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
