// Graph mechanics: accumulation, reuse, no-grad scope, detaching, freeing, misuse errors.
@testable import Autograd
import TestSupport
import XCTest

final class EngineTests: XCTestCase {
    func testGradientsAccumulateUntilZeroed() {
        let x = Tensor([1, 2, 3], requiresGrad: true)
        (x * 2).sum().backward()
        (x * 3).sum().backward()
        XCTAssertEqual(x.grad?.scalars, [5, 5, 5])
        x.zeroGrad()
        (x * x).sum().backward()
        XCTAssertEqual(x.grad?.scalars, [2, 4, 6])
    }

    /// Gradients the engine hands over without copying must never alias each other or the
    /// caller's tensors.
    func testLeafGradientsDoNotAlias() {
        let x = Tensor([1, 2], requiresGrad: true), z = Tensor([3, 4], requiresGrad: true)
        (x + z).sum().backward()      // both inputs receive the same upstream gradient
        (x * 2).sum().backward()      // accumulates into x.grad only
        XCTAssertEqual(x.grad?.scalars, [3, 3])
        XCTAssertEqual(z.grad?.scalars, [1, 1])
        let seed = Tensor([1, 1])
        let w = Tensor([5, 6], requiresGrad: true)
        w.reshaped(to: [2, 1]).backward(gradient: Tensor(shape: [2, 1], data: [1, 1]))
        w.backward(gradient: seed)
        w.backward(gradient: seed)
        XCTAssertEqual(w.grad?.scalars, [3, 3])
        XCTAssertEqual(seed.scalars, [1, 1])
    }

    /// A node used twice (a diamond) receives the sum of both paths.
    func testDiamondGraph() {
        let x = Tensor(scalar: 3, requiresGrad: true)
        let a = x * 2
        let b = a * a + a          // db/dx = (2a + 1) * 2 = 26
        b.backward()
        XCTAssertEqual(x.grad?.item, 26)
    }

    func testNoGradScopeRecordsNothing() {
        let w = Tensor([1, 2], requiresGrad: true)
        let y = withNoGrad { (w * w).sum() }
        XCTAssertNil(y.node)
        XCTAssertFalse(y.requiresGrad)
        XCTAssertThrowsError(try y.checkedBackward()) { XCTAssertEqual($0 as? AutogradError, .noGraph) }
        XCTAssertTrue(GradMode.isEnabled)
    }

