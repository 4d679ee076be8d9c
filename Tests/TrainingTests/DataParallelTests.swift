import AstroBase
import Autograd
import Foundation
import NN
import TestSupport
import XCTest
@testable import Training

/// The parts of data-parallel training that need no second process: how batches are split,
/// and the gradient buckets over a stand-in transport. Two real processes: CLITests/DistributedTests.
final class DataParallelTests: XCTestCase {
    /// A transport for `copies` processes that all hold this process's values: a sum multiplies
    /// by `copies`. Records each reduction's size and how many gradients were ready when it started.
    final class MirrorCollectives: TrainingCollectives {
        final class Done: PendingReduction {
            func test() throws -> Bool { true }
            func wait() throws {}
            let startedAt: UInt64 = 0
            let completedAt: UInt64? = 0
        }
        let copies: Int
        var started: [(count: Int, readyAtStart: Int)] = []
        var readySoFar = 0
        init(copies: Int) { self.copies = copies }
        var rank: Int { 0 }
        var size: Int { copies }
        func startSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws -> PendingReduction {
            started.append((buffer.count, readySoFar))
            for i in buffer.indices { buffer[i] *= Float(copies) }
            return Done()
        }
        func sum(_ values: [Double]) throws -> [Double] { values.map { $0 * Double(copies) } }
        func allGather(_ bytes: [UInt8]) throws -> [[UInt8]] { Array(repeating: bytes, count: copies) }
        func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws {}
    }

    /// Synchronised batch norm over processes that all hold the same images normalises as one
    /// process does (the global mean and variance are this batch's), and with each process's
    /// share of the global batch its input and parameter gradients are this process's own.
    func testSynchronisedBatchNormOverIdenticalProcessesIsTheProcessOwn() throws {
        var generator = SeededGenerator(seed: 12)
        let x = Tensor(shape: [3, 4, 5, 5], data: (0..<300).map { _ in Float(generator.normal()) * 2 + 1 })
        let upstream = Tensor(shape: [3, 4, 5, 5], data: (0..<300).map { _ in Float(generator.normal()) })
        let own = Self.batchNorm(x, upstream: upstream, reducer: nil)
        let statistics = SynchronisedBatchStatistics(collectives: MirrorCollectives(copies: 2))
        statistics.share = 0.5
        let synchronised = Self.batchNorm(x, upstream: upstream, reducer: statistics)
        for (a, b) in [(own.y, synchronised.y), (own.dx, synchronised.dx), (own.dgamma, synchronised.dgamma)] {
            for (p, q) in zip(a, b) { XCTAssertEqual(p, q, accuracy: 1e-5 * max(1, abs(p))) }
        }
        // Running variance: unbiased over 2 × 75 values instead of 75.
        XCTAssertNotEqual(own.running[0], synchronised.running[0])
        XCTAssertNoThrow(try statistics.check())
    }

    /// Two processes of unequal parts (2 and 4 images of a batch of 6): process A's outputs
    /// and gradients with synchronised batch norm are the rows of the whole batch's, its
    /// gradients in units of its own loss (the whole-batch gradient divided by its share).
    /// Process B's contributions to the sums are computed here from B's images by the
    /// formulas (sums; squared deviations from the global mean; Σ g and Σ g·x̂ of B's rows).
    func testSynchronisedBatchNormOfOneProcessIsItsRowsOfTheWholeBatch() throws {
        var generator = SeededGenerator(seed: 5)
        let (c, plane) = (3, 16)
        let x = Tensor(shape: [6, c, 4, 4], data: (0..<(6 * c * plane)).map { _ in Float(generator.normal()) * 1.5 - 0.5 })
        let upstream = Tensor(shape: [6, c, 4, 4], data: (0..<(6 * c * plane)).map { _ in Float(generator.normal()) })
        let whole = Self.batchNorm(x, upstream: upstream, reducer: nil)
        let rows = 2 * c * plane
        let xa = Tensor(shape: [2, c, 4, 4], data: Array(x.scalars[..<rows]))
        let xb = Array(x.scalars[rows...]), ub = Array(upstream.scalars[rows...])
        let shareA = 2.0 / 6, shareB = 4.0 / 6
        /// Adds process B's part to every sum, in the order batch norm asks for them.
        final class OtherProcess: BatchStatisticsReducer {
            let xb: [Float], ub: [Float], c: Int, plane: Int, shareB: Double
            var share: Double
            var call = 0
            var mean = [Float](), inv = [Float]()
            init(xb: [Float], ub: [Float], c: Int, plane: Int, share: Double, shareB: Double) {
                self.xb = xb; self.ub = ub; self.c = c; self.plane = plane; self.share = share; self.shareB = shareB
            }
            func values(_ ch: Int) -> [(x: Float, g: Float)] {
                (0..<4).flatMap { i in (0..<plane).map { j in (xb[(i * c + ch) * plane + j], ub[(i * c + ch) * plane + j]) } }
            }
            func sum(_ v: inout [Double]) {
                call += 1
                switch call {
                case 1:
                    for ch in 0..<c { v[ch] += values(ch).reduce(0.0) { $0 + Double($1.x) } }
                    v[c] += Double(4 * plane)
                    mean = (0..<c).map { Float(v[$0] / v[c]) }
                case 2:
                    for ch in 0..<c { v[ch] += values(ch).reduce(0.0) { $0 + Double(($1.x - mean[ch]) * ($1.x - mean[ch])) } }
                    inv = (0..<c).map { 1 / (Float(v[$0] / Double(6 * plane)) + 1e-5).squareRoot() }
                default:
                    // B's upstream gradient in its own loss's units is ub / shareB; weighted by shareB: ub.
                    for ch in 0..<c {
                        v[ch] += values(ch).reduce(0.0) { $0 + Double($1.g) }
                        v[c + ch] += values(ch).reduce(0.0) { $0 + Double($1.g * ($1.x - mean[ch]) * inv[ch]) }
                    }
                }
            }
        }
        let reducer = OtherProcess(xb: xb, ub: ub, c: c, plane: plane, share: shareA, shareB: shareB)
        let ua = Tensor(shape: [2, c, 4, 4], data: upstream.scalars[..<rows].map { $0 / Float(shareA) })
        let a = Self.batchNorm(xa, upstream: ua, reducer: reducer)
        XCTAssertEqual(reducer.call, 3)
        for (p, q) in zip(whole.y[..<rows], a.y) { XCTAssertEqual(p, q, accuracy: 1e-5) }
        for (p, q) in zip(whole.dx[..<rows], a.dx) { XCTAssertEqual(p, q * Float(shareA), accuracy: 1e-5) }
    }

