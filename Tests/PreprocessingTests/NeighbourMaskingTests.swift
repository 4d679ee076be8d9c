import AstroBase
import Foundation
import Preprocessing
import XCTest
import Yams

/// `mask_neighbours`: Kron radii against SEP's, a neighbour's light removed while the central
/// galaxy's is kept, and nothing masked on a galaxy alone.
final class NeighbourMaskingTests: XCTestCase {
    struct Meta: Decodable {
        struct Image: Decodable { var sigma: Double; var x: [Double]; var y: [Double]; var kron: [Double] }
        var size: Int
        var images: [Image]
    }

    /// A Sérsic galaxy (`re` in pixels; n 1 is scripts/make_sep_fixtures.py's exponential) and a Gaussian star.
    static func sersic(size: Int, x0: Double, y0: Double, flux: Double, n: Double = 1, re: Double, q: Double, angle: Double) -> [Double] {
        let b = 2 * n - 1.0 / 3 + 0.009876 / n
        var image = [Double](repeating: 0, count: size * size)
        let (c, s) = (cos(angle), sin(angle))
        for y in 0..<size {
            for x in 0..<size {
                let (dx, dy) = (Double(x) - x0, Double(y) - y0)
                let (u, v) = (c * dx + s * dy, -s * dx + c * dy)
                image[y * size + x] = exp(-b * pow((u * u * q + v * v / q).squareRoot() / re, 1 / n))
            }
        }
        let total = image.reduce(0, +)
        return image.map { $0 * flux / total }
    }

    static func star(size: Int, x0: Double, y0: Double, flux: Double, sigma: Double = 1.6) -> [Double] {
        let image = (0..<(size * size)).map { p -> Double in
            let (dx, dy) = (Double(p % size) - x0, Double(p / size) - y0)
            return exp(-0.5 * (dx * dx + dy * dy) / (sigma * sigma))
        }
        let total = image.reduce(0, +)
        return image.map { $0 * flux / total }
    }

    static func noisy(_ image: [Double], sigma: Double, seed: UInt64) -> [Float] {
        var rng = SeededGenerator(seed: seed)
        return image.map { Float($0 + sigma * rng.normal()) }
    }

    static func masked(_ pixels: [Float], size: Int, sigma: Double, name: String = "x.fits") throws -> Sample {
        var sample = Sample(image: PlanarImage(height: size, width: size, pixels: pixels), name: name, header: ["SKYSIG": sigma])
        var rng = SeededGenerator(seed: 1)
        try Stage.maskNeighbours(NeighbourMasking()).apply(to: &sample, training: false, rng: &rng)
        return sample
    }

    func testKronRadiiAgreeWithSEP() throws {
        let (meta, images) = try sepBlendFixtures(Meta.self, size: \.size)
        var ratios = [Double]()
        XCTAssertEqual(images.count, meta.images.count)
        for (image, expected) in zip(images, meta.images) {
            let extraction = SourceExtraction()
            let segmentation = extraction.segment(image, width: meta.size, height: meta.size, noise: expected.sigma)
            let kron = extraction.kronRadii(image, segmentation: segmentation)
            XCTAssertEqual(kron.count, segmentation.objectCount)
            for (j, theirs) in expected.kron.enumerated() {
                // The same object: centroids within 1.5 pixels (SEP's are 0-based too).
                guard let mine = segmentation.centroids.indices.first(where: {
                    hypot(segmentation.centroids[$0].x - expected.x[j], segmentation.centroids[$0].y - expected.y[j]) < 1.5
                }) else { continue }
                ratios.append(kron[mine] / theirs)
            }
        }
        XCTAssertGreaterThanOrEqual(ratios.count, 24, "objects matched to SEP's")
        let sorted = ratios.sorted()
        XCTAssertEqual(sorted[sorted.count / 2], 1, accuracy: 0.05, "median Kron radius against SEP's: \(sorted)")
        XCTAssert(sorted.allSatisfy { abs($0 - 1) < 0.2 }, "every Kron radius within 20 % of SEP's: \(sorted)")
    }

