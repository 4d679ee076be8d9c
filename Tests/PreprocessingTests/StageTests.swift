import Autograd
import Foundation
import XCTest
import Yams
@testable import Preprocessing

final class StageTests: XCTestCase {
    let yaml = """
    - fill_blanks: {fill: local_median, mask: true}
    - subtract_background
    - scale_by_noise: {keyword: SKYSIG}
    - asinh: {softening: 3.0}
    - normalize: {interval: {percentile: 99.5}, stretch: {asinh: 0.1}}
    - normalize: {interval: zscale, stretch: sqrt}
    - standardize
    - clip: {min: -5, max: 50}
    - resize: {size: 32, method: area}
    - center_crop: {height: 30, width: 28}
    - pad: {size: 2, mode: reflect}
    - flip: {p: 0.5}
    - rotate90
    - rotate: {degrees: [0, 360], p: 0.3}
    - gaussian_noise: {sigma: [0.5, 2]}
    - poisson_noise: {gain: 2}
    - sky_jitter: {range: [-1, 1]}
    - psf_blur: {fwhm: [0, 2], p: 0.5}
    - shift: {max: 1.5}
    - random_crop: {size: 30}
    - flux_scale: {range: [0.8, 1.25]}
    - subtract_mesh_background: {mesh: 32}
    - estimate_noise
    - match_zero_point: {zero_point: 30}
    - match_pixel_scale: {pixel_scale: 0.2}
    - match_psf: {fwhm: [0.6, 1.0]}
    - fit_size: {size: 64}
    - mask_pixels: {columns: [0, 2], spots: 1, edge: [0, 8], p: 0.5}
    - pedestal: {level: [-3, 3], gradient: [0, 1]}
    - cosmic_rays: {count: [1, 4], length: [1, 15], amplitude: [20, 200]}
    - correlated_noise: {sigma: [0.5, 1], length: [0.5, 1.5], p: 0.5}
    - header_channel: {keyword: PSF_FWHM, range: [0.6, 1.0]}
    - mask_neighbours: {min_peak: 5, kron_factor: 3}
    """

    func testEveryStageDecodesFromYAMLAndRoundTripsThroughJSON() throws {
        let stages = try YAMLDecoder().decode([Stage].self, from: yaml)
        XCTAssertEqual(stages.count, 33)
        XCTAssertEqual(stages[31], .headerChannel(keyword: "PSF_FWHM", range: 0.6...1.0))
        XCTAssertEqual(stages[32], .maskNeighbours(NeighbourMasking(minimumPeak: 5, kronFactor: 3)))
        XCTAssertEqual(stages[27], .augment(RandomAugmentation(.maskPixels(columns: 0...2, spots: 1...1, edge: 0...8), probability: 0.5)))
        XCTAssertEqual(Set(stages.map(\.name)), Set(Stage.names))
        XCTAssertEqual(stages[0], .fillBlanks(.localMedian, appendMask: true))
        XCTAssertEqual(stages[4], .normalize(ImageNormalization(interval: .percentile(99.5), stretch: .asinh(a: 0.1))))
        XCTAssertEqual(stages[8], .resize(height: 32, width: 32, method: .area))
        XCTAssertEqual(stages[13], .augment(RandomAugmentation(.rotate(degrees: 0...360), probability: 0.3)))
        let json = try JSONEncoder().encode(stages)
        XCTAssertEqual(try JSONDecoder().decode([Stage].self, from: json), stages)
    }