    /// A batch-norm layer (weights 0.5, 1.5, …) on `x`; backward of `Σ upstream · y`.
    static func batchNorm(_ x: Tensor, upstream: Tensor, reducer: BatchStatisticsReducer?)
        -> (y: [Float], dx: [Float], dgamma: [Float], running: [Float]) {
        let layer = BatchNorm(features: x.shape[1])
        layer.weight.withUnsafeMutableBufferPointer { for i in 0..<$0.count { $0[i] = 0.5 + Float(i) } }
        layer.synchronisation = reducer
        let input = x.detached()
        input.requiresGrad = true
        let y = layer(input)
        (y * upstream).sum().backward()
        return (y.scalars, input.grad!.scalars, layer.weight.grad!.scalars, layer.runningVariance.scalars)
    }

    func testShardRangesCoverTheWorkInOrder() {
        for total in [0, 1, 7, 64] {
            for count in 1...5 {
                let ranges = (0..<count).map { Shard(index: $0, count: count).range(of: total) }
                XCTAssertEqual(ranges.first?.lowerBound, 0)
                XCTAssertEqual(ranges.last?.upperBound, total)
                for (a, b) in zip(ranges, ranges.dropFirst()) { XCTAssertEqual(a.upperBound, b.lowerBound) }
                XCTAssertLessThanOrEqual(ranges.map(\.count).max()! - ranges.map(\.count).min()!, 1)
            }
        }
        XCTAssertEqual(Shard(parsing: "3/8"), Shard(index: 3, count: 8))
        for bad in ["8/8", "-1/2", "1", "a/b", "1/0", "1/2/3"] { XCTAssertNil(Shard(parsing: bad), bad) }
    }

    /// Each part of batch k is a block of the whole batch k, in order; a last batch smaller
    /// than the number of parts is left out for every part.
    func testPartsOfEveryBatchJoinToTheWholeBatch() throws {
        let n = 21
        let x = Tensor(shape: [n, 2], data: (0..<(2 * n)).map(Float.init))
        let source = ArrayBatchSource(inputs: x, targets: .classes((0..<n).map { $0 % 3 }), batchSize: 4, shuffle: true, seed: 9)
        /// The same samples through the protocol's default (read whole batches, keep the part).
        struct Wrapped: BatchSource {
            let base: ArrayBatchSource
            var sampleCount: Int { base.sampleCount }
            func batches(epoch: Int) throws -> AnyIterator<Result<TrainingBatch, Error>> { try base.batches(epoch: epoch) }
        }
        for candidate in [source as BatchSource, Wrapped(base: source)] {
            for parts in [2, 3] {
                let whole = try Array(candidate.batches(epoch: 2)).map { try $0.get() }
                let split = try (0..<parts).map { p in
                    try Array(candidate.batches(epoch: 2, part: Shard(index: p, count: parts))).map { try $0.get() }
                }
                // 21 = 5 × 4 + 1: the last batch (1 image) is left out for 2 or 3 parts.
                for s in split { XCTAssertEqual(s.count, 5) }
                for k in 0..<5 {
                    let joined = split.flatMap { $0[k].inputs.scalars }
                    XCTAssertEqual(joined, whole[k].inputs.scalars)
                    guard case let .classes(labels) = whole[k].targets else { return XCTFail() }
                    XCTAssertEqual(split.flatMap { s -> [Int] in
                        guard case let .classes(l) = s[k].targets else { return [] }
                        return l
                    }, labels)
                    for s in split { XCTAssertEqual(s[k].globalCount, 4) }
                }
            }
        }
    }

