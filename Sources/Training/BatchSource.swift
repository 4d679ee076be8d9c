import AstroBase
import Autograd
import Foundation

/// One batch for training: inputs and their targets.
public struct TrainingBatch {
    public var inputs: Tensor
    public var targets: Targets
    /// The size of the whole batch when this is one process's part of it (data-parallel
    /// training); else the batch's own size.
    public var globalCount: Int
    public init(inputs: Tensor, targets: Targets, globalCount: Int? = nil) {
        self.inputs = inputs
        self.targets = targets
        self.globalCount = globalCount ?? inputs.shape.first ?? 0
    }

    /// Samples `range` of the batch (targets per sample: a label, a label map or a row of values).
    public func slice(_ range: Range<Int>, globalCount: Int) -> TrainingBatch {
        let n = inputs.shape.first ?? 0
        let part: Targets
        switch targets {
        case let .classes(labels):
            let per = labels.count / Swift.max(1, n)
            part = .classes(Array(labels[(range.lowerBound * per)..<(range.upperBound * per)]))
        case let .values(t):
            part = .values(t.sliced(axis: 0, range))
        }
        return TrainingBatch(inputs: inputs.sliced(axis: 0, range), targets: part, globalCount: globalCount)
    }
}

/// Where `fit` gets its batches: arrays in memory, or a streaming loader over
/// files (the pipelines adapt their FITS loader to this).
public protocol BatchSource {
    /// Number of samples in one pass.
    var sampleCount: Int { get }
    /// The batches of one epoch, in order. Shuffling, when wanted, must depend
    /// only on `epoch` (and the source's own seed), so that a resumed run sees
    /// the same batches as an uninterrupted one.
    func batches(epoch: Int) throws -> AnyIterator<Result<TrainingBatch, Error>>
    /// This process's part of each batch of `epoch` (data-parallel training): batch `k` is the
    /// same set of samples as in `batches(epoch:)`, split by `part.range`; every part gets the
    /// same number of batches (a last batch smaller than `part.count` is left out). The default
    /// reads whole batches and keeps the part; sources that read files read only their part.
    func batches(epoch: Int, part: Shard) throws -> AnyIterator<Result<TrainingBatch, Error>>
}

extension BatchSource {
    public func batches(epoch: Int, part: Shard) throws -> AnyIterator<Result<TrainingBatch, Error>> {
        let whole = try batches(epoch: epoch)
        guard part.count > 1 else { return whole }
        return AnyIterator {
            while let next = whole.next() {
                guard case let .success(batch) = next else { return next }
                let n = batch.inputs.shape[0]
                if n < part.count { continue }
                return .success(batch.slice(part.range(of: n), globalCount: n))
            }
            return nil
        }
    }
}

/// Batches sliced from tensors held in memory.
public struct ArrayBatchSource: BatchSource {
    public let inputs: Tensor
    public let targets: Targets
    public let batchSize: Int
    public let shuffle: Bool
    public let seed: UInt64
    /// Samples used (a subset of `inputs`' first axis), e.g. after a validation split.
    public let indices: [Int]

    public init(inputs: Tensor, targets: Targets, batchSize: Int, shuffle: Bool, seed: UInt64 = 0, indices: [Int]? = nil) {
        precondition(batchSize > 0, "ArrayBatchSource: batch size must be positive")
        let n = inputs.shape.first ?? 0
        switch targets {
        case let .classes(labels):
            precondition(labels.count % Swift.max(1, n) == 0 && (n == 0 || labels.count >= n),
                         "ArrayBatchSource: \(labels.count) labels for \(n) samples")
        case let .values(t):
            precondition(t.shape.first == n, "ArrayBatchSource: targets \(t.shape) for \(n) samples")
        }
        self.inputs = inputs
        self.targets = targets
        self.batchSize = batchSize
        self.shuffle = shuffle
        self.seed = seed
        self.indices = indices ?? Array(0..<n)
    }

    public var sampleCount: Int { indices.count }

    /// Splits off the last `fraction` of the samples (before any shuffling, as
    /// Keras' `validation_split` does) as a validation source.
    public func splitting(validationFraction fraction: Double) -> (training: ArrayBatchSource, validation: ArrayBatchSource) {
        let cut = indices.count - Int((Double(indices.count) * fraction).rounded())
        return (ArrayBatchSource(inputs: inputs, targets: targets, batchSize: batchSize, shuffle: shuffle, seed: seed,
                                 indices: Array(indices[..<cut])),
                ArrayBatchSource(inputs: inputs, targets: targets, batchSize: batchSize, shuffle: false, seed: seed,
                                 indices: Array(indices[cut...])))
    }

    public func batches(epoch: Int) throws -> AnyIterator<Result<TrainingBatch, Error>> {
        try batches(epoch: epoch, part: .whole)
    }

    public func batches(epoch: Int, part: Shard) throws -> AnyIterator<Result<TrainingBatch, Error>> {
        var order = indices
        if shuffle {
            var rng = SeededGenerator(seed: seed &+ 0x9E37_79B9_7F4A_7C15 &* UInt64(epoch + 1))
            order = rng.permutation(order.count).map { indices[$0] }
        }
        var start = 0
        let n = inputs.shape.first ?? 0
        let sampleSize = n > 0 ? inputs.count / n : 0
        return AnyIterator {
            guard start < order.count else { return nil }
            let whole = order[start..<Swift.min(order.count, start + batchSize)]
            start += batchSize
            guard whole.count >= part.count else { return nil }
            let mine = part.range(of: whole.count)
            let picked = Array(whole[(whole.startIndex + mine.lowerBound)..<(whole.startIndex + mine.upperBound)])
            var data = [Float](repeating: 0, count: picked.count * sampleSize)
            let source = inputs.storage.pointer
            data.withUnsafeMutableBufferPointer { out in
                for (k, i) in picked.enumerated() {
                    (out.baseAddress! + k * sampleSize).update(from: source + i * sampleSize, count: sampleSize)
                }
            }
            let x = Tensor(shape: [picked.count] + inputs.shape.dropFirst(), data: data)
            let y: Targets
            switch targets {
            case let .classes(labels):
                let per = labels.count / Swift.max(1, n)
                y = .classes(picked.flatMap { labels[($0 * per)..<(($0 + 1) * per)] })
            case let .values(t):
                let width = t.count / Swift.max(1, n)
                let tp = t.storage.pointer
                y = .values(Tensor(shape: [picked.count] + t.shape.dropFirst(),
                                   data: picked.flatMap { i in (0..<width).map { tp[i * width + $0] } }))
            }
            return .success(TrainingBatch(inputs: x, targets: y, globalCount: whole.count))
        }
    }
}
