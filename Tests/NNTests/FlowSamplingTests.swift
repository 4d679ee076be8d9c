// The inference sampler of flows (Flows+Sampling.swift, FlowKernels): the same draws as the
// autograd path for spline and affine couplings, permutations and ActNorm, conditional and
// not, across blocks and workers; the spline kernel inverts the spline op.
import Autograd
import Foundation
@testable import NN
import TestSupport
import XCTest

final class FlowSamplingTests: XCTestCase {
    /// Conditioner outputs scaled up, so the splines are far from the identity and the affine
    /// scales far from 1 (freshly initialised conditioners give nearly identity maps).
    static func sharpened(_ flow: Flow, seed: UInt64) -> Flow {
        for (i, t) in flow.transforms.enumerated() {
            guard let c = t as? CouplingTransform, let last = c.conditioner.layers.last as? Dense else { continue }
            last.weight.assign(last.weight * 4)
            last.bias?.assign(Tensor.randomNormal(last.bias!.shape, standardDeviation: 1.5, seed: seed &+ UInt64(i)))
        }
        return flow
    }

    /// The sampler against the autograd path (`sample(perContext:)` outside `withNoGrad`), with
    /// the same generator seed: the same normal draws, so the same samples.
    func assertSamplerMatchesAutograd(_ flow: Flow, context: Tensor?, count: Int, _ name: String,
                                      file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertNotNil(FlowSamplingPlan(flow), "\(name): the sampler handles this flow", file: file, line: line)
        var g1 = SeededGenerator(seed: 11), g2 = SeededGenerator(seed: 11), g3 = SeededGenerator(seed: 11)
        let fast = withNoGrad { flow.sample(perContext: count, context: context, generator: &g1) }
        let reference = flow.sample(perContext: count, context: context, generator: &g2).detached()
        let rows = (context?.shape[0] ?? 1) * count
        XCTAssertEqual(fast.shape, [rows, flow.features], name, file: file, line: line)
        assertClose(fast, reference, relativeTolerance: 1e-4, absoluteTolerance: 1e-4, name, file: file, line: line)
        // The flow moved the draws (a test of an identity map would prove nothing).
        let base = Tensor.randomNormal([rows, flow.features], generator: &g3)
        let moved = zip(fast.scalars, base.scalars).filter { abs($0 - $1) > 0.05 }.count
        XCTAssertGreaterThan(moved, rows * flow.features / 2, "\(name): draws moved", file: file, line: line)
    }

    /// A conditional spline coupling flow as the posterior model builds it: 3 contexts × 300
    /// draws (blocks of 256 rows straddle contexts; two workers).
    func testConditionalSplineFlow() {
        let saved = Threading.workerCount
        defer { Threading.workerCount = saved }
        Threading.workerCount = 2
        let settings = FlowSettings(features: 4, layers: 6, hidden: [16, 16], transform: .spline, bins: 8, tailBound: 3)
        let flow = Self.sharpened(Flow.posterior(settings, contextFeatures: 5, seed: 3), seed: 40)
        let context = Tensor.randomNormal([3, 5], standardDeviation: 2, seed: 4)
        assertSamplerMatchesAutograd(flow, context: context, count: 300, "conditional spline")
        // Each context's draws differ from the others' (its bias was used, not a neighbour's).
        var g = SeededGenerator(seed: 5)
        let one = withNoGrad { flow.sample(perContext: 300, context: context.sliced(axis: 0, 1..<2), generator: &g) }
        var g2 = SeededGenerator(seed: 5)
        let first = withNoGrad { flow.sample(perContext: 300, context: context, generator: &g2) }.sliced(axis: 0, 0..<300)
        XCTAssertGreaterThan(zip(one.scalars, first.scalars).map { abs($0 - $1) }.max()!, 0.1)
    }

