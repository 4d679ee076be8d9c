import AstroBase
import Foundation
import XCTest

/// The display helpers built on the astropy-checked normalisation and Lupton composite
/// (those are checked against astropy in PreprocessingTests' fixture tests).
final class DisplayTests: XCTestCase {
    func testBytesRoundTheNormalisedValuesAndBlackenBlanks() {
        let linear = ImageNormalization(interval: .manual(min: 0, max: 10), stretch: .linear())
        XCTAssertEqual(linear.bytes([-1, 0, 2, 5, 10, 20, .nan]), [0, 0, 51, 128, 255, 255, 0])
    }

    func testDisplayNormalisationSoftensAtTheNoise() {
        // Gaussian noise of sigma 1 plus one bright source.
        var generator = SeededGenerator(seed: 4)
        var pixels = (0..<4096).map { _ in Float(generator.normal()) }
        for i in 0..<40 { pixels[i] = 500 }
        let display = ImageNormalization.display(for: pixels, softening: 2, lower: 5, upper: 99.8)
        guard case let .asinh(a) = display.stretch else { return XCTFail("expected an asinh stretch, got \(display.stretch)") }
        let (vmin, vmax) = pixels.withUnsafeBufferPointer { display.interval.limits(of: $0)! }
        XCTAssertEqual(a * (vmax - vmin), 2 * PixelStatistics.madStd(pixels), accuracy: 1e-9)
        XCTAssertEqual(PixelStatistics.madStd(pixels), 1, accuracy: 0.06)
        let bytes = display.bytes(pixels)
        XCTAssertEqual(bytes[0], 255)
        // Each byte is 255 · asinh((x - vmin) / 2σ) / asinh((vmax - vmin) / 2σ).
        let soft = 2 * PixelStatistics.madStd(pixels)
        for i in stride(from: 40, to: 4096, by: 97) where Double(pixels[i]) > vmin {
            let expected = 255 * Foundation.asinh((Double(pixels[i]) - vmin) / soft) / Foundation.asinh((vmax - vmin) / soft)
            XCTAssertEqual(Double(bytes[i]), expected.rounded(), accuracy: 1, "pixel \(i)")
        }
        // The median noise pixel sits near vmin + 1.6σ: about 30 of 255 with the asinh, where a
        // linear stretch of the same interval would leave it at 1.
        let median = PixelStatistics.median(bytes[40...].map(Double.init))
        XCTAssert(median > 20 && median < 45, "median noise byte \(median)")
        let linear = ImageNormalization(interval: display.interval, stretch: .linear()).bytes(pixels)
        XCTAssertLessThan(PixelStatistics.median(linear[40...].map(Double.init)), 3)
        // A flat image has no range: linear, all black.
        XCTAssertEqual(ImageNormalization.display(for: [2, 2, 2]).bytes([2, 2, 2]), [0, 0, 0])
    }

    func testNoiseScaledLuptonUsesTheMeanNoiseOfTheBands() {
        var generator = SeededGenerator(seed: 8)
        let bands = (0..<3).map { b in (0..<1024).map { _ in Float(Double(b + 1) * generator.normal()) } }
        let lupton = LuptonRGB.noiseScaled(red: bands[0], green: bands[1], blue: bands[2], q: 8, noiseMultiple: 12)
        let noise = bands.map { PixelStatistics.madStd($0) }.reduce(0, +) / 3
        XCTAssertEqual(lupton.stretch, 12 * noise, accuracy: 1e-12)
        XCTAssertEqual(lupton.q, 8)
        XCTAssertEqual(lupton.composite8(red: bands[0], green: bands[1], blue: bands[2]).count, 3 * 1024)
    }
}
