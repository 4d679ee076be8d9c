// The AVX-512 LSTM kernels (Sources/CKernels) against the portable Swift recurrence, and
// their gradients against central differences. Skipped on CPUs without AVX-512F.
@testable import Autograd
import TestSupport
import XCTest

final class LSTMKernelTests: XCTestCase {
    private func requireKernels() throws {
        try XCTSkipUnless(LSTMKernels.enabled, "no AVX-512 LSTM kernels on this CPU")
    }

    /// Runs `body` with the kernels on or off, restoring the previous setting.
    private func with<T>(kernels: Bool, _ body: () -> T) -> T {
        let saved = LSTMKernels.enabled
        defer { LSTMKernels.enabled = saved }
        LSTMKernels.enabled = kernels
        return body()
    }

    /// Outputs and both gradients of `sum(lstmRecurrence * direction)`.
    private func run(kernels: Bool, n: Int, steps: Int, h: Int) -> (out: Tensor, dp: Tensor, dw: Tensor, eval: Tensor) {
        with(kernels: kernels) {
            let p = (Tensor.randomNormal([n, steps, 4 * h], seed: 11) * 0.8).copy()
            let w = (Tensor.randomNormal([4 * h, h], seed: 12) * Float(1 / Double(h).squareRoot())).copy()
            p.requiresGrad = true; w.requiresGrad = true
            let y = p.lstmRecurrence(weightHH: w)
            y.backward(gradient: Tensor.randomNormal(y.shape, seed: 13))
            let eval = withNoGrad { p.lstmRecurrence(weightHH: w) }
            return (y.detached(), p.grad!, w.grad!, eval)
        }
    }

    /// Hidden sizes covering every column tile (16 to 64 and 64 + 16), batches covering the
    /// 4-row tiles and their remainders, on one worker and split over workers.
    func testKernelsMatchPortablePath() throws {
        try requireKernels()
        for (n, steps, h) in [(1, 5, 16), (3, 9, 48), (11, 9, 16), (13, 7, 80), (9, 6, 64), (2, 16, 32)] {
            let fast = run(kernels: true, n: n, steps: steps, h: h)
            let portable = run(kernels: false, n: n, steps: steps, h: h)
            let label = "n \(n), T \(steps), H \(h)"
            assertClose(fast.out, portable.out, relativeTolerance: 1e-4, absoluteTolerance: 2e-6, "\(label): states")
            assertClose(fast.eval, fast.out, relativeTolerance: 0, absoluteTolerance: 0, "\(label): no-grad states")
            assertClose(fast.dp, portable.dp, relativeTolerance: 1e-4, absoluteTolerance: 1e-5, "\(label): d projected")
            assertClose(fast.dw, portable.dw, relativeTolerance: 1e-4, absoluteTolerance: 1e-5, "\(label): d W_hh")
        }
    }

    func testKernelGradientsMatchCentralDifferences() throws {
        try requireKernels()
        with(kernels: true) {
            let p = Tensor.randomNormal([2, 3, 64], seed: 21)
            let w = (Tensor.randomNormal([64, 16], seed: 22) * 0.25).copy()
            assertGradientsMatch([p, w]) { $0[0].lstmRecurrence(weightHH: $0[1]) }
        }
    }
}
