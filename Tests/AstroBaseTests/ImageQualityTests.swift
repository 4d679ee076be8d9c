import AstroBase
import Foundation
import XCTest

/// TASKS.md task 6's metrics against scikit-image and numpy (scripts/make_image_quality_fixtures.py).
final class ImageQualityTests: XCTestCase {
    struct Case: Decodable {
        var width: Int, height: Int, truth: [Float], prediction: [Float]
        var psnr: Double, ssim: Double, flux_error: Double
    }

    func testMatchesScikitImage() throws {
        let url = Bundle.module.url(forResource: "image_quality", withExtension: "json", subdirectory: "Fixtures")!
        let cases = try JSONDecoder().decode([Case].self, from: Data(contentsOf: url))
        XCTAssertEqual(cases.count, 3)
        for c in cases {
            XCTAssertEqual(ImageQuality.psnr(c.prediction, truth: c.truth), c.psnr, accuracy: 1e-9 * c.psnr)
            XCTAssertEqual(ImageQuality.ssim(c.prediction, truth: c.truth, width: c.width, height: c.height), c.ssim, accuracy: 1e-9)
            XCTAssertEqual(ImageQuality.fluxError(c.prediction, truth: c.truth)!, c.flux_error, accuracy: 1e-9)
        }
        // Width and height read the wrong way round give another value on the non-square image.
        let odd = cases[2]
        XCTAssertNotEqual(ImageQuality.ssim(odd.prediction, truth: odd.truth, width: odd.height, height: odd.width), odd.ssim,
                          accuracy: 1e-6)
    }

    func testLimits() {
        let truth: [Float] = (0..<(16 * 16)).map { Float($0 % 7) }
        XCTAssertEqual(ImageQuality.ssim(truth, truth: truth, width: 16, height: 16), 1, accuracy: 1e-12)
        XCTAssertEqual(ImageQuality.psnr(truth, truth: truth), .infinity)
        XCTAssertEqual(ImageQuality.fluxError(truth.map { $0 * 2 }, truth: truth)!, -2.5 * log10(2), accuracy: 1e-12)
        XCTAssertNil(ImageQuality.fluxError(truth.map { -$0 }, truth: truth), "no magnitude of a negative flux")
    }
}
