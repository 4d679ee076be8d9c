// The AVX-512 LSTM kernels (Sources/CKernels) against the portable Swift recurrence, and
// their gradients against central differences. Skipped on CPUs without AVX-512F.
@testable import Autograd
import TestSupport
import XCTest

final class LSTMKernelTests: XCTestCase {
    private func requireKernels() throws {
        try XCTSkipUnless(AVX512Kernels.enabled, "no AVX-512 LSTM kernels on this CPU")
    }

    /// Runs `body` with the kernels on or off, restoring the previous setting.
    private func with<T>(kernels: Bool, _ body: () -> T) -> T {
        let saved = AVX512Kernels.enabled
        defer { AVX512Kernels.enabled = saved }
        AVX512Kernels.enabled = kernels
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

    /// `Tensor.lstm` (projection fused into the kernel) against the portable
    /// `(matmul + bias).lstmRecurrence`: states, the last step without gradient, every gradient.
    func testFusedLayerMatchesPortablePath() throws {
        try requireKernels()
        for (n, steps, f, h) in [(3, 7, 2, 16), (11, 9, 5, 32), (2, 16, 2, 64), (9, 4, 1, 48)] {
          for lastStepOnly in [false, true] {
            func run(_ kernels: Bool) -> [Tensor] {
                with(kernels: kernels) {
                    let x = Tensor.randomNormal([n, steps, f], seed: 31)
                    let s = Float(1 / Double(h).squareRoot())
                    let wih = (Tensor.randomNormal([4 * h, f], seed: 32) * s).copy()
                    let bih = (Tensor.randomNormal([4 * h], seed: 33) * s).copy()
                    let bhh = (Tensor.randomNormal([4 * h], seed: 34) * s).copy()
                    let whh = (Tensor.randomNormal([4 * h, h], seed: 35) * s).copy()
                    let inputs = [x, wih, bih, bhh, whh]
                    for t in inputs { t.requiresGrad = true }
                    let y = x.lstm(weightIH: wih, biasIH: bih, biasHH: bhh, weightHH: whh, lastStepOnly: lastStepOnly)
                    y.backward(gradient: Tensor.randomNormal(y.shape, seed: 36))
                    let last = withNoGrad { x.lstm(weightIH: wih, biasIH: bih, biasHH: bhh, weightHH: whh, lastStepOnly: true) }
                    let all = withNoGrad { x.lstm(weightIH: wih, biasIH: bih, biasHH: bhh, weightHH: whh) }
                    return [y.detached(), last, all] + inputs.map { $0.grad! }
                }
            }
            let fast = run(true), portable = run(false)
            let label = "n \(n), T \(steps), F \(f), H \(h), last step only \(lastStepOnly)"
            assertClose(fast[0], portable[0], relativeTolerance: 1e-4, absoluteTolerance: 2e-6, "\(label): states")
            assertClose(fast[1], fast[2].sliced(axis: 1, (steps - 1)..<steps), relativeTolerance: 0, absoluteTolerance: 0,
                        "\(label): last step without gradient")
            assertClose(lastStepOnly ? fast[1] : fast[2], fast[0], relativeTolerance: 0, absoluteTolerance: 0,
                        "\(label): states without gradient")
            for (k, name) in ["x", "W_ih", "b_ih", "b_hh", "W_hh"].enumerated() {
                assertClose(fast[3 + k], portable[3 + k], relativeTolerance: 1e-4, absoluteTolerance: 2e-5, "\(label): d \(name)")
            }
          }
        }
    }

    func testFusedLayerGradientsMatchCentralDifferences() throws {
        try requireKernels()
        with(kernels: true) {
            let inputs = [Tensor.randomNormal([2, 3, 3], seed: 41), (Tensor.randomNormal([64, 3], seed: 42) * 0.25).copy(),
                          (Tensor.randomNormal([64], seed: 43) * 0.25).copy(), (Tensor.randomNormal([64], seed: 44) * 0.25).copy(),
                          (Tensor.randomNormal([64, 16], seed: 45) * 0.25).copy()]
            assertGradientsMatch(inputs) { $0[0].lstm(weightIH: $0[1], biasIH: $0[2], biasHH: $0[3], weightHH: $0[4]) }
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
