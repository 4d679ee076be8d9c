// Numerical gradient checks (central differences in Double) for every differentiable op.
import Autograd
import TestSupport
import XCTest

private func normal(_ shape: [Int], _ seed: UInt64, scale: Float = 1) -> Tensor {
    Tensor.randomNormal(shape, standardDeviation: scale, seed: seed)
}

private func positive(_ shape: [Int], _ seed: UInt64) -> Tensor {
    Tensor.randomUniform(shape, lower: 0.5, upper: 2, seed: seed)
}

/// Values spaced far apart (a shuffled ramp), so max/min/relu/abs have no near-ties or kinks
/// within the finite-difference step.
private func spread(_ shape: [Int], _ seed: UInt64) -> Tensor {
    let n = shape.reduce(1, *)
    var rng = SeededGenerator(seed: seed)
    let values = (0..<n).map { Float($0) * 0.1 - Float(n) * 0.05 + 0.025 }.shuffled(using: &rng)
    return Tensor(shape: shape, data: values)
}

final class ElementwiseGradientTests: XCTestCase {
    func testBinaryOpsWithBroadcasting() {
        let pairs: [([Int], [Int])] = [([2, 3], [2, 3]), ([2, 3, 4], [4]), ([2, 1, 4], [3, 1]), ([3], []), ([], [2, 2])]
        for (sa, sb) in pairs {
            assertGradientsMatch([normal(sa, 1), normal(sb, 2)]) { $0[0] + $0[1] }
            assertGradientsMatch([normal(sa, 3), normal(sb, 4)]) { $0[0] - $0[1] }
            assertGradientsMatch([normal(sa, 5), normal(sb, 6)]) { $0[0] * $0[1] }
            assertGradientsMatch([normal(sa, 7), positive(sb, 8)]) { $0[0] / $0[1] }
        }
    }

    func testScalarOperands() {
        assertGradientsMatch([normal([2, 3], 1)]) { x in ((x[0] + 1) * 3 - 2) / 4 }
        assertGradientsMatch([positive([2, 3], 2)]) { x in 2 / x[0] + (1 - x[0]) * 0.5 - (-x[0]) }
    }

    func testMathFunctions() {
        assertGradientsMatch([normal([3, 4], 1)]) { $0[0].exp() }
        assertGradientsMatch([positive([3, 4], 2)]) { $0[0].log() }
        assertGradientsMatch([positive([3, 4], 3)]) { $0[0].sqrt() }
        assertGradientsMatch([positive([3, 4], 4)]) { $0[0].pow(2.5) }
        assertGradientsMatch([normal([3, 4], 5)]) { $0[0].squared() }
        assertGradientsMatch([spread([3, 4], 6)]) { $0[0].abs() }
        assertGradientsMatch([spread([3, 4], 7)]) { $0[0].clamped(min: -0.3, max: 0.4) }
        assertGradientsMatch([normal([3, 4], 8)]) { $0[0].sinh() }
        assertGradientsMatch([normal([3, 4], 9)]) { ($0[0] * 3).asinh() }
    }

    func testActivations() {
        let x = { spread([4, 5], 11) }
        assertGradientsMatch([x()]) { $0[0].relu() }
        assertGradientsMatch([x()]) { $0[0].leakyRelu(negativeSlope: 0.1) }
        assertGradientsMatch([x()]) { $0[0].elu(alpha: 1.3) }
        assertGradientsMatch([x()]) { $0[0].gelu() }
        assertGradientsMatch([x()]) { $0[0].sigmoid() }
        assertGradientsMatch([x()]) { $0[0].tanh() }
        assertGradientsMatch([x()]) { $0[0].softplus() }
        assertGradientsMatch([normal([3, 5], 12, scale: 2)]) { $0[0].softmax(axis: 1) }
        assertGradientsMatch([normal([3, 4, 5], 13, scale: 2)]) { $0[0].softmax(axis: 1) }
        assertGradientsMatch([normal([3, 4, 5], 14, scale: 2)]) { $0[0].logSoftmax(axis: -1) }
        assertGradientsMatch([normal([2, 3, 2, 2], 15, scale: 2)]) { $0[0].logSoftmax(axis: 1) }
        // Eight positions at a time over the channels (inner 9: one block of eight and a tail).
        assertGradientsMatch([normal([2, 3, 9], 16, scale: 2)]) { $0[0].softmax(axis: 1) }
        assertGradientsMatch([normal([2, 3, 9], 17, scale: 2)]) { $0[0].logSoftmax(axis: 1) }
    }

