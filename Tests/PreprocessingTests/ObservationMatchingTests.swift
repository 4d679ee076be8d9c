import FITS
import Foundation
@testable import Preprocessing
import XCTest
import Yams

/// The observation-matching stages against references: photutils' Background2D and SEP
/// (fixture made by scripts/make_observation_fixtures.py), flux conservation of the
/// resampling, the FWHM of a Gaussian after PSF matching, zero points and noise.
final class ObservationMatchingTests: XCTestCase {
    func gaussian(height: Int, width: Int, fwhm: Double, flux: Double, cy: Double, cx: Double) -> [Float] {
        let s = fwhm / 2.354820045
        var out = [Float](repeating: 0, count: height * width)
        for y in 0..<height {
            for x in 0..<width {
                let r2 = (Double(y) - cy) * (Double(y) - cy) + (Double(x) - cx) * (Double(x) - cx)
                out[y * width + x] = Float(flux / (2 * .pi * s * s) * exp(-r2 / (2 * s * s)))
            }
        }
        return out
    }

    /// FWHM (pixels) of a centred Gaussian from its second moments.
    func momentFWHM(_ image: PlanarImage) -> Double {
        var sum = 0.0, sy = 0.0, sx = 0.0
        for y in 0..<image.height { for x in 0..<image.width {
            let v = Double(image[0, y, x]); sum += v; sy += v * Double(y); sx += v * Double(x)
        } }
        let my = sy / sum, mx = sx / sum
        var m2 = 0.0
        for y in 0..<image.height { for x in 0..<image.width {
            let v = Double(image[0, y, x])
            m2 += v * ((Double(y) - my) * (Double(y) - my) + (Double(x) - mx) * (Double(x) - mx))
        } }
        return (m2 / sum / 2).squareRoot() * 2.354820045
    }

    func testMeshBackgroundMatchesPhotutilsAndSEP() throws {
        let url = Bundle.module.url(forResource: "background_fixtures", withExtension: "json", subdirectory: "Fixtures")!
        let root = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        let shape = root["shape"] as! [Int]
        let image = FixtureValues.floats(root["image"])
        for c in root["cases"] as! [[String: Any]] {
            let estimator = MeshBackground.Estimator(rawValue: c["estimator"] as! String)!
            let settings = MeshBackground(mesh: c["mesh"] as! Int, filter: c["filter"] as! Int, estimator: estimator)
            let result = image.withUnsafeBufferPointer { settings.estimate($0, height: shape[0], width: shape[1]) }
            let mesh = FixtureValues.floats(c["background_mesh"]), full = FixtureValues.floats(c["background"])
            XCTAssertEqual(result.mesh.count, mesh.count)
            for (a, b) in zip(result.mesh, mesh) { XCTAssertEqual(a, Double(b), accuracy: 1e-3, "\(estimator) mesh") }
            for (a, b) in zip(result.background, full) { XCTAssertEqual(a, b, accuracy: 1e-3, "\(estimator) background") }
        }
        // SEP (SExtractor's mode, bicubic spline between meshes): the same sky within a third of the noise (8 counts).
        let sep = root["sep"] as! [String: Any]
        let sepBackground = FixtureValues.floats(sep["background"])
        let ours = image.withUnsafeBufferPointer { MeshBackground(mesh: 16, filter: 3).estimate($0, height: shape[0], width: shape[1]) }
        let differences = zip(ours.background, sepBackground).map { abs(Double($0 - $1)) }.sorted()
        // photutils itself differs from SEP by a median 1.9 counts here (SEP clips and interpolates differently).
        XCTAssertLessThan(differences[differences.count / 2], 2.5, "median |ours - SEP| in counts, noise 8")
    }

