import AstroBase
@testable import Pipelines
import Preprocessing
import SkySim
import XCTest

final class SkyFittingTests: XCTestCase {
    /// A 64 × 64 cutout of an n = 4, r_e = 10 px galaxy of 60,000 counts (its wings reach the
    /// frame), sampled at pixel centres, plus `plane` and Gaussian noise of σ = 10.
    func cutout(plane: ResidualSky?, seed: UInt64 = 3) -> (PlanarImage, SersicProfile) {
        let galaxy = SersicProfile(n: 4, halfLightRadius: 10, flux: 60_000,
                                   geometry: EllipseGeometry(centerX: 32.3, centerY: 30.8, q: 0.5, angle: 0.6))
        var rng = SeededGenerator(seed: seed)
        var pixels = [Float](repeating: 0, count: 64 * 64)
        for y in 0..<64 {
            for x in 0..<64 {
                let sky = plane?.value(x: x, y: y, height: 64, width: 64) ?? 0
                pixels[y * 64 + x] = Float(galaxy.intensity(x: Double(x), y: Double(y)) + sky + 10 * rng.normal())
            }
        }
        return (PlanarImage(height: 64, width: 64, pixels: pixels), galaxy)
    }

    func testAPlaneUnderAGalaxyIsRecoveredAndNoiseIsNot() throws {
        let fitting = SkyFitting()
        let truth = ResidualSky(level: 3, slopeX: 0.1, slopeY: -0.08, chiSquare: 0)
        let (image, galaxy) = cutout(plane: truth)
        let sky = try XCTUnwrap(fitting.residualSky(image, galaxy: galaxy, sigma: 10))
        // 1,792 frame pixels of σ 10: standard errors 0.24 counts for the level, 0.01 counts/px for a slope.
        XCTAssertEqual(sky.level, 3, accuracy: 1.0)
        XCTAssertEqual(sky.slopeX, 0.1, accuracy: 0.035)
        XCTAssertEqual(sky.slopeY, -0.08, accuracy: 0.035)
        XCTAssertGreaterThan(sky.chiSquare, fitting.threshold)
        // Without a sky the plane is noise: χ² of 3 degrees of freedom, far below the threshold.
        for seed in 1...5 as ClosedRange<UInt64> {
            let (clean, _) = cutout(plane: nil, seed: seed)
            let fit = try XCTUnwrap(fitting.residualSky(clean, galaxy: galaxy, sigma: 10))
            XCTAssertLessThan(fit.chiSquare, fitting.threshold, "seed \(seed)")
            // The frame's level alone is the galaxy's wings, which a fit without the galaxy takes for sky.
            let blind = try XCTUnwrap(fitting.residualSky(clean, galaxy: nil, sigma: 10))
            XCTAssertGreaterThan(blind.level, 1.2, "the wings of this galaxy raise the frame by ~2 counts")
            XCTAssertGreaterThan(blind.chiSquare, fitting.threshold)
        }
        // Subtracting the fitted plane leaves the galaxy and the noise.
        let corrected = sky.subtracted(from: image)
        let (clean, _) = cutout(plane: nil)
        for i in stride(from: 0, to: 4096, by: 97) { XCTAssertEqual(corrected.pixels[i], clean.pixels[i], accuracy: 2) }
    }

    /// White noise scatters 4 × 4-pixel means by σ/4: ratio 1. Noise smoothed over 3 × 3 pixels
    /// (as resampling or drizzling does) keeps more of its scatter in the means.
    func testCorrelatedNoiseIsMeasuredOnTheFrame() throws {
        let (white, galaxy) = cutout(plane: nil)
        let fitting = SkyFitting()
        let ratio = try XCTUnwrap(fitting.residualSky(white, galaxy: galaxy, sigma: 10)?.noiseCorrelation)
        XCTAssertEqual(ratio, 1, accuracy: 0.2)
        XCTAssertLessThan(ratio, fitting.correlationLimit)
        var rng = SeededGenerator(seed: 11)
        let noise = (0..<(66 * 66)).map { _ in rng.normal() }
        var smoothed = white
        for y in 0..<64 {
            for x in 0..<64 {
                var sum = 0.0
                for dy in 0..<3 { for dx in 0..<3 { sum += noise[(y + dy) * 66 + x + dx] } }
                smoothed.pixels[y * 64 + x] = Float(galaxy.intensity(x: Double(x), y: Double(y)) + 10 * sum / 3)
            }
        }
        let correlated = try XCTUnwrap(fitting.residualSky(smoothed, galaxy: galaxy, sigma: 10)?.noiseCorrelation)
        // Means of 16 pixels of a 3 × 3 box-smoothed field: about 2.5 times white noise's scatter.
        XCTAssertGreaterThan(correlated, 2)
    }

    func testBlankFramePixelsAreLeftOutAndTooFewGiveNoFit() throws {
        let (image, galaxy) = cutout(plane: ResidualSky(level: -4, slopeX: 0, slopeY: 0, chiSquare: 0))
        var holed = image
        for y in 0..<64 { for x in 0..<4 { holed.pixels[y * 64 + x] = .nan } }
        let sky = try XCTUnwrap(SkyFitting().residualSky(holed, galaxy: galaxy, sigma: 10))
        XCTAssertEqual(sky.level, -4, accuracy: 1.2)
        let blank = PlanarImage(height: 64, width: 64, pixels: [Float](repeating: .nan, count: 4096))
        XCTAssertNil(SkyFitting().residualSky(blank, galaxy: galaxy, sigma: 10))
        // A small image padded with zeros to the model's size (fit_size) has no sky in its frame.
        var padded = PlanarImage(height: 64, width: 64, pixels: [Float](repeating: 0, count: 4096))
        for y in 22..<42 { for x in 22..<42 { padded.pixels[y * 64 + x] = image.pixels[y * 64 + x] } }
        XCTAssertNil(SkyFitting().residualSky(padded, galaxy: nil, sigma: 10))
    }

    func testThePredictedGalaxyIsPlacedOnTheImage() throws {
        let (image, truth) = cutout(plane: nil)
        // n, r_e (arcsec at 0.2"/px), q, mag at zero point 30: the galaxy above.
        let mag = 30 - 2.5 * log10(60_000.0)
        let placed = try XCTUnwrap(SkyFitting.galaxy([4, 2, 0.5, mag], names: SkyFitting.targets, image: image,
                                                     pixelScale: 0.2, zeroPoint: 30, border: 8))
        XCTAssertEqual(placed.geometry.centerX, truth.geometry.centerX, accuracy: 0.3)
        XCTAssertEqual(placed.geometry.centerY, truth.geometry.centerY, accuracy: 0.3)
        XCTAssertEqual(placed.geometry.angle, truth.geometry.angle, accuracy: 0.1)
        XCTAssertEqual(placed.halfLightRadius, 10, accuracy: 1e-9)
        XCTAssertEqual(placed.flux, 60_000, accuracy: 1e-6)
        XCTAssertNil(SkyFitting.galaxy([4, 2, 0.5], names: ["sersic_n", "r_e", "q"], image: image,
                                       pixelScale: 0.2, zeroPoint: 30, border: 8), "a model without mag places no galaxy")
    }
}