    /// The posterior flow with its location-scale layer: the identity when built (the flow
    /// gives the same log-probabilities as without it), then, sharpened, the sampler's draws
    /// equal the autograd path's and each context moves them as a whole.
    func testLocationScaleLayer() {
        let plain = FlowSettings(features: 4, layers: 2, hidden: [16], transform: .spline, bins: 4, tailBound: 3)
        var settings = plain
        settings.locationScale = true
        let with = Flow.posterior(settings, contextFeatures: 5, seed: 3), without = Flow.posterior(plain, contextFeatures: 5, seed: 3)
        XCTAssertEqual(with.transforms.count, 3)
        let x = Tensor.randomNormal([6, 4], seed: 8), context = Tensor.randomNormal([6, 5], seed: 9)
        let a = withNoGrad { with.logProbability(x, context: context) }.scalars
        let b = withNoGrad { without.logProbability(x, context: context) }.scalars
        for (u, v) in zip(a, b) { XCTAssertEqual(u, v, accuracy: 1e-5) }
        let flow = Self.sharpened(with, seed: 50)
        // Zero-initialised, the location-scale layer's last weights come out of `sharpened` at
        // zero: random ones (scales e^±1), so the context moves the draws through them too.
        let last = (flow.transforms[2] as! CouplingTransform).conditioner.layers.last as! Dense
        last.weight.assign(Tensor.randomNormal(last.weight.shape, standardDeviation: 0.3, seed: 51))
        last.bias?.assign(Tensor.randomNormal(last.bias!.shape, standardDeviation: 0.5, seed: 52))
        assertSamplerMatchesAutograd(flow, context: Tensor.randomNormal([3, 5], standardDeviation: 2, seed: 4), count: 300,
                                     "location-scale")
    }

    /// An unconditional flow with ActNorm, affine couplings, a random permutation and a
    /// one-layer conditioner.
    func testUnconditionalAffineFlowWithActNormAndPermutation() {
        let actNorm = ActNorm(features: 3)
        actNorm.initialize(from: Tensor.randomNormal([32, 3], mean: 0.7, standardDeviation: 2.5, seed: 6))
        let flow = Self.sharpened(Flow(features: 3, transforms: [
            actNorm,
            CouplingTransform(features: 3, mask: [true, false, true], transform: .affine(logScaleBound: 2),
                              hiddenFeatures: [8, 8], seed: 7),
            Permutation(features: 3, seed: 8),
            CouplingTransform(features: 3, mask: [false, true, false], transform: .rationalQuadraticSpline(bins: 5, tailBound: 2),
                              hiddenFeatures: [], seed: 9),
        ]), seed: 50)
        assertSamplerMatchesAutograd(flow, context: nil, count: 700, "unconditional affine")
    }