    /// Softmax over channels (the vector path for 8 positions at a time, then the tail)
    /// against a double-precision reference, with logits far apart and large.
    func testChannelSoftmaxAgainstDoubleReference() {
        let x = normal([2, 4, 19], 18, scale: 30)
        let v = x.scalars, p = x.softmax(axis: 1).scalars, l = x.logSoftmax(axis: 1).scalars
        for o in 0..<2 { for i in 0..<19 {
            let idx = (0..<4).map { o * 4 * 19 + $0 * 19 + i }
            let m = idx.map { Double(v[$0]) }.max()!
            let lse = m + log(idx.reduce(0) { $0 + exp(Double(v[$1]) - m) })
            for j in idx {
                XCTAssertEqual(Double(p[j]), exp(Double(v[j]) - lse), accuracy: 1e-6)
                XCTAssertEqual(Double(l[j]), Double(v[j]) - lse, accuracy: 1e-4 * max(1, abs(Double(v[j]) - lse)))
            }
        } }
    }

    func testWhereAndExpand() {
        let cond = Tensor(shape: [2, 3], data: [1, 0, 1, 0, 0, 1])
        assertGradientsMatch([normal([2, 3], 1), normal([3], 2)]) { Tensor.where(cond, $0[0], $0[1]) }
        assertGradientsMatch([normal([3, 1], 3)]) { $0[0].expanded(to: [2, 3, 4]) }
    }

    /// A node reused along several paths (diamond) plus broadcasting in one graph.
    func testDiamondAndReuse() {
        assertGradientsMatch([normal([2, 3], 1), normal([3], 2)]) { v in
            let a = v[0] * v[1]
            let b = a.tanh() + a * a + v[1]
            return (b * a).sum(axes: [0]) + v[1].exp()
        }
    }
}

final class ReductionAndShapeGradientTests: XCTestCase {
    func testReductions() {
        let x = { spread([2, 3, 4], 21) }
        assertGradientsMatch([x()]) { $0[0].sum() }
        assertGradientsMatch([x()]) { $0[0].sum(axes: [1]) }
        assertGradientsMatch([x()]) { $0[0].sum(axes: [0, 2], keepDims: true) }
        assertGradientsMatch([x()]) { $0[0].mean(axes: [-1]) }
        assertGradientsMatch([x()]) { $0[0].mean() }
        assertGradientsMatch([x()]) { $0[0].max(axes: [1]) }
        assertGradientsMatch([x()]) { $0[0].max(axes: [0, 2]) }
        assertGradientsMatch([x()]) { $0[0].min(axes: [2], keepDims: true) }
        assertGradientsMatch([x()]) { $0[0].max() }
        assertGradientsMatch([x()]) { $0[0].variance(axes: [0, 2]) }
        assertGradientsMatch([x()]) { $0[0].variance(unbiased: true) }
        assertGradientsMatch([x()]) { $0[0].cumulativeSum(axis: 1) }
        assertGradientsMatch([x()]) { $0[0].cumulativeSum(axis: -1) * $0[0] }
        XCTAssertEqual(Tensor(shape: [2, 3], data: [1, 2, 3, 4, 5, 6]).cumulativeSum(axis: 1).scalars, [1, 3, 6, 4, 9, 15])
    }

    func testShapeOps() {
        let x = { normal([2, 3, 4], 31) }
        assertGradientsMatch([x()]) { $0[0].reshaped(to: [4, -1]) * 2 }
        assertGradientsMatch([x()]) { $0[0].permuted([2, 0, 1]) }
        assertGradientsMatch([x()]) { $0[0].transposed(0, 2) }
        assertGradientsMatch([x()]) { $0[0].sliced(axis: 1, 1..<3) }
        assertGradientsMatch([x()]) { $0[0][1] }
        assertGradientsMatch([x()]) { $0[0].padded([(0, 0), (1, 2), (2, 0)], value: 0.5) }
        assertGradientsMatch([x()]) { $0[0].flattened().unsqueezed(axis: 1).squeezed() }
        assertGradientsMatch([normal([2, 3], 1), normal([2, 2], 2)]) { Tensor.concatenate([$0[0], $0[1], $0[0]], axis: 1) }
        assertGradientsMatch([normal([2, 3], 3), normal([2, 3], 4)]) { Tensor.stack([$0[0], $0[1]], axis: 1) }
        assertGradientsMatch([x()]) { $0[0].indexSelected(axis: 1, [2, 0, 2]) }
        assertGradientsMatch([x()]) { $0[0].indexSelected(axis: -1, [3, 1]) * $0[0].indexSelected(axis: -1, [0, 0]) }
        XCTAssertEqual(Tensor(shape: [2, 3], data: [1, 2, 3, 4, 5, 6]).indexSelected(axis: 1, [2, 0]).scalars, [3, 1, 6, 4])
        for view in 0..<8 { assertGradientsMatch([normal([2, 3, 3], 5)]) { $0[0].dihedralView(view) * $0[0] } }
    }

