import Autograd
import Foundation
import XCTest
@testable import Preprocessing

/// The survey-artefact augmentations: each checked by a statistic of what it adds.
final class ArtefactAugmentationTests: XCTestCase {
    /// White Gaussian noise of standard deviation `sigma` (counts).
    func noise(channels: Int = 1, size: Int = 64, sigma: Float, seed: UInt64) -> PlanarImage {
        var rng = SeededGenerator(seed: seed)
        return PlanarImage(channels: channels, height: size, width: size,
                           pixels: (0..<(channels * size * size)).map { _ in sigma * rng.nextNormal() })
    }

    func difference(_ a: PlanarImage, _ b: PlanarImage, channel c: Int) -> [Float] {
        let plane = a.planeSize
        return (0..<plane).map { a.pixels[c * plane + $0] - b.pixels[c * plane + $0] }
    }

    func testPedestalIsAConstantPlusAPlaneInUnitsOfTheMeasuredNoise() {
        let image = noise(channels: 3, sigma: 10, seed: 1)
        let measured = image.channelNoise
        XCTAssertEqual(Double(measured[0]), 10, accuracy: 0.5)
        var rng = SeededGenerator(seed: 2)
        let flat = Augmentation.pedestal(level: 2.5...2.5, gradient: 0...0).applied(to: image, using: &rng)
        for c in 0..<3 {
            let d = difference(flat, image, channel: c)
            XCTAssertEqual(d.min()!, 2.5 * measured[c], accuracy: 1e-3)
            XCTAssertEqual(d.max()!, 2.5 * measured[c], accuracy: 1e-3)
        }
        // A tilted plane with zero mean: its end-to-end change is 4 × noise, and it differs per channel.
        let tilted = Augmentation.pedestal(level: 0...0, gradient: 4...4).applied(to: image, using: &rng)
        var planes = [[Float]]()
        for c in 0..<3 {
            let d = difference(tilted, image, channel: c)
            XCTAssertEqual(d.max()! - d.min()!, 4 * measured[c], accuracy: 1e-2)
            XCTAssertEqual(d.reduce(0, +) / Float(d.count), 0, accuracy: 1e-3)
            // A plane: every 2×2 block has d(y,x) + d(y+1,x+1) = d(y+1,x) + d(y,x+1).
            for y in 0..<63 {
                for x in 0..<63 {
                    XCTAssertEqual(d[y * 64 + x] + d[(y + 1) * 64 + x + 1], d[(y + 1) * 64 + x] + d[y * 64 + x + 1],
                                   accuracy: 1e-3)
                }
            }
            planes.append(d)
        }
        XCTAssertNotEqual(planes[0], planes[1])
    }

    func testCosmicRaysAreSharpPositiveHitsInOneChannel() {
        let image = noise(channels: 3, sigma: 5, seed: 3)
        let measured = image.channelNoise
        var rng = SeededGenerator(seed: 4)
        let hits = Augmentation.cosmicRays(count: 6...6, length: 1...1, amplitude: 50...50).applied(to: image, using: &rng)
        var changed = 0
        for c in 0..<3 {
            for v in difference(hits, image, channel: c) where v != 0 {
                changed += 1
                XCTAssertEqual(v / measured[c], 50, accuracy: 0.01, "a single hit at 50 × noise (two hits on one pixel add)")
            }
        }
        XCTAssertEqual(changed, 6)
        // One track of 12 pixels: a connected line in one channel, inside the image.
        var tracks = 0
        for seed in 10..<40 {
            var rng = SeededGenerator(seed: UInt64(seed))
            let track = Augmentation.cosmicRays(count: 1...1, length: 12...12, amplitude: 80...80).applied(to: image, using: &rng)
            let perChannel = (0..<3).map { c in
                difference(track, image, channel: c).enumerated().filter { $0.element != 0 }.map(\.offset)
            }
            XCTAssertEqual(perChannel.filter { !$0.isEmpty }.count, 1, "a hit lands in one channel")
            let pixels = perChannel.first { !$0.isEmpty }!
            XCTAssertLessThanOrEqual(pixels.count, 12)
            if pixels.count >= 8 { tracks += 1 }
            let points = pixels.map { ($0 / 64, $0 % 64) }
            // Connected: every pixel touches (8-neighbourhood) another one of the track.
            if points.count > 1 {
                for p in points {
                    XCTAssert(points.contains { q in q != p && abs(q.0 - p.0) <= 1 && abs(q.1 - p.1) <= 1 })
                }
            }
        }
        XCTAssertGreaterThan(tracks, 15, "most tracks of 12 steps stay mostly inside a 64-pixel image")
    }