    /// Table of YAML mistakes and the message each must produce.
    func testErrorsNameTheProblemAndSuggestTheNearMiss() {
        let cases: [(String, String)] = [
            ("- asinhh: {softening: 1}", "Unknown stage 'asinhh'. Did you mean 'asinh'?"),
            ("- sigmaclip", "Unknown stage 'sigmaclip'."),
            ("- asinh: {softenin: 1}", "Unknown key 'softenin' in stage 'asinh'. Did you mean 'softening'? Known keys: softening, scale."),
            ("- resize: {method: area}", "resize needs 'size' or 'height' and 'width'"),
            ("- resize: {size: 8, method: bicubic}", "'bicubic' is not a valid method in stage 'resize'. Choose one of: area, bilinear"),
            ("- normalize: {interval: zscal}", "Unknown interval 'zscal'. Did you mean 'zscale'?"),
            ("- normalize: {stretch: {asinhh: 0.1}}", "Unknown stretch 'asinhh'. Did you mean 'asinh'?"),
            ("- cosmic_rays: {count: 1.5}", "cosmic_rays: count must be a whole number ≥ 0 or [low, high] of them"),
            ("- correlated_noise: {length: -1}", "correlated_noise: length must be a number ≥ 0"),
            ("- fill_blanks: {fill: medain}", "'medain' is not a valid fill in stage 'fill_blanks'. Did you mean 'median'?"),
            ("- gaussian_noise: {sigma: [3, 1]}", "'sigma' must be a number or a range [low, high]"),
            ("- shift: {}", "stage 'shift' needs the key 'max'."),
            ("- {asinh: {}, flip: {}}", "A stage is one name with its parameters"),
            ("- normalize: {interval: {percentil: 99}}", "Unknown key 'percentil' in interval. Did you mean 'percentile'?"),
            ("- normalize: {interval: {zscale: {contrats: 0.2}}}", "Unknown key 'contrats' in zscale. Did you mean 'contrast'?"),
            ("- normalize: {stretch: {sqrt: 2}}", "The sqrt stretch takes no parameter: write 'sqrt'."),
            ("- normalize: {stretch: power}", "The power stretch needs its exponent"),
            ("- pad: {mode: reflct}", "'reflct' is not a valid mode in stage 'pad'. Did you mean 'reflect'?"),
            ("- flip: {p: 0.5, size: 3}", "Unknown key 'size' in stage 'flip'. Known keys: p."),
            ("- rotate90: {p: 1.5}", "rotate90: p is the probability of applying it, in [0, 1], got 1.5."),
            ("- pedestal: {level: 1, gradient: 0, p: -0.1}", "pedestal: p is the probability of applying it, in [0, 1], got -0.1."),
            ("- flip: {p: .nan}", "flip: p is the probability of applying it, in [0, 1], got nan."),
            ("- header_channel: {keyword: PSF_FWHM, range: 0.8}", "header_channel: range must be [low, high] with low < high"),
            ("- header_channel: {range: [0.6, 1.0]}", "stage 'header_channel' needs the key 'keyword'."),
        ]
        for (text, expected) in cases {
            XCTAssertThrowsError(try YAMLDecoder().decode([Stage].self, from: text), text) { error in
                let message = "\(error)"
                XCTAssert(message.contains(expected), "\(text)\n  gave: \(message)\n  expected: \(expected)")
            }
        }
    }

    func testInferenceSkipsAugmentationsAndIsDeterministic() throws {
        let prep = Preparation(try YAMLDecoder().decode([Stage].self, from: """
            - gaussian_noise: {sigma: 5}
            - flip
            - standardize
            """), seed: 11)
        XCTAssertEqual(prep.inferenceStages, [.standardize])
        let image = PlanarImage(height: 8, width: 8, pixels: (0..<64).map { Float($0) })
        let sample = Sample(image: image, name: "a.fits")
        let a = try prep.prepare(sample, training: true, epoch: 0, index: 3)
        let b = try prep.prepare(sample, training: true, epoch: 0, index: 3)
        let c = try prep.prepare(sample, training: true, epoch: 1, index: 3)
        let d = try prep.prepare(sample, training: false, epoch: 0, index: 3)
        XCTAssertEqual(a, b, "same seed, epoch and index: same augmentation")
        XCTAssertNotEqual(a, c, "another epoch draws other noise")
        XCTAssertEqual(d, try Preparation([.standardize]).prepare(sample, training: false))
    }

