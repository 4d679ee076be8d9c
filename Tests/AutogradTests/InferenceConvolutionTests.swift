// The inference convolution path (no gradient recording): oneDNN's forward-inference
// primitive with fused bias / residual sum / ReLU and pre-packed frozen weights must give
// what the recorded training path gives, on both backends.
import Autograd
import CKernels
import TestSupport
import XCTest

final class InferenceConvolutionTests: XCTestCase {
    struct Case {
        let input: [Int], filters: Int, kernel: Int, stride: Int, padding: Padding, dilation: Int
    }
    let cases = [
        Case(input: [3, 5, 9, 9], filters: 7, kernel: 3, stride: 1, padding: 1, dilation: 1),
        Case(input: [2, 16, 12, 12], filters: 32, kernel: 3, stride: 2, padding: 1, dilation: 1),
        Case(input: [4, 3, 15, 15], filters: 16, kernel: 7, stride: 2, padding: 3, dilation: 1),
        Case(input: [1, 8, 10, 10], filters: 8, kernel: 1, stride: 1, padding: .valid, dilation: 1),
        Case(input: [5, 4, 11, 11], filters: 6, kernel: 3, stride: 1, padding: .same, dilation: 2),
    ]

    /// The reference: recorded ops with gradients on.
    func reference(_ x: Tensor, _ w: Tensor, _ b: Tensor?, _ c: Case, residual: Tensor?, relu: Bool) -> Tensor {
        var y = x.conv2d(weight: w, bias: b, stride: Size2(c.stride, c.stride), padding: c.padding,
                         dilation: Size2(c.dilation, c.dilation))
        if let residual { y = y + residual }
        return relu ? y.relu() : y
    }

    func testFusedEpilogueMatchesRecordedOps() { forEachConvolutionBackend { backend in
        for (i, c) in cases.enumerated() {
            let x = Tensor.randomNormal(c.input, seed: UInt64(10 + i))
            let w = Tensor.randomNormal([c.filters, c.input[1], c.kernel, c.kernel], seed: UInt64(20 + i))
            let b = Tensor.randomNormal([c.filters], seed: UInt64(30 + i))
            for bias in [nil, b] { for relu in [false, true] { for withResidual in [false, true] {
                let plain = reference(x, w, bias, c, residual: nil, relu: false)
                let residual = withResidual ? Tensor.randomNormal(plain.shape, seed: UInt64(40 + i)) : nil
                let expected = reference(x, w, bias, c, residual: residual, relu: relu)
                let fused = withNoGrad {
                    x.conv2d(weight: w, bias: bias, stride: Size2(c.stride, c.stride), padding: c.padding,
                             dilation: Size2(c.dilation, c.dilation), adding: residual, relu: relu)
                }
                assertClose(fused, expected, relativeTolerance: 1e-4, absoluteTolerance: 1e-4,
                            "\(backend) case \(i) bias \(bias != nil) relu \(relu) residual \(withResidual)")
                if relu { XCTAssertTrue(fused.scalars.allSatisfy { $0 >= 0 }, "\(backend) case \(i): ReLU applied") }
            } } }
        }
    } }

    func testFrozenWeightsArePackedOnceAndStayCorrect() { forEachConvolutionBackend { backend in
        let x = Tensor.randomNormal([6, 16, 8, 8], seed: 1)
        let w = Tensor.randomNormal([32, 16, 3, 3], seed: 2)
        let expected = reference(x, w, nil, Case(input: x.shape, filters: 32, kernel: 3, stride: 1, padding: 1, dilation: 1),
                                 residual: nil, relu: false)
        let frozen = w.copy()
        frozen.freeze()
        XCTAssertTrue(frozen.isFrozen)
        XCTAssertFalse(w.isFrozen)
        for repetition in 0..<3 {   // the first call packs, the others reuse the packed copy
            let y = withNoGrad { x.conv2d(weight: frozen, padding: 1) }
            assertClose(y, expected, relativeTolerance: 1e-4, absoluteTolerance: 1e-4, "\(backend) repetition \(repetition)")
        }
        // Writing through the public API (a state dict loaded into a fused model) drops the pack.
        frozen.withUnsafeMutableBufferPointer { p in for i in p.indices { p[i] *= 3 } }
        let tripled = withNoGrad { x.conv2d(weight: frozen, padding: 1) }
        assertClose(tripled, Tensor(shape: expected.shape, data: expected.scalars.map { $0 * 3 }),
                    relativeTolerance: 1e-4, absoluteTolerance: 1e-3, "\(backend) after writing a frozen tensor")
        frozen.assign(w)
        // An odd batch splits into unequal chunks per worker: each chunk's primitive shares the pack.
        let x5 = Tensor.randomNormal([5, 16, 8, 8], seed: 3)
        let y5 = withNoGrad { x5.conv2d(weight: frozen, padding: 1) }
        assertClose(y5, x5.conv2d(weight: w, padding: 1), relativeTolerance: 1e-4, absoluteTolerance: 1e-4, "\(backend) batch 5")
    } }