    func testMeshBackgroundStageRemovesAPedestalOnlyWhenThereIsOne() throws {
        var rng = SeededGenerator(seed: 3)
        let (h, w) = (64, 64)
        let star = gaussian(height: h, width: w, fwhm: 4, flux: 5e4, cy: 30, cx: 33)
        let noise = (0..<(h * w)).map { _ in Float(rng.normal() * 10) }
        let stage = Stage.subtractMeshBackground(MeshBackground(mesh: 32, policy: .pedestal))
        // Sky already subtracted: left alone, nothing assumed.
        var clean = Sample(image: PlanarImage(channels: 1, height: h, width: w, pixels: zip(star, noise).map(+)), name: "c.fits")
        let before = clean.image
        var g = SeededGenerator(seed: 0)
        try stage.apply(to: &clean, training: false, rng: &g)
        XCTAssertEqual(clean.image, before)
        XCTAssertTrue(clean.assumptions.isEmpty)
        // A pedestal of 500 counts with a gradient: removed to within the noise, and said.
        var plate = Sample(image: PlanarImage(channels: 1, height: h, width: w, pixels: (0..<(h * w)).map {
            star[$0] + noise[$0] + 500 + Float($0 % w) * 0.5 }), name: "p.fits")
        try stage.apply(to: &plate, training: false, rng: &g)
        let sky = plate.image.pixels.withUnsafeBufferPointer { PixelStatistics.sigmaClipped($0).median }
        XCTAssertEqual(sky, 0, accuracy: 3)
        XCTAssertEqual(plate.assumptions.map(\.subject), ["sky"])
    }

    /// A cutout filled by one extended galaxy: meshes hold its wings (the sky comes out too
    /// high, the galaxy loses light), the outer ring of a cutout twice its size does not.
    func testBorderSkyOfACutoutKeepsTheGalaxysWings() throws {
        var rng = SeededGenerator(seed: 6)
        let (h, w, re, pedestal, sigma) = (256, 256, 25.0, 50.0, 5.0)
        let b4 = 7.669
        var galaxy = [Float](repeating: 0, count: h * w)
        for y in 0..<h {
            for x in 0..<w {
                let r = ((Double(y) - 127.5) * (Double(y) - 127.5) + (Double(x) - 128.2) * (Double(x) - 128.2)).squareRoot()
                galaxy[y * w + x] = Float(5 * exp(-b4 * (Foundation.pow(Swift.max(r, 0.5) / re, 0.25) - 1)))
            }
        }
        let pixels = galaxy.map { $0 + Float(pedestal + sigma * rng.normal()) }
        let ring = MeshBackground(policy: .pedestal, border: 8)
        let meshes = MeshBackground(policy: .pedestal)
        let (ringSky, meshSky) = pixels.withUnsafeBufferPointer {
            (ring.estimate($0, height: h, width: w), meshes.estimate($0, height: h, width: w))
        }
        XCTAssertEqual(ringSky.mesh.count, 1)
        XCTAssertEqual(ringSky.mesh[0], Double(ringSky.background[0]), accuracy: 1e-4)
        XCTAssertEqual(ringSky.mesh[0], pedestal, accuracy: 0.1 * sigma, "the ring is the sky")
        // The galaxy's light in the central 128 × 128 pixels (what a 64 × 64 model at half the
        // resolution sees) after subtraction: 2 % lost with the ring, 10 % with meshes.
        func centralFlux(_ image: [Float]) -> Double {
            var sum = 0.0
            for y in 64..<192 { for x in 64..<192 { sum += Double(image[y * w + x]) } }
            return sum
        }
        let truth = centralFlux(galaxy)
        var withRing = Sample(image: PlanarImage(channels: 1, height: h, width: w, pixels: pixels), name: "g.fits")
        var withMeshes = withRing
        var g = SeededGenerator(seed: 0)
        try Stage.subtractMeshBackground(ring).apply(to: &withRing, training: false, rng: &g)
        try Stage.subtractMeshBackground(meshes).apply(to: &withMeshes, training: false, rng: &g)
        XCTAssertEqual(centralFlux(withRing.image.pixels) / truth, 1, accuracy: 0.03)
        XCTAssertLessThan(centralFlux(withMeshes.image.pixels) / truth, 0.93)
        XCTAssert(withRing.assumptions.first?.note.contains("measured on the outer 8 pixels") ?? false, "\(withRing.assumptions)")
        // Cutout observations use the ring, maps the meshes.
        let cutout = Observation(pixelScale: 0.2, psfFWHM: [0.6, 1], skySigma: [5, 15], zeroPoint: 30, size: [64, 64], bands: [])
        let map = Observation(pixelScale: 0.2, psfFWHM: [0.6, 1], skySigma: [5, 15], zeroPoint: 30, size: nil, bands: [])
        XCTAssertEqual(cutout.matchingStages()[1], .subtractMeshBackground(ring))
        XCTAssertEqual(map.matchingStages()[1], .subtractMeshBackground(meshes))
    }

