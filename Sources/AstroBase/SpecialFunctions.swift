// Special functions: log-gamma (for the Poisson generator and the Sérsic profiles), the
// regularised incomplete gamma function, the exact Sérsic b_n, and the normal CDF.
import Foundation

/// Numerics shared by the simulator's profiles and the noise model. All functions are pure and
/// thread-safe (unlike glibc's `lgamma`, which writes the global `signgam`).
public enum SpecialFunctions {
    private static let lanczos: [Double] = [
        0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
        -176.61502916214059, 12.507343278686905, -0.13857109526572012,
        9.9843695780195716e-6, 1.5056327351493116e-7,
    ]

    /// ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9; relative error ~1e-15).
    public static func logGamma(_ x: Double) -> Double {
        if x < 0.5 {
            // Reflection keeps the series in its accurate range.
            return Foundation.log(Double.pi / Swift.abs(Foundation.sin(Double.pi * x))) - logGamma(1 - x)
        }
        let z = x - 1
        var sum = lanczos[0]
        for i in 1..<9 { sum += lanczos[i] / (z + Double(i)) }
        let t = z + 7.5
        return 0.5 * Foundation.log(2 * Double.pi) + (z + 0.5) * Foundation.log(t) - t + Foundation.log(sum)
    }

    /// ln k! for a non-negative integer-valued k.
    public static func logFactorial(_ k: Double) -> Double { logGamma(k + 1) }

    /// Regularised lower incomplete gamma P(a, x) = γ(a, x) / Γ(a).
    ///
    /// Series below x = a + 1, Lentz continued fraction for Q above (Numerical Recipes §6.2):
    /// each converges fast on its side, and the series alone loses all accuracy in the tail.
    public static func regularizedGammaP(_ a: Double, _ x: Double) -> Double {
        precondition(a > 0, "regularizedGammaP: a must be positive, got \(a)")
        if x <= 0 { return 0 }
        let logPrefactor = a * Foundation.log(x) - x - logGamma(a)
        if x < a + 1 {
            var term = 1 / a, sum = term, ap = a
            for _ in 0..<10_000 {
                ap += 1
                term *= x / ap
                sum += term
                if Swift.abs(term) < Swift.abs(sum) * 1e-16 { break }
            }
            return sum * Foundation.exp(logPrefactor)
        }
        let tiny = 1e-300
        var b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d
        for i in 1..<10_000 {
            let an = -Double(i) * (Double(i) - a)
            b += 2
            d = an * d + b; if Swift.abs(d) < tiny { d = tiny }
            c = b + an / c; if Swift.abs(c) < tiny { c = tiny }
            d = 1 / d
            let delta = d * c
            h *= delta
            if Swift.abs(delta - 1) < 1e-16 { break }
        }
        return 1 - Foundation.exp(logPrefactor) * h
    }

    /// A Gaussian's full width at half maximum over its σ, 2 √(2 ln 2).
    public static let fwhmPerSigma = 2 * (2 * Foundation.log(2.0)).squareRoot()

    /// The Sérsic b_n, solving P(2n, b_n) = 1/2 exactly (so r_e encloses half the light).
    ///
    /// The popular approximation b ≈ 2n - 1/3 + 4/(405 n) is off by ~1e-3 at n = 0.5,
    /// enough to bias half-light radii; bisection on the exact equation costs microseconds.
    public static func sersicB(n: Double) -> Double {
        precondition(n > 0, "sersicB: n must be positive, got \(n)")
        var low = 0.0, high = 2 * n + 1
        for _ in 0..<200 {
            let mid = 0.5 * (low + high)
            if regularizedGammaP(2 * n, mid) < 0.5 { low = mid } else { high = mid }
            if high - low < 1e-14 * high { break }
        }
        return 0.5 * (low + high)
    }

    /// Standard normal CDF Φ(x) (inlinable: the renderer calls it per pixel).
    @inlinable
    public static func normalCDF(_ x: Double) -> Double { 0.5 * Foundation.erfc(-x * 0.7071067811865476) }
}