    func testANeighbourIsRemovedAndTheGalaxyKept() throws {
        let size = 64, sigma = 10.0
        let galaxy = Self.sersic(size: size, x0: 31.6, y0: 32.2, flux: 20_000, re: 4, q: 0.7, angle: 0.5)
        let neighbour = Self.star(size: size, x0: 44, y0: 26, flux: 30_000)
        let pixels = Self.noisy(zip(galaxy, neighbour).map(+), sigma: sigma, seed: 3)
        let sample = try Self.masked(pixels, size: size, sigma: sigma)
        let count = try XCTUnwrap(sample.header[NeighbourMasking.maskedKeyword])
        XCTAssertGreaterThan(count, 20, "the star is masked")
        XCTAssertLessThan(count, 400)
        // Flux within 20 pixels of the galaxy: the star's 30,000 counts are gone, the galaxy's kept.
        func flux(_ values: [Double]) -> Double {
            values.indices.filter { hypot(Double($0 % size) - 31.6, Double($0 / size) - 32.2) < 20 }.reduce(0) { $0 + values[$1] }
        }
        let truth = flux(galaxy)
        let before = flux(pixels.map(Double.init)), after = flux(sample.image.pixels.map(Double.init))
        XCTAssertGreaterThan(before / truth, 2, "the star doubles the light before masking")
        XCTAssertEqual(after / truth, 1, accuracy: 0.03, "after masking: \(after) against the galaxy's \(truth)")
        // Pixels far from the star and the galaxy's core are untouched.
        for p in pixels.indices where hypot(Double(p % size) - 44, Double(p / size) - 26) > 12
            || hypot(Double(p % size) - 31.6, Double(p / size) - 32.2) <= 3 {
            XCTAssertEqual(sample.image.pixels[p], pixels[p])
        }
        // The same file gets the same fill in every run.
        XCTAssertEqual(try Self.masked(pixels, size: size, sigma: sigma).image, sample.image)
    }

    func testABrightNeighbourOfAnUndetectedGalaxyIsMasked() throws {
        // A faint, extended galaxy below the detection threshold at the centre and a bright star
        // 14 pixels away: the star is not taken for the central object but masked.
        let size = 64, sigma = 10.0
        let galaxy = Self.sersic(size: size, x0: 31.5, y0: 31.5, flux: 1_000, n: 4, re: 7, q: 0.8, angle: 0)
        let star = Self.star(size: size, x0: 45.5, y0: 31.5, flux: 60_000)
        let pixels = Self.noisy(zip(galaxy, star).map(+), sigma: sigma, seed: 4)
        let sample = try Self.masked(pixels, size: size, sigma: sigma)
        XCTAssertGreaterThan(sample.header[NeighbourMasking.maskedKeyword] ?? 0, 20)
        let starFlux = { (values: [Float]) in
            values.indices.filter { hypot(Double($0 % size) - 45.5, Double($0 / size) - 31.5) < 5 }.reduce(0.0) { $0 + Double(values[$1]) }
        }
        XCTAssertGreaterThan(starFlux(pixels), 50_000)
        XCTAssertLessThan(abs(starFlux(sample.image.pixels)), 1_000, "the star is gone")
        for p in pixels.indices where hypot(Double(p % size) - 31.5, Double(p / size) - 31.5) <= 3 {
            XCTAssertEqual(sample.image.pixels[p], pixels[p], "the centre is kept")
        }
    }

    func testAGalaxyAloneIsLeftAsItIs() throws {
        let size = 64
        // Large and flat (n < 1, r_e 12-14 px) at low surface brightness, as two galaxies of the
        // regression set: noise bumps on them split off in the deblender (SEP does the same) but
        // stand too little above the galaxy to be taken for neighbours.
        for seed in 1...20 as ClosedRange<UInt64> {
            for (n, re, q, flux, sigma) in [(0.55, 11.6, 0.52, 25_100.0, 11.7), (0.82, 14.3, 0.6, 57_000.0, 9.6)] {
                let galaxy = Self.sersic(size: size, x0: 32, y0: 31.5, flux: flux, n: n, re: re, q: q, angle: Double(seed))
                let pixels = Self.noisy(galaxy, sigma: sigma, seed: seed)
                let sample = try Self.masked(pixels, size: size, sigma: sigma)
                XCTAssertEqual(sample.header[NeighbourMasking.maskedKeyword], 0, "seed \(seed), n \(n)")
                XCTAssertEqual(sample.image.pixels, pixels)
            }
        }
        // Noise alone: no central object, nothing masked.
        let sigma = 10.0
        let noise = Self.noisy([Double](repeating: 0, count: size * size), sigma: sigma, seed: 9)
        XCTAssertEqual(try Self.masked(noise, size: size, sigma: sigma).image.pixels, noise)
    }

