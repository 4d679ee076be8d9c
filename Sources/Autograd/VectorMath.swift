// Eight-lane float helpers shared by the portable recurrent-cell loops (Tensor+LSTM.swift,
// Tensor+GRU.swift) and the flow kernels: unaligned loads and stores, exponential, sigmoid,
// tanh (the switch between them and the AVX-512 C kernels is `AVX512Kernels`, AstroBase).
import CKernels
import Foundation

@inline(__always) func loadVector(_ p: UnsafeMutablePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always) func storeVector(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}

/// `e^x` for eight lanes: `x = n ln 2 + r` (ln 2 split in two so `r` is exact), Cephes'
/// degree-6 polynomial for `e^r` on `|r| ≤ ln 2 / 2`, `2^n` built in the exponent bits.
/// Relative error < 1e-7 (measured against double `exp` on [-87, 88]); `x` is clamped there,
/// so the result never overflows to infinity or underflows to a denormal. Rounding and the
/// float → integer step use the 1.5·2²³ trick (adding it leaves `n` in the low mantissa
/// bits) because the generic `SIMD8<Int32>(_:rounding:)` is not vectorised.
@inline(__always) func vectorExp(_ x: SIMD8<Float>) -> SIMD8<Float> {
    // `replacing(with:where:)` rather than the generic `pointwiseMin/Max`, which are not inlined.
    let lower = SIMD8<Float>(repeating: -87.3), upper = SIMD8<Float>(repeating: 88.3)
    let xc = x.replacing(with: lower, where: x .< lower).replacing(with: upper, where: x .> upper)
    let shifted = xc * 1.44269504 + 12_582_912
    let n = shifted - 12_582_912
    let r = xc - n * 0.693359375 + n * 2.12194440e-4
    var p = SIMD8<Float>(repeating: 1.9875691500e-4)
    p = p * r + 1.3981999507e-3
    p = p * r + 8.3334519073e-3
    p = p * r + 4.1665795894e-2
    p = p * r + 1.6666665459e-1
    p = p * r + 5.0000001201e-1
    let bits = (unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000 &+ 127) &<< 23
    return (p * r * r + r + 1) * unsafeBitCast(bits, to: SIMD8<Float>.self)
}

/// `1 / (1 + e^-x)`; with the clamped exponential both tails are finite (→ 0 and 1).
@inline(__always) func vectorSigmoid(_ x: SIMD8<Float>) -> SIMD8<Float> { 1 / (1 + vectorExp(-x)) }

/// `tanh x = 1 - 2 / (e^{2x} + 1)`: absolute error < 2e-7 (the relative error near 0 is
/// larger, which an LSTM gate does not notice).
@inline(__always) func vectorTanh(_ x: SIMD8<Float>) -> SIMD8<Float> { 1 - 2 / (vectorExp(2 * x) + 1) }

/// `1 / (1 + e^-x)`, never exponentiating a large positive number.
@inline(__always) func scalarSigmoid(_ x: Float) -> Float {
    x >= 0 ? 1 / (1 + Foundation.exp(-x)) : { let e = Foundation.exp(x); return e / (1 + e) }()
}

@inline(__always) func scalarTanh(_ x: Float) -> Float { Foundation.tanh(x) }