    func testSingleImageSplitByOutputChannelsMatchesRecordedOps() throws {
        try XCTSkipUnless(ConvolutionBackend.isOneDNNAvailable, "oneDNN not installed")
        let saved = (Threading.workerCount, ConvolutionBackend.current, Tensor.minimumChannelSplitWork)
        defer { (Threading.workerCount, ConvolutionBackend.current, Tensor.minimumChannelSplitWork) = saved }
        (Threading.workerCount, ConvolutionBackend.current, Tensor.minimumChannelSplitWork) = (2, .oneDNN, 0)
        // 48 filters: three blocks of 16 split 16 / 32, so the two workers' shapes differ.
        let x = Tensor.randomNormal([1, 16, 13, 11], seed: 50)
        let w = Tensor.randomNormal([48, 16, 3, 3], seed: 51), b = Tensor.randomNormal([48], seed: 52)
        let c = Case(input: x.shape, filters: 48, kernel: 3, stride: 1, padding: 1, dilation: 1)
        let residual = Tensor.randomNormal([1, 48, 13, 11], seed: 53)
        let expected = reference(x, w, b, c, residual: residual, relu: true)
        // Frozen weights are packed per worker's filters: every call after the first reuses them.
        let frozen = w.copy()
        frozen.freeze()
        for (name, weight) in [("plain", w), ("frozen", frozen), ("frozen again", frozen)] {
            let y = withNoGrad { x.conv2d(weight: weight, bias: b, padding: 1, adding: residual, relu: true) }
            assertClose(y, expected, relativeTolerance: 1e-4, absoluteTolerance: 1e-4, "\(name) weights")
        }
        // Channel-blocked input and output (a fused U-Net's activations), a stride of 2, and
        // frozen weights split 16 / 16: both workers' packs have the same layout, not the same filters.
        let w2 = Tensor.randomNormal([32, 48, 3, 3], seed: 54), frozen2 = w2.copy()
        frozen2.freeze()
        let chained = reference(reference(x, w, b, c, residual: nil, relu: true), w2, nil,
                                Case(input: [1, 48, 13, 11], filters: 32, kernel: 3, stride: 2, padding: 1, dilation: 1),
                                residual: nil, relu: false)
        for repetition in 0..<2 {
            let blocked = withNoGrad { () -> Tensor? in
                BlockedFeatureMap.conv2d(x, weight: frozen, bias: b, padding: 1, relu: true)?
                    .conv2d(weight: frozen2, stride: 2, padding: 1, relu: false)?.plain()
            }
            guard let blocked else { return XCTFail("oneDNN declined the blocked chain") }
            assertClose(blocked, chained, relativeTolerance: 1e-4, absoluteTolerance: 1e-3, "blocked chain, call \(repetition)")
        }
    }

    func testUnfrozenWeightsChangingBetweenCallsAreSeen() { forEachConvolutionBackend { backend in
        // Weights updated in place (an optimiser step between two evaluations) must not be cached.
        let x = Tensor.randomNormal([4, 16, 6, 6], seed: 4)
        let w = Tensor.randomNormal([16, 16, 3, 3], seed: 5)
        let before = withNoGrad { x.conv2d(weight: w, padding: 1) }
        w.withUnsafeMutableBufferPointer { p in for i in p.indices { p[i] *= -2 } }
        let after = withNoGrad { x.conv2d(weight: w, padding: 1) }
        let expected = Tensor(shape: before.shape, data: before.scalars.map { $0 * -2 })
        assertClose(after, expected, relativeTolerance: 1e-4, absoluteTolerance: 1e-4, "\(backend)")
    } }

