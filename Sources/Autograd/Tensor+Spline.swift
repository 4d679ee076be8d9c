// The monotonic rational-quadratic spline of neural spline flows, as one fused op.
import Foundation

// Fused rather than composed: each element lives in its own bin, found by a search over the
// knots, and a composed version would need a differentiable searchsorted + gather over
// [M, K + 1] knot tensors for every one of the seven bin quantities (x_k, x_k+1, y_k, y_k+1,
// d_k, d_k+1 and the input) and for both outputs. Here the bin is found once and the
// backward is the closed-form derivative of the bin's rational function, scattered to the
// two knots that bound it. The knots themselves (softmax widths, cumulative sums, softplus
// derivatives) are ordinary recorded ops in the flow layers.

/// Value, log-derivative and their partial derivatives of one spline bin.
///
/// Partials are ordered (x, x_k, x_k+1, y_k, y_k+1, d_k, d_k+1) in lanes 0...6.
struct SplineBin {
    var value: Float
    var logDerivative: Float
    var dValue: SIMD8<Float>
    var dLogDerivative: SIMD8<Float>

    /// Durkan et al. (2019), eqs. 4 and 5, with ξ = (x − x_k) / w, s = h / w:
    /// `y = y_k + h (s ξ² + d_k ξ(1 − ξ)) / (s + (d_k + d_k+1 − 2s) ξ(1 − ξ))` and
    /// `dy/dx = s² (d_k+1 ξ² + 2s ξ(1 − ξ) + d_k (1 − ξ)²) / (s + (d_k + d_k+1 − 2s) ξ(1 − ξ))²`.
    @inline(__always)
    init(x: Float, x0: Float, x1: Float, y0: Float, y1: Float, d0: Float, d1: Float) {
        let w = x1 - x0, h = y1 - y0, s = h / w
        let xi = (x - x0) / w, t = xi * (1 - xi), u = 1 - 2 * xi
        let n = s * xi * xi + d0 * t
        let den = s + (d0 + d1 - 2 * s) * t
        let r = n / den
        let e = d1 * xi * xi + 2 * s * t + d0 * (1 - xi) * (1 - xi)
        value = y0 + h * r
        logDerivative = 2 * Foundation.log(s) + Foundation.log(e) - 2 * Foundation.log(den)
        // Partials with respect to (ξ, s, h, y_k, d_k, d_k+1) first.
        let denXi = (d0 + d1 - 2 * s) * u, denS = 1 - 2 * t
        let rXi = (2 * s * xi + d0 * u - r * denXi) / den
        let rS = (xi * xi - r * denS) / den
        let rD0 = (t - r * t) / den, rD1 = -r * t / den
        let eXi = 2 * d1 * xi + 2 * s * u - 2 * d0 * (1 - xi)
        let lXi = eXi / e - 2 * denXi / den
        let lS = 2 / s + 2 * t / e - 2 * denS / den
        let lD0 = (1 - xi) * (1 - xi) / e - 2 * t / den
        let lD1 = xi * xi / e - 2 * t / den
        dValue = SplineBin.chain(xi: xi, s: s, w: w, pXi: h * rXi, pS: h * rS, pH: r, pY0: 1, pD0: h * rD0, pD1: h * rD1)
        dLogDerivative = SplineBin.chain(xi: xi, s: s, w: w, pXi: lXi, pS: lS, pH: 0, pY0: 0, pD0: lD0, pD1: lD1)
    }

    /// The `x` in `[x_k, x_k+1]` that the bin maps to `y`: the root in `[0, 1]` of the bin's
    /// quadratic in ξ (Durkan et al., eq. 6 ff.), in the form `2c / (−b − √(b² − 4ac))` that
    /// stays accurate where `a` is near 0, clamped to the bin.
    @inline(__always)
    static func inverse(_ y: Float, x0: Float, x1: Float, y0: Float, y1: Float, d0: Float, d1: Float) -> Float {
        let w = x1 - x0, h = y1 - y0, s = h / w, dy = y - y0, c2 = d0 + d1 - 2 * s
        let a = h * (s - d0) + dy * c2, b = h * d0 - dy * c2, c = -s * dy
        let discriminant = Swift.max(b * b - 4 * a * c, 0)
        let xi = Swift.min(Swift.max(2 * c / (-b - discriminant.squareRoot()), 0), 1)
        return x0 + xi * w
    }

