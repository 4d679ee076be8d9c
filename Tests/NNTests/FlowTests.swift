// Flow layers: PyTorch-library parity (nflows spline and spline coupling, zuko affine
// coupling), numerical gradients of outputs and log-determinants, log-determinants against
// the numerical Jacobian, inverses, MADE's autoregressive structure, ActNorm's
// initialisation, saving and loading, sampling.
import Autograd
import Foundation
@testable import NN
import TestSupport
import XCTest

final class FlowTests: XCTestCase {
    /// Made by Fixtures/make_flow_fixtures.py (versions in the file).
    static let fixture: [String: Any] = {
        let url = Fixtures.url("flow_fixtures.json")
        return try! JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    }()

    static func tensor(_ object: Any?) -> Tensor {
        let d = object as! [String: Any]
        return Tensor(shape: (d["shape"] as! [Int]), data: (d["data"] as! [Double]).map(Float.init))
    }

    // MARK: - PyTorch libraries

    /// nflows' `unconstrained_rational_quadratic_spline`: values, log-determinants, inverse
    /// and the gradients with respect to the input and the three unnormalised parameter sets.
    func testSplineMatchesNflows() {
        let fx = Self.fixture["spline"] as! [String: Any]
        let k = fx["bins"] as! Int, bound = Float(fx["tailBound"] as! Double)
        let x = Self.tensor(fx["x"]), w = Self.tensor(fx["widths"]), h = Self.tensor(fx["heights"])
        let d = Self.tensor(fx["derivatives"])
        for t in [x, w, h, d] { t.requiresGrad = true }
        let transform = ElementwiseTransform.rationalQuadraticSpline(bins: k, tailBound: bound)
        let (y, logDet) = transform.apply(x, parameters: Tensor.concatenate([w, h, d], axis: 1), inverse: false)
        assertMatches(y, Self.tensor(fx["y"]), relative: 1e-5, "spline y")
        assertMatches(logDet, Self.tensor(fx["logdet"]), relative: 1e-4, "spline log-determinant")
        ((y * Self.tensor(fx["r"])).sum() + (logDet * Self.tensor(fx["q"])).sum()).backward()
        assertMatches(x.grad!, Self.tensor(fx["gradX"]), relative: 1e-4, "d/dx")
        assertMatches(w.grad!, Self.tensor(fx["gradWidths"]), relative: 1e-3, "d/dwidths")
        assertMatches(h.grad!, Self.tensor(fx["gradHeights"]), relative: 1e-3, "d/dheights")
        assertMatches(d.grad!, Self.tensor(fx["gradDerivatives"]), relative: 1e-3, "d/dderivatives")
        let (back, inverseLogDet) = withNoGrad {
            transform.apply(Self.tensor(fx["y"]), parameters: Tensor.concatenate([w, h, d], axis: 1), inverse: true)
        }
        assertMatches(back, Self.tensor(fx["inverse"]), relative: 1e-4, "spline inverse")
        assertMatches(inverseLogDet, Self.tensor(fx["inverseLogdet"]), relative: 1e-3, "spline inverse log-determinant")
    }

    /// nflows' `PiecewiseRationalQuadraticCouplingTransform` with a context, same weights.
    func testSplineCouplingMatchesNflows() throws {
        let fx = Self.fixture["splineCoupling"] as! [String: Any]
        let layer = CouplingTransform(features: 3, contextFeatures: 2, mask: fx["mask"] as? [Bool],
                                      transform: .rationalQuadraticSpline(bins: fx["bins"] as! Int,
                                                                          tailBound: Float(fx["tailBound"] as! Double)),
                                      hiddenFeatures: fx["hidden"] as! [Int], seed: 1)
        try checkCoupling(layer, fx, "nflows spline coupling")
    }

    /// zuko's `GeneralCouplingTransform` with `MonotonicAffineTransform` and a context.
    func testAffineCouplingMatchesZuko() throws {
        let fx = Self.fixture["affineCoupling"] as! [String: Any]
        let layer = CouplingTransform(features: 3, contextFeatures: 2, mask: fx["mask"] as? [Bool],
                                      transform: .affine(logScaleBound: Float(fx["logScaleBound"] as! Double)),
                                      hiddenFeatures: fx["hidden"] as! [Int], seed: 1)
        try checkCoupling(layer, fx, "zuko affine coupling")
    }