    func testTransposedConvolutionInferenceMatchesRecordedOp() { forEachConvolutionBackend { backend in
        let x = Tensor.randomNormal([3, 32, 8, 8], seed: 6)
        let w = Tensor.randomNormal([32, 16, 2, 2], seed: 7)
        let b = Tensor.randomNormal([16], seed: 8)
        let expected = x.transposedConv2d(weight: w, bias: b, stride: 2)
        let y = withNoGrad { x.transposedConv2d(weight: w, bias: b, stride: 2) }
        assertClose(y, expected, relativeTolerance: 1e-4, absoluteTolerance: 1e-4, "\(backend)")
    } }

    func testFusedEpilogueRecordsGradientsWhenGradModeIsOn() {
        // Outside withNoGrad the same call composes recorded ops, so it trains.
        let x = Tensor.randomNormal([2, 3, 6, 6], seed: 9)
        let w = Tensor.randomNormal([4, 3, 3, 3], seed: 10)
        w.requiresGrad = true
        let r = Tensor.randomNormal([2, 4, 6, 6], seed: 11)
        let y = x.conv2d(weight: w, padding: 1, adding: r, relu: true)
        y.sum().backward()
        XCTAssertNotNil(w.grad)
        XCTAssertGreaterThan(w.grad!.scalars.map(abs).max()!, 0)
    }
}

/// Max pooling's vectorised interior (strides 1 and 2) against a direct loop, with NaNs,
/// ties, padding and every edge case of the column split; and winners for the backward.
final class MaxPoolKernelTests: XCTestCase {
    func naive(_ x: Tensor, k: Int, s: Int, p: Int) -> (values: [Float], winners: [Int]) {
        let (planes, h, w) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3])
        let oh = (h + 2 * p - k) / s + 1, ow = (w + 2 * p - k) / s + 1
        let v = x.scalars
        var values: [Float] = [], winners: [Int] = []
        for plane in 0..<planes { for oy in 0..<oh { for ox in 0..<ow {
            var best = Float.nan, bi = -1
            for ky in 0..<k { for kx in 0..<k {
                let y = oy * s - p + ky, xx = ox * s - p + kx
                guard y >= 0, y < h, xx >= 0, xx < w else { continue }
                let value = v[plane * h * w + y * w + xx]
                if bi < 0 || value > best || value.isNaN { best = value; bi = y * w + xx }
            } }
            values.append(best); winners.append(bi)
        } } }
        return (values, winners)
    }

    func testMatchesDirectLoopIncludingNaNAndTies() {
        for (k, s, p, w) in [(2, 2, 0, 64), (2, 2, 0, 37), (3, 2, 1, 32), (3, 2, 1, 35), (3, 1, 1, 40),
                             (2, 1, 0, 19), (3, 3, 1, 50), (5, 2, 2, 70)] {
            var values = Tensor.randomNormal([2, 3, 9, w], seed: UInt64(k * 100 + w)).scalars.map { ($0 * 4).rounded() / 4 }
            values[5] = .nan; values[w * 3 + 20] = .nan; values[values.count - 1] = .nan
            let x = Tensor(shape: [2, 3, 9, w], data: values)
            let expected = naive(x, k: k, s: s, p: p)
            let y = withNoGrad { x.maxPool2d(kernelSize: Size2(k, k), stride: Size2(s, s), padding: Size2(p, p)) }
            for (i, (a, e)) in zip(y.scalars, expected.values).enumerated() where !(a == e || (a.isNaN && e.isNaN)) {
                XCTFail("k \(k) s \(s) p \(p) w \(w): element \(i) is \(a), expected \(e)"); break
            }
            // Winners: the gradient of the sum lands on each window's first maximum.
            let xg = x.copy()
            xg.requiresGrad = true
            xg.maxPool2d(kernelSize: Size2(k, k), stride: Size2(s, s), padding: Size2(p, p)).sum().backward()
            var counts = [Float](repeating: 0, count: values.count)
            let plane = 9 * w, perPlane = expected.winners.count / 6
            for (i, winner) in expected.winners.enumerated() { counts[(i / perPlane) * plane + winner] += 1 }
            XCTAssertEqual(xg.grad!.scalars, counts, "k \(k) s \(s) p \(p) w \(w): winners")
        }
    }
}