    /// The 8 views of a 2 × 2 image [[a, b], [c, d]] are its 8 symmetries, and views 5 and 6
    /// rotate by 90° one way and the other.
    func testDihedralViewsAreTheSquaresSymmetries() {
        let x = Tensor(shape: [1, 2, 2], data: [1, 2, 3, 4])
        let views = (0..<8).map { x.dihedralView($0).scalars }
        XCTAssertEqual(views[0], [1, 2, 3, 4])
        XCTAssertEqual(views[1], [2, 1, 4, 3])
        XCTAssertEqual(views[3], [4, 3, 2, 1])
        XCTAssertEqual(views[4], [1, 3, 2, 4])
        XCTAssertEqual(views[5], [3, 1, 4, 2])
        XCTAssertEqual(views[6], [2, 4, 1, 3])
        XCTAssertEqual(Set(views.map { $0.map(Int.init) }).count, 8)
        XCTAssertEqual(x.dihedralView(5).dihedralView(6).scalars, x.scalars)
    }

    /// Random spline knots `[rows, 5]` (increasing in x and y on [-2, 2], positive derivatives
    /// with 1 at the ends) and inputs in the bins and in both tails.
    private func splineInputs(rows: Int, seed: UInt64) -> [Tensor] {
        var rng = SeededGenerator(seed: seed)
        var kx = [Float](), ky = [Float](), kd = [Float](), x = [Float]()
        for r in 0..<rows {
            for knots in [0, 1] {
                var sizes = (0..<4).map { _ in 0.3 + rng.nextUnit() }
                let total = sizes.reduce(0, +)
                sizes = sizes.map { $0 / total * 4 }
                var position: Float = -2
                var values: [Float] = [position]
                for s in sizes.dropLast() { position += s; values.append(position) }
                values.append(2)
                if knots == 0 { kx += values } else { ky += values }
            }
            kd += [1] + (0..<3).map { _ in 0.3 + 2 * rng.nextUnit() } + [1]
            x.append(r == 0 ? -2.6 : r == 1 ? 2.3 : -1.9 + 3.8 * rng.nextUnit())
        }
        return [Tensor(x), Tensor(shape: [rows, 5], data: kx), Tensor(shape: [rows, 5], data: ky),
                Tensor(shape: [rows, 5], data: kd)]
    }

    /// The fused spline: both outputs (values and log-derivatives), forward and inverse, with
    /// respect to the input and all knots; the inverse undoes the forward, and the forward
    /// passes through the knots.
    func testRationalQuadraticSpline() {
        for inverse in [false, true] {
            assertGradientsMatch(splineInputs(rows: 8, seed: 1), epsilon: 1e-3) {
                $0[0].rationalQuadraticSpline(knotsX: $0[1], knotsY: $0[2], derivatives: $0[3], inverse: inverse)
            }
        }
        let t = splineInputs(rows: 64, seed: 2)
        let forward = t[0].rationalQuadraticSpline(knotsX: t[1], knotsY: t[2], derivatives: t[3])
        let y = forward.sliced(axis: 1, 0..<1).reshaped(to: [64])
        let back = y.rationalQuadraticSpline(knotsX: t[1], knotsY: t[2], derivatives: t[3], inverse: true)
        assertClose(back.sliced(axis: 1, 0..<1).reshaped(to: [64]), t[0], relativeTolerance: 1e-5, absoluteTolerance: 1e-5, "inverse")
        assertClose(back.sliced(axis: 1, 1..<2), -forward.sliced(axis: 1, 1..<2), relativeTolerance: 1e-4,
                    absoluteTolerance: 1e-5, "inverse log-derivative")
        XCTAssertEqual(Array(forward.scalars[0..<4]), [-2.6, 0, 2.3, 0], "identity tails")
        let atKnots = t[1].sliced(axis: 1, 2..<3).reshaped(to: [64])
            .rationalQuadraticSpline(knotsX: t[1], knotsY: t[2], derivatives: t[3])
        assertClose(atKnots.sliced(axis: 1, 0..<1), t[2].sliced(axis: 1, 2..<3), relativeTolerance: 1e-5,
                    absoluteTolerance: 1e-5, "through the knots")
        assertClose(atKnots.sliced(axis: 1, 1..<2).exp(), t[3].sliced(axis: 1, 2..<3), relativeTolerance: 1e-4,
                    absoluteTolerance: 1e-5, "derivative at the knots")
    }