    func testResamplingConservesFluxAndSumsBlocks() {
        var rng = SeededGenerator(seed: 1)
        let image = PlanarImage(channels: 1, height: 40, width: 40, pixels: (0..<1600).map { _ in Float(rng.uniform()) })
        // Factor 2: exactly the 2×2 block sums.
        let (binned, noise) = image.resampledConservingFlux(factor: 2)
        XCTAssertEqual(binned.shape, [1, 20, 20])
        XCTAssertEqual(binned[0, 3, 5], image[0, 6, 10] + image[0, 6, 11] + image[0, 7, 10] + image[0, 7, 11], accuracy: 1e-5)
        XCTAssertEqual(noise, 2, accuracy: 1e-12, "the sum of 4 independent pixels has twice their sigma")
        // Any factor: a source away from the edges keeps its total flux.
        let star = PlanarImage(channels: 1, height: 51, width: 51,
                               pixels: gaussian(height: 51, width: 51, fwhm: 5, flux: 1000, cy: 25, cx: 25))
        for factor in [0.5, 0.77, 1.37, 2.5, 8.5] {
            let total = star.resampledConservingFlux(factor: factor).image.pixels.reduce(0, +)
            XCTAssertEqual(Double(total), Double(star.pixels.reduce(0, +)), accuracy: 1e-2, "factor \(factor)")
        }
    }

    func testPixelScaleFromHeaderAndWCS() {
        XCTAssertEqual(HeaderValues.pixelScale(["PIXSCALE": 0.4]), 0.4)
        XCTAssertEqual(HeaderValues.pixelScale(["CD1_1": -2.5e-4 / 3.6, "CD2_2": 2.5e-4 / 3.6, "CD1_2": 0, "CD2_1": 0])!, 0.25,
                       accuracy: 1e-9)
        XCTAssertEqual(HeaderValues.pixelScale(["CDELT1": -1e-4, "CDELT2": 1e-4])!, 0.36, accuracy: 1e-9)
        // DSS: 67.2 arcsec/mm × 25 µm pixels = 1.68 arcsec/px.
        XCTAssertEqual(HeaderValues.pixelScale(["PLTSCALE": 67.2, "XPIXELSZ": 25.0])!, 1.68, accuracy: 1e-9)
        XCTAssertNil(HeaderValues.pixelScale([:]))
    }

    func testMatchPixelScaleResamplesAndRescalesTheNoise() throws {
        let pixels = gaussian(height: 64, width: 64, fwhm: 3, flux: 1000, cy: 32, cx: 32)
        var sample = Sample(image: PlanarImage(channels: 1, height: 64, width: 64, pixels: pixels), name: "s.fits",
                            header: ["PIXSCALE": 0.1, "SKYSIG": 5])
        var g = SeededGenerator(seed: 0)
        try Stage.matchPixelScale(0.2).apply(to: &sample, training: false, rng: &g)
        XCTAssertEqual(sample.image.shape, [1, 32, 32])
        XCTAssertEqual(Double(sample.image.pixels.reduce(0, +)), 1000, accuracy: 0.5)
        XCTAssertEqual(sample.header["SKYSIG"]!, 10, accuracy: 1e-9)
        XCTAssertEqual(sample.header["PIXSCALE"], 0.2)
        var silent = Sample(image: PlanarImage(channels: 1, height: 8, width: 8, pixels: [Float](repeating: 1, count: 64)), name: "n.fits")
        try Stage.matchPixelScale(0.2).apply(to: &silent, training: false, rng: &g)
        XCTAssertEqual(silent.image.shape, [1, 8, 8])
        XCTAssertEqual(silent.assumptions.map(\.subject), ["PIXSCALE"])
    }