    func testNoiseIsMeasuredWhenTheHeaderIsSilentAndBlanksTakeTheirReflection() throws {
        let size = 48, sigma = 8.0
        let galaxy = Self.sersic(size: size, x0: 24, y0: 24, flux: 15_000, re: 3, q: 0.8, angle: 0)
        let neighbour = Self.star(size: size, x0: 36, y0: 30, flux: 20_000)
        var pixels = Self.noisy(zip(galaxy, neighbour).map(+), sigma: sigma, seed: 5)
        // A bad column through the galaxy (x = 20), and a pair of blanks in a corner that are each
        // other's reflection (the centre as the stage finds it: blanks count as sky in detection).
        for y in 10..<38 { pixels[y * size + 20] = .nan }
        let detection = pixels.map { $0.isFinite ? $0 : 0 }
        let defaults = NeighbourMasking()
        let centre = try XCTUnwrap(SourceExtraction().neighbourMask(
            detection, width: size, height: size, noise: sigma, minimumPeak: defaults.minimumPeak,
            minimumProminence: defaults.minimumProminence, kronFactor: defaults.kronFactor, grow: defaults.grow,
            core: defaults.core, centralRadius: defaults.centralRadius).centre)
        let corner = 5 * size + 3
        let mirror = (Int((2 * centre.y).rounded()) - 5) * size + Int((2 * centre.x).rounded()) - 3
        pixels[corner] = .nan
        pixels[mirror] = .nan
        var sample = Sample(image: PlanarImage(height: size, width: size, pixels: pixels), name: "b.fits")
        var rng = SeededGenerator(seed: 1)
        try Stage.maskNeighbours(NeighbourMasking()).apply(to: &sample, training: false, rng: &rng)
        XCTAssertEqual(sample.assumptions.map(\.subject), ["SKYSIG"])
        XCTAssert(sample.assumptions[0].note.contains("measured"), sample.assumptions[0].note)
        XCTAssertGreaterThan(sample.header[NeighbourMasking.maskedKeyword] ?? 0, 10)
        // The column's pixels take the values of measured pixels on the other side of the galaxy.
        XCTAssertEqual(sample.header[NeighbourMasking.blanksKeyword], 28)
        let rx = Int((2 * centre.x).rounded()), ry = Int((2 * centre.y).rounded())
        for y in 10..<38 {
            XCTAssertEqual(sample.image.pixels[y * size + 20], pixels[(ry - y) * size + rx - 20], "row \(y)")
        }
        XCTAssertGreaterThan(sample.image.pixels[24 * size + 20], Float(5 * sigma), "the galaxy's light is back in the column")
        // A blank whose reflection is blank too stays for fill_blanks.
        XCTAssert(sample.image.pixels[corner].isNaN && sample.image.pixels[mirror].isNaN)
    }

    func testStageDecodesStrictlyAndRoundTrips() throws {
        let stages = try YAMLDecoder().decode([Stage].self, from: """
        - mask_neighbours
        - mask_neighbours: {min_peak: 5, min_prominence: 3, kron_factor: 3, grow: 1, core: 2, central_radius: 4, keyword: SKYSIG_R}
        """)
        XCTAssertEqual(stages[0], .maskNeighbours(NeighbourMasking()))
        XCTAssertEqual(stages[1], .maskNeighbours(NeighbourMasking(minimumPeak: 5, minimumProminence: 3, kronFactor: 3, grow: 1,
                                                                   core: 2, centralRadius: 4, keyword: "SKYSIG_R")))
        XCTAssertEqual(try JSONDecoder().decode([Stage].self, from: JSONEncoder().encode(stages)), stages)
        XCTAssertThrowsError(try YAMLDecoder().decode([Stage].self, from: "- mask_neighbours: {min_peak: -1}")) {
            XCTAssert("\($0)".contains("min_peak"), "\($0)")
        }
        XCTAssertThrowsError(try YAMLDecoder().decode([Stage].self, from: "- mask_neighbours: {kron: 2}")) {
            XCTAssert("\($0)".contains("kron_factor"), "\($0)")
        }
    }
}