    func testMatmul() {
        assertGradientsMatch([normal([3, 4], 1), normal([4, 5], 2)]) { $0[0].matmul($0[1]) }
        assertGradientsMatch([normal([2, 3, 4], 3), normal([4, 2], 4)]) { $0[0].matmul($0[1]) }
        assertGradientsMatch([normal([2, 3, 4], 5), normal([2, 4, 2], 6)]) { $0[0].matmul($0[1]) }
        // Non-contiguous operands: transposed inputs are materialised by the op chain.
        assertGradientsMatch([normal([4, 3], 7), normal([5, 4], 8)]) { $0[0].transposed().matmul($0[1].transposed()) }
    }
}

final class LayerGradientTests: XCTestCase {
    func testConv2d() { forEachConvolutionBackend { _ in
        let configs: [(Size2, Padding, Size2, [Int], [Int])] = [
            (1, 1, 1, [2, 2, 5, 5], [3, 2, 3, 3]),
            (2, .explicit(Size2(1, 0)), 1, [2, 2, 6, 5], [2, 2, 3, 2]),
            (1, .same, 2, [1, 2, 6, 6], [2, 2, 3, 3]),
            (Size2(2, 1), .same, 1, [2, 1, 5, 6], [2, 1, 4, 4]),
            (1, .valid, 1, [3, 3, 3, 3], [2, 3, 1, 1]),
        ]
        for (i, (stride, padding, dilation, xs, ws)) in configs.enumerated() {
            assertGradientsMatch([normal(xs, UInt64(i)), normal(ws, UInt64(i + 10), scale: 0.5), normal([ws[0]], 99)]) {
                $0[0].conv2d(weight: $0[1], bias: $0[2], stride: stride, padding: padding, dilation: dilation)
            }
        }
        // Small maps batched into one sgemm (group path), and a permuted (non-contiguous) input.
        assertGradientsMatch([normal([6, 2, 2, 2], 40), normal([3, 2, 2, 2], 41)]) {
            $0[0].conv2d(weight: $0[1], padding: 1)
        }
        assertGradientsMatch([normal([2, 5, 4, 2], 42), normal([2, 2, 3, 3], 43)]) {
            $0[0].permuted([0, 3, 1, 2]).conv2d(weight: $0[1], padding: 1)
        }
    } }

    func testTransposedConv2d() { forEachConvolutionBackend { _ in
        assertGradientsMatch([normal([2, 3, 3, 3], 1), normal([3, 2, 2, 2], 2), normal([2], 3)]) {
            $0[0].transposedConv2d(weight: $0[1], bias: $0[2], stride: 2)
        }
        assertGradientsMatch([normal([1, 2, 3, 4], 4), normal([2, 3, 3, 3], 5)]) {
            $0[0].transposedConv2d(weight: $0[1], stride: 2, padding: 1, outputPadding: 1, dilation: 1)
        }
    } }