    func testPSFMatchingBringsASharpGaussianToTheModelsFWHM() throws {
        // 0.4" FWHM at 0.2"/px (2 px) against a model trained on 0.6-1.0": the output is 0.6" (3 px).
        let pixels = gaussian(height: 64, width: 64, fwhm: 2, flux: 1000, cy: 32, cx: 32)
        var sample = Sample(image: PlanarImage(channels: 1, height: 64, width: 64, pixels: pixels), name: "g.fits",
                            header: ["PIXSCALE": 0.2, "SEEING": 0.4, "SKYSIG": 10])
        var g = SeededGenerator(seed: 0)
        try Stage.matchPSF(fwhm: 0.6...1.0).apply(to: &sample, training: false, rng: &g)
        XCTAssertEqual(momentFWHM(sample.image), 3, accuracy: 0.06)
        XCTAssertEqual(Double(sample.image.pixels.reduce(0, +)), 1000, accuracy: 0.5)
        XCTAssertEqual(sample.header["PSF_FWHM"], 0.6)
        // Kernel FWHM √(3² − 2²) = 2.24 px, sigma 0.95 px: white noise drops to 1/(2√π·0.95) of itself.
        XCTAssertEqual(sample.header["SKYSIG"]!, 10 / (2 * Double.pi.squareRoot() * 0.9495), accuracy: 0.02)
        // A PSF inside the range is left alone.
        var wide = Sample(image: PlanarImage(channels: 1, height: 64, width: 64, pixels: pixels), name: "w.fits",
                          header: ["PIXSCALE": 0.2, "PSF_FWHM": 0.8])
        try Stage.matchPSF(fwhm: 0.6...1.0).apply(to: &wide, training: false, rng: &g)
        XCTAssertEqual(wide.image.pixels, pixels)
    }

    func testZeroPointRescalesFluxAndNoise() throws {
        let image = PlanarImage(channels: 1, height: 2, width: 2, pixels: [1, 2, 3, 4])
        var g = SeededGenerator(seed: 0)
        var photzp = Sample(image: image, name: "z.fits", header: ["PHOTZP": 25, "SKYSIG": 2])
        try Stage.matchZeroPoint(30).apply(to: &photzp, training: false, rng: &g)
        XCTAssertEqual(photzp.image.pixels, [100, 200, 300, 400])
        XCTAssertEqual(photzp.header["SKYSIG"]!, 200, accuracy: 1e-9)
        XCTAssertEqual(photzp.header["MAGZERO"], 30)
        XCTAssertTrue(photzp.assumptions.isEmpty)
        var none = Sample(image: image, name: "n.fits")
        try Stage.matchZeroPoint(30).apply(to: &none, training: false, rng: &g)
        XCTAssertEqual(none.image, image)
        XCTAssertEqual(none.assumptions.map(\.subject), ["MAGZERO"])
        // HST: the AB zero point from PHOTFLAM and PHOTPLAM (WFPC2 F814W of the A478 example:
        // 22.079 for counts/s; an image in counts adds 2.5 log10 EXPTIME), said once.
        func hst(_ unit: String) -> FITSHeader {
            FITSHeader([HeaderRecord("BUNIT", .string(unit)), HeaderRecord("PHOTFLAM", .float(2.507987e-18)),
                        HeaderRecord("PHOTPLAM", .float(7995.937)), HeaderRecord("EXPTIME", .float(600))])
        }
        let rate = Sample.numericKeywords(hst("COUNTS/S"))
        XCTAssertEqual(rate[HeaderValues.photflamZeroPointKey]!, 22.079, accuracy: 5e-4)
        XCTAssertEqual(Sample.numericKeywords(hst("ELECTRONS"))[HeaderValues.photflamZeroPointKey]!,
                       22.079 + 2.5 * log10(600), accuracy: 5e-4)
        XCTAssertNil(Sample.numericKeywords(FITSHeader([HeaderRecord("PHOTFLAM", .float(1e-18))]))[HeaderValues.photflamZeroPointKey])
        XCTAssertNil(Sample.numericKeywords(FITSHeader([HeaderRecord("PHOTFLAM", .float(-1)), HeaderRecord("PHOTPLAM", .float(8000))]))[
            HeaderValues.photflamZeroPointKey], "a negative PHOTFLAM gives no zero point")
        var wfpc2 = Sample(image: image, name: "w.fits", header: rate)
        try Stage.matchZeroPoint(30).apply(to: &wfpc2, training: false, rng: &g)
        XCTAssertEqual(Double(wfpc2.image.pixels[0]), pow(10, 0.4 * (30 - 22.079)), accuracy: 0.5)
        XCTAssertEqual(wfpc2.assumptions.map(\.note), ["zero point from PHOTFLAM and PHOTPLAM (HST, AB magnitudes): 22.079"])
        // A zero-point keyword given (MAGZERO) wins over PHOTFLAM.
        var given = Sample(image: image, name: "g.fits", header: rate.merging(["MAGZERO": 30]) { $1 })
        try Stage.matchZeroPoint(30).apply(to: &given, training: false, rng: &g)
        XCTAssertEqual(given.image, image)
    }

