import Foundation
import XCTest
@testable import Preprocessing

final class GeometryTests: XCTestCase {
    func testResizeMatchesPyTorchInterpolate() throws {
        let url = Bundle.module.url(forResource: "resize_fixtures", withExtension: "json", subdirectory: "Fixtures")!
        let root = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        let cases = root["resize"] as! [[String: Any]]
        XCTAssertEqual(cases.count, 4)
        for c in cases {
            let shape = c["shape"] as! [Int], out = c["out"] as! [Int]
            let image = PlanarImage(channels: shape[0], height: shape[1], width: shape[2],
                                    pixels: FixtureValues.floats(c["data"]))
            for method in ResizeMethod.allCases {
                let resized = image.resized(height: out[0], width: out[1], method: method)
                let expected = FixtureValues.floats(c[method.rawValue])
                XCTAssertEqual(resized.shape, [shape[0], out[0], out[1]])
                for (a, b) in zip(resized.pixels, expected) {
                    XCTAssertEqual(a, b, accuracy: 1e-5, "\(method) \(shape) → \(out)")
                }
            }
        }
    }

    func testAreaResizeConservesMeanFlux() {
        let image = PlanarImage(height: 64, width: 64, pixels: (0..<4096).map { Float($0 % 17) })
        let small = image.resized(height: 16, width: 16, method: .area)
        let mean = { (p: [Float]) in p.reduce(0, +) / Float(p.count) }
        XCTAssertEqual(mean(small.pixels), mean(image.pixels), accuracy: 1e-4)
    }

    func testCropAndPadAreInverse() {
        let image = PlanarImage(channels: 2, height: 5, width: 4, pixels: (0..<40).map(Float.init))
        let padded = image.padded(top: 2, bottom: 1, left: 3, right: 0)
        XCTAssertEqual(padded.shape, [2, 8, 7])
        XCTAssertEqual(padded[1, 0, 0], 0)
        XCTAssertEqual(padded.cropped(y: 2, x: 3, height: 5, width: 4), image)
    }

    func testReflectAndEdgePaddingFollowNumpy() {
        let row = PlanarImage(height: 1, width: 4, pixels: [1, 2, 3, 4])
        // numpy.pad([1,2,3,4], 3, mode="reflect") == [4,3,2,1,2,3,4,3,2,1]
        XCTAssertEqual(row.padded(top: 0, bottom: 0, left: 3, right: 3, mode: .reflect).pixels,
                       [4, 3, 2, 1, 2, 3, 4, 3, 2, 1])
        XCTAssertEqual(row.padded(top: 0, bottom: 0, left: 2, right: 1, mode: .edge).pixels,
                       [1, 1, 1, 2, 3, 4, 4])
    }

    func testCropOutsideTheImageIsFilled() {
        let image = PlanarImage(height: 2, width: 2, pixels: [1, 2, 3, 4])
        let crop = image.cropped(y: -1, x: 1, height: 2, width: 2, fill: .nan)
        XCTAssert(crop.pixels[0].isNaN && crop.pixels[1].isNaN)
        XCTAssertEqual(crop.pixels[2], 2)
        XCTAssert(crop.pixels[3].isNaN)
    }

    func testCenterCropFollowsTorchvisionRounding() {
        let image = PlanarImage(height: 5, width: 6, pixels: (0..<30).map(Float.init))
        // torchvision: top = round((5-2)/2) = 2, left = round((6-3)/2) = 2 (banker's rounding of 1.5 → 2).
        let crop = image.centerCropped(height: 2, width: 3)
        XCTAssertEqual(crop.pixels, [14, 15, 16, 20, 21, 22])
    }

    func testRot90MatchesNumpyAndFourTurnsAreIdentity() {
        let image = PlanarImage(height: 2, width: 3, pixels: [1, 2, 3, 4, 5, 6])
        // numpy.rot90([[1,2,3],[4,5,6]]) == [[3,6],[2,5],[1,4]]
        XCTAssertEqual(image.rotated(quarterTurns: 1).pixels, [3, 6, 2, 5, 1, 4])
        XCTAssertEqual(image.rotated(quarterTurns: 2).pixels, [6, 5, 4, 3, 2, 1])
        XCTAssertEqual(image.rotated(quarterTurns: 3).pixels, [4, 1, 5, 2, 6, 3])
        XCTAssertEqual(image.rotated(quarterTurns: 4), image)
        XCTAssertEqual(image.rotated(quarterTurns: -1), image.rotated(quarterTurns: 3))
    }

    func testArbitraryRotationBy90MatchesRot90OnSquareImages() {
        let image = PlanarImage(height: 5, width: 5, pixels: (0..<25).map { Float($0 * $0 % 11) })
        let turned = image.rotated(degrees: 90)
        let exact = image.rotated(quarterTurns: 1)
        // Same content turned one way or the other: compare with rot90 in both directions.
        let matchesOne = zip(turned.pixels, exact.pixels).allSatisfy { abs($0 - $1) < 1e-4 }
        let matchesOther = zip(turned.pixels, image.rotated(quarterTurns: 3).pixels).allSatisfy { abs($0 - $1) < 1e-4 }
        XCTAssert(matchesOne || matchesOther)
        XCTAssertEqual(image.rotated(degrees: 0), image)
    }

    func testFlips() {
        let image = PlanarImage(height: 2, width: 2, pixels: [1, 2, 3, 4])
        XCTAssertEqual(image.flipped(horizontal: true).pixels, [2, 1, 4, 3])
        XCTAssertEqual(image.flipped(horizontal: false).pixels, [3, 4, 1, 2])
    }

    func testGaussianBlurConservesFluxAndWidensAPoint() {
        var image = PlanarImage(height: 41, width: 41)
        image[0, 20, 20] = 1000
        let blurred = image.gaussianBlurred(fwhm: 4)
        XCTAssertEqual(blurred.pixels.reduce(0, +), 1000, accuracy: 0.01)
        // The half maximum lies 2 px (FWHM / 2) from the centre.
        let peak = blurred[0, 20, 20]
        let halfWay = (blurred[0, 20, 22] + blurred[0, 20, 18]) / 2
        XCTAssertEqual(halfWay / peak, 0.5, accuracy: 0.03)
        // A flat image stays flat, edges included.
        let flat = PlanarImage(height: 9, width: 9, repeating: 3).gaussianBlurred(fwhm: 3)
        XCTAssert(flat.pixels.allSatisfy { abs($0 - 3) < 1e-5 })
    }

    func testBlankFills() {
        let image = PlanarImage(height: 3, width: 3, pixels: [1, 2, 3, 4, .nan, 6, 7, 8, 100])
        XCTAssertEqual(image.blankCount, 1)
        XCTAssertEqual(image.fillingBlanks(.zero).pixels[4], 0)
        XCTAssertEqual(image.fillingBlanks(.median).pixels[4], 5)      // median of 1,2,3,4,6,7,8,100
        XCTAssertEqual(image.fillingBlanks(.localMedian).pixels[4], 5)
        let masked = image.fillingBlanks(.zero, appendingMask: true)
        XCTAssertEqual(masked.channels, 2)
        XCTAssertEqual(masked.channel(1).pixels, [0, 0, 0, 0, 1, 0, 0, 0, 0])
        XCTAssert(image.fillingBlanks(.keep).pixels[4].isNaN)
    }
}
