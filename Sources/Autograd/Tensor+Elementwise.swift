// Elementwise arithmetic (broadcasting), math functions, comparisons and `where`.
import Foundation

// MARK: - Kernels shared by the unary ops

/// `out[i] = mask[i] > 0 ? value[i] : 0` over `range`, 16 lanes at a time (the scalar form's
/// conditional load kept the compiler from vectorising ReLU's backward).
@inline(__always)
func reluMasked(_ out: UnsafeMutablePointer<Float>, value: UnsafeMutablePointer<Float>,
                mask: UnsafeMutablePointer<Float>, _ range: Range<Int>) {
    var i = range.lowerBound
    let zero = SIMD16<Float>()
    while i + 16 <= range.upperBound {
        let v = UnsafeRawPointer(value + i).loadUnaligned(as: SIMD16<Float>.self)
        let m = UnsafeRawPointer(mask + i).loadUnaligned(as: SIMD16<Float>.self)
        UnsafeMutableRawPointer(out + i).storeBytes(of: zero.replacing(with: v, where: m .> zero), as: SIMD16<Float>.self)
        i += 16
    }
    while i < range.upperBound { out[i] = mask[i] > 0 ? value[i] : 0; i += 1 }
}

/// `out[i] = mask[i] > 0 ? value[i] : slope · value[i]` over `range`, 16 lanes at a time:
/// leaky ReLU's forward (`value` = `mask` = x) and backward (`value` = g, `mask` = x).
@inline(__always)
func leakyScaled(_ out: UnsafeMutablePointer<Float>, value: UnsafeMutablePointer<Float>,
                 mask: UnsafeMutablePointer<Float>, slope: Float, _ range: Range<Int>) {
    var i = range.lowerBound
    let zero = SIMD16<Float>(), s = SIMD16<Float>(repeating: slope)
    while i + 16 <= range.upperBound {
        let v = UnsafeRawPointer(value + i).loadUnaligned(as: SIMD16<Float>.self)
        let m = UnsafeRawPointer(mask + i).loadUnaligned(as: SIMD16<Float>.self)
        UnsafeMutableRawPointer(out + i).storeBytes(of: (v * s).replacing(with: v, where: m .> zero), as: SIMD16<Float>.self)
        i += 16
    }
    while i < range.upperBound { out[i] = mask[i] > 0 ? value[i] : slope * value[i]; i += 1 }
}

extension Tensor {
    /// `y = f(x)` elementwise; the pullback is `g * df(x, y)` (the derivative may use the
    /// output, which is cheaper for exp, sigmoid, tanh).
    @inline(__always)
    func unary(_ op: String, _ f: (Float) -> Float,
               derivative df: @escaping (_ x: Float, _ y: Float) -> Float) -> Tensor {
        let out = Tensor(uninitializedShape: shape)
        let x = storage.pointer, y = out.storage.pointer
        Threading.parallelChunks(count, costPerItem: 4) { _, r in for i in r { y[i] = f(x[i]) } }
        // Save the output's values through a detached tensor: capturing `out` itself would
        // make a cycle (out -> node -> closure -> out) that leaks if backward never runs.
        let saved = out.detached()
        return Tensor.record(op, [self], out) { [self] g in
            let dx = Tensor(uninitializedShape: g.shape)
            let gp = g.storage.pointer, d = dx.storage.pointer
            let x = self.storage.pointer, y = saved.storage.pointer
            Threading.parallelChunks(dx.count, costPerItem: 4) { _, r in
                for i in r { d[i] = gp[i] * df(x[i], y[i]) }
            }
            return [dx]
        }
    }

    /// Elementwise map without autograd (masks, constants).
    func mapped(_ f: (Float) -> Float) -> Tensor {
        let out = Tensor(uninitializedShape: shape)
        let x = storage.pointer, y = out.storage.pointer
        for i in 0..<count { y[i] = f(x[i]) }
        return out
    }
}