    func testScaleByNoiseReadsTheHeaderPerBand() throws {
        var image = PlanarImage(channels: 2, height: 1, width: 2, pixels: [10, 20, 30, 40])
        image[1, 0, 0] = 30
        let sample = Sample(image: image, name: "cube.fits", header: ["SKYSIG": 10, "SKYSIG_G": 5, "SKYSIG_R": 2])
        let stage = Stage.scaleByNoise(.header(keyword: "SKYSIG", bandKeywords: ["SKYSIG_G", "SKYSIG_R"]))
        var out = sample
        var rng = SeededGenerator(seed: 1)
        try stage.apply(to: &out, training: false, rng: &rng)
        XCTAssertEqual(out.image.pixels, [2, 4, 15, 20])
    }

    /// header_channel appends a constant plane of the header value mapped so its range is
    /// [-1, 1] (PSF_FWHM also from SEEING); a missing keyword takes the middle, said as an
    /// assumption; NaN is a typed error; nothing but flips and rotations may follow it.
    func testHeaderChannelAppendsTheMappedValue() throws {
        var rng = SeededGenerator(seed: 1)
        let stage = Stage.headerChannel(keyword: "PSF_FWHM", range: 0.6...1.0)
        let image = PlanarImage(channels: 1, height: 3, width: 2, pixels: (0..<6).map(Float.init))
        var sample = Sample(image: image, name: "g.fits", header: ["PSF_FWHM": 0.9])
        try stage.apply(to: &sample, training: false, rng: &rng)
        XCTAssertEqual(sample.image.shape, [2, 3, 2])
        XCTAssertEqual(sample.image.channel(0), image)
        for v in sample.image.channel(1).pixels { XCTAssertEqual(v, 0.5, accuracy: 1e-6) }
        XCTAssert(sample.assumptions.isEmpty)
        var seeing = Sample(image: image, name: "s.fits", header: ["SEEING": 0.6])
        try stage.apply(to: &seeing, training: false, rng: &rng)
        for v in seeing.image.channel(1).pixels { XCTAssertEqual(v, -1, accuracy: 1e-6) }
        var bare = Sample(image: image, name: "bare.fits")
        try stage.apply(to: &bare, training: false, rng: &rng)
        XCTAssertEqual(bare.image.channel(1).pixels, [Float](repeating: 0, count: 6))
        XCTAssertEqual(bare.assumptions.map(\.subject), ["PSF_FWHM input"])
        XCTAssert(bare.assumptions[0].note.contains("middle of its training range, 0.8"), bare.assumptions[0].note)
        var zero = Sample(image: image, name: "zero.fits", header: ["PSF_FWHM": 0])
        try stage.apply(to: &zero, training: false, rng: &rng)
        XCTAssert(zero.assumptions[0].note.hasPrefix("PSF_FWHM = 0 in the header is not a usable value: "), zero.assumptions[0].note)
        var broken = Sample(image: image, name: "nan.fits", header: ["PSF_FWHM": .nan])
        XCTAssertThrowsError(try stage.apply(to: &broken, training: false, rng: &rng)) {
            guard case .invalidHeaderValue(_, "PSF_FWHM", _, "nan.fits")? = $0 as? PreprocessingError else {
                return XCTFail("\($0)")
            }
        }
        let flip = Stage.augment(RandomAugmentation(.flip, probability: 1))
        XCTAssertNil(Preparation.headerChannelOrderProblem([.standardize, stage, flip, .headerChannel(keyword: "SKYSIG", range: 5...15)]))
        let problem = try XCTUnwrap(Preparation.headerChannelOrderProblem([stage, .asinh(AsinhScaling(softening: 3, scale: 1))]))
        XCTAssert(problem.contains("'asinh' follows 'header_channel'"), problem)
    }