    /// Images of 4 MiB and more run one per oneDNN call (`DNNLScratch.argumentBytesPerCall`):
    /// with 3 images on 2 workers, one worker makes two calls and adds their weight gradients.
    /// Same values and gradients as the im2col backend.
    func testLargeImagesInSeveralCallsPerWorker() {
        let x = Tensor.randomNormal([3, 4, 512, 512], seed: 1)
        let w = Tensor.randomNormal([4, 4, 3, 3], standardDeviation: 0.2, seed: 2)
        let up = Tensor.randomNormal([4, 2, 2, 2], standardDeviation: 0.2, seed: 3)
        let gOut = Tensor.randomNormal([3, 4, 512, 512], seed: 4), gUp = Tensor.randomNormal([3, 2, 1024, 1024], seed: 5)
        var results: [[[Float]]] = []
        forEachConvolutionBackend { _ in
            let (xi, wi, ui) = (x.copy(), w.copy(), up.copy())
            for t in [xi, wi, ui] { t.requiresGrad = true }
            let y = xi.conv2d(weight: wi, padding: 1)
            let z = xi.transposedConv2d(weight: ui, stride: 2)
            ((y * gOut).sum() + (z * gUp).sum()).backward()
            results.append([y.scalars, z.scalars, xi.grad!.scalars, wi.grad!.scalars, ui.grad!.scalars])
        }
        guard results.count == 2 else { return }   // no oneDNN here
        for (name, (a, b)) in zip(["conv", "transposed conv", "input gradient", "weight gradient", "up weight gradient"],
                                  zip(results[0], results[1])) {
            let scale = a.map(abs).max() ?? 1
            let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
            XCTAssertLessThan(worst, 1e-3 * max(scale, 1), "\(name): im2col and oneDNN differ by \(worst)")
        }
    }

    func testPoolingAndUpsampling() {
        assertGradientsMatch([spread([2, 2, 4, 4], 1)]) { $0[0].maxPool2d(kernelSize: 2) }
        assertGradientsMatch([spread([1, 2, 5, 5], 2)]) { $0[0].maxPool2d(kernelSize: 3, stride: 2, padding: 1) }
        assertGradientsMatch([normal([2, 2, 4, 5], 3)]) { $0[0].avgPool2d(kernelSize: Size2(2, 3), stride: 1, padding: 1) }
        assertGradientsMatch([normal([2, 3, 3, 2], 4)]) { $0[0].globalAvgPool2d() }
        assertGradientsMatch([normal([1, 2, 2, 3], 5)]) { $0[0].upsampledNearest(scale: 2) }
        assertGradientsMatch([normal([1, 2, 2, 3], 7)]) { $0[0].upsampledNearest(scale: 3) }
        assertGradientsMatch([normal([1, 2, 3, 3], 6)]) { $0[0].upsampledBilinear(scale: 2) }
    }

    func testBatchNorm() {
        for training in [true, false] {
            let rm = Tensor([0.1, -0.2, 0.3]), rv = Tensor([1.5, 0.7, 1.1])
            assertGradientsMatch([normal([3, 3, 2, 2], 1, scale: 2), positive([3], 2), normal([3], 3)],
                                 relativeTolerance: 2e-2, absoluteTolerance: 2e-3) {
                $0[0].batchNorm(weight: $0[1], bias: $0[2], runningMean: rm.copy(), runningVariance: rv.copy(), training: training)
            }
        }
        assertGradientsMatch([normal([5, 4], 4)], relativeTolerance: 2e-2, absoluteTolerance: 2e-3) {
            $0[0].batchNorm(weight: nil, bias: nil, runningMean: nil, runningVariance: nil, training: true)
        }
    }

    /// A ReLU after batch norm is recomputed in the backward pass (its mask for the ReLU's
    /// gradient, its values for the next convolution's weight gradient): the gradients equal
    /// those of the same ReLU kept (`+ 0` hides the batch norm from the ReLU), planes of 35
    /// values covering the vector loops and their tails.
    func testReLUAfterBatchNormRecomputedGivesTheKeptGradients() {
        func gradients(hidden: Bool) -> [[Float]] {
            let x = normal([2, 3, 5, 7], 1, scale: 2), w = positive([3], 2), b = normal([3], 3)
            let k = normal([4, 3, 3, 3], 4)
            for t in [x, w, b, k] { t.requiresGrad = true }
            var y = x.batchNorm(weight: w, bias: b, runningMean: nil, runningVariance: nil, training: true)
            if hidden { y = y + 0 }
            let out = y.relu().conv2d(weight: k, padding: 1)
            out.backward(gradient: Tensor.randomNormal(out.shape, seed: 9))
            return [x, w, b, k].map { $0.grad!.scalars }
        }
        for (recomputed, kept) in zip(gradients(hidden: false), gradients(hidden: true)) {
            XCTAssertEqual(recomputed.count, kept.count)
            for (a, b) in zip(recomputed, kept) { XCTAssertEqual(a, b, accuracy: 1e-5 * max(1, abs(b))) }
        }
    }