    /// Buckets hold about `bucketBytes`, the parameters in reverse order; during backward the
    /// buckets start in order as their gradients become ready (before backward ends), and each
    /// process's gradient is scaled by its share of the global batch before the sum.
    func testBucketsStartDuringBackwardAndGiveTheGlobalMeanGradient() throws {
        let network = Sequential([Dense(inputFeatures: 6, outputFeatures: 16, seed: 1), Activation.relu(),
                                  Dense(inputFeatures: 16, outputFeatures: 16, seed: 2), Activation.relu(),
                                  Dense(inputFeatures: 16, outputFeatures: 3, seed: 3)])
        let parameters = network.parameters
        let x = Tensor(shape: [4, 6], data: (0..<24).map { Float($0 % 7) / 7 - 0.4 })
        let labels = [0, 2, 1, 2]
        let loss = LossFunction.sparseCategoricalCrossentropy()

        let plain = loss(network(x), .classes(labels), classWeights: nil)
        plain.backward()
        let expected = parameters.map { $0.grad!.scalars }
        network.zeroGrad()

        // 2 processes holding these same 4 images of a global batch of 8: the sum of the two
        // scaled gradients is this batch's mean gradient again.
        let mirror = MirrorCollectives(copies: 2)
        let buckets = GradientBuckets(parameters: parameters, collectives: mirror, bucketBytes: 300 * 4)
        // Reverse order, at most 300 floats: [b3, w3, b2] = 3 + 48 + 16; [w2, b1] = 256 + 16;
        // [w1] = 96, + 1 for the stop flag.
        XCTAssertEqual(buckets.bucketSizes, [67, 272, 97])
        buckets.begin(localCount: 4, globalCount: 8)
        let value = loss(network(x), .classes(labels), classWeights: nil)
        try value.checkedBackward(gradientReady: { tensor in
            try? buckets.gradientReady(tensor)
            mirror.readySoFar += 1
        })
        XCTAssertEqual(mirror.started.map(\.count), [67, 272], "the first two buckets start during backward")
        XCTAssertLessThan(mirror.started[0].readyAtStart, parameters.count)
        let stop = try buckets.finish(stopRequested: false)
        XCTAssertFalse(stop)
        XCTAssertEqual(mirror.started.map(\.count), [67, 272, 97])
        for (p, e) in zip(parameters, expected) { assertClose(p.grad!.scalars, e, accuracy: 1e-6) }

        // A stop request in any process comes back with the last bucket.
        network.zeroGrad()
        buckets.begin(localCount: 4, globalCount: 8)
        loss(network(x), .classes(labels), classWeights: nil).backward()
        XCTAssertTrue(try buckets.finish(stopRequested: true))
    }

    /// `fit` with a data-parallel transport: the epoch's loss and metrics are merged over the
    /// processes, and the result equals single-process training when every process holds the
    /// same data (the mirror).
    func testFitOverTheMirrorTrainsLikeOneProcess() throws {
        let (x, y) = FitTests.spiral(pointsPerArm: 16)
        func train(_ parallel: DataParallel?) throws -> (History, [Float]) {
            let model = Model(Sequential([Dense(inputFeatures: 2, outputFeatures: 12, seed: 4), Activation.relu(),
                                          Dense(inputFeatures: 12, outputFeatures: 3, seed: 5)]))
            model.compile(optimizer: .sgd(momentum: 0.9), learningRate: 0.1, loss: .sparseCategoricalCrossentropy(),
                          metrics: [.accuracy])
            let source = ArrayBatchSource(inputs: x, targets: .classes(y), batchSize: 8, shuffle: true, seed: 2)
            let history = try model.fit(source, epochs: 3, verbose: false, parallel: parallel)
            return (history, model.network.parameters.flatMap(\.scalars))
        }
        let (h1, w1) = try train(nil)
        // One "process" of a job of one: the parallel path (buckets, merge, checks) with nothing to add.
        let (h2, w2) = try train(DataParallel(collectives: MirrorCollectives(copies: 1), bucketBytes: 64))
        XCTAssertEqual(h1.csv, h2.csv)
        XCTAssertEqual(w1, w2)
    }
}
