import XCTest
@testable import Preprocessing

final class LabelStageTests: XCTestCase {
    func testGeometricAugmentationsMoveLabelsWithTheImage() throws {
        // The label of each pixel equals (image value > 50): any joint move keeps that true.
        let pixels = (0..<64).map { Float(($0 * 37) % 101) }
        let image = PlanarImage(height: 8, width: 8, pixels: pixels)
        let labels = PlanarImage(height: 8, width: 8, pixels: pixels.map { $0 > 50.5 ? 1 : 0 })
        let prep = Preparation([.augment(RandomAugmentation(.flip)), .augment(RandomAugmentation(.rotate90)),
                                .augment(RandomAugmentation(.randomCrop(size: 6))),
                                .augment(RandomAugmentation(.gaussianNoise(sigma: 0.001...0.001)))], seed: 3)
        for index in 0..<12 {
            let out = try prep.prepare(Sample(image: image, name: "m", labels: labels), training: true, index: index)
            XCTAssertEqual(out.image.shape, [1, 6, 6])
            XCTAssertEqual(out.labels?.shape, [1, 6, 6])
            for (v, l) in zip(out.image.pixels, out.labels!.pixels) {
                XCTAssertEqual(l, v > 50.5 ? 1 : 0, "labels follow their pixels; noise does not touch labels")
            }
        }
    }

    func testInterpolatingAugmentationsAreRefusedWithLabels() {
        let sample = Sample(image: PlanarImage(height: 4, width: 4), name: "map.fits",
                            labels: PlanarImage(height: 4, width: 4))
        XCTAssertThrowsError(try Preparation([.augment(RandomAugmentation(.rotate(degrees: 0...90)))])
            .prepare(sample, training: true)) {
            XCTAssert($0.localizedDescription.contains("map.fits: stage 'rotate' interpolates pixels"))
        }
    }

    func testResizeAndCropMoveLabelsToo() throws {
        let sample = Sample(image: PlanarImage(height: 4, width: 4, repeating: 1),
                            labels: PlanarImage(height: 4, width: 4, pixels: (0..<16).map { Float($0 % 3) }))
        let out = try Preparation([.resize(height: 8, width: 8, method: .bilinear), .centerCrop(height: 6, width: 6)])
            .prepare(sample, training: false)
        XCTAssertEqual(out.labels?.shape, [1, 6, 6])
        XCTAssert(out.labels!.pixels.allSatisfy { [0, 1, 2].contains($0) })
    }
}
