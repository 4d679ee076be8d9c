import AstroBase
import Foundation
import XCTest

/// Median, percentiles, MAD and sigma clipping against numpy and astropy.stats.
final class RobustStatisticsTests: XCTestCase {
    func testStatisticsMatchNumpyAndAstropy() {
        let cases = BaseFixtures.entries("statistics")
        XCTAssertEqual(cases.count, 5)
        for c in cases {
            let values = c["values"] as! [Double]
            let n = values.count
            XCTAssertEqual(PixelStatistics.median(values), c["median"] as! Double, accuracy: 1e-12, "n = \(n)")
            for (p, expected) in c["percentiles"] as! [String: Double] {
                XCTAssertEqual(PixelStatistics.percentile(sorted: values.sorted(), Double(p)!), expected,
                               accuracy: 1e-12, "n = \(n), p = \(p)")
            }
            XCTAssertEqual(PixelStatistics.medianAbsoluteDeviation(values), c["mad"] as! Double, accuracy: 1e-12, "n = \(n)")
            var floats = values.map(Float.init)
            let expectedPercentiles = Array(c["percentiles"] as! [String: Double])
            let selected = floats.withUnsafeMutableBufferPointer {
                PixelStatistics.percentiles(selecting: $0, expectedPercentiles.map { Double($0.key)! })
            }
            for ((p, expected), value) in zip(expectedPercentiles, selected) {
                // The values as Float: numpy's result to float precision.
                XCTAssertEqual(value, expected, accuracy: 1e-6 * max(1, abs(expected)), "selected, n = \(n), p = \(p)")
            }
            floats = values.map(Float.init)
            XCTAssertEqual(PixelStatistics.madStd(floats), c["mad_std"] as! Double,
                           accuracy: 1e-5 * max(1, c["mad_std"] as! Double), "n = \(n)")
            let clipped = floats.withUnsafeBufferPointer { PixelStatistics.sigmaClipped($0) }
            let expected = c["sigma_clipped"] as! [Double]
            XCTAssertEqual(clipped.mean, expected[0], accuracy: 1e-5 * max(1, abs(expected[0])), "n = \(n)")
            XCTAssertEqual(clipped.median, expected[1], accuracy: 1e-5 * max(1, abs(expected[1])), "n = \(n)")
            XCTAssertEqual(clipped.std, expected[2], accuracy: 1e-5 * max(1, abs(expected[2])), "n = \(n)")
        }
    }

    /// Percentiles and medians by selection equal those of the sorted values, exactly, on values with
    /// many ties, sorted and reversed inputs, and every size from 1 to 40 (all pivot paths).
    func testPercentilesBySelectionEqualSortedPercentiles() {
        var generator = SeededGenerator(seed: 5)
        let ps: [Double] = [0, 2.5, 16, 50, 84, 97.5, 100, 33.3]
        var inputs: [[Float]] = (1...40).map { n in (0..<n).map { _ in Float(Int.random(in: 0..<6, using: &generator)) } }
        inputs += [(0..<1_000).map { _ in Float.random(in: -3...3, using: &generator) }]
        inputs += [(0..<257).map(Float.init), (0..<257).map { Float(-$0) }, [Float](repeating: 2, count: 100)]
        for values in inputs {
            let sorted = values.map(Double.init).sorted()
            var work = values
            let selected = work.withUnsafeMutableBufferPointer { PixelStatistics.percentiles(selecting: $0, ps) }
            XCTAssertEqual(selected, ps.map { PixelStatistics.percentile(sorted: sorted, $0) }, "n = \(values.count)")
            XCTAssertEqual(work.sorted(), values.sorted(), "the values are only reordered")
            var doubles = values.map(Double.init)
            XCTAssertEqual(doubles.withUnsafeMutableBufferPointer { PixelStatistics.median(selecting: $0) },
                           PixelStatistics.median(sorted: sorted), "median, n = \(values.count)")
        }
    }

    func testNonFiniteValuesAreIgnoredAndEmptyInputsGiveNaN() {
        XCTAssertEqual(PixelStatistics.madStd([1, 2, .nan, 3, .infinity, 4, 100]), 1.482602218505602 * 1, accuracy: 1e-12)
        XCTAssert(PixelStatistics.median([]).isNaN)
        XCTAssert(PixelStatistics.medianAbsoluteDeviation([]).isNaN)
        XCTAssert(PixelStatistics.madStd([Float.nan]).isNaN)
        XCTAssertEqual(PixelStatistics.median([3, 1, 2, 10]), 2.5)
    }
}
