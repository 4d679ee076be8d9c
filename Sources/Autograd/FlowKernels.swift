// Inference kernels of a normalizing flow's sampling path: dense layers over blocks of rows,
// and the inverse elementwise maps of coupling layers computed straight from the
// conditioner's raw outputs. No autograd, no allocation per value; `Flow`'s sampler
// (NN/Flows+Sampling.swift) runs them on blocks of a few hundred draws that stay in cache.
import CKernels
import Foundation

public enum FlowKernels {
    /// A dense layer over `rows` rows, written into `output` (row stride `outputStride`):
    /// `output[r, j] = start[r, j] + Σ_i input[r, i] · weight[j, i]`, then `max(0, ·)` when
    /// `relu`. `start` is `bias[j]` (zero without a bias) or, when `accumulate`, what
    /// `output` already holds. `input` has row stride `inputStride` and `inputFeatures`
    /// columns; `weight` is `[outputFeatures, ·]` with row stride `weightStride`, so a block
    /// of a wider weight's columns can be applied on its own.
    public static func dense(rows: Int, input: UnsafePointer<Float>, inputStride: Int, inputFeatures: Int,
                             weight: UnsafePointer<Float>, weightStride: Int, outputFeatures: Int,
                             bias: UnsafePointer<Float>?, accumulate: Bool = false, relu: Bool,
                             output: UnsafeMutablePointer<Float>, outputStride: Int) {
        guard rows > 0 else { return }
        if !accumulate {
            for r in 0..<rows {
                let o = output + r * outputStride
                if let bias { o.update(from: bias, count: outputFeatures) } else { o.update(repeating: 0, count: outputFeatures) }
            }
        }
        if inputFeatures > 0 {
            gemm(transB: true, m: rows, n: outputFeatures, k: inputFeatures, a: input, lda: inputStride,
                 b: weight, ldb: weightStride, beta: 1, c: output, ldc: outputStride)
        }
        if relu {
            for r in 0..<rows {
                let o = output + r * outputStride
                for j in 0..<outputFeatures { o[j] = Swift.max(o[j], 0) }
            }
        }
    }

    /// `output[r, j] += Σ_i input[r, i] · weightTransposed[i, j]` for a few inputs (the
    /// passed-through features of a coupling layer, too few for a GEMM to pay), then
    /// `max(0, ·)` when `relu`. `weightTransposed` is `[inputFeatures, outputFeatures]`.
    public static func addProducts(rows: Int, input: UnsafePointer<Float>, inputStride: Int, inputFeatures: Int,
                                   weightTransposed: UnsafePointer<Float>, outputFeatures: Int, relu: Bool,
                                   output: UnsafeMutablePointer<Float>, outputStride: Int) {
        for r in 0..<rows {
            let o = output + r * outputStride, x = input + r * inputStride
            for i in 0..<inputFeatures {
                let v = x[i], w = weightTransposed + i * outputFeatures
                for j in 0..<outputFeatures { o[j] += v * w[j] }
            }
            if relu { for j in 0..<outputFeatures { o[j] = Swift.max(o[j], 0) } }
        }
    }