// MARK: - Binary arithmetic with broadcasting

extension Tensor {
    public static func + (a: Tensor, b: Tensor) -> Tensor {
        let out = broadcastBinaryKernel(a, b, op: "add", +)
        let (sa, sb) = (a.shape, b.shape)
        return record("add", [a, b], out) { g in [g.unbroadcast(to: sa), g.unbroadcast(to: sb)] }
    }

    public static func - (a: Tensor, b: Tensor) -> Tensor {
        let out = broadcastBinaryKernel(a, b, op: "subtract", -)
        let (sa, sb) = (a.shape, b.shape)
        return record("subtract", [a, b], out) { g in [g.unbroadcast(to: sa), (-g).unbroadcast(to: sb)] }
    }

    public static func * (a: Tensor, b: Tensor) -> Tensor {
        let out = broadcastBinaryKernel(a, b, op: "multiply", *)
        return record("multiply", [a, b], out) { g in
            [a.tracksGradient ? (g * b).unbroadcast(to: a.shape) : nil,
             b.tracksGradient ? (g * a).unbroadcast(to: b.shape) : nil]
        }
    }

    public static func / (a: Tensor, b: Tensor) -> Tensor {
        let out = broadcastBinaryKernel(a, b, op: "divide", /)
        let saved = out.detached()
        return record("divide", [a, b], out) { g in
            [a.tracksGradient ? (g / b).unbroadcast(to: a.shape) : nil,
             b.tracksGradient ? (-(g * saved) / b).unbroadcast(to: b.shape) : nil]
        }
    }

    public static prefix func - (a: Tensor) -> Tensor {
        a.unary("negate", { -$0 }, derivative: { _, _ in -1 })
    }

    // Scalar operands: closures capture the constant, gradients are elementwise.
    public static func + (a: Tensor, s: Float) -> Tensor { a.unary("addScalar", { $0 + s }, derivative: { _, _ in 1 }) }
    public static func + (s: Float, a: Tensor) -> Tensor { a + s }
    public static func - (a: Tensor, s: Float) -> Tensor { a + (-s) }
    public static func - (s: Float, a: Tensor) -> Tensor { a.unary("rsubScalar", { s - $0 }, derivative: { _, _ in -1 }) }
    public static func * (a: Tensor, s: Float) -> Tensor { a.unary("multiplyScalar", { $0 * s }, derivative: { _, _ in s }) }
    public static func * (s: Float, a: Tensor) -> Tensor { a * s }
    public static func / (a: Tensor, s: Float) -> Tensor { a * (1 / s) }
    public static func / (s: Float, a: Tensor) -> Tensor {
        a.unary("rdivScalar", { s / $0 }, derivative: { x, y in -y / x })
    }
}

// MARK: - Math functions

extension Tensor {
    public func exp() -> Tensor { unary("exp", { Foundation.exp($0) }, derivative: { _, y in y }) }
    public func log() -> Tensor { unary("log", { Foundation.log($0) }, derivative: { x, _ in 1 / x }) }
    public func sqrt() -> Tensor { unary("sqrt", { $0.squareRoot() }, derivative: { _, y in 0.5 / y }) }
    public func sinh() -> Tensor { unary("sinh", { Foundation.sinh($0) }, derivative: { x, _ in Foundation.cosh(x) }) }
    public func asinh() -> Tensor {
        unary("asinh", { Foundation.asinh($0) }, derivative: { x, _ in 1 / (1 + x * x).squareRoot() })
    }
    public func squared() -> Tensor { unary("square", { $0 * $0 }, derivative: { x, _ in 2 * x }) }
    /// `x^p` for a constant exponent.
    public func pow(_ p: Float) -> Tensor {
        unary("pow", { Foundation.pow($0, p) }, derivative: { x, _ in p * Foundation.pow(x, p - 1) })
    }
    /// |x|; the subgradient at 0 is 0.
    public func abs() -> Tensor {
        unary("abs", { Swift.abs($0) }, derivative: { x, _ in x > 0 ? 1 : (x < 0 ? -1 : 0) })
    }
    /// Limits to `[lower, upper]`; gradient 1 strictly inside, 0 outside (PyTorch passes it at the bounds).
    public func clamped(min lower: Float = -.infinity, max upper: Float = .infinity) -> Tensor {
        unary("clamp", { Swift.min(Swift.max($0, lower), upper) },
              derivative: { x, _ in x >= lower && x <= upper ? 1 : 0 })
    }
}