/// Training convolutions split over the workers by channels (weight-heavy layers) must give
/// the outputs and gradients of the im2col reference.
final class ChannelSplitConvolutionTests: XCTestCase {
    func testMatchesIm2colForwardAndGradients() throws {
        try XCTSkipUnless(ConvolutionBackend.isOneDNNAvailable, "oneDNN not installed")
        let savedWorkers = Threading.workerCount, savedBackend = ConvolutionBackend.current
        defer { Threading.workerCount = savedWorkers; ConvolutionBackend.current = savedBackend }
        Threading.workerCount = 2
        for (stride, size, useBias) in [(1, 3, true), (2, 4, false), (1, 2, false)] {
            let x0 = Tensor.randomNormal([3, 64, size, size], seed: UInt64(size))
            let w0 = Tensor.randomNormal([32, 64, 3, 3], seed: 7)
            let b0 = Tensor.randomNormal([32], seed: 8)
            XCTAssertGreaterThan(w0.count, x0.count / 2, "the split applies to this shape")
            func run(_ backend: ConvolutionBackend) -> (Tensor, Tensor, Tensor, Tensor?) {
                ConvolutionBackend.current = backend
                let x = x0.copy(), w = w0.copy(), b = b0.copy()
                x.requiresGrad = true; w.requiresGrad = true; b.requiresGrad = true
                let y = x.conv2d(weight: w, bias: useBias ? b : nil, stride: Size2(stride, stride), padding: 1)
                let direction = Tensor.randomNormal(y.shape, seed: 9)
                (y * direction).sum().backward()
                return (y, x.grad!, w.grad!, useBias ? b.grad : nil)
            }
            let reference = run(.im2col), split = run(.oneDNN)
            let label = "stride \(stride) size \(size)"
            assertClose(split.0, reference.0, relativeTolerance: 1e-4, absoluteTolerance: 1e-3, "\(label) output")
            assertClose(split.1, reference.1, relativeTolerance: 1e-4, absoluteTolerance: 1e-3, "\(label) input gradient")
            assertClose(split.2, reference.2, relativeTolerance: 1e-4, absoluteTolerance: 1e-3, "\(label) weight gradient")
            if let g = split.3, let r = reference.3 { assertClose(g, r, relativeTolerance: 1e-4, absoluteTolerance: 1e-3, "\(label) bias") }
        }
    }
}

/// Pinning a worker to the k-th allowed CPU for its share of a parallel region.
final class WorkerPinningTests: XCTestCase {
    func testPinsToAllowedCPUsAndRestores() {
        let bytes = Int(astro_affinity_bytes())
        XCTAssertGreaterThanOrEqual(bytes, 8)
        let saved = UnsafeMutablePointer<UInt8>.allocate(capacity: bytes)
        defer { saved.deallocate() }
        // Slot 0 always exists; a slot past the allowed CPUs is refused and changes nothing.
        XCTAssertEqual(astro_thread_pin(0, saved), 0)
        let whilePinned = UnsafeMutablePointer<UInt8>.allocate(capacity: bytes)
        defer { whilePinned.deallocate() }
        XCTAssertEqual(astro_thread_pin(0, whilePinned), 0, "pinning again within the pinned mask")
        let allowedWhilePinned = (0..<bytes).reduce(0) { $0 + whilePinned[$1].nonzeroBitCount }
        XCTAssertEqual(allowedWhilePinned, 1, "the mask seen while pinned holds one CPU")
        astro_thread_restore(saved)
        let again = UnsafeMutablePointer<UInt8>.allocate(capacity: bytes)
        defer { again.deallocate() }
        XCTAssertEqual(astro_thread_pin(1 << 20, again), -1)
        XCTAssertEqual(astro_thread_pin(0, again), 0)
        XCTAssertEqual(Array(UnsafeBufferPointer(start: again, count: bytes)), Array(UnsafeBufferPointer(start: saved, count: bytes)),
                       "restore brought back the original mask")
        astro_thread_restore(again)
        // A parallel region with pinning gives the same sums as a serial loop.
        let x = Tensor.randomNormal([4096, 64], seed: 3)
        let w = Tensor.randomNormal([64, 32], seed: 4)
        let y = x.matmul(w)
        let xs = x.scalars, ws = w.scalars, ys = y.scalars
        for row in [0, 1, 2047, 4095] { for col in [0, 31] {
            var s: Float = 0
            for k in 0..<64 { s += xs[row * 64 + k] * ws[k * 32 + col] }
            XCTAssertEqual(ys[row * 32 + col], s, accuracy: 1e-3)
        } }
    }
}
