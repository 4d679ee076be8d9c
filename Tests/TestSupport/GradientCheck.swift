// Numerical gradient checking for autograd ops (central differences in Double).
import Autograd
import XCTest

/// Checks `f`'s analytic gradients with respect to every input against central differences.
///
/// The output is projected on a fixed random direction `r` (`L = sum(f(x) * r)`), so one
/// backward pass with gradient `r` gives all analytic derivatives, and each numerical one
/// is `(L(x + e) - L(x - e)) / (2e)` with `L` summed in Double. The step actually taken is
/// measured after rounding to Float32. Passes when `|a - n| <= atol + rtol * max(|a|, |n|)`.
///
/// `f` must be deterministic (build random masks from a fixed seed inside it).
public func assertGradientsMatch(_ inputs: [Tensor], epsilon: Float = 1e-2, relativeTolerance: Double = 1e-2,
                                 absoluteTolerance: Double = 1e-3, seed: UInt64 = 1234,
                                 file: StaticString = #filePath, line: UInt = #line,
                                 _ f: ([Tensor]) -> Tensor) {
    for report in gradientMismatches(inputs, epsilon: epsilon, relativeTolerance: relativeTolerance,
                                     absoluteTolerance: absoluteTolerance, seed: seed, f) {
        XCTFail("gradient mismatch: \(report)", file: file, line: line)
    }
}

/// The check behind `assertGradientsMatch`: one line per input whose worst element fails.
public func gradientMismatches(_ inputs: [Tensor], epsilon: Float = 1e-2, relativeTolerance: Double = 1e-2,
                               absoluteTolerance: Double = 1e-3, seed: UInt64 = 1234,
                               _ f: ([Tensor]) -> Tensor) -> [String] {
    var reports: [String] = []
    for x in inputs { x.requiresGrad = true; x.zeroGrad() }
    let out = f(inputs)
    let direction = Tensor.randomNormal(out.shape, seed: seed)
    out.backward(gradient: direction)
    let r = direction.scalars.map(Double.init)
    func projected() -> Double {
        withNoGrad { zip(f(inputs).scalars, r).reduce(0.0) { $0 + Double($1.0) * $1.1 } }
    }
    for (k, x) in inputs.enumerated() {
        let analytic = x.grad?.scalars ?? [Float](repeating: 0, count: x.count)
        var worst = 0.0, report = ""
        for j in 0..<x.count {
            let v = x.withUnsafeMutableBufferPointer { $0[j] }
            let up = v + epsilon, down = v - epsilon
            x.withUnsafeMutableBufferPointer { $0[j] = up }
            let lp = projected()
            x.withUnsafeMutableBufferPointer { $0[j] = down }
            let lm = projected()
            x.withUnsafeMutableBufferPointer { $0[j] = v }
            let numeric = (lp - lm) / (Double(up) - Double(down))
            let a = Double(analytic[j])
            let excess = abs(a - numeric) - (absoluteTolerance + relativeTolerance * max(abs(a), abs(numeric)))
            if excess > worst {
                worst = excess
                report = "input \(k) \(x.shape), element \(j): analytic \(a), numeric \(numeric)"
            }
        }
        if worst > 0 { reports.append(report) }
    }
    return reports
}

/// Asserts elementwise closeness: `|a - e| <= atol + rtol |e|` (shapes must match).
public func assertClose(_ actual: Tensor, _ expected: Tensor, relativeTolerance: Float = 1e-4,
                        absoluteTolerance: Float = 1e-5, _ message: String = "",
                        file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.shape, expected.shape, "\(message): shape", file: file, line: line)
    guard actual.shape == expected.shape else { return }
    let a = actual.scalars, e = expected.scalars
    var worst: (Int, Float)? = nil
    for i in 0..<a.count {
        let excess = abs(a[i] - e[i]) - (absoluteTolerance + relativeTolerance * abs(e[i]))
        if excess > 0 || a[i].isNaN != e[i].isNaN, worst == nil || excess > worst!.1 { worst = (i, excess) }
    }
    if let (i, _) = worst {
        XCTFail("\(message): element \(i) is \(a[i]), expected \(e[i]) (shape \(actual.shape))", file: file, line: line)
    }
}

public func assertClose(_ actual: [Float], _ expected: [Float], accuracy: Float,
                        _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.count, expected.count, "\(message): count", file: file, line: line)
    for (i, (a, e)) in zip(actual, expected).enumerated() where !(abs(a - e) <= accuracy) {
        XCTFail("\(message): element \(i) is \(a), expected \(e) ± \(accuracy)", file: file, line: line)
        return
    }
}

/// Runs `body` once per available convolution backend (im2col always, oneDNN when installed),
/// restoring the previous choice afterwards.
public func forEachConvolutionBackend(_ body: (ConvolutionBackend) -> Void) {
    let saved = ConvolutionBackend.current
    defer { ConvolutionBackend.current = saved }
    for backend in [ConvolutionBackend.im2col, .oneDNN] where backend == .im2col || ConvolutionBackend.isOneDNNAvailable {
        ConvolutionBackend.current = backend
        body(backend)
    }
}
