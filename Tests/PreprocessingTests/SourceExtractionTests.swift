import Foundation
import Preprocessing
import XCTest

/// The SEP-style segmentation deblender against SEP itself (scripts/make_sep_fixtures.py).
final class SourceExtractionTests: XCTestCase {
    struct Meta: Decodable {
        struct Image: Decodable { var sigma: Double; var objects: Int; var central_segment: [Int] }
        var size: Int
        var images: [Image]
    }

    func fixtures() throws -> (Meta, [[Float]]) {
        let (meta, images) = try sepBlendFixtures(Meta.self, size: \.size)
        return (meta, images)
    }

    func testAgreesWithSEP() throws {
        let (meta, images) = try fixtures()
        XCTAssertEqual(images.count, 12)
        var sameCount = 0, overlaps: [Double] = []
        for (image, expected) in zip(images, meta.images) {
            let segmentation = SourceExtraction().segment(image, width: meta.size, height: meta.size, noise: expected.sigma)
            if segmentation.objectCount == expected.objects { sameCount += 1 }
            let central = segmentation.centralLabel
            let mine = Set(segmentation.labels.indices.filter { segmentation.labels[$0] == central })
            let theirs = Set(expected.central_segment)
            overlaps.append(Double(mine.intersection(theirs).count) / Double(mine.union(theirs).count))
        }
        XCTAssertGreaterThanOrEqual(sameCount, 11, "object counts as SEP's")
        XCTAssert(overlaps.allSatisfy { $0 >= 0.85 }, "central segment against SEP's (intersection over union): \(overlaps)")
        XCTAssertGreaterThan(overlaps.sorted()[overlaps.count / 2], 0.95)
    }

    func testDeblendMasksOnlyTheNeighbours() throws {
        let (meta, images) = try fixtures()
        let image = images[1], sigma = meta.images[1].sigma
        let extraction = SourceExtraction()
        let segmentation = extraction.segment(image, width: meta.size, height: meta.size, noise: sigma)
        XCTAssertEqual(segmentation.objectCount, 3)
        let deblended = extraction.deblendCentral(image, width: meta.size, height: meta.size, noise: sigma)
        let central = segmentation.centralLabel
        for (p, label) in segmentation.labels.enumerated() {
            XCTAssertEqual(deblended[p], label == 0 || label == central ? image[p] : 0)
        }
        XCTAssert(segmentation.labels.contains { $0 != 0 && $0 != central }, "neighbours were found and masked")
        // Noise alone holds no object.
        let noise = (0..<(32 * 32)).map { Float(sin(Double($0) * 12.9898) * 0.5) }
        XCTAssertEqual(extraction.segment(noise, width: 32, height: 32, noise: 1).objectCount, 0)
    }
}

/// scripts/make_sep_fixtures.py's blends: the JSON decoded as `M` (whose `size` is the images'
/// side) and the float32 images, one per image of the JSON.
func sepBlendFixtures<M: Decodable>(_ type: M.Type, size: KeyPath<M, Int>) throws -> (M, [[Float]]) {
    let folder = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
    let meta = try JSONDecoder().decode(M.self, from: Data(contentsOf: folder.appendingPathComponent("sep_blends.json")))
    let data = try Data(contentsOf: folder.appendingPathComponent("sep_blends.bin"))
    let all: [Float] = data.withUnsafeBytes { raw in
        (0..<(data.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
    }
    let n = meta[keyPath: size] * meta[keyPath: size]
    return (meta, (0..<(all.count / n)).map { Array(all[($0 * n)..<(($0 + 1) * n)]) })
}
