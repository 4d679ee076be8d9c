import AstroBase
import Foundation
import XCTest
@testable import Training

/// The calibration tests on synthetic Gaussian posteriors whose calibration is known: a
/// calibrated one passes, a too-narrow (overconfident) and a biased one fail.
final class PosteriorCalibrationTests: XCTestCase {
    /// `objects` 2-D problems: the truth θ ~ N(μ, 1) per dimension, the posterior
    /// N(μ + bias, width²) sampled `draws` times (μ itself drawn per object). `width` 1 and
    /// `bias` 0 is exactly calibrated.
    func synthetic(objects: Int = 1000, draws: Int = 300, width: Double, bias: Double = 0, seed: UInt64)
        -> (draws: [Double], truths: [Double]) {
        var g = SeededGenerator(seed: seed)
        func normal() -> Double { g.normal() }
        var d = [Double](), t = [Double]()
        for _ in 0..<objects {
            let mu = (0..<2).map { _ in 3 * normal() }
            for j in 0..<2 { t.append(mu[j] + normal()) }
            for _ in 0..<draws { for j in 0..<2 { d.append(mu[j] + bias + width * normal()) } }
        }
        return (d, t)
    }

    func intervals(_ s: (draws: [Double], truths: [Double]), dimension j: Int, level: Double) -> Double {
        let n = s.truths.count / 2, draws = s.draws.count / (2 * n)
        var lower = [Double](), upper = [Double](), truth = [Double]()
        for i in 0..<n {
            let column = (0..<draws).map { s.draws[(i * draws + $0) * 2 + j] }.sorted()
            lower.append(PixelStatistics.percentile(sorted: column, 50 - level / 2))
            upper.append(PixelStatistics.percentile(sorted: column, 50 + level / 2))
            truth.append(s.truths[i * 2 + j])
        }
        return PosteriorCalibration.coverage(lower: lower, upper: upper, truth: truth)
    }

    func ranks(_ s: (draws: [Double], truths: [Double]), dimension j: Int) -> (ranks: [Int], draws: Int) {
        let n = s.truths.count / 2, draws = s.draws.count / (2 * n)
        return ((0..<n).map { i in
            PosteriorCalibration.rank(of: s.truths[i * 2 + j], among: (0..<draws).map { s.draws[(i * draws + $0) * 2 + j] })
        }, draws)
    }

    func testCalibratedGaussianPosteriorPasses() {
        let s = synthetic(width: 1, seed: 1)
        // Binomial spread of a coverage over 1,000 objects: ±1.5 points at 68 %, ±0.7 at 95 %.
        XCTAssertEqual(intervals(s, dimension: 0, level: 68), 0.68, accuracy: 0.045)
        XCTAssertEqual(intervals(s, dimension: 1, level: 95), 0.95, accuracy: 0.021)
        let tarp = PosteriorCalibration.tarp(draws: s.draws, truths: s.truths, objects: 1000, dimensions: 2)
        XCTAssertGreaterThan(tarp.ksPValue, 0.05)
        XCTAssertLessThan(tarp.areaDifference, 0.03)
        XCTAssertEqual(tarp.expectedCoverage.first, 0)
        XCTAssertEqual(tarp.expectedCoverage.last, 1)
        let (r, draws) = ranks(s, dimension: 0)
        XCTAssertGreaterThan(PosteriorCalibration.rankHistogram(r, draws: draws).pValue, 0.01)
    }

    func testTooNarrowPosteriorFails() {
        let s = synthetic(width: 0.5, seed: 2)
        // N(0, 0.5²) intervals hold a truth from N(0, 1) with probability 2Φ(0.497) − 1 ≈ 0.38.
        XCTAssertEqual(intervals(s, dimension: 0, level: 68), 0.38, accuracy: 0.045)
        let tarp = PosteriorCalibration.tarp(draws: s.draws, truths: s.truths, objects: 1000, dimensions: 2)
        XCTAssertLessThan(tarp.ksPValue, 1e-4)
        XCTAssertGreaterThan(tarp.areaDifference, 0.05)
        let (r, draws) = ranks(s, dimension: 0)
        let histogram = PosteriorCalibration.rankHistogram(r, draws: draws)
        XCTAssertLessThan(histogram.pValue, 1e-6)
        XCTAssertGreaterThan(histogram.counts.first! + histogram.counts.last!, 4 * 1000 / 20, "a ∪-shaped histogram")
    }

    func testTooWideAndBiasedPosteriorsFail() {
        let wide = synthetic(width: 2, seed: 3)
        XCTAssertGreaterThan(intervals(wide, dimension: 0, level: 68), 0.9)
        let tarpWide = PosteriorCalibration.tarp(draws: wide.draws, truths: wide.truths, objects: 1000, dimensions: 2)
        XCTAssertLessThan(tarpWide.ksPValue, 1e-4)
        let biased = synthetic(width: 1, bias: 1, seed: 4)
        let (r, draws) = ranks(biased, dimension: 1)
        XCTAssertLessThan(PosteriorCalibration.rankHistogram(r, draws: draws).pValue, 1e-6)
    }

    /// The KS test against scipy.stats.kstest(x, "uniform") for x_i = ((i + 0.5) / 100)^1.3:
    /// D = 0.101241, exact p = 0.2402 (our asymptotic form with Stephens' correction is within
    /// 0.005 of it); and the uniform grid (D = 0.005, p = 1).
    func testKolmogorovSmirnovAgainstScipy() {
        let x = (0..<100).map { Foundation.pow((Double($0) + 0.5) / 100, 1.3) }
        let (d, p) = PosteriorCalibration.ksUniform(sorted: x)
        XCTAssertEqual(d, 0.1012409486, accuracy: 1e-8)
        XCTAssertEqual(p, 0.2402, accuracy: 0.005)
        let grid = (0..<100).map { (Double($0) + 0.5) / 100 }
        XCTAssertEqual(PosteriorCalibration.ksUniform(sorted: grid).statistic, 0.005, accuracy: 1e-12)
        XCTAssertEqual(PosteriorCalibration.ksUniform(sorted: grid).pValue, 1, accuracy: 1e-9)
    }
}