    func testMaskedPixelsAreColumnsSpotsAndAnEdgeStripThatFillBlanksRemoves() throws {
        let image = noise(channels: 3, sigma: 5, seed: 5)
        var rng = SeededGenerator(seed: 6)
        // One bad column or row, in one channel.
        let column = Augmentation.maskPixels(columns: 1...1, spots: 0...0, edge: 0...0).applied(to: image, using: &rng)
        XCTAssertEqual(column.blankCount, 64)
        let mask = column.blankMask
        let rows = Set((0..<4096).filter { mask.pixels[$0] == 1 }.map { $0 / 64 })
        let cols = Set((0..<4096).filter { mask.pixels[$0] == 1 }.map { $0 % 64 })
        XCTAssert(rows.count == 1 || cols.count == 1)
        // An edge strip of 5 pixels along one side, in every channel.
        let edge = Augmentation.maskPixels(columns: 0...0, spots: 0...0, edge: 5...5).applied(to: image, using: &rng)
        XCTAssertEqual(edge.blankCount, 3 * 5 * 64)
        let strip = edge.blankMask
        let blankRows = Set((0..<4096).filter { strip.pixels[$0] == 1 }.map { $0 / 64 })
        let blankCols = Set((0..<4096).filter { strip.pixels[$0] == 1 }.map { $0 % 64 })
        XCTAssert([Set(0..<5), Set(59..<64)].contains(blankRows) || [Set(0..<5), Set(59..<64)].contains(blankCols))
        // A spot is a disc of radius 1-4 in all channels.
        let spot = Augmentation.maskPixels(columns: 0...0, spots: 1...1, edge: 0...0).applied(to: image, using: &rng)
        XCTAssertEqual(spot.blankCount % 3, 0)
        XCTAssert((1...60).contains(spot.blankCount / 3), "\(spot.blankCount / 3) pixels")
        // Before fill_blanks in a recipe, training sees the inference fill; inference sees the image.
        let recipe = Preparation([.augment(RandomAugmentation(.maskPixels(columns: 2...2, spots: 1...1, edge: 3...3))),
                                  .fillBlanks(.zero, appendMask: false)], seed: 7)
        let trained = try recipe.prepare(Sample(image: image, name: "x"), training: true)
        XCTAssertEqual(trained.image.blankCount, 0)
        XCTAssertGreaterThanOrEqual(trained.image.pixels.filter { $0 == 0 }.count, 3 * 3 * 64)
        XCTAssertEqual(try recipe.prepare(Sample(image: image, name: "x"), training: false).image, image)
    }

    func testCorrelatedNoiseHasTheDrawnSigmaAndTheKernelsCorrelation() {
        let image = noise(size: 128, sigma: 4, seed: 8)
        let measured = Double(image.channelNoise[0])
        for length in [0.5, 1.5] {
            var rng = SeededGenerator(seed: 9)
            let out = Augmentation.correlatedNoise(sigma: 0.8...0.8, length: length...length).applied(to: image, using: &rng)
            let d = difference(out, image, channel: 0).map(Double.init)
            let (mean, std) = PixelStatistics.meanAndStd(d)
            XCTAssertEqual(mean, 0, accuracy: 0.15 * measured)
            XCTAssertEqual(std, 0.8 * measured, accuracy: 0.1 * 0.8 * measured)
            // Lag-1 correlation along x: Σ k_i k_(i+1) / Σ k_i² of the Gaussian kernel.
            let k = (-8...8).map { exp(-0.5 * Double($0 * $0) / (length * length)) }
            let expected = zip(k, k.dropFirst()).map { $0 * $1 }.reduce(0, +) / k.map { $0 * $0 }.reduce(0, +)
            var num = 0.0, den = 0.0
            for y in 0..<128 {
                for x in 0..<127 {
                    num += (d[y * 128 + x] - mean) * (d[y * 128 + x + 1] - mean)
                    den += (d[y * 128 + x] - mean) * (d[y * 128 + x] - mean)
                }
            }
            XCTAssertEqual(num / den, expected, accuracy: 0.05, "length \(length)")
        }
    }
}