    /// The no-gradient scope is per thread.
    func testNoGradScopeIsPerThread() {
        let entered = DispatchSemaphore(value: 0), done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            withNoGrad {
                entered.signal()
                done.wait()
            }
        }
        entered.wait()
        let w = Tensor([1, 2], requiresGrad: true)
        let y = (w * w).sum()
        done.signal()
        XCTAssertTrue(GradMode.isEnabled)
        XCTAssertNotNil(y.node)
    }

    func testDetachedStopsGradient() {
        let x = Tensor(scalar: 2, requiresGrad: true)
        let y = x * x.detached()     // d/dx = x (only the left factor)
        y.backward()
        XCTAssertEqual(x.grad?.item, 2)
    }

    func testInputsWithoutGradientAreSkipped() {
        let w = Tensor([1, 2], requiresGrad: true)
        let c = Tensor([3, 4])
        (w * c).sum().backward()
        XCTAssertNil(c.grad)
        XCTAssertEqual(w.grad?.scalars, [3, 4])
    }

    /// The graph keeps no activation that no backward formula needs: a batch norm's output
    /// goes when the ReLU after it has run, the ReLU's output when the caller drops it (it is
    /// recomputed for the next convolution's backward), an up-sampled part of a concatenation
    /// after the concatenation. Gradients match the same network with every activation kept
    /// (whose ops have numerical gradient checks), on both convolution backends and with batch
    /// norm in training and eval mode.
    func testActivationsNoBackwardNeedsAreFreed() {
        forEachConvolutionBackend { _ in
            for training in [true, false] { checkActivationsAreFreed(training: training) }
        }
    }

    private func checkActivationsAreFreed(training: Bool) {
        let x = Tensor.randomNormal([2, 2, 6, 6], seed: 1)
        let w1 = Tensor.randomNormal([4, 2, 3, 3], standardDeviation: 0.3, seed: 2, requiresGrad: true)
        let w2 = Tensor.randomNormal([2, 6, 3, 3], standardDeviation: 0.3, seed: 3, requiresGrad: true)
        let w3 = Tensor.randomNormal([2, 4, 3, 3], standardDeviation: 0.3, seed: 4, requiresGrad: true)
        let up = Tensor.randomNormal([4, 2, 2, 2], standardDeviation: 0.3, seed: 5, requiresGrad: true)
        let gamma = Tensor([1.2, 0.8, 1.1, 0.9], requiresGrad: true), beta = Tensor([0.1, -0.1, 0.2, 0], requiresGrad: true)
        let parameters = [w1, w2, w3, up, gamma, beta]
        func loss(keepEverything: Bool) -> (Tensor, [() -> Tensor?]) {
            let conv = x.conv2d(weight: w1, padding: 1)
            var normalised: Tensor? = conv.batchNorm(weight: gamma, bias: beta, runningMean: Tensor([0.1, -0.2, 0.3, 0]),
                                                     runningVariance: Tensor([1.5, 0.7, 1.1, 0.9]), training: training)
            // `* 1` hides the batch norm from the ReLU: the plain path, which keeps its output.
            var activated: Tensor? = (keepEverything ? normalised! * 1 : normalised!).relu()
            var upsampled: Tensor? = activated!.maxPool2d(kernelSize: 2).transposedConv2d(weight: up, stride: 2)
            let joined = Tensor.concatenate([activated!, upsampled!], axis: 1)
            let out = joined.conv2d(weight: w2, padding: 1) + activated!.conv2d(weight: w3, padding: 1)
            weak var weakNormalised = normalised, weakActivated = activated, weakUpsampled = upsampled
            normalised = nil; activated = nil; upsampled = nil
            return ((out * out).sum(), [{ weakNormalised }, { weakActivated }, { weakUpsampled }])
        }
        let (reference, _) = loss(keepEverything: true)
        reference.backward()
        let expected = parameters.map { $0.grad!.scalars }
        for t in parameters { t.zeroGrad() }
        let (planned, freed) = loss(keepEverything: false)
        for (name, tensor) in zip(["batch norm output", "ReLU output", "up-convolution output"], freed) {
            XCTAssertNil(tensor(), "\(name) is still alive after the forward pass (training \(training))")
        }
        planned.backward()
        for (got, want) in zip(parameters.map { $0.grad!.scalars }, expected) {
            XCTAssertEqual(got.count, want.count)
            for (a, b) in zip(got, want) { XCTAssertEqual(a, b, accuracy: 1e-4 * max(1, abs(b))) }
        }
    }

    func testGraphIsFreedAfterBackwardAndSecondBackwardIsAnError() {
        let x = Tensor([1, 2], requiresGrad: true)
        let h = x.exp()
        let y = h.sum()
        y.backward()
        XCTAssertNil(h.node?.pullback)
        XCTAssertEqual(h.node?.edges.count, 0)
        XCTAssertThrowsError(try y.checkedBackward()) { error in
            XCTAssertEqual(error as? AutogradError, .graphFreed(op: "sum"))
            XCTAssertTrue("\(error)".contains("already freed"))
        }
    }

    func testNonScalarBackwardNeedsGradient() {
        let x = Tensor([1, 2], requiresGrad: true)
        let y = x * 2
        XCTAssertThrowsError(try y.checkedBackward()) { error in
            XCTAssertEqual(error as? AutogradError, .nonScalarWithoutGradient(shape: [2]))
            XCTAssertTrue("\(error)".contains("backward(gradient:)"))
        }
        XCTAssertThrowsError(try y.checkedBackward(gradient: Tensor([1, 2, 3]))) {
            XCTAssertEqual($0 as? AutogradError, .gradientShapeMismatch(shape: [2], gradient: [3]))
        }
        y.backward(gradient: Tensor([1, 10]))
        XCTAssertEqual(x.grad?.scalars, [2, 20])
    }

    /// A long chain must not overflow the stack (the topological sort is iterative).
    func testDeepChainBackward() {
        let x = Tensor(scalar: 1, requiresGrad: true)
        var y = x
        for _ in 0..<20_000 { y = y * 1.0001 }
        y.backward()
        XCTAssertEqual(x.grad!.item, Float(Foundation.pow(1.0001, 20_000.0)), accuracy: 1e-2)
    }

    /// Dropping a long graph that never saw backward() must not overflow the stack.
    func testDeepUnusedGraphIsFreedIteratively() {
        let x = Tensor(scalar: 1, requiresGrad: true)
        var y = x
        for _ in 0..<200_000 { y = y + 1 }
        XCTAssertEqual(y.item, 200_001)
        y = x    // releases the chain
        XCTAssertEqual(y.item, 1)
    }

    func testReshapeSharesStorageAndCopiesElsewhere() {
        let x = Tensor(shape: [2, 3], data: [0, 1, 2, 3, 4, 5])
        XCTAssertTrue(x.reshaped(to: [3, 2]).storage === x.storage)
        XCTAssertFalse(x.transposed().storage === x.storage)
        XCTAssertEqual(x.transposed().scalars, [0, 3, 1, 4, 2, 5])
        XCTAssertEqual(x.reshaped(to: [-1]).shape, [6])
    }

    func testSeededCreationIsReproducible() {
        XCTAssertEqual(Tensor.randomNormal([5], seed: 3).scalars, Tensor.randomNormal([5], seed: 3).scalars)
        XCTAssertNotEqual(Tensor.randomNormal([5], seed: 3).scalars, Tensor.randomNormal([5], seed: 4).scalars)
        let n = Tensor.randomNormal([20_000], mean: 1, standardDeviation: 2, seed: 9)
        XCTAssertEqual(n.mean().item, 1, accuracy: 0.05)
        XCTAssertEqual(n.variance().item.squareRoot(), 2, accuracy: 0.05)
        let u = Tensor.randomUniform([20_000], lower: -1, upper: 3, seed: 9)
        XCTAssertGreaterThanOrEqual(u.min().item, -1)
        XCTAssertLessThan(u.max().item, 3)
    }

    func testComparisonsArgmaxAndIndexing() {
        let x = Tensor(shape: [2, 3], data: [1, 5, 2, 7, 0, 7])
        XCTAssertEqual((x .> 2).scalars, [0, 1, 0, 1, 0, 1])
        XCTAssertEqual((x .== Tensor([1, 0, 7])).scalars, [1, 0, 0, 0, 1, 1])
        XCTAssertEqual(x.argmaxIndices(axis: 1), [1, 0])
        XCTAssertEqual(x.argmax(axis: 0).scalars, [1, 0, 1])
        XCTAssertEqual(x[1].scalars, [7, 0, 7])
        XCTAssertEqual(x[element: [0, 1]], 5)
        XCTAssertEqual(Tensor.where(x .> 4, x, Tensor(scalar: -1)).scalars, [-1, 5, -1, 7, -1, 7])
        XCTAssertEqual(Tensor.stack([Tensor([1, 2]), Tensor([3, 4])], axis: 1).scalars, [1, 3, 2, 4])
    }
}