// MARK: - Activations
// Fused rather than composed from exp/log: one pass instead of several, and the stable
// forms below avoid overflow (sigmoid and softplus for large |x|).

extension Tensor {
    /// `max(x, 0)` (NaN gives 0). Its own loops rather than `unary`'s closures: the closure
    /// calls per element did not inline and were ~4% of a resnet18 training step.
    ///
    /// The backward masks with the output (`y > 0` exactly where `x > 0`), not the input: the
    /// output is kept anyway by whatever consumes it (the next convolution), while the input
    /// is then freed as soon as the forward pass moves on. After batch norm the output is not
    /// kept either (`Rematerialized`).
    public func relu() -> Tensor {
        let out = Tensor(uninitializedShape: shape)
        let x = storage.pointer, y = out.storage.pointer
        Threading.parallelChunks(count, costPerItem: 2) { _, r in reluMasked(y, value: x, mask: x, r) }
        // After batch norm, neither: the output is recomputed from batch norm's input when needed.
        if let affine = node?.channelAffine {
            let recipe = Rematerialized(reluOf: affine)
            Tensor.record("relu", [self], out) { g in [recipe.maskedGradient(g)] }
            out.node?.rematerialized = recipe
            return out
        }
        // Through a detached tensor: capturing `out` itself would be a cycle (see `unary`).
        let saved = out.detached()
        return Tensor.record("relu", [self], out) { g in
            let dx = Tensor(uninitializedShape: g.shape)
            let gp = g.storage.pointer, d = dx.storage.pointer, y = saved.storage.pointer
            Threading.parallelChunks(dx.count, costPerItem: 2) { _, r in reluMasked(d, value: gp, mask: y, r) }
            return [dx]
        }
    }

    /// `x` for x > 0, `negativeSlope · x` otherwise (the gradient's factor at 0 is the slope).
    /// Its own vector loops, as `relu`: `unary`'s closures were ~4 % of a pix2pix training step.
    public func leakyRelu(negativeSlope: Float = 0.01) -> Tensor {
        let out = Tensor(uninitializedShape: shape)
        let x = storage.pointer, y = out.storage.pointer
        Threading.parallelChunks(count, costPerItem: 2) { _, r in leakyScaled(y, value: x, mask: x, slope: negativeSlope, r) }
        return Tensor.record("leakyRelu", [self], out) { [self] g in
            let dx = Tensor(uninitializedShape: g.shape)
            let gp = g.storage.pointer, d = dx.storage.pointer, x = self.storage.pointer
            Threading.parallelChunks(dx.count, costPerItem: 2) { _, r in leakyScaled(d, value: gp, mask: x, slope: negativeSlope, r) }
            return [dx]
        }
    }

    /// `x` for x > 0, `alpha (e^x - 1)` otherwise.
    public func elu(alpha: Float = 1) -> Tensor {
        unary("elu", { $0 > 0 ? $0 : alpha * Foundation.expm1($0) },
              derivative: { x, y in x > 0 ? 1 : y + alpha })
    }

    /// Exact GELU, `x Φ(x)` with the normal CDF through erf (PyTorch's default).
    public func gelu() -> Tensor {
        unary("gelu", { 0.5 * $0 * (1 + Foundation.erf($0 * 0.70710678)) },
              derivative: { x, _ in
                  0.5 * (1 + Foundation.erf(x * 0.70710678)) + x * 0.39894228 * Foundation.exp(-0.5 * x * x)
              })
    }