    /// A flow with a layer the sampler does not handle (MAF) takes the autograd path.
    func testMaskedAutoregressiveFallsBack() {
        let flow = Flow.maskedAutoregressive(features: 2, contextFeatures: 1, layers: 2, hiddenFeatures: [8], seed: 1)
        XCTAssertNil(FlowSamplingPlan(flow))
        var g1 = SeededGenerator(seed: 3), g2 = SeededGenerator(seed: 3)
        let context = Tensor(shape: [2, 1], data: [0.5, -1])
        let a = withNoGrad { flow.sample(perContext: 10, context: context, generator: &g1) }
        let b = withNoGrad { flow.sample(20, context: context.indexSelected(axis: 0, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                                                                   1, 1, 1, 1, 1, 1, 1, 1, 1, 1]),
                                         generator: &g2) }
        XCTAssertEqual(a.scalars, b.scalars)
    }

    /// The spline kernel inverts the spline op on the same raw parameters, inside the interval
    /// and in the tails: the op's forward map takes the kernel's result back to `y` (to 2e-4:
    /// bins with slopes up to ~1,000 turn float rounding of `x` into that), and where the map
    /// is not flat (slope ≥ 0.1, so rounding of `y` cannot move `x` far) the kernel returns
    /// the original `x`. A wrong bin or knot is off by far more. Both paths: the portable
    /// Swift loop and, where the CPU has it, the AVX-512 kernel (a count that is not a multiple
    /// of its 16 lanes, and the shipped posterior's 8 bins).
    func testSplineKernelInvertsTheSplineOp() {
        let saved = AVX512Kernels.enabled
        defer { AVX512Kernels.enabled = saved }
        for vectorised in saved ? [false, true] : [false] {
            AVX512Kernels.enabled = vectorised
            for (bins, m) in [(6, 500), (8, 1_003), (1, 37)] {
                checkSplineKernel(bins: bins, count: m, "\(vectorised ? "AVX-512" : "portable"), \(bins) bins")
            }
        }
    }

    /// The AVX-512 kernel and the portable loop agree where the map is not flat, and leave
    /// the tails and NaN alone.
    func testSplineKernelPathsAgree() throws {
        try XCTSkipUnless(AVX512Kernels.enabled, "no AVX-512 kernels on this CPU")
        defer { AVX512Kernels.enabled = true }
        let bins = 8, bound: Float = 5, m = 4_001
        let transform = ElementwiseTransform.rationalQuadraticSpline(bins: bins, tailBound: bound)
        let parameters = Tensor.randomNormal([m, transform.parameterCount], standardDeviation: 3, seed: 21)
        var y = Tensor.randomNormal([m], standardDeviation: 3, seed: 22).scalars
        y[5] = .nan; y[6] = bound; y[7] = -bound; y[8] = bound * 1.5
        func inverted(_ vectorised: Bool) -> [Float] {
            AVX512Kernels.enabled = vectorised
            var values = y
            values.withUnsafeMutableBufferPointer { v in
                FlowKernels.rationalQuadraticSplineInverse(
                    v.baseAddress!, count: m, parameters: parameters.storage.pointer,
                    parameterStride: transform.parameterCount, bins: bins, tailBound: bound,
                    minimumWidth: ElementwiseTransform.minimumBinWidth, minimumHeight: ElementwiseTransform.minimumBinHeight,
                    minimumDerivative: ElementwiseTransform.minimumDerivative)
            }
            return values
        }
        let portable = inverted(false), vector = inverted(true)
        XCTAssertTrue(vector[5].isNaN)
        XCTAssertEqual(vector[8], bound * 1.5)
        XCTAssertEqual(vector[6], bound, accuracy: 1e-5)
        XCTAssertEqual(vector[7], -bound, accuracy: 1e-5)
        let slope = withNoGrad { transform.apply(Tensor(portable.map { $0.isNaN ? 0 : $0 }), parameters: parameters,
                                                 inverse: false).logDerivative.scalars }
        var compared = 0, worst: Float = 0
        for i in 0..<m where !y[i].isNaN && slope[i] > Foundation.log(0.1) {
            worst = max(worst, abs(portable[i] - vector[i]) / max(1, abs(portable[i])))
            compared += 1
        }
        XCTAssertGreaterThan(compared, m / 2)
        XCTAssertLessThan(worst, 1e-4, "largest difference of the two paths where the slope is ≥ 0.1")
    }

    private func checkSplineKernel(bins: Int, count m: Int, _ name: String) {
        let bound: Float = 2.5
        let transform = ElementwiseTransform.rationalQuadraticSpline(bins: bins, tailBound: bound)
        let parameters = Tensor.randomNormal([m, transform.parameterCount], standardDeviation: 2, seed: 12)
        let x = Tensor.randomNormal([m], standardDeviation: 1.8, seed: 13)
        let (y, logSlope) = withNoGrad { transform.apply(x, parameters: parameters, inverse: false) }
        var values = y.scalars
        values.withUnsafeMutableBufferPointer { v in
            FlowKernels.rationalQuadraticSplineInverse(
                v.baseAddress!, count: m, parameters: parameters.storage.pointer, parameterStride: transform.parameterCount,
                bins: bins, tailBound: bound, minimumWidth: ElementwiseTransform.minimumBinWidth,
                minimumHeight: ElementwiseTransform.minimumBinHeight, minimumDerivative: ElementwiseTransform.minimumDerivative)
        }
        let back = withNoGrad { transform.apply(Tensor(values), parameters: parameters, inverse: false).output }
        assertClose(back, y, relativeTolerance: 1e-5, absoluteTolerance: 2e-4, "\(name): forward map of the kernel's inverse")
        let steep = (0..<m).filter { logSlope.scalars[$0] > Foundation.log(0.1) }
        XCTAssertGreaterThan(steep.count, m / 3, name)
        assertClose(Tensor(steep.map { values[$0] }), Tensor(steep.map { x.scalars[$0] }),
                    relativeTolerance: 1e-4, absoluteTolerance: 1e-4, "\(name): kernel inverse where the slope is ≥ 0.1")
        XCTAssertGreaterThan(x.scalars.filter { abs($0) > bound }.count, m / 50, "\(name): some values in the tails")
    }
}