    /// The inverse of the monotonic rational-quadratic spline of neural spline flows, in place
    /// on `count` values, value `i` with the raw parameters at `parameters + i ·
    /// parameterStride`: `K` unnormalised bin widths, `K` heights and `K − 1` interior
    /// derivatives (before softplus), as `ElementwiseTransform.rationalQuadraticSpline` lays
    /// them out and normalises them (widths and heights `minimum + (1 − minimum·K)·softmax`,
    /// knots on `[−tailBound, tailBound]` with exact end knots, derivatives `minimum +
    /// softplus`, 1 at the end knots). Values outside `[−tailBound, tailBound]` pass unchanged.
    /// Only the bin that holds the value is built beyond the cumulative sums. Where
    /// `AVX512Kernels.enabled` (and up to 32 bins), sixteen values at a time in C
    /// (`Sources/CKernels/flow_kernels.c`; the same results to float rounding).
    public static func rationalQuadraticSplineInverse(_ values: UnsafeMutablePointer<Float>, count: Int,
                                                      parameters: UnsafePointer<Float>, parameterStride: Int,
                                                      bins k: Int, tailBound: Float, minimumWidth: Float,
                                                      minimumHeight: Float, minimumDerivative: Float) {
        precondition(k >= 1 && parameterStride >= 3 * k - 1, "rationalQuadraticSplineInverse: \(k) bins need \(3 * k - 1) parameters")
        if AVX512Kernels.enabled && k <= Int(ASTRO_RQ_SPLINE_MAX_BINS) {
            astro_rq_spline_inverse(values, count, parameters, parameterStride, k, tailBound, minimumWidth,
                                    minimumHeight, minimumDerivative)
            return
        }
        let widthScale = (1 - minimumWidth * Float(k)) * 2 * tailBound
        let heightScale = (1 - minimumHeight * Float(k)) * 2 * tailBound
        let widthFloor = minimumWidth * 2 * tailBound, heightFloor = minimumHeight * 2 * tailBound
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * k + 8) { scratch in
            let e = scratch.baseAddress!
            for i in 0..<count {
                let y = values[i]
                guard y >= -tailBound && y <= tailBound else { continue }
                let p = parameters + i * parameterStride
                // Heights: softmax, then the knot below y by the running sum.
                let heightSum = softmaxNumerators(p + k, k, into: e)
                let hs = heightScale / heightSum
                var bin = 0, y0 = -tailBound, size: Float = 0
                var running: Float = 0
                while true {
                    size = e[bin] * hs + heightFloor
                    if bin == k - 1 { break }
                    let next = running + size
                    if -tailBound + next > y { break }
                    running = next; bin += 1
                    y0 = -tailBound + running
                }
                let y1 = bin == k - 1 ? tailBound : y0 + size
                // Widths up to the bin.
                let widthSum = softmaxNumerators(p, k, into: e)
                let ws = widthScale / widthSum
                var x0 = -tailBound
                var partial: Float = 0
                for j in 0..<bin { partial += e[j] * ws + widthFloor }
                if bin > 0 { x0 = -tailBound + partial }
                let x1 = bin == k - 1 ? tailBound : -tailBound + partial + e[bin] * ws + widthFloor
                let d0 = bin == 0 ? 1 : softplus(p[2 * k + bin - 1]) + minimumDerivative
                let d1 = bin == k - 1 ? 1 : softplus(p[2 * k + bin]) + minimumDerivative
                values[i] = SplineBin.inverse(y, x0: x0, x1: x1, y0: y0, y1: y1, d0: d0, d1: d1)
            }
        }
    }

    /// The inverse of `ElementwiseTransform.affine`, in place: `x = (y − t)·exp(−log s)` with
    /// `log s = a / (1 + |a| / logScaleBound)` and the parameters `(t, a)` of value `i` at
    /// `parameters + i · parameterStride`.
    public static func affineInverse(_ values: UnsafeMutablePointer<Float>, count: Int, parameters: UnsafePointer<Float>,
                                     parameterStride: Int, logScaleBound: Float) {
        for i in 0..<count {
            let p = parameters + i * parameterStride
            let a = p[1]
            let logScale = a / (Swift.abs(a) * (1 / logScaleBound) + 1)
            values[i] = (values[i] - p[0]) * Foundation.exp(-logScale)
        }
    }

    /// `e^(x_j − max x)` for the `n` values at `x`, into `out`; returns their sum. Eight lanes
    /// at a time through `vectorExp` (error < 1e-7 relative).
    @inline(__always)
    static func softmaxNumerators(_ x: UnsafePointer<Float>, _ n: Int, into out: UnsafeMutablePointer<Float>) -> Float {
        var m = x[0]
        for j in 1..<Swift.max(n, 1) { m = Swift.max(m, x[j]) }
        var sum: Float = 0, j = 0
        while j + 8 <= n {
            let v = vectorExp(UnsafeRawPointer(x + j).loadUnaligned(as: SIMD8<Float>.self) - m)
            storeVector(v, out + j)
            sum += v.sum()
            j += 8
        }
        while j < n {
            let v = Foundation.exp(x[j] - m)
            out[j] = v; sum += v; j += 1
        }
        return sum
    }

    /// `log(1 + e^x)` without overflow, as `Tensor.softplus` but with `log(1 + u)` for
    /// `log1p(u)` (faster; off by at most 6e-8 absolute, where `u = e^−|x|` < 2⁻²⁴).
    @inline(__always)
    static func softplus(_ x: Float) -> Float { Swift.max(x, 0) + Foundation.log(1 + Foundation.exp(-Swift.abs(x))) }
}
