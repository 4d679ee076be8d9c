// The fused GRU op against the same recurrence composed of primitive ops, its gradients against
// central differences, and the variable-length sequence ops.
import Autograd
import TestSupport
import XCTest

final class GRUTests: XCTestCase {
    /// The GRU written step by step with matmul, sigmoid and tanh (each op with its own backward).
    private func composed(_ x: Tensor, _ wih: Tensor, _ bih: Tensor, _ bhh: Tensor, _ whh: Tensor) -> Tensor {
        let (n, steps) = (x.shape[0], x.shape[1]), h = whh.shape[1]
        var state = Tensor.zeros([n, h])
        var outputs: [Tensor] = []
        for t in 0..<steps {
            let xt = x.sliced(axis: 1, t..<(t + 1)).reshaped(to: [n, x.shape[2]])
            let gi = xt.matmul(transposed: wih) + bih, gh = state.matmul(transposed: whh) + bhh
            let r = (gi.sliced(axis: 1, 0..<h) + gh.sliced(axis: 1, 0..<h)).sigmoid()
            let z = (gi.sliced(axis: 1, h..<(2 * h)) + gh.sliced(axis: 1, h..<(2 * h))).sigmoid()
            let candidate = (gi.sliced(axis: 1, (2 * h)..<(3 * h)) + r * gh.sliced(axis: 1, (2 * h)..<(3 * h))).tanh()
            state = (1 - z) * candidate + z * state
            outputs.append(state)
        }
        return Tensor.stack(outputs, axis: 1)
    }

    private func weights(f: Int, h: Int, seed: UInt64) -> [Tensor] {
        let s = Float(1 / Double(h).squareRoot())
        return [(Tensor.randomNormal([3 * h, f], seed: seed) * s).copy(), (Tensor.randomNormal([3 * h], seed: seed + 1) * s).copy(),
                (Tensor.randomNormal([3 * h], seed: seed + 2) * s).copy(), (Tensor.randomNormal([3 * h, h], seed: seed + 3) * s).copy()]
    }

    /// Outputs and every gradient equal the composed graph's; hidden sizes cover the 8-lane
    /// loop, its remainder, and batches split over workers.
    func testFusedOpMatchesComposedOps() {
        for (n, steps, f, h) in [(2, 5, 3, 4), (3, 7, 2, 16), (37, 6, 3, 11), (1, 1, 2, 8)] {
            func run(_ fused: Bool) -> [Tensor] {
                let inputs = [Tensor.randomNormal([n, steps, f], seed: 51)] + weights(f: f, h: h, seed: 52)
                for t in inputs { t.requiresGrad = true }
                let y = fused ? inputs[0].gru(weightIH: inputs[1], biasIH: inputs[2], biasHH: inputs[3], weightHH: inputs[4])
                    : composed(inputs[0], inputs[1], inputs[2], inputs[3], inputs[4])
                y.backward(gradient: Tensor.randomNormal(y.shape, seed: 56))
                let eval = withNoGrad { inputs[0].gru(weightIH: inputs[1], biasIH: inputs[2], biasHH: inputs[3], weightHH: inputs[4]) }
                return [y.detached(), eval] + inputs.map { $0.grad! }
            }
            let fused = run(true), reference = run(false)
            let label = "n \(n), T \(steps), F \(f), H \(h)"
            assertClose(fused[0], reference[0], relativeTolerance: 1e-5, absoluteTolerance: 1e-6, "\(label): outputs")
            assertClose(fused[1], fused[0], relativeTolerance: 0, absoluteTolerance: 0, "\(label): outputs without gradient")
            for (k, name) in ["x", "W_ih", "b_ih", "b_hh", "W_hh"].enumerated() {
                assertClose(fused[2 + k], reference[2 + k], relativeTolerance: 1e-4, absoluteTolerance: 1e-5, "\(label): d \(name)")
            }
        }
    }

    func testRecurrenceGradientsMatchCentralDifferences() {
        let p = Tensor.randomNormal([2, 4, 15], seed: 61)
        let w = (Tensor.randomNormal([15, 5], seed: 62) * 0.4).copy()
        let b = (Tensor.randomNormal([15], seed: 63) * 0.4).copy()
        assertGradientsMatch([p, w, b]) { $0[0].gruRecurrence(weightHH: $0[1], biasHH: $0[2]) }
    }

    func testLayerGradientsMatchCentralDifferences() {
        let inputs = [Tensor.randomNormal([3, 3, 2], seed: 71)] + weights(f: 2, h: 9, seed: 72)
        assertGradientsMatch(inputs) { $0[0].gru(weightIH: $0[1], biasIH: $0[2], biasHH: $0[3], weightHH: $0[4]) }
    }

    func testSequenceOps() {
        let x = Tensor(shape: [2, 3, 1], data: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(x.reversedSteps(lengths: [3, 2]).scalars, [3, 2, 1, 5, 4, 6])
        XCTAssertEqual(x.reversedSteps(lengths: [3, 2]).reversedSteps(lengths: [3, 2]).scalars, x.scalars)
        XCTAssertEqual(x.maskedSteps(lengths: [1, 2]).scalars, [1, 0, 0, 4, 5, 0])
        XCTAssertEqual(x.selectedSteps([2, 0]).scalars, [3, 4])
        let y = Tensor.randomNormal([3, 4, 2], seed: 81)
        assertGradientsMatch([y]) { $0[0].reversedSteps(lengths: [4, 1, 3]) * $0[0] }
        assertGradientsMatch([y]) { $0[0].maskedSteps(lengths: [2, 4, 1]) * $0[0] }
        assertGradientsMatch([y]) { $0[0].selectedSteps([3, 0, 1]) * $0[0].selectedSteps([1, 1, 2]) }
    }
}
