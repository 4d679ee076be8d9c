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
            let floats = values.map(Float.init)
            XCTAssertEqual(PixelStatistics.madStd(floats), c["mad_std"] as! Double,
                           accuracy: 1e-5 * max(1, c["mad_std"] as! Double), "n = \(n)")
            let clipped = floats.withUnsafeBufferPointer { PixelStatistics.sigmaClipped($0) }
            let expected = c["sigma_clipped"] as! [Double]
            XCTAssertEqual(clipped.mean, expected[0], accuracy: 1e-5 * max(1, abs(expected[0])), "n = \(n)")
            XCTAssertEqual(clipped.median, expected[1], accuracy: 1e-5 * max(1, abs(expected[1])), "n = \(n)")
            XCTAssertEqual(clipped.std, expected[2], accuracy: 1e-5 * max(1, abs(expected[2])), "n = \(n)")
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