    func testNoiseIsEstimatedFromTheBackgroundWhenTheHeaderHasNone() throws {
        var rng = SeededGenerator(seed: 9)
        let star = gaussian(height: 96, width: 96, fwhm: 3, flux: 2e5, cy: 40, cx: 50)
        let pixels = star.map { $0 + Float(rng.normal() * 7) }
        var g = SeededGenerator(seed: 0)
        var sample = Sample(image: PlanarImage(channels: 1, height: 96, width: 96, pixels: pixels), name: "n.fits")
        try Stage.estimateNoise(keyword: "SKYSIG", bandKeywords: []).apply(to: &sample, training: false, rng: &g)
        XCTAssertEqual(sample.header["SKYSIG"]!, 7, accuracy: 0.25)
        XCTAssertEqual(sample.assumptions.map(\.subject), ["SKYSIG"])
        var given = Sample(image: sample.image, name: "g.fits", header: ["SKYSIG": 3])
        try Stage.estimateNoise(keyword: "SKYSIG", bandKeywords: []).apply(to: &given, training: false, rng: &g)
        XCTAssertEqual(given.header["SKYSIG"], 3)
        XCTAssertTrue(given.assumptions.isEmpty)
    }

    /// A cutout that ran off its survey image: zeros round a 48 × 48 patch of sky with noise 7.
    /// The zeros are left out of the noise (and said so); a constant image is a clear error.
    func testNoiseIgnoresAConstantFillAndRefusesAConstantImage() throws {
        var rng = SeededGenerator(seed: 4)
        var pixels = [Float](repeating: 0, count: 96 * 96)
        for y in 24..<72 { for x in 24..<72 { pixels[y * 96 + x] = Float(rng.normal() * 7) } }
        var g = SeededGenerator(seed: 0)
        var padded = Sample(image: PlanarImage(channels: 1, height: 96, width: 96, pixels: pixels), name: "p.fits")
        try Stage.estimateNoise(keyword: "SKYSIG", bandKeywords: []).apply(to: &padded, training: false, rng: &g)
        XCTAssertEqual(padded.header["SKYSIG"]!, 7, accuracy: 0.35)
        XCTAssertTrue(padded.assumptions[0].note.contains("6912 pixels equal to 0 (a constant fill) left out"), padded.assumptions[0].note)
        var flat = Sample(image: PlanarImage(channels: 1, height: 32, width: 32, pixels: [Float](repeating: 5, count: 1024)), name: "f.fits")
        XCTAssertThrowsError(try Stage.estimateNoise(keyword: "SKYSIG", bandKeywords: []).apply(to: &flat, training: false, rng: &g)) {
            XCTAssertEqual($0 as? PreprocessingError, .constantBackground(stage: "estimate_noise", keyword: "SKYSIG", sample: "f.fits"))
            XCTAssertTrue($0.localizedDescription.contains("input.header_values.SKYSIG"))
        }
        var blank = Sample(image: PlanarImage(channels: 1, height: 8, width: 8, pixels: [Float](repeating: .nan, count: 64)), name: "b.fits")
        XCTAssertThrowsError(try Stage.estimateNoise(keyword: "SKYSIG", bandKeywords: []).apply(to: &blank, training: false, rng: &g)) {
            XCTAssertEqual($0 as? PreprocessingError, .noFinitePixels(stage: "estimate_noise", sample: "b.fits"))
        }
    }