    func testMissingAndInvalidHeaderValuesAreTypedErrors() {
        var rng = SeededGenerator(seed: 1)
        var sample = Sample(image: PlanarImage(height: 2, width: 2), name: "m31.fits")
        XCTAssertThrowsError(try Stage.scaleByNoise(.header(keyword: "SKYSIG", bandKeywords: []))
            .apply(to: &sample, training: false, rng: &rng)) { error in
            XCTAssertEqual(error as? PreprocessingError,
                           .missingHeaderKeyword(stage: "scale_by_noise", keyword: "SKYSIG", sample: "m31.fits"))
            XCTAssert(error.localizedDescription.contains("m31.fits: stage 'scale_by_noise' needs the header keyword SKYSIG"))
        }
        sample.header["SKYSIG"] = 0
        XCTAssertThrowsError(try Stage.scaleByNoise(.header(keyword: "SKYSIG", bandKeywords: []))
            .apply(to: &sample, training: false, rng: &rng)) { error in
            XCTAssertEqual(error as? PreprocessingError,
                           .invalidHeaderValue(stage: "scale_by_noise", keyword: "SKYSIG", value: 0, sample: "m31.fits"))
        }
        XCTAssertThrowsError(try Stage.centerCrop(height: 4, width: 4).apply(to: &sample, training: false, rng: &rng)) {
            XCTAssert($0.localizedDescription.contains("at least 4×4, received shape [1, 2, 2]"))
        }
    }
}

final class AugmentationTests: XCTestCase {
    let image = PlanarImage(height: 16, width: 16, pixels: (0..<256).map { Float(($0 * 37) % 101) })

    func testGaussianNoiseHasTheDrawnSigma() {
        var rng = SeededGenerator(seed: 5)
        let flat = PlanarImage(height: 128, width: 128)
        let noisy = Augmentation.gaussianNoise(sigma: 7...7).applied(to: flat, using: &rng)
        let (mean, std) = PixelStatistics.meanAndStd(noisy.pixels.map(Double.init))
        XCTAssertEqual(mean, 0, accuracy: 0.2)
        XCTAssertEqual(std, 7, accuracy: 0.1)
    }

    func testPoissonNoiseHasVarianceEqualToTheMean() {
        var rng = SeededGenerator(seed: 9)
        for level in [3.0, 40.0, 500.0] {
            let flat = PlanarImage(height: 100, width: 100, repeating: Float(level))
            let noisy = Augmentation.poissonNoise(gain: 1).applied(to: flat, using: &rng)
            let (mean, std) = PixelStatistics.meanAndStd(noisy.pixels.map(Double.init))
            XCTAssertEqual(mean, level, accuracy: 4 * (level / 10_000).squareRoot() + 0.01)
            XCTAssertEqual(std * std, level, accuracy: level * 0.06)
            XCTAssert(noisy.pixels.allSatisfy { $0 == $0.rounded() }, "counts are integers")
        }
    }

    func testGeometricAugmentationsPreserveTotalFlux() {
        var rng = SeededGenerator(seed: 3)
        let total = image.pixels.reduce(0, +)
        for a in [Augmentation.flip, .rotate90] {
            for _ in 0..<8 {
                XCTAssertEqual(a.applied(to: image, using: &rng).pixels.reduce(0, +), total)
            }
        }
        let crop = Augmentation.randomCrop(size: 10).applied(to: image, using: &rng)
        XCTAssertEqual(crop.shape, [1, 10, 10])
    }

    func testProbabilityZeroNeverAppliesAndOneAlwaysDoes() {
        var rng = SeededGenerator(seed: 1)
        XCTAssertEqual(RandomAugmentation(.fluxScale(2...2), probability: 0).applied(to: image, using: &rng), image)
        let doubled = RandomAugmentation(.fluxScale(2...2), probability: 1).applied(to: image, using: &rng)
        XCTAssertEqual(doubled.pixels, image.pixels.map { $0 * 2 })
    }

    func testSeededGeneratorIsReproducibleAndStreamsDiffer() {
        var a = SeededGenerator(seed: 42), b = SeededGenerator(seed: 42)
        var c = SeededGenerator(seed: 42, stream: 1)
        let xs = (0..<5).map { _ in a.next() }
        XCTAssertEqual(xs, (0..<5).map { _ in b.next() })
        XCTAssertNotEqual(xs, (0..<5).map { _ in c.next() })
        var u = SeededGenerator(seed: 7)
        let mean = (0..<100_000).reduce(0.0) { acc, _ in acc + u.uniform() } / 100_000
        XCTAssertEqual(mean, 0.5, accuracy: 0.005)
    }
}
