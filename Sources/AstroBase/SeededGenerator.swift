// Seeded random numbers for every module: xoshiro256** seeded through SplitMix64, with
// uniform, normal (Box-Muller) and Poisson (inversion / PTRS) variates.
import Foundation

/// SplitMix64: expands a seed into xoshiro states, and a small generator of its own.
///
/// Reference: Steele, Lea & Flood, "Fast splittable pseudorandom number generators" (2014).
public struct SplitMix64: RandomNumberGenerator {
    /// The counter; each `next()` adds the golden-ratio increment and mixes it.
    public var state: UInt64

    @inlinable public init(seed: UInt64) { state = seed }

    @inlinable @inline(__always)
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// xoshiro256** seeded through SplitMix64: the one seeded generator of the project, so that
/// weights, dropout, shuffling, augmentation and simulated images are reproducible from one
/// seed on every platform (Swift's `SystemRandomNumberGenerator` cannot be seeded).
///
/// Work split over threads takes one generator per item from `init(seed:stream:)`, so the
/// numbers drawn do not depend on the order the items run in.
/// Reference: Blackman & Vigna, "Scrambled linear pseudorandom number generators" (2021).
public struct SeededGenerator: RandomNumberGenerator {
    @usableFromInline var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64
    /// The second normal variate of the last Box-Muller pair, returned by the next `normal()`.
    @usableFromInline var spareNormal: Double?

    /// The generator of `seed`: its state is the next four SplitMix64 outputs. They are
    /// never all zero (SplitMix64's output function is a bijection of distinct inputs).
    @inlinable
    public init(seed: UInt64) {
        var mixer = SplitMix64(seed: seed)
        s0 = mixer.next(); s1 = mixer.next(); s2 = mixer.next(); s3 = mixer.next()
        spareNormal = nil
    }

    /// An independent generator for item `stream` of a run seeded with `seed` (image `i`
    /// of a simulated data set, sample `i` of an epoch): the seed goes through SplitMix64
    /// once more before the stream index is mixed in, so nearby seeds and indices give
    /// unrelated states.
    @inlinable
    public init(seed: UInt64, stream: UInt64) {
        var mixer = SplitMix64(seed: seed)
        self.init(seed: mixer.next() ^ (stream &* 0xD1B5_4A32_D192_ED03) ^ 0x5851_F42D_4C95_7F2D)
    }

    /// An independent generator for the file or object `name` of a run seeded with `seed`
    /// (the stream is the name's FNV-1a hash), so a file draws the same numbers in every run
    /// whatever the files around it.
    public init(seed: UInt64, name: String) {
        self.init(seed: seed, stream: Self.nameHash(name))
    }

    /// The FNV-1a hash of `name`'s UTF-8 bytes (stable across runs and machines, unlike `hashValue`).
    public static func nameHash(_ name: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in name.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return hash
    }

    @inlinable @inline(__always)
    public mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = (s3 << 45) | (s3 >> 19)
        return result
    }

    // MARK: - Uniform

    /// Uniform in [0, 1) with 53 random bits.
    @inlinable @inline(__always)
    public mutating func uniform() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// Uniform in [low, high).
    @inlinable @inline(__always)
    public mutating func uniform(_ low: Double, _ high: Double) -> Double { low + (high - low) * uniform() }

    /// Uniform in a closed range.
    @inlinable @inline(__always)
    public mutating func uniform(_ range: ClosedRange<Double>) -> Double { uniform(range.lowerBound, range.upperBound) }

    /// Uniform in `a ± b` (the notation TASKS.md uses for colours).
    @inlinable
    public mutating func plusMinus(_ a: Double, _ b: Double) -> Double { uniform(a - b, a + b) }

    /// Uniform integer in the closed range (modulo reduction: the bias is below 2⁻⁴⁰ for
    /// ranges under a million values).
    @inlinable
    public mutating func integer(_ range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(next() % UInt64(range.count))
    }

    /// Uniform Float in [0, 1) with 24 random bits, for per-element kernel loops (dropout,
    /// uniform initialisation): a Double rounded to Float could reach 1.
    @inlinable @inline(__always)
    public mutating func nextUnit() -> Float {
        Float(next() >> 40) * (1.0 / 16_777_216.0)
    }

    // MARK: - Normal

    /// Standard normal variate by Box-Muller; both values of each pair are used.
    @inlinable
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

    /// `normal()` as a Float, for filling tensors.
    @inlinable @inline(__always)
    public mutating func nextNormal() -> Float { Float(normal()) }

    /// Exponential variate of mean 1, by inversion of one uniform.
    @inlinable
    public mutating func exponential() -> Double { -Foundation.log(1 - uniform()) }

    // MARK: - Poisson

    /// Poisson variate with mean `lambda` (0 for a mean ≤ 0 or NaN).
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

    // MARK: - Permutations

    /// A random permutation of `0..<n` (Fisher-Yates, drawing with `integer`).
    public mutating func permutation(_ n: Int) -> [Int] {
        var order = Array(0..<n)
        if n < 2 { return order }
        for i in stride(from: n - 1, to: 0, by: -1) {
            order.swapAt(i, integer(0...i))
        }
        return order
    }
}