    private func checkCoupling(_ layer: CouplingTransform, _ fx: [String: Any], _ name: String,
                               file: StaticString = #filePath, line: UInt = #line) throws {
        let weights = (fx["weights"] as! [String: Any]).mapValues { Self.tensor($0) }
        try layer.load(stateDict: weights)
        let x = Self.tensor(fx["x"]), c = Self.tensor(fx["context"])
        x.requiresGrad = true; c.requiresGrad = true
        let (y, logDet) = layer.forward(x, context: c)
        assertMatches(y, Self.tensor(fx["y"]), relative: 1e-5, "\(name): y", file: file, line: line)
        assertMatches(logDet, Self.tensor(fx["logdet"]), relative: 1e-4, "\(name): log-determinant", file: file, line: line)
        ((y * Self.tensor(fx["r"])).sum() + (logDet * Self.tensor(fx["q"])).sum()).backward()
        assertMatches(x.grad!, Self.tensor(fx["gradX"]), relative: 1e-4, "\(name): d/dx", file: file, line: line)
        assertMatches(c.grad!, Self.tensor(fx["gradContext"]), relative: 1e-4, "\(name): d/dcontext", file: file, line: line)
        let grads = (fx["gradWeights"] as! [String: Any]).mapValues { Self.tensor($0) }
        for (key, tensor) in layer.namedParameters() {
            assertMatches(tensor.grad!, grads[key]!, relative: 1e-4, "\(name): d/d\(key)", file: file, line: line)
        }
        let back = withNoGrad { layer.inverse(Self.tensor(fx["y"]), context: Self.tensor(fx["context"])) }
        assertMatches(back, Self.tensor(fx["inverse"]), relative: 1e-4, "\(name): inverse", file: file, line: line)
    }

    // MARK: - Every layer: gradients, Jacobian determinants, inverses

    /// The layers under test, 3 features and a 2-vector context where the layer takes one.
    static func layers() -> [(name: String, layer: any Bijection, context: Bool)] {
        let actNorm = ActNorm(features: 3)
        actNorm.initialize(from: Tensor.randomNormal([16, 3], mean: 0.5, standardDeviation: 2, seed: 9))
        return [
            ("affine coupling", CouplingTransform(features: 3, contextFeatures: 2, mask: [true, false, true],
                                                  transform: .affine(logScaleBound: 2), hiddenFeatures: [8], seed: 1), true),
            ("spline coupling", CouplingTransform(features: 3, contextFeatures: 2, mask: [false, true, false],
                                                  transform: .rationalQuadraticSpline(bins: 4, tailBound: 2),
                                                  hiddenFeatures: [8], seed: 2), true),
            ("location-scale (context only)", CouplingTransform(features: 3, contextFeatures: 2, mask: [true, true, true],
                                                               transform: .affine(logScaleBound: 2), hiddenFeatures: [8], seed: 6), true),
            ("MAF affine", MaskedAutoregressiveTransform(features: 3, contextFeatures: 2, hiddenFeatures: [8, 8], seed: 3), true),
            ("MAF spline", MaskedAutoregressiveTransform(features: 3, transform: .rationalQuadraticSpline(bins: 3, tailBound: 2),
                                                         hiddenFeatures: [8], seed: 4), false),
            ("permutation", Permutation(features: 3, seed: 5), false),
            ("reverse", Permutation.reverse(features: 3), false),
            ("ActNorm", actNorm, false),
        ]
    }

    /// Inputs spanning the spline interval and its tails; the context.
    static func inputs(count n: Int = 4) -> (Tensor, Tensor) {
        (Tensor.randomNormal([n, 3], standardDeviation: 1.3, seed: 21), Tensor.randomNormal([n, 2], seed: 22))
    }

    /// Output and log-determinant against central differences, with respect to the input, the
    /// context and every parameter.
    func testGradientsOfOutputsAndLogDeterminants() {
        for (name, layer, takesContext) in Self.layers() {
            let (x, c) = Self.inputs()
            var tensors = [x] + (takesContext ? [c] : [])
            let parameters = layer.parameters
            tensors += parameters
            for report in gradientMismatches(tensors, epsilon: 1e-3, relativeTolerance: 2e-2, absoluteTolerance: 2e-3, { t in
                let (y, logDet) = layer.forward(t[0], context: takesContext ? t[1] : nil)
                return Tensor.concatenate([y.reshaped(to: [-1]), logDet], axis: 0)
            }) {
                XCTFail("\(name): \(report)")
            }
            XCTAssertFalse(parameters.isEmpty && !(layer is Permutation), "\(name) has parameters")
        }
    }