    public func sigmoid() -> Tensor {
        unary("sigmoid", { x in
            // Never exponentiate a large positive number.
            x >= 0 ? 1 / (1 + Foundation.exp(-x)) : { let e = Foundation.exp(x); return e / (1 + e) }()
        }, derivative: { _, y in y * (1 - y) })
    }

    public func tanh() -> Tensor { unary("tanh", { Foundation.tanh($0) }, derivative: { _, y in 1 - y * y }) }

    /// `log(1 + e^x)` computed as `max(x, 0) + log1p(e^-|x|)`.
    public func softplus() -> Tensor {
        unary("softplus", { Swift.max($0, 0) + Foundation.log1p(Foundation.exp(-Swift.abs($0))) },
              derivative: { x, _ in
                  x >= 0 ? 1 / (1 + Foundation.exp(-x)) : { let e = Foundation.exp(x); return e / (1 + e) }()
              })
    }
}

// MARK: - Comparisons and where (no gradient: the results are 0/1 masks)

extension Tensor {
    public static func .> (a: Tensor, b: Tensor) -> Tensor { broadcastBinaryKernel(a, b, op: ".>") { $0 > $1 ? 1 : 0 } }
    public static func .< (a: Tensor, b: Tensor) -> Tensor { broadcastBinaryKernel(a, b, op: ".<") { $0 < $1 ? 1 : 0 } }
    public static func .>= (a: Tensor, b: Tensor) -> Tensor { broadcastBinaryKernel(a, b, op: ".>=") { $0 >= $1 ? 1 : 0 } }
    public static func .<= (a: Tensor, b: Tensor) -> Tensor { broadcastBinaryKernel(a, b, op: ".<=") { $0 <= $1 ? 1 : 0 } }
    public static func .== (a: Tensor, b: Tensor) -> Tensor { broadcastBinaryKernel(a, b, op: ".==") { $0 == $1 ? 1 : 0 } }
    public static func .> (a: Tensor, s: Float) -> Tensor { a.mapped { $0 > s ? 1 : 0 } }
    public static func .< (a: Tensor, s: Float) -> Tensor { a.mapped { $0 < s ? 1 : 0 } }
    public static func .>= (a: Tensor, s: Float) -> Tensor { a.mapped { $0 >= s ? 1 : 0 } }
    public static func .<= (a: Tensor, s: Float) -> Tensor { a.mapped { $0 <= s ? 1 : 0 } }

    /// Picks `a` where `condition` is non-zero, else `b`; all three broadcast together.
    /// Gradients flow only to the chosen side (no `0 * inf` from the other branch).
    public static func `where`(_ condition: Tensor, _ a: Tensor, _ b: Tensor) -> Tensor {
        let shape = broadcastShape(broadcastShape(condition.shape, a.shape, op: "where"), b.shape, op: "where")
        let c = condition.expanded(to: shape).detached()
        let ea = a.expanded(to: shape), eb = b.expanded(to: shape)
        let out = Tensor(uninitializedShape: shape)
        let cp = c.storage.pointer, ap = ea.storage.pointer, bp = eb.storage.pointer, o = out.storage.pointer
        for i in 0..<out.count { o[i] = cp[i] != 0 ? ap[i] : bp[i] }
        return record("where", [ea, eb], out) { g in
            let cp = c.storage.pointer
            let ga = Tensor(uninitializedShape: shape), gb = Tensor(uninitializedShape: shape)
            let gp = g.storage.pointer, pa = ga.storage.pointer, pb = gb.storage.pointer
            for i in 0..<g.count {
                let chosen = cp[i] != 0
                pa[i] = chosen ? gp[i] : 0
                pb[i] = chosen ? 0 : gp[i]
            }
            return [ga, gb]
        }
    }
}