    /// Maps partials in (ξ, s, h, y_k, d_k, d_k+1) to (x, x_k, x_k+1, y_k, y_k+1, d_k, d_k+1)
    /// through ξ = (x − x_k) / w, s = h / w, w = x_k+1 − x_k, h = y_k+1 − y_k.
    @inline(__always)
    static func chain(xi: Float, s: Float, w: Float, pXi: Float, pS: Float, pH: Float, pY0: Float,
                      pD0: Float, pD1: Float) -> SIMD8<Float> {
        let pHTotal = pH + pS / w
        let pW = -(pS * s + pXi * xi) / w
        return SIMD8(pXi / w, -pXi / w - pW, pW, pY0 - pHTotal, pHTotal, pD0, pD1, 0)
    }
}

extension Tensor {
    /// The monotonic rational-quadratic spline of each element, and its log-derivative.
    ///
    /// Element `m` of `self` (`[M]`) goes through the spline whose `K + 1` knots are row `m` of
    /// `knotsX`, `knotsY` (increasing) and whose derivatives there are row `m` of `derivatives`
    /// (positive), all `[M, K + 1]`. Outside `[knotsX[m, 0], knotsX[m, K]]` the map is the
    /// identity (the linear tails of neural spline flows, continuous when the end knots sit on
    /// the diagonal with derivative 1). With `inverse`, `self` holds outputs and the result is
    /// the inverse map, found from the bin's quadratic (Durkan et al., eq. 6 ff., in the form
    /// `2c / (−b − √(b² − 4ac))` that stays accurate where `a` is near 0).
    ///
    /// Returns `[M, 2]`: column 0 the mapped values, column 1 `log |dy/dx|` of the forward map
    /// at that point (for `inverse`, `log |dx/dy|`, that is its negative). Differentiable in
    /// all four inputs (the inverse through the implicit-function theorem).
    ///
    /// Reference: Durkan, Bekasov, Murray & Papamakarios, "Neural Spline Flows" (NeurIPS 2019),
    /// https://arxiv.org/abs/1906.04032.
    public func rationalQuadraticSpline(knotsX: Tensor, knotsY: Tensor, derivatives: Tensor,
                                        inverse: Bool = false) -> Tensor {
        let m = count
        precondition(rank == 1 && knotsX.rank == 2 && knotsX.shape[0] == m && knotsX.shape[1] >= 2
                     && knotsY.shape == knotsX.shape && derivatives.shape == knotsX.shape,
                     "rationalQuadraticSpline: inputs \(shape) and knots \(knotsX.shape), \(knotsY.shape), "
                     + "\(derivatives.shape) must be [M] and [M, K + 1]")
        let knots = knotsX.shape[1]
        let out = Tensor(uninitializedShape: [m, 2])
        // Bin per element (-1 outside the knots), kept for the backward.
        let bins = UnsafeMutablePointer<Int32>.allocate(capacity: Swift.max(m, 1))
        let xin = storage.pointer, kx = knotsX.storage.pointer, ky = knotsY.storage.pointer
        let kd = derivatives.storage.pointer, o = out.storage.pointer
        Threading.parallelChunks(m, costPerItem: 64) { _, r in
            for i in r {
                let row = i * knots
                let search = inverse ? ky + row : kx + row
                let v = xin[i]
                guard v >= search[0] && v <= search[knots - 1] else {
                    bins[i] = -1; o[2 * i] = v; o[2 * i + 1] = 0; continue
                }
                // Largest k < K with search[k] <= v.
                var lo = 0, hi = knots - 2
                while lo < hi {
                    let mid = (lo + hi + 1) >> 1
                    if search[mid] <= v { lo = mid } else { hi = mid - 1 }
                }
                bins[i] = Int32(lo)
                let x0 = kx[row + lo], x1 = kx[row + lo + 1], y0 = ky[row + lo], y1 = ky[row + lo + 1]
                let d0 = kd[row + lo], d1 = kd[row + lo + 1]
                if inverse {
                    let x = SplineBin.inverse(v, x0: x0, x1: x1, y0: y0, y1: y1, d0: d0, d1: d1)
                    o[2 * i] = x
                    o[2 * i + 1] = -SplineBin(x: x, x0: x0, x1: x1, y0: y0, y1: y1, d0: d0, d1: d1).logDerivative
                } else {
                    let bin = SplineBin(x: v, x0: x0, x1: x1, y0: y0, y1: y1, d0: d0, d1: d1)
                    o[2 * i] = bin.value
                    o[2 * i + 1] = bin.logDerivative
                }
            }
        }
        let binTable = BinTable(bins)
        let saved = out.detached()
        return Tensor.record(inverse ? "rationalQuadraticSplineInverse" : "rationalQuadraticSpline",
                             [self, knotsX, knotsY, derivatives], out) { [self] g in
            let dIn = Tensor(uninitializedShape: [m])
            let dX = Tensor.zeros([m, knots]), dY = Tensor.zeros([m, knots]), dD = Tensor.zeros([m, knots])
            let gp = g.storage.pointer, di = dIn.storage.pointer, res = saved.storage.pointer
            let gx = dX.storage.pointer, gy = dY.storage.pointer, gd = dD.storage.pointer
            let kx = knotsX.storage.pointer, ky = knotsY.storage.pointer, kd = derivatives.storage.pointer
            let xin = self.storage.pointer, bins = binTable.pointer
            Threading.parallelChunks(m, costPerItem: 64) { _, r in
                for i in r {
                    let k = Int(bins[i])
                    let gValue = gp[2 * i], gLog = gp[2 * i + 1]
                    guard k >= 0 else { di[i] = gValue; continue }
                    let row = i * knots + k
                    // Forward: partials at the input; inverse: at the computed x.
                    let x = inverse ? res[2 * i] : xin[i]
                    let bin = SplineBin(x: x, x0: kx[row], x1: kx[row + 1], y0: ky[row], y1: ky[row + 1],
                                        d0: kd[row], d1: kd[row + 1])
                    var p: SIMD8<Float>
                    if inverse {
                        // x(y, θ) with f(x, θ) = y: dx/dy = 1/f_x, dx/dθ = −f_θ / f_x; the output
                        // −L(x(y, θ), θ) then has d/dy = −L_x / f_x and d/dθ = −L_θ + L_x f_θ / f_x.
                        let fx = bin.dValue[0], lx = bin.dLogDerivative[0]
                        let dxdTheta = -bin.dValue / fx
                        p = gValue * dxdTheta + gLog * (-bin.dLogDerivative - lx * dxdTheta)
                        p[0] = (gValue - gLog * lx) / fx
                    } else {
                        p = gValue * bin.dValue + gLog * bin.dLogDerivative
                    }
                    di[i] = p[0]
                    gx[row] += p[1]; gx[row + 1] += p[2]
                    gy[row] += p[3]; gy[row + 1] += p[4]
                    gd[row] += p[5]; gd[row + 1] += p[6]
                }
            }
            return [dIn, dX, dY, dD]
        }
    }
}

/// Owns the per-element bins that the spline's backward reads (freed with the graph).
private final class BinTable {
    let pointer: UnsafeMutablePointer<Int32>
    init(_ pointer: UnsafeMutablePointer<Int32>) { self.pointer = pointer }
    deinit { pointer.deallocate() }
}
