// Data-parallel training: the same model in every process of a job, each process on its
// own part of every batch; gradients summed across processes in fused buckets that start
// during the backward pass, so every process applies the same update. The transport
// (MPI in the tool) comes in through `TrainingCollectives`; the model code knows nothing of it.
import AstroBase
import Autograd
import Foundation
import NN

/// A reduction in flight.
public protocol PendingReduction: AnyObject {
    /// Lets the transport progress it; true once it completed.
    func test() throws -> Bool
    /// Blocks until it completed.
    func wait() throws
    /// When it was started and when it was seen complete (uptime, ns; nil while in flight).
    var startedAt: UInt64 { get }
    var completedAt: UInt64? { get }
}

/// The collective operations data-parallel training needs; every process calls them in
/// the same order. `Cluster.Communicator` provides them over MPI.
public protocol TrainingCollectives: AnyObject {
    var rank: Int { get }
    var size: Int { get }
    /// Starts summing `buffer` over all processes, in place; the buffer must stay untouched until done.
    func startSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws -> PendingReduction
    /// Sums over all processes.
    func sum(_ values: [Double]) throws -> [Double]
    /// Every process's bytes, in rank order.
    func allGather(_ bytes: [UInt8]) throws -> [[UInt8]]
    /// `root`'s bytes into every process's `buffer` (the same size everywhere).
    func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws
}

/// This process's part of a data-parallel job, for `fit`.
public struct DataParallel {
    public var collectives: TrainingCollectives
    /// Gradients are summed in buckets of about this many bytes; a bucket starts as soon as
    /// all its gradients are ready, in bucket order. The default, 4 MiB (PyTorch DDP uses
    /// 25 MB), comes from the ring all-reduce cost model in docs/distributed.md.
    public var bucketBytes: Int

    /// Batch norm normalises with the statistics of the global batch (all processes' images,
    /// PyTorch's `SyncBatchNorm`) instead of each process's own: two all-reduces of `2 C`
    /// doubles per batch-norm layer in the forward pass and one in the backward pass.
    public var synchronisedBatchNorm: Bool

    public static let defaultBucketBytes = 4 << 20

    public init(collectives: TrainingCollectives, bucketBytes: Int = DataParallel.defaultBucketBytes,
                synchronisedBatchNorm: Bool = false) {
        self.collectives = collectives
        self.bucketBytes = Swift.max(4, bucketBytes)
        self.synchronisedBatchNorm = synchronisedBatchNorm
    }

    public var rank: Int { collectives.rank }
    public var size: Int { collectives.size }
    public var shard: Shard { Shard(index: collectives.rank, count: collectives.size) }
}

/// Synchronised batch norm's sums over the processes (`TrainingCollectives.sum`). Batch
/// norm cannot throw from inside the forward or backward pass: the first failure is kept
/// (the values stay this process's own) and `fit` throws it after the step.
final class SynchronisedBatchStatistics: BatchStatisticsReducer {
    let collectives: TrainingCollectives
    var share: Double = 1
    private(set) var failure: Error?

    init(collectives: TrainingCollectives) { self.collectives = collectives }

    func sum(_ values: inout [Double]) {
        guard failure == nil else { return }
        do { values = try collectives.sum(values) } catch { failure = error }
    }

    /// Throws the first failure of the step, if any.
    func check() throws {
        if let failure { self.failure = nil; throw failure }
    }
}

/// Sums the trainable parameters' gradients over the processes of a job in fused buckets.
/// Buckets hold the parameters in reverse order (the order backward produces their
/// gradients); each starts (`startSum`) once all its gradients are ready, and buckets start
/// in index order on every process, as MPI requires. Each process scales its gradients by
/// its share of the global batch before the sum, so the result is the gradient of the mean
/// loss over the global batch, whatever the split.
final class GradientBuckets {
    private let collectives: TrainingCollectives
    private let parameters: [Tensor]
    /// For each bucket, its parameters' indices and offsets; one extra float at the end of
    /// the last bucket carries the processes' stop requests (Ctrl-C) with the gradients.
    private var buckets: [(members: [Int], offsets: [Int], buffer: UnsafeMutableBufferPointer<Float>)] = []
    private var bucketOf: [ObjectIdentifier: (bucket: Int, slot: Int)] = [:]
    private var readyCount: [Int] = []
    private var isReady: [Bool] = []
    private var pending: [PendingReduction?] = []
    private var nextToStart = 0
    private var scale: Float = 1
    private var finishing = false
    /// Seconds spent waiting for reductions after backward ended (the part not overlapped), last step.
    private(set) var lastWaitSeconds = 0.0
    /// Seconds from the first bucket's start to the last one's completion, last step.
    private(set) var lastReduceSeconds = 0.0
    /// Seconds of the last step's backward pass (from `begin` to `finish`).
    private(set) var lastBackwardSeconds = 0.0
    private var beganAt: UInt64 = 0

