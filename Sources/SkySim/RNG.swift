// Seeded random numbers for the simulator: xoshiro256** seeded through SplitMix64,
// uniform, normal (Box-Muller) and Poisson (inversion / PTRS) variates.
import Foundation

/// SplitMix64: used to expand a (seed, index) pair into independent xoshiro states.
///
/// Reference: Steele, Lea & Flood, "Fast splittable pseudorandom number generators" (2014).
public struct SplitMix64 {
    public private(set) var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// xoshiro256**, the simulator's only source of randomness.
///
/// Every image gets its own generator from `SimRandom(seed:index:)`, so images can be
/// drawn in any order, on any number of threads, and still be byte-identical.
/// Reference: Blackman & Vigna, "Scrambled linear pseudorandom number generators" (2021).
public struct SimRandom: RandomNumberGenerator {
    private var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64
    private var spareNormal: Double?

    /// A generator for image `index` of the data set made with `seed`.
    public init(seed: UInt64, index: UInt64 = 0) {
        var mixer = SplitMix64(seed: seed)
        let base = mixer.next()
        var expander = SplitMix64(seed: base ^ (index &* 0xD1B5_4A32_D192_ED03) ^ 0x5851_F42D_4C95_7F2D)
        s0 = expander.next(); s1 = expander.next(); s2 = expander.next(); s3 = expander.next()
        if (s0 | s1 | s2 | s3) == 0 { s0 = 1 }
    }

    public mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = (s3 << 45) | (s3 >> 19)
        return result
    }

    /// Uniform in [0, 1) with 53 random bits.
    public mutating func uniform() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// Uniform in [low, high).
    public mutating func uniform(_ low: Double, _ high: Double) -> Double { low + (high - low) * uniform() }

    /// Uniform in `a ± b`, the TASKS.md notation for colours.
    public mutating func plusMinus(_ a: Double, _ b: Double) -> Double { uniform(a - b, a + b) }

    /// Uniform integer in the closed range.
    public mutating func integer(_ range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(next() % UInt64(range.count))
    }

    /// Standard normal variate (Box-Muller; the second value of each pair is kept).
    public mutating func normal() -> Double {
        if let z = spareNormal { spareNormal = nil; return z }
        var u1 = uniform()
        while u1 <= 0 { u1 = uniform() }
        let u2 = uniform()
        let radius = (-2 * Foundation.log(u1)).squareRoot()
        let angle = 2 * Double.pi * u2
        spareNormal = radius * Foundation.sin(angle)
        return radius * Foundation.cos(angle)
    }

    /// Poisson variate with mean `lambda` (>= 0).
    ///
    /// Exact for every mean: sequential-search inversion below 10, and above it Hörmann's
    /// transformed rejection with squeeze (PTRS), "The transformed rejection method for
    /// generating Poisson random variables", Insurance: Math. & Econ. 12 (1993). A normal
    /// approximation would misplace the skewness of faint pixels, which is what a network
    /// sees in the outskirts of every galaxy.
    public mutating func poisson(_ lambda: Double) -> Double {
        if !(lambda > 0) { return 0 }
        if lambda < 10 {
            // Inversion: walk the CDF from 0.
            let u = uniform()
            var k = 0.0
            var p = Foundation.exp(-lambda)
            var cdf = p
            while u > cdf && k < 1000 {
                k += 1
                p *= lambda / k
                cdf += p
            }
            return k
        }
        let slam = lambda.squareRoot()
        let loglam = Foundation.log(lambda)
        let b = 0.931 + 2.53 * slam
        let a = -0.059 + 0.02483 * b
        let invAlpha = 1.1239 + 1.1328 / (b - 3.4)
        let vr = 0.9277 - 3.6224 / (b - 2)
        while true {
            let u = uniform() - 0.5
            let v = uniform()
            let us = 0.5 - Swift.abs(u)
            let k = ((2 * a / us + b) * u + lambda + 0.43).rounded(.down)
            if us >= 0.07 && v <= vr { return k }
            if k < 0 || (us < 0.013 && v > us) { continue }
            if Foundation.log(v) + Foundation.log(invAlpha) - Foundation.log(a / (us * us) + b)
                <= -lambda + k * loglam - SpecialFunctions.logFactorial(k) {
                return k
            }
        }
    }
}

extension SimRandom {
    /// Uniform in a closed range.
    public mutating func uniform(_ range: ClosedRange<Double>) -> Double { uniform(range.lowerBound, range.upperBound) }
    /// Position angle uniform in [0, π).
    public mutating func positionAngle() -> Double { uniform(0, Double.pi) }
}