/// The size classes of the large-buffer pool: at most 1/8 over the request, and requests a
/// little apart share a class (so batches of slightly different shapes reuse blocks).
final class BufferPoolTests: XCTestCase {
    func testSizeClassesRoundUpByAnEighthAtMost() {
        var generator = SeededGenerator(seed: 2)
        for _ in 0..<1000 {
            let bytes = BufferPool.minimumBytes + Int(generator.uniform() * Double(300 << 20))
            let size = BufferPool.sizeClass(bytes)
            XCTAssertGreaterThanOrEqual(size, bytes)
            XCTAssertLessThanOrEqual(Double(size), Double(bytes) * 1.125 + 1)
            XCTAssertEqual(size % 64, 0)
            XCTAssertEqual(BufferPool.sizeClass(size), size, "a class is its own class")
        }
        XCTAssertEqual(BufferPool.sizeClass(1 << 20), 1 << 20)
        XCTAssertEqual(BufferPool.sizeClass((1 << 20) + 1), (1 << 20) + (1 << 17))
        XCTAssertEqual(BufferPool.sizeClass(256 * 36 * 192 * 4), BufferPool.sizeClass(256 * 37 * 192 * 4),
                       "[256, 36, 192] and [256, 37, 192] floats share a block size")
        // A freed block is handed out again for another request of its class.
        let a = BufferPool.shared.allocate(byteCount: 256 * 36 * 192 * 4)
        BufferPool.shared.release(a, byteCount: 256 * 36 * 192 * 4)
        let b = BufferPool.shared.allocate(byteCount: 256 * 37 * 192 * 4)
        XCTAssertEqual(a, b)
        BufferPool.shared.release(b, byteCount: 256 * 37 * 192 * 4)
    }

