// The lecture's worked examples, computed by the engine.
import Autograd
import TestSupport
import XCTest

final class WorkedExampleTests: XCTestCase {
    /// f(x, y, z) = (x + y) z at (-2, 5, -4).
    func testAddMultiplyCircuit() {
        let x = Tensor(scalar: -2, requiresGrad: true)
        let y = Tensor(scalar: 5, requiresGrad: true)
        let z = Tensor(scalar: -4, requiresGrad: true)
        let f = (x + y) * z
        f.backward()
        XCTAssertEqual(f.item, -12)
        XCTAssertEqual(x.grad?.item, -4)
        XCTAssertEqual(y.grad?.item, -4)
        XCTAssertEqual(z.grad?.item, 3)
    }

    /// The sigmoid neuron 1 / (1 + e^-(w0 x0 + w1 x1 + w2)), w = (2, -3, -3), x = (-1, -2),
    /// built from primitives (not the fused sigmoid), and once more with the fused one.
    func testSigmoidNeuron() {
        for fused in [false, true] {
            let w = Tensor([2, -3, -3], requiresGrad: true)
            let x = Tensor([-1, -2], requiresGrad: true)
            let z = w[0] * x[0] + w[1] * x[1] + w[2]
            let f = fused ? z.sigmoid() : 1 / (1 + (-z).exp())
            f.backward()
            XCTAssertEqual(f.item, 0.731, accuracy: 1e-3)
            assertClose(w.grad!.scalars, [-0.197, -0.393, 0.197], accuracy: 1e-3, "dw fused=\(fused)")
            assertClose(x.grad!.scalars, [0.393, -0.590], accuracy: 1e-3, "dx fused=\(fused)")
        }
    }

    /// θ ← θ - 0.1 h'(θ) on h(θ) = (θ - 2)² from θ = 7.
    func testGradientDescentOnParabola() {
        let theta = Tensor(scalar: 7, requiresGrad: true)
        let sgd = ModelOptimizer(.sgd(), tensors: [theta], learningRate: 0.1)
        var trace: [Int: Float] = [:]
        for step in 1...14 {
            sgd.zeroGrad()
            (theta - 2).squared().backward()
            sgd.step()
            trace[step] = theta.item
        }
        XCTAssertEqual(trace[2]!, 5.200, accuracy: 1e-4)
        XCTAssertEqual(trace[4]!, 4.048, accuracy: 1e-4)
        XCTAssertEqual(trace[14]!, 2.220, accuracy: 1e-3)
    }

    /// The 3x3 input 0..8, zero-padded by 1, cross-correlated with [[0, 1], [2, 3]].
    func testPaddingSlide() {
        let input = Tensor(shape: [1, 1, 3, 3], data: (0..<9).map(Float.init))
        let kernel = Tensor(shape: [1, 1, 2, 2], data: [0, 1, 2, 3])
        let out = input.conv2d(weight: kernel, padding: 1)
        XCTAssertEqual(out.shape, [1, 1, 4, 4])
        XCTAssertEqual(out.scalars, [0, 3, 8, 4, 9, 19, 25, 10, 21, 37, 43, 16, 6, 7, 8, 0])
    }
}