    init(parameters: [Tensor], collectives: TrainingCollectives, bucketBytes: Int) {
        self.collectives = collectives
        self.parameters = parameters
        let capacity = Swift.max(1, bucketBytes / MemoryLayout<Float>.stride)
        var current: [Int] = [], size = 0
        var groups: [[Int]] = []
        for i in parameters.indices.reversed() {
            if !current.isEmpty && size + parameters[i].count > capacity {
                groups.append(current); current = []; size = 0
            }
            current.append(i); size += parameters[i].count
        }
        if !current.isEmpty || groups.isEmpty { groups.append(current) }
        for (b, members) in groups.enumerated() {
            var offsets: [Int] = [], total = 0
            for (slot, i) in members.enumerated() {
                offsets.append(total); total += parameters[i].count
                bucketOf[ObjectIdentifier(parameters[i])] = (b, slot)
            }
            if b == groups.count - 1 { total += 1 }
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: total)
            buffer.initialize(repeating: 0)
            buckets.append((members, offsets, buffer))
        }
        readyCount = Array(repeating: 0, count: buckets.count)
        isReady = Array(repeating: false, count: parameters.count)
        pending = Array(repeating: nil, count: buckets.count)
    }

    deinit { for bucket in buckets { bucket.buffer.deallocate() } }

    var bucketCount: Int { buckets.count }
    var bucketSizes: [Int] { buckets.map(\.buffer.count) }

    /// Before the backward pass: this process holds `localCount` of the global batch's `globalCount` samples.
    func begin(localCount: Int, globalCount: Int) {
        scale = Float(localCount) / Float(Swift.max(1, globalCount))
        readyCount = Array(repeating: 0, count: buckets.count)
        isReady = Array(repeating: false, count: parameters.count)
        pending = Array(repeating: nil, count: buckets.count)
        nextToStart = 0
        finishing = false
        beganAt = DispatchTime.now().uptimeNanoseconds
    }

    /// Called by the engine as each parameter's gradient becomes final.
    func gradientReady(_ tensor: Tensor) throws {
        guard let (b, slot) = bucketOf[ObjectIdentifier(tensor)] else { return }
        let index = buckets[b].members[slot]
        guard !isReady[index] else { return }
        isReady[index] = true
        copyIn(b, slot)
        readyCount[b] += 1
        try startReadyBuckets()
        // Let the transport progress the reductions in flight while backward goes on.
        for p in pending[..<nextToStart] { _ = try p?.test() }
    }

    /// After the backward pass: fills in gradients that never came (unused parameters: zero),
    /// completes every reduction and writes the sums back as gradients. Returns whether any
    /// process asked to stop.
    func finish(stopRequested: Bool) throws -> Bool {
        for b in buckets.indices {
            for (slot, i) in buckets[b].members.enumerated() where !isReady[i] {
                isReady[i] = true
                copyIn(b, slot)
                readyCount[b] += 1
            }
        }
        buckets[buckets.count - 1].buffer[buckets[buckets.count - 1].buffer.count - 1] = stopRequested ? 1 : 0
        let start = DispatchTime.now().uptimeNanoseconds
        lastBackwardSeconds = Double(start - beganAt) / 1e9
        finishing = true
        try startReadyBuckets()
        for p in pending { try p?.wait() }
        let end = DispatchTime.now().uptimeNanoseconds
        lastWaitSeconds = Double(end - start) / 1e9
        let first = pending.compactMap { $0?.startedAt }.min() ?? start
        let last = pending.compactMap { $0?.completedAt }.max() ?? end
        lastReduceSeconds = Double(Swift.max(last, first) - first) / 1e9
        for (members, offsets, buffer) in buckets {
            for (slot, i) in members.enumerated() {
                let p = parameters[i]
                if p.grad == nil { p.grad = Tensor(repeating: 0, shape: p.shape) }
                p.grad!.storage.pointer.update(from: buffer.baseAddress! + offsets[slot], count: p.count)
            }
        }
        return buckets[buckets.count - 1].buffer[buckets[buckets.count - 1].buffer.count - 1] > 0
    }

    private func copyIn(_ b: Int, _ slot: Int) {
        let p = parameters[buckets[b].members[slot]]
        let out = buckets[b].buffer.baseAddress! + buckets[b].offsets[slot]
        let s = scale
        if let g = p.grad {
            let q = g.storage.pointer
            for j in 0..<p.count { out[j] = q[j] * s }
        } else {
            out.update(repeating: 0, count: p.count)
        }
    }

    private func startReadyBuckets() throws {
        while nextToStart < buckets.count {
            // The last bucket also carries the stop flag: it starts from `finish`.
            let last = nextToStart == buckets.count - 1
            guard readyCount[nextToStart] == buckets[nextToStart].members.count, !last || finishing else { return }
            pending[nextToStart] = try collectives.startSum(buckets[nextToStart].buffer)
            nextToStart += 1
        }
    }
}

