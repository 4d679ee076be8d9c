// The AVX-512 GRU kernels (Sources/CKernels) against the portable Swift recurrence, and their
// gradients against central differences. Skipped on CPUs without AVX-512F.
@testable import Autograd
import TestSupport
import XCTest

final class GRUKernelTests: XCTestCase {
    private func requireKernels() throws {
        try XCTSkipUnless(AVX512Kernels.enabled, "no AVX-512 recurrent kernels on this CPU")
    }

    /// Outputs (with and without gradient) and the gradients of the projected input, `W_hh` and
    /// `b_hh` (and `b_ih`, when the recurrence adds it), with the kernels on or off.
    private func run(kernels: Bool, n: Int, steps: Int, h: Int, inputBias: Bool = false) -> [Tensor] {
        let saved = AVX512Kernels.enabled
        defer { AVX512Kernels.enabled = saved }
        AVX512Kernels.enabled = kernels
        let s = Float(1 / Double(h).squareRoot())
        let p = (Tensor.randomNormal([n, steps, 3 * h], seed: 91) * 0.8).copy()
        let w = (Tensor.randomNormal([3 * h, h], seed: 92) * s).copy()
        let b = (Tensor.randomNormal([3 * h], seed: 93) * s).copy()
        let bi = inputBias ? (Tensor.randomNormal([3 * h], seed: 98) * s).copy() : nil
        for t in [p, w, b] + (bi.map { [$0] } ?? []) { t.requiresGrad = true }
        let y = p.gruRecurrence(weightHH: w, biasHH: b, biasIH: bi)
        y.backward(gradient: Tensor.randomNormal(y.shape, seed: 94))
        let eval = withNoGrad { p.gruRecurrence(weightHH: w, biasHH: b, biasIH: bi) }
        return [y.detached(), eval, p.grad!, w.grad!, b.grad!] + (bi.map { [$0.grad!] } ?? [])
    }

    /// Hidden sizes 16 to 80, batches covering the 4-row tiles and their remainders, on one
    /// worker and split over workers.
    func testKernelsMatchPortablePath() throws {
        try requireKernels()
        for (n, steps, h) in [(1, 5, 16), (3, 9, 48), (11, 9, 16), (13, 7, 80), (9, 6, 64), (2, 1, 32), (40, 4, 64)] {
            for inputBias in [false, true] {
                let fast = run(kernels: true, n: n, steps: steps, h: h, inputBias: inputBias)
                let portable = run(kernels: false, n: n, steps: steps, h: h, inputBias: inputBias)
                let label = "n \(n), T \(steps), H \(h)" + (inputBias ? ", b_ih in the recurrence" : "")
                assertClose(fast[0], portable[0], relativeTolerance: 1e-4, absoluteTolerance: 2e-6, "\(label): states")
                assertClose(fast[1], fast[0], relativeTolerance: 0, absoluteTolerance: 0, "\(label): no-grad states")
                for (k, name) in ["projected", "W_hh", "b_hh", "b_ih"].prefix(fast.count - 2).enumerated() {
                    assertClose(fast[2 + k], portable[2 + k], relativeTolerance: 1e-4, absoluteTolerance: 1e-5, "\(label): d \(name)")
                }
            }
        }
    }

    func testKernelGradientsMatchCentralDifferences() throws {
        try requireKernels()
        let p = Tensor.randomNormal([2, 3, 48], seed: 95)
        let w = (Tensor.randomNormal([48, 16], seed: 96) * 0.25).copy()
        let b = (Tensor.randomNormal([48], seed: 97) * 0.25).copy()
        assertGradientsMatch([p, w, b]) { $0[0].gruRecurrence(weightHH: $0[1], biasHH: $0[2]) }
        let bi = (Tensor.randomNormal([48], seed: 99) * 0.25).copy()
        assertGradientsMatch([p, w, b, bi]) { $0[0].gruRecurrence(weightHH: $0[1], biasHH: $0[2], biasIH: $0[3]) }
    }
}