    /// `log |det ∂y/∂x|` of every layer equals the log-determinant of the Jacobian measured by
    /// central differences (in Double, 3×3), sample by sample.
    func testLogDeterminantsMatchNumericalJacobians() {
        for (name, layer, takesContext) in Self.layers() {
            let (x, c) = Self.inputs(count: 5)
            let context = takesContext ? c : nil
            let logDet = withNoGrad { layer.forward(x, context: context).logDeterminant }
            for i in 0..<5 {
                let jacobian = Self.jacobian(of: layer, at: x[i..<(i + 1)], context: context.map { $0[i..<(i + 1)] })
                let brute = Foundation.log(Swift.abs(Self.determinant3(jacobian)))
                XCTAssertEqual(Double(logDet.scalars[i]), brute, accuracy: 2e-3, "\(name), sample \(i)")
            }
        }
    }

    /// MADE: output `i` of a MAF layer does not move when input `j ≥ i` moves.
    func testMaskedAutoregressiveJacobianIsTriangular() {
        let layer = MaskedAutoregressiveTransform(features: 3, contextFeatures: 2, hiddenFeatures: [8, 8], seed: 3)
        let (x, c) = Self.inputs(count: 1)
        let j = Self.jacobian(of: layer, at: x, context: c)
        for row in 0..<3 {
            for column in row..<3 where column != row { XCTAssertEqual(j[row][column], 0, "∂y\(row)/∂x\(column)") }
            for column in 0..<row { XCTAssertNotEqual(j[row][column], 0, "∂y\(row)/∂x\(column)") }
        }
    }

    func testInverseUndoesForward() {
        for (name, layer, takesContext) in Self.layers() {
            let (x, c) = Self.inputs(count: 32)
            let context = takesContext ? c : nil
            withNoGrad {
                let (y, _) = layer.forward(x, context: context)
                assertClose(layer.inverse(y, context: context), x, relativeTolerance: 1e-4, absoluteTolerance: 1e-4, name)
            }
        }
        let flow = Flow.maskedAutoregressive(features: 3, contextFeatures: 2, layers: 2,
                                             transform: .rationalQuadraticSpline(bins: 5, tailBound: 3),
                                             hiddenFeatures: [8], seed: 7)
        let (x, c) = Self.inputs(count: 32)
        withNoGrad {
            var h = x
            for t in flow.transforms { h = t.forward(h, context: c).output }
            for t in flow.transforms.reversed() { h = t.inverse(h, context: c) }
            assertClose(h, x, relativeTolerance: 1e-4, absoluteTolerance: 1e-4, "flow")
        }
    }

    /// The flow's density is a density: its log-probability equals the base density of the
    /// latent point plus the summed log-determinants, gradients are right through the whole
    /// stack, and the probability integrates to about 1 over a grid (2-D).
    func testFlowLogProbability() {
        let flow = Flow.coupling(features: 2, layers: 3, transform: .rationalQuadraticSpline(bins: 4, tailBound: 3),
                                 hiddenFeatures: [8], actNorm: true, seed: 3)
        _ = withNoGrad { flow.logProbability(Tensor.randomNormal([64, 2], standardDeviation: 1.5, seed: 4)) }
        let steps = 161, lower: Float = -8, step: Float = 16 / Float(steps - 1)
        var grid = [Float]()
        for i in 0..<steps { for j in 0..<steps { grid += [lower + Float(i) * step, lower + Float(j) * step] } }
        let density = withNoGrad { flow.logProbability(Tensor(shape: [steps * steps, 2], data: grid)).exp() }
        let mass = density.scalars.reduce(0) { $0 + Double($1) } * Double(step * step)
        XCTAssertEqual(mass, 1, accuracy: 0.01)
        // A step of 3e-3: the Float32 rounding of three stacked layers makes smaller steps noisy
        // (1e-3 leaves errors of ~2e-3 on some weights; 3e-3 and 1e-2 agree everywhere).
        let x = Tensor.randomNormal([4, 2], seed: 5)
        assertGradientsMatch([x] + flow.parameters, epsilon: 3e-3, relativeTolerance: 2e-2, absoluteTolerance: 2e-3) { t in
            flow.logProbability(t[0])
        }
    }