extension MetricAccumulator {
    /// The accumulator of the whole epoch: every process's samples (in rank order) and losses.
    func merged(over collectives: TrainingCollectives) throws -> MetricAccumulator {
        guard collectives.size > 1 else { return self }
        var merged = MetricAccumulator()
        for bytes in try collectives.allGather(encoded()) {
            var reader = ByteReader(bytes: bytes)
            let part = try MetricAccumulator(reading: &reader)
            merged.scores += part.scores
            merged.classCount = Swift.max(merged.classCount, part.classCount)
            merged.labels += part.labels
            merged.predictedPixels += part.predictedPixels
            merged.predictions += part.predictions
            merged.truths += part.truths
            merged.lossSum += part.lossSum
            merged.lossCount += part.lossCount
        }
        return merged
    }

    func encoded() -> [UInt8] {
        var out: [UInt8] = []
        func append<T: BitwiseCopyable>(_ values: [T]) {
            withUnsafeBytes(of: Int64(values.count)) { out += $0 }
            values.withUnsafeBytes { out += $0 }
        }
        append(scores); append([Int64(classCount)]); append(labels.map(Int64.init))
        append(predictedPixels.map(Int64.init)); append(predictions); append(truths)
        append([lossSum]); append([Int64(lossCount)])
        return out
    }

    init(reading reader: inout ByteReader) throws {
        self.init()
        scores = try reader.array(Float.self)
        classCount = Int(try reader.array(Int64.self).first ?? 0)
        labels = try reader.array(Int64.self).map { Int($0) }
        predictedPixels = try reader.array(Int64.self).map { Int($0) }
        predictions = try reader.array(Double.self)
        truths = try reader.array(Double.self)
        lossSum = try reader.array(Double.self).first ?? 0
        lossCount = Int(try reader.array(Int64.self).first ?? 0)
    }
}

/// Reads length-prefixed arrays of plain values back from bytes another process wrote.
struct ByteReader {
    let bytes: [UInt8]
    var offset = 0

    struct Truncated: Error, LocalizedError {
        var errorDescription: String? { "a process sent truncated training statistics" }
    }

    init(bytes: [UInt8]) { self.bytes = bytes }

    mutating func array<T: BitwiseCopyable>(_: T.Type) throws -> [T] {
        guard offset + 8 <= bytes.count else { throw Truncated() }
        let count = Int(bytes[offset..<(offset + 8)].withUnsafeBytes { $0.loadUnaligned(as: Int64.self) })
        offset += 8
        let length = count * MemoryLayout<T>.stride
        guard count >= 0, offset + length <= bytes.count else { throw Truncated() }
        let values = bytes[offset..<(offset + length)].withUnsafeBytes { raw in
            (0..<count).map { raw.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.stride, as: T.self) }
        }
        offset += length
        return values
    }
}
