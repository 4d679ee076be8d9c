import XCTest
@testable import Preprocessing

final class PixelScalingTests: XCTestCase {
    func testStandardizeGivesZeroMeanUnitStdAndKeepsNaN() {
        var values: [Float] = [1, 2, 3, .nan, 4, 10]
        values.withUnsafeMutableBufferPointer { PixelScaling.standardize.apply(to: $0) }
        let finite = values.filter { $0.isFinite }.map(Double.init)
        let (mean, std) = PixelStatistics.meanAndStd(finite)
        XCTAssertEqual(mean, 0, accuracy: 1e-6)
        XCTAssertEqual(std, 1, accuracy: 1e-6)
        XCTAssert(values[3].isNaN)
    }

    func testConstantImageStandardizesToZero() {
        var values = [Float](repeating: 7, count: 16)
        values.withUnsafeMutableBufferPointer { PixelScaling.standardize.apply(to: $0) }
        XCTAssertEqual(values, [Float](repeating: 0, count: 16))
    }

    func testNoiseScalingDividesBySigma() {
        var values: [Float] = [-20, 0, 5, 50]
        values.withUnsafeMutableBufferPointer { PixelScaling.noise(sigma: 10).apply(to: $0) }
        XCTAssertEqual(values, [-2, 0, 0.5, 5])
    }

    func testMeasuredNoiseRecoversGaussianSigma() {
        // Deterministic Gaussian noise (Box-Muller on a fixed LCG) of sigma 12, plus a bright source.
        var state: UInt64 = 42
        func uniform() -> Double {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return (Double(state >> 11) + 0.5) / Double(1 << 53)
        }
        var values = [Float](repeating: 0, count: 20_000)
        for i in values.indices {
            values[i] = Float(12 * (-2 * log(uniform())).squareRoot() * cos(2 * .pi * uniform()))
        }
        for i in 0..<200 { values[i] += 5000 }
        let sigma = values.withUnsafeBufferPointer { PixelStatistics.madStd($0) }
        XCTAssertEqual(sigma, 12, accuracy: 12 * 0.03)
        let before = values[500]
        values.withUnsafeMutableBufferPointer { PixelScaling.measuredNoise.apply(to: $0) }
        XCTAssertEqual(Double(values[500]), Double(before) / sigma, accuracy: 1e-5)
    }

    func testBackgroundSubtractionRemovesSkyLevelDespiteSources() {
        var values = [Float](repeating: 100, count: 1000)
        for i in stride(from: 0, to: 1000, by: 2) { values[i] += 1 }   // sky 100.5 ± 0.5
        for i in 0..<30 { values[i] = 10_000 }                      // a bright star
        values.withUnsafeMutableBufferPointer { PixelScaling.subtractBackground.apply(to: $0) }
        XCTAssertEqual(Double(values[999]), -0.5, accuracy: 1e-4)
        XCTAssertEqual(Double(values[998]), 0.5, accuracy: 1e-4)
    }

    func testAsinhScalingIsLinearWhenFaintAndLogarithmicWhenBright() {
        var values: [Float] = [0, 0.01, -0.01, 1000]
        values.withUnsafeMutableBufferPointer { AsinhScaling(softening: 1).apply(to: $0) }
        XCTAssertEqual(values[0], 0)
        XCTAssertEqual(values[1], 0.01, accuracy: 1e-6)
        XCTAssertEqual(values[2], -0.01, accuracy: 1e-6)
        XCTAssertEqual(Double(values[3]), log(2000), accuracy: 1e-4)
    }
}