    func testFitSizeCropsOrPadsAboutTheCentre() throws {
        var g = SeededGenerator(seed: 0)
        var big = Sample(image: PlanarImage(channels: 1, height: 100, width: 100, pixels: (0..<10000).map(Float.init)), name: "b")
        try Stage.fitSize(height: 64, width: 64).apply(to: &big, training: false, rng: &g)
        XCTAssertEqual(big.image.shape, [1, 64, 64])
        XCTAssertEqual(big.image[0, 0, 0], Float(18 * 100 + 18))
        var small = Sample(image: PlanarImage(channels: 1, height: 40, width: 40, pixels: [Float](repeating: 1, count: 1600)), name: "s")
        try Stage.fitSize(height: 64, width: 64).apply(to: &small, training: false, rng: &g)
        XCTAssertEqual(small.image.shape, [1, 64, 64])
        XCTAssertEqual(small.image.pixels.reduce(0, +), 1600)
        XCTAssertEqual(small.image[0, 12, 12], 1)
        XCTAssertEqual(small.image[0, 11, 12], 0)
        XCTAssertEqual(small.assumptions.map(\.subject), ["size"])
    }

    func testStagesDecodeStrictlyAndRoundTrip() throws {
        let yaml = """
        - subtract_mesh_background: {mesh: 32, filter: 5, estimator: median, when: pedestal}
        - subtract_mesh_background: {when: pedestal, border: 8}
        - estimate_noise: {keyword: SKYSIG}
        - match_zero_point: {zero_point: 27.5}
        - match_pixel_scale: {pixel_scale: 0.262}
        - match_psf: {fwhm: [0.6, 1.0]}
        - fit_size: {size: 64}
        """
        let stages = try YAMLDecoder().decode([Stage].self, from: yaml)
        XCTAssertEqual(stages[0], .subtractMeshBackground(MeshBackground(mesh: 32, filter: 5, estimator: .median, policy: .pedestal)))
        XCTAssertEqual(stages[1], .subtractMeshBackground(MeshBackground(policy: .pedestal, border: 8)))
        XCTAssertEqual(stages[6], .fitSize(height: 64, width: 64))
        XCTAssertEqual(try JSONDecoder().decode([Stage].self, from: JSONEncoder().encode(stages)), stages)
        XCTAssertThrowsError(try YAMLDecoder().decode([Stage].self, from: "- subtract_mesh_background: {estimator: mode}")) {
            XCTAssert("\($0)".contains("sextractor"), "\($0)")
        }
        XCTAssertThrowsError(try YAMLDecoder().decode([Stage].self, from: "- subtract_mesh_background: {border: -2}")) {
            XCTAssert("\($0)".contains("border"), "\($0)")
        }
        XCTAssertThrowsError(try YAMLDecoder().decode([Stage].self, from: "- match_pixel_scale: {pixelscale: 0.2}")) {
            XCTAssert("\($0)".contains("pixel_scale"), "\($0)")
        }
    }

    func testObservationChoosesItsStagesAndJudgesTheDomain() throws {
        let observation = try JSONDecoder().decode(Observation.self, from: Data("""
            {"pixel_scale": 0.2, "psf_fwhm": [0.6, 1.0], "sky_sigma": [5, 15], "zero_point": 30, "size": [64, 64], "bands": []}
            """.utf8))
        let stages = observation.matchingStages()
        XCTAssertEqual(stages.map(\.name), ["match_zero_point", "subtract_mesh_background", "estimate_noise",
                                            "match_pixel_scale", "match_psf", "fit_size"])
        let inside = observation.domain(["PIXSCALE": 0.2, "PSF_FWHM": 0.7, "SKYSIG": 10])
        XCTAssertEqual([inside.pixelScale, inside.psf, inside.depth], [true, true, true])
        let outside = observation.domain(["PIXSCALE": 1.7, "PSF_FWHM": 2.5, "SKYSIG": 60])
        XCTAssertEqual([outside.pixelScale, outside.psf, outside.depth], [false, false, false])
        // Resampled from 0.1"/px (finer): inside; from 0.5"/px (coarser, resolution lost): outside.
        XCTAssertEqual(observation.domain(["PIXSCALE": 0.2, "PIXSCALE_NATIVE": 0.1]).pixelScale, true)
        XCTAssertEqual(observation.domain(["PIXSCALE": 0.2, "PIXSCALE_NATIVE": 0.5]).pixelScale, false)
        XCTAssertThrowsError(try JSONDecoder().decode(Observation.self, from: Data(#"{"pixel_scale": 0.2, "zero_point": 30, "psf": 1}"#.utf8)))
    }
}
