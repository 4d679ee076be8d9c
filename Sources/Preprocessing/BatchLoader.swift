import AstroBase
import Autograd
import Foundation

/// A batch of prepared samples, packed NCHW for a network.
public struct Batch: Sendable {
    /// `count × channels × height × width` values.
    public var inputs: [Float]
    /// `[count, channels, height, width]`.
    public var shape: [Int]
    public var names: [String]
    public var labels: [Int]
    /// Row-major `count × targetCount`.
    public var targets: [Double]
    /// Per-pixel labels of the samples that carry a label map, `count × H × W`.
    public var pixelLabels: [Int] = []
    /// The batch's size over all parts when the loader reads one part of each batch.
    public var globalCount = 0
    public var count: Int { shape[0] }
}

/// What the loader does with a file that cannot be read or prepared.
public enum SampleFailurePolicy: Sendable {
    /// Stop: `next()` throws the error, naming the file.
    case fail
    /// Leave it out of its batch and record it in `BatchLoader.failures`.
    case skip
}

/// Streams prepared batches over a catalog: seeded shuffling, samples read and
/// prepared on `threads` workers, and up to `prefetch` batches made ahead on a
/// background thread, so training does not wait for I/O while memory stays
/// bounded (at most `prefetch + 1` batches exist at once, whatever the data
/// set's size).
public final class BatchLoader: @unchecked Sendable {
    public typealias Load = @Sendable (CatalogEntry) throws -> Sample

    public let catalog: Catalog
    public let batchSize: Int
    public let preparation: Preparation
    public let training: Bool
    public let epoch: Int
    private let load: Load
    private let order: [Int]
    private let threads: Int
    private let policy: SampleFailurePolicy

    private let condition = NSCondition()
    private var ready: [Int: Result<Batch?, Error>] = [:]
    private var nextToMake = 0
    private var nextToTake = 0
    private let prefetch: Int
    private var cancelled = false
    private var failureList: [(file: String, error: Error)] = []

    /// This process's part of every batch (data-parallel training): batch `k` of the pass is
    /// the same set of samples for every part, and each part reads its `part.range` of it.
    public let part: Shard

    /// Number of batches in one pass. With several parts, a last batch smaller than the
    /// number of parts is left out (every part must take the same number of steps).
    public var batchCount: Int {
        let count = (order.count + batchSize - 1) / batchSize
        let last = order.count - (count - 1) * batchSize
        return part.count > 1 && count > 0 && last < part.count ? count - 1 : count
    }

    /// The size of batch `index` over all parts.
    public func globalSize(ofBatch index: Int) -> Int { Swift.min(order.count, (index + 1) * batchSize) - index * batchSize }

    /// Files left out under `.skip`, with their errors.
    public var failures: [(file: String, error: Error)] {
        condition.lock(); defer { condition.unlock() }
        return failureList
    }

    public init(catalog: Catalog, batchSize: Int, preparation: Preparation = Preparation(),
                training: Bool, shuffle: Bool? = nil, seed: UInt64 = 0, epoch: Int = 0,
                prefetch: Int = 2, threads: Int = 2, onFailure policy: SampleFailurePolicy = .fail,
                part: Shard = .whole, load: @escaping Load) {
        precondition(batchSize > 0, "BatchLoader: batch size must be positive, got \(batchSize)")
        self.catalog = catalog
        self.batchSize = batchSize
        self.preparation = preparation
        self.training = training
        self.epoch = epoch
        self.load = load
        self.prefetch = Swift.max(1, prefetch)
        self.threads = Swift.max(1, threads)
        self.policy = policy
        self.part = part
        if shuffle ?? training {
            var rng = SeededGenerator(seed: seed, stream: UInt64(truncatingIfNeeded: epoch) &+ 0x5EED)
            order = rng.permutation(catalog.count)
        } else {
            order = Array(0..<catalog.count)
        }
        let producer = Thread { [weak self] in self?.produce() }
        producer.name = "astrolabe.batch-loader"
        producer.start()
    }

    deinit { cancel() }

    /// Stops the background work (batches already made are dropped).
    public func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
    }

    /// The next batch in order, or nil at the end of the pass. Throws the first
    /// error of a file under `.fail`.
    public func next() throws -> Batch? {
        condition.lock()
        defer { condition.unlock() }
        // A batch whose every file was skipped yields nil: go on to the next one.
        while nextToTake < batchCount {
            while ready[nextToTake] == nil && !cancelled { condition.wait() }
            guard let result = ready.removeValue(forKey: nextToTake) else { return nil }
            nextToTake += 1
            condition.broadcast()
            if let batch = try result.get() { return batch }
        }
        return nil
    }

    private func produce() {
        while true {
            condition.lock()
            while !cancelled && nextToMake < batchCount && nextToMake - nextToTake >= prefetch { condition.wait() }
            if cancelled || nextToMake >= batchCount { condition.unlock(); return }
            let index = nextToMake
            nextToMake += 1
            condition.unlock()

            let result = Result { try makeBatch(index) }
            condition.lock()
            ready[index] = result
            condition.broadcast()
            condition.unlock()
        }
    }

    private func makeBatch(_ index: Int) throws -> Batch? {
        let whole = order[(index * batchSize)..<Swift.min(order.count, (index + 1) * batchSize)]
        let mine = part.range(of: whole.count)
        let positions = Array(whole[(whole.startIndex + mine.lowerBound)..<(whole.startIndex + mine.upperBound)])
        var prepared = [Result<Sample, Error>?](repeating: nil, count: positions.count)
        let workers = Swift.min(threads, positions.count)
        prepared.withUnsafeMutableBufferPointer { slots in
            let base = slots.baseAddress!
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                var k = worker
                while k < positions.count {
                    let entry = catalog.entries[positions[k]]
                    base[k] = Result {
                        do {
                            return try preparation.prepare(try load(entry), training: training,
                                                           epoch: epoch, index: positions[k])
                        } catch let error as DatasetError {
                            throw error
                        } catch {
                            throw DatasetError.sampleFailed(file: entry.name, reason: error.localizedDescription)
                        }
                    }
                    k += workers
                }
            }
        }
        var samples = [(CatalogEntry, Sample)]()
        for (k, result) in prepared.enumerated() {
            let entry = catalog.entries[positions[k]]
            switch result! {
            case let .success(sample): samples.append((entry, sample))
            case let .failure(error):
                if case .fail = policy { throw error }
                condition.lock(); failureList.append((entry.name, error)); condition.unlock()
            }
        }
        guard let first = samples.first?.1.image else { return nil }
        let shape = first.shape
        var inputs = [Float]()
        inputs.reserveCapacity(samples.count * first.pixels.count)
        var batch = Batch(inputs: [], shape: [samples.count] + shape, names: [], labels: [], targets: [])
        for (entry, sample) in samples {
            guard sample.image.shape == shape else {
                let error = DatasetError.inconsistentShape(file: entry.name, shape: sample.image.shape, expected: shape)
                if case .fail = policy { throw error }
                condition.lock(); failureList.append((entry.name, error)); condition.unlock()
                batch.shape[0] -= 1
                continue
            }
            inputs.append(contentsOf: sample.image.pixels)
            batch.names.append(entry.name)
            if let label = entry.label { batch.labels.append(label) }
            batch.targets.append(contentsOf: entry.targets)
            if let labels = sample.labels { batch.pixelLabels += labels.pixels.map { Int($0) } }
        }
        batch.inputs = inputs
        batch.globalCount = globalSize(ofBatch: index)
        return batch
    }
}
