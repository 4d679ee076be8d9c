// The AVX-512 GRU kernels (Sources/CKernels) against the portable Swift recurrence, and their
// gradients against central differences. Skipped on CPUs without AVX-512F.
@testable import Autograd
import TestSupport
import XCTest

final class GRUKernelTests: XCTestCase {
    private func requireKernels() throws {
        try XCTSkipUnless(RecurrentKernels.enabled, "no AVX-512 recurrent kernels on this CPU")
    }

    /// Outputs (with and without gradient) and the gradients of the projected input, `W_hh` and
    /// `b_hh`, with the kernels on or off.
    private func run(kernels: Bool, n: Int, steps: Int, h: Int) -> [Tensor] {
        let saved = RecurrentKernels.enabled
        defer { RecurrentKernels.enabled = saved }
        RecurrentKernels.enabled = kernels
        let s = Float(1 / Double(h).squareRoot())
        let p = (Tensor.randomNormal([n, steps, 3 * h], seed: 91) * 0.8).copy()
        let w = (Tensor.randomNormal([3 * h, h], seed: 92) * s).copy()
        let b = (Tensor.randomNormal([3 * h], seed: 93) * s).copy()
        for t in [p, w, b] { t.requiresGrad = true }
        let y = p.gruRecurrence(weightHH: w, biasHH: b)
        y.backward(gradient: Tensor.randomNormal(y.shape, seed: 94))
        let eval = withNoGrad { p.gruRecurrence(weightHH: w, biasHH: b) }
        return [y.detached(), eval, p.grad!, w.grad!, b.grad!]
    }

    /// Hidden sizes 16 to 80, batches covering the 4-row tiles and their remainders, on one
    /// worker and split over workers.
    func testKernelsMatchPortablePath() throws {
        try requireKernels()
        for (n, steps, h) in [(1, 5, 16), (3, 9, 48), (11, 9, 16), (13, 7, 80), (9, 6, 64), (2, 1, 32), (40, 4, 64)] {
            let fast = run(kernels: true, n: n, steps: steps, h: h), portable = run(kernels: false, n: n, steps: steps, h: h)
            let label = "n \(n), T \(steps), H \(h)"
            assertClose(fast[0], portable[0], relativeTolerance: 1e-4, absoluteTolerance: 2e-6, "\(label): states")
            assertClose(fast[1], fast[0], relativeTolerance: 0, absoluteTolerance: 0, "\(label): no-grad states")
            for (k, name) in ["projected", "W_hh", "b_hh"].enumerated() {
                assertClose(fast[2 + k], portable[2 + k], relativeTolerance: 1e-4, absoluteTolerance: 1e-5, "\(label): d \(name)")
            }
        }
    }

    func testKernelGradientsMatchCentralDifferences() throws {
        try requireKernels()
        let p = Tensor.randomNormal([2, 3, 48], seed: 95)
        let w = (Tensor.randomNormal([48, 16], seed: 96) * 0.25).copy()
        let b = (Tensor.randomNormal([48], seed: 97) * 0.25).copy()
        assertGradientsMatch([p, w, b]) { $0[0].gruRecurrence(weightHH: $0[1], biasHH: $0[2]) }
    }
}
