import Autograd
import Foundation

/// Preprocessing draws from the engine's `SeededGenerator` (xoshiro256** seeded
/// through SplitMix64), so that augmentation, shuffling and splits are reproducible
/// from one seed on every platform — Swift's `SystemRandomNumberGenerator` cannot be
/// seeded. These additions give per-item streams and the distributions stages need.
extension SeededGenerator {
    /// An independent stream for item `index` of a run seeded with `seed`, so that
    /// work split over threads draws the same numbers in any order.
    public init(seed: UInt64, stream index: UInt64) {
        self.init(seed: seed ^ (index &* 0xD1B5_4A32_D192_ED03) &+ 0x632B_E59B_D9B4_E019)
    }

    /// Uniform in [0, 1) with 53 random bits.
    public mutating func uniform() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// Uniform in `range`.
    public mutating func uniform(_ range: ClosedRange<Double>) -> Double {
        range.lowerBound + (range.upperBound - range.lowerBound) * uniform()
    }

    /// Standard normal (Box-Muller; one of the pair is discarded to keep the state simple).
    public mutating func normal() -> Double {
        let u1 = Double((next() >> 11) + 1) * 0x1.0p-53   // (0, 1]
        let u2 = uniform()
        return (-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2)
    }

    /// Poisson-distributed count of mean `lambda`: inversion by sequential search
    /// for small means, the normal approximation (continuity-corrected) above 64,
    /// where its error is far below the Gaussian sky noise it is added to.
    public mutating func poisson(_ lambda: Double) -> Double {
        guard lambda > 0 else { return 0 }
        if lambda > 64 {
            return Swift.max(0, (lambda + lambda.squareRoot() * normal() + 0.5).rounded(.down))
        }
        var k = 0.0
        var p = Foundation.exp(-lambda), cumulative = p
        let u = uniform()
        while u > cumulative && k < 1000 {
            k += 1
            p *= lambda / k
            cumulative += p
        }
        return k
    }
}