    func testActNormInitialisesFromTheFirstBatchOnly() {
        let layer = ActNorm(features: 3)
        let first = Tensor.randomNormal([256, 3], mean: 4, standardDeviation: 3, seed: 1)
        let (y, logDet) = withNoGrad { layer.forward(first, context: nil) }
        assertClose(y.mean(axes: [0]), Tensor.zeros([3]), absoluteTolerance: 1e-4, "mean after initialisation")
        assertClose(y.variance(axes: [0]), Tensor.ones([3]), relativeTolerance: 1e-3, absoluteTolerance: 1e-4, "variance")
        XCTAssertEqual(layer.initialized.item, 1)
        XCTAssertEqual(logDet.scalars[0], layer.logScale.sum().item, accuracy: 1e-6)
        let saved = layer.logScale.scalars
        _ = withNoGrad { layer.forward(first * 10, context: nil) }
        XCTAssertEqual(layer.logScale.scalars, saved, "a second batch does not initialise again")
    }

    /// Weights, ActNorm state and permutations survive a state-dict round trip: the loaded
    /// flow gives the same log-probabilities.
    func testStateDictRoundTrip() throws {
        func make(_ seed: UInt64) -> Flow {
            Flow(features: 3, contextFeatures: 2, transforms: [
                ActNorm(features: 3),
                CouplingTransform(features: 3, contextFeatures: 2, transform: .rationalQuadraticSpline(), hiddenFeatures: [8], seed: seed),
                Permutation(features: 3, seed: seed),
                MaskedAutoregressiveTransform(features: 3, contextFeatures: 2, hiddenFeatures: [8], seed: seed &+ 1),
            ])
        }
        let flow = make(1), copy = make(2)
        let (x, c) = Self.inputs(count: 8)
        let expected = withNoGrad { flow.logProbability(x, context: c) }
        XCTAssertTrue(flow.stateDict().keys.contains("0.initialized") && flow.stateDict().keys.contains("2.order"))
        XCTAssertEqual(Set(flow.stateDict().keys), Set(copy.stateDict().keys))
        try copy.load(stateDict: flow.stateDict())
        assertClose(withNoGrad { copy.logProbability(x, context: c) }, expected, relativeTolerance: 1e-6, "loaded flow")
    }

    /// Samples: shape, reproducible from the generator, one context row broadcast to all, and
    /// a conditional flow's samples follow its context.
    func testSampling() {
        let flow = Flow.maskedAutoregressive(features: 2, contextFeatures: 1, layers: 2, hiddenFeatures: [8], seed: 1)
        var g1 = SeededGenerator(seed: 3), g2 = SeededGenerator(seed: 3)
        let one = Tensor(shape: [1, 1], data: [0.5])
        let a = withNoGrad { flow.sample(100, context: one, generator: &g1) }
        let b = withNoGrad { flow.sample(100, context: one.expanded(to: [100, 1]), generator: &g2) }
        XCTAssertEqual(a.shape, [100, 2])
        XCTAssertEqual(a.scalars, b.scalars)
        XCTAssertTrue(a.scalars.allSatisfy(\.isFinite))
        // Each sample's latent point is the normal draw it came from.
        var g3 = SeededGenerator(seed: 3)
        let z = Tensor.randomNormal([100, 2], generator: &g3)
        let back = withNoGrad { flow.latent(a, context: one.expanded(to: [100, 1])).latent }
        assertClose(back, z, relativeTolerance: 1e-3, absoluteTolerance: 1e-4, "latent of samples")
    }

    // MARK: - Helpers

    /// ∂y/∂x of a one-sample input `[1, 3]` by central differences in Float, step 1e-3.
    static func jacobian(of layer: any Bijection, at x: Tensor, context: Tensor?) -> [[Double]] {
        var j = [[Double]](repeating: [Double](repeating: 0, count: 3), count: 3)
        let base = x.scalars
        for column in 0..<3 {
            var up = base, down = base
            up[column] += 1e-3; down[column] -= 1e-3
            let step = Double(up[column]) - Double(down[column])
            let (yu, yd) = withNoGrad {
                (layer.forward(Tensor(shape: [1, 3], data: up), context: context).output.scalars,
                 layer.forward(Tensor(shape: [1, 3], data: down), context: context).output.scalars)
            }
            for row in 0..<3 { j[row][column] = (Double(yu[row]) - Double(yd[row])) / step }
        }
        return j
    }

    static func determinant3(_ m: [[Double]]) -> Double {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
            - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    }
}