    /// Nearest up-sampling of many planes (the threaded path): every output pixel is its input
    /// pixel, every input gradient the sum of its block, against plain loops.
    func testNearestUpsamplingOfManyPlanesMatchesLoops() {
        for scale in [2, 3] {
            let x = normal([2, 40, 9, 11], UInt64(scale), scale: 1)
            x.requiresGrad = true
            let y = x.upsampledNearest(scale: scale)
            let (h, w, oh, ow) = (9, 11, 9 * scale, 11 * scale)
            XCTAssertEqual(y.shape, [2, 40, oh, ow])
            let g = Tensor.randomNormal(y.shape, seed: 3)
            y.backward(gradient: g)
            let xs = x.scalars, ys = y.scalars, gs = g.scalars, dx = x.grad!.scalars
            for p in 0..<80 { for oy in 0..<oh { for ox in 0..<ow {
                XCTAssertEqual(ys[(p * oh + oy) * ow + ox], xs[(p * h + oy / scale) * w + ox / scale])
            } } }
            for p in 0..<80 { for iy in 0..<h { for ix in 0..<w {
                var sum: Float = 0
                for ky in 0..<scale { for kx in 0..<scale { sum += gs[(p * oh + iy * scale + ky) * ow + ix * scale + kx] } }
                XCTAssertEqual(dx[(p * h + iy) * w + ix], sum, accuracy: 1e-5)
            } } }
        }
    }

    func testDropout() {
        assertGradientsMatch([normal([4, 5], 1)]) { x in
            var rng = SeededGenerator(seed: 5)
            return x[0].dropout(probability: 0.3, generator: &rng)
        }
    }
}

final class LossGradientTests: XCTestCase {
    func testRegressionLosses() {
        let t = normal([3, 4], 100)
        assertGradientsMatch([normal([3, 4], 1)]) { Loss.meanSquaredError($0[0], t) }
        assertGradientsMatch([normal([3, 4], 2)]) { Loss.meanAbsoluteError($0[0], t) }
        assertGradientsMatch([normal([3, 4], 3)]) { Loss.huber($0[0], t, delta: 0.5) }
        assertGradientsMatch([normal([3, 4], 4), normal([3, 4], 5, scale: 0.5)]) {
            Loss.gaussianNegativeLogLikelihood(mean: $0[0], logVariance: $0[1], target: t)
        }
    }

    func testClassificationLosses() {
        let labels = [0, 3, 1, 2, 3]
        assertGradientsMatch([normal([5, 4], 1)]) { Loss.crossEntropy(logits: $0[0], labels: labels) }
        assertGradientsMatch([normal([5, 4], 2)]) {
            Loss.crossEntropy(logits: $0[0], labels: labels, classWeights: Tensor([1, 2, 0.5, 1.5]), labelSmoothing: 0.1)
        }
        let withOutside = [0, OutsideClass.label, 1, 2, OutsideClass.label]
        assertGradientsMatch([normal([5, 4], 7)]) {
            Loss.crossEntropy(logits: $0[0], labels: withOutside, classWeights: Tensor([1, 2, 0.5, 1.5]), outsideWeight: 0.5)
        }
        let probs = normal([5, 4], 3).softmax(axis: 1).detached()
        assertGradientsMatch([normal([5, 4], 4)]) {
            Loss.crossEntropy(logits: $0[0], probabilities: probs, classWeights: Tensor([1, 2, 0.5, 1.5]), labelSmoothing: 0.1)
        }
        let targets = Tensor(shape: [2, 3], data: [1, 0, 1, 0, 0, 1])
        assertGradientsMatch([normal([2, 3], 5, scale: 2)]) { Loss.binaryCrossEntropy(logits: $0[0], targets: targets) }
        assertGradientsMatch([normal([2, 3], 6, scale: 2)]) {
            Loss.binaryCrossEntropy(logits: $0[0], targets: targets, positiveWeight: 3)
        }
    }

    func testSegmentationLosses() {
        let labels = [0, 1, 2, 2, 1, 0, 0, 2, 1, 1, 0, 2, 2, 1, 0, 0, 1, 2]
        assertGradientsMatch([normal([2, 3, 3, 3], 1)]) { Loss.crossEntropy(logits: $0[0], labels: labels) }
        assertGradientsMatch([normal([2, 3, 3, 3], 2)]) { Loss.softDice(logits: $0[0], labels: labels) }
    }
}