    /// Cached blocks never lift live + cached above the larger of the pool's capacity and the
    /// most bytes ever live at once plus the slack: a miss frees cached blocks first (the
    /// smallest that makes room, else the largest).
    func testCacheStaysWithinTheLiveHighWater() {
        let mib = 1 << 20
        let pool = BufferPool(capacity: 16 * mib, slack: 0)
        let small = (0..<4).map { _ in pool.allocate(byteCount: 4 * mib) }
        for block in small { pool.release(block, byteCount: 4 * mib) }
        XCTAssertEqual(pool.counts.cached, 16 * mib)
        let large = pool.allocate(byteCount: 8 * mib)   // no 8 MiB block cached: two 4 MiB go
        XCTAssertEqual(pool.counts.live, 8 * mib)
        XCTAssertEqual(pool.counts.cached, 8 * mib)
        pool.release(large, byteCount: 8 * mib)
        let again = pool.allocate(byteCount: 12 * mib)  // 16 at most: the 8 MiB block and a 4 go
        XCTAssertEqual(pool.counts.cached, 4 * mib)
        pool.release(again, byteCount: 12 * mib)

        var generator = SeededGenerator(seed: 5)
        for slack in [0, 6 * mib] {
            let capacity = 16 * mib
            let pool = BufferPool(capacity: capacity, slack: slack)
            var held: [(UnsafeMutableRawPointer, Int)] = []
            var mostLive = 0, evictions = 0
            for _ in 0..<2000 {
                if held.isEmpty || generator.uniform() < 0.5 {
                    let bytes = BufferPool.sizeClass(mib * (1 + Int(generator.uniform() * 6)))
                    let before = pool.counts
                    held.append((pool.allocate(byteCount: bytes), bytes))
                    if pool.counts.cached < before.cached { evictions += 1 }
                } else {
                    let (block, bytes) = held.remove(at: Int(generator.uniform() * Double(held.count)))
                    pool.release(block, byteCount: bytes)
                }
                let counts = pool.counts
                mostLive = max(mostLive, counts.live)
                XCTAssertLessThanOrEqual(counts.live + counts.cached, max(mostLive + slack, capacity))
                XCTAssertLessThanOrEqual(counts.cached, capacity)
            }
            XCTAssertGreaterThan(evictions, 10, "the bound was exercised")
            for (block, bytes) in held { pool.release(block, byteCount: bytes) }
        }
    }
}

final class GradientCheckerTests: XCTestCase {
    /// The checker must catch a wrong gradient: x * detached(x) claims d/dx = x, truly 2x.
    func testCheckerDetectsWrongGradient() {
        let reports = gradientMismatches([Tensor([1, 2, 3])]) { $0[0] * $0[0].detached() }
        XCTAssertEqual(reports.count, 1)
        XCTAssertTrue(gradientMismatches([Tensor([1, 2, 3])]) { $0[0] * $0[0] }.isEmpty)
    }
}
