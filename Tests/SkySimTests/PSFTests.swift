import AstroBase
import FITS
import Foundation
import TestSupport
import XCTest
@testable import SkySim

/// Moffat and elliptical PSFs of `--psf varied`: profile, normalisation, rendering, files.
final class PSFTests: XCTestCase {
    /// The profile is at half maximum at FWHM/2 for Gaussian and Moffat; an elliptical one at
    /// FWHM/2 · √((1±e)/(1∓e)) along its major and minor axes (area-preserving stretch).
    func testProfileHalfMaximumIsAtTheFWHM() {
        for profile: PSFShape.Profile in [.gaussian, .moffat(beta: 2.5), .moffat(beta: 4), .moffat(beta: 6)] {
            let psf = PSFShape(profile: profile, fwhm: 4.2)
            XCTAssertEqual(psf.value(dx: 0, dy: 0), 1, accuracy: 1e-12)
            XCTAssertEqual(psf.value(dx: 2.1, dy: 0), 0.5, accuracy: 1e-12, "\(profile)")
            XCTAssertEqual(psf.value(dx: 0, dy: -2.1), 0.5, accuracy: 1e-12, "\(profile)")
            let e = 0.1, angle = 0.6
            let elliptical = PSFShape(profile: profile, fwhm: 4.2, ellipticity: e, angle: angle)
            let major = 2.1 * ((1 + e) / (1 - e)).squareRoot(), minor = 2.1 * ((1 - e) / (1 + e)).squareRoot()
            XCTAssertEqual(elliptical.value(dx: major * cos(angle), dy: major * sin(angle)), 0.5, accuracy: 1e-12)
            XCTAssertEqual(elliptical.value(dx: -minor * sin(angle), dy: minor * cos(angle)), 0.5, accuracy: 1e-12)
        }
        // Moffat wings: I(r)/I(0) = (1 + r²/α²)^(−β) with α = (FWHM/2)/√(2^{1/β} − 1).
        let moffat = PSFShape(profile: .moffat(beta: 3), fwhm: 4)
        let alpha = 2 / (pow(2, 1.0 / 3) - 1).squareRoot()
        XCTAssertEqual(moffat.value(dx: 10, dy: 0), pow(1 + 100 / (alpha * alpha), -3), accuracy: 1e-14)
    }

    /// Kernels sum to 1 (flux conserving), and a star rendered through a Moffat PSF keeps
    /// its flux and its sub-pixel centroid.
    func testKernelNormalisedAndFluxConserved() {
        for psf in [PSFShape(profile: .moffat(beta: 2.5), fwhm: 5, ellipticity: 0.12, angle: 0.3),
                    PSFShape(profile: .gaussian, fwhm: 3)] {
            XCTAssertEqual(psf.kernel().reduce(0, +), 1, accuracy: 1e-12)
            let size = 96, cx = 47.8, cy = 46.35, flux = 1e5
            let star = SceneComponent.gaussian(GaussianBlob(centerX: cx, centerY: cy, sigma: 0, flux: flux))
            let image = psf.render([star], width: size, height: size)
            XCTAssertEqual(image.reduce(0, +) / flux, 1, accuracy: 1e-9, "\(psf.profile)")
            var mx = 0.0, my = 0.0
            for j in 0..<size { for i in 0..<size { mx += Double(i) * image[j * size + i]; my += Double(j) * image[j * size + i] } }
            XCTAssertEqual(mx / flux, cx, accuracy: 0.01)
            XCTAssertEqual(my / flux, cy, accuracy: 0.01)
        }
    }

    /// A circular Gaussian through the kernel path reproduces the exact renderer (PSF
    /// convolved with the pixel box), pixel by pixel within 1 % of the peak, for a star and
    /// a Sérsic galaxy; a Moffat star of the same FWHM has the same measured FWHM (within
    /// 4 %) and brighter wings.
    func testGaussianKernelPathMatchesExactRenderer() {
        let size = 64, c = 31.6, fwhm = 4.0
        let sigma = fwhm / (2 * (2 * log(2.0)).squareRoot())
        let galaxy = SceneComponent.sersic(SersicProfile(n: 2, halfLightRadius: 3, flux: 1e4,
                                                         geometry: EllipseGeometry(centerX: c, centerY: c - 0.4, q: 0.6, angle: 0.5)))
        let star = SceneComponent.gaussian(GaussianBlob(centerX: c, centerY: c + 0.2, sigma: 0, flux: 1e4))
        for component in [star, galaxy] {
            let exact = Renderer(width: size, height: size, psfSigma: sigma, components: [component]).render([component])
            let viaKernel = PSFShape(profile: .gaussian, fwhm: fwhm).render([component], width: size, height: size)
            let peak = exact.max()!
            for i in exact.indices { XCTAssertEqual(viaKernel[i], exact[i], accuracy: 0.01 * peak) }
        }
        let centered = SceneComponent.gaussian(GaussianBlob(centerX: 32, centerY: 32, sigma: 0, flux: 1e4))
        let gaussian = PSFShape(profile: .gaussian, fwhm: fwhm).render([centered], width: size, height: size)
        let moffat = PSFShape(profile: .moffat(beta: 2.5), fwhm: fwhm).render([centered], width: size, height: size)
        XCTAssertEqual(measuredFWHM(moffat, size: size), measuredFWHM(gaussian, size: size), accuracy: 0.04 * fwhm)
        XCTAssertGreaterThan(moffat[32 * size + 44], 10 * gaussian[32 * size + 44], "Moffat wings at 3 FWHM")
    }

    /// Width at half maximum along the row through pixel (32, 32), linearly interpolated.
    private func measuredFWHM(_ image: [Double], size: Int) -> Double {
        let row = Array(image[(32 * size)..<(33 * size)]), half = row[32] / 2
        func crossing(_ direction: Int) -> Double {
            var i = 32
            while row[i + direction] > half { i += direction }
            let a = row[i], b = row[i + direction]
            return Double(i) + Double(direction) * (a - half) / (a - b)
        }
        return crossing(1) - crossing(-1)
    }

    /// `varied` files: same seed same bytes; the draws recorded in the header; the scene,
    /// FWHM and label the same as the Gaussian data set of that seed; deblending refused.
    func testVariedDataSets() throws {
        let scratch = try makeTemporaryDirectory("skysim-psf")
        defer { try? FileManager.default.removeItem(at: scratch) }
        var settings = ObservationSettings()
        settings.psf = .varied
        for task in [SimulationTask.morphology, .lens] {
            let a = scratch.appendingPathComponent("\(task)-a"), b = scratch.appendingPathComponent("\(task)-b")
            _ = try Simulator(task: task, seed: 5, settings: settings).writeDataset(count: 4, to: a)
            _ = try Simulator(task: task, seed: 5, settings: settings).writeDataset(count: 4, to: b)
            for name in try FileManager.default.contentsOfDirectory(atPath: a.path) {
                XCTAssertEqual(try Data(contentsOf: a.appendingPathComponent(name)),
                               try Data(contentsOf: b.appendingPathComponent(name)), "\(task) \(name)")
            }
        }
        var types: Set<String> = []
        for index in 0..<40 {
            let varied = Simulator(task: .morphology, seed: 9, settings: settings).image(at: index)
            let plain = Simulator(task: .morphology, seed: 9).image(at: index)
            XCTAssertEqual(varied.label, plain.label)
            XCTAssertEqual(varied.headerValue("PSF_FWHM"), plain.headerValue("PSF_FWHM"))
            XCTAssertNil(plain.headerValue("PSFTYPE"))
            guard case .string(let type)? = varied.headerValue("PSFTYPE"),
                  case .float(let e)? = varied.headerValue("PSF_E") else { return XCTFail("PSFTYPE / PSF_E missing") }
            types.insert(type)
            XCTAssertTrue((0...0.12).contains(e))
            if type == "MOFFAT" {
                guard case .float(let beta)? = varied.headerValue("PSFBETA") else { return XCTFail("PSFBETA missing") }
                XCTAssertTrue((2.5...6).contains(beta))
            }
            XCTAssertNotEqual(varied.pixels, plain.pixels)
        }
        XCTAssertEqual(types, ["MOFFAT", "GAUSSIAN"])
        let lens = Simulator(task: .lens, seed: 9, settings: settings).image(at: 0)
        for band in ["G", "R", "I"] { XCTAssertNotNil(lens.headerValue("PSFTYPE" + band), band) }
        XCTAssertThrowsError(try Simulator(task: .deblend, seed: 1, settings: settings)
            .writeDataset(count: 1, to: scratch.appendingPathComponent("deblend"))) { error in
            XCTAssertTrue("\(error)".contains("deblend"), "\(error)")
        }
    }

    /// Segmentation maps under `varied`: the same scene as the Gaussian map of that seed (the
    /// sources, their count and FWHM), the PSF drawn once per map and recorded, and the truth
    /// following the PSF: broad Moffat wings (β < 3.5) give star footprints larger than the
    /// Gaussian ones of the same stars, and every footprint pixel is at least 1 SKYSIG of the
    /// source's noiseless flux, as TASKS.md's rule says.
    func testVariedSegmentationMapsFollowThePSF() throws {
        var settings = ObservationSettings()
        settings.psf = .varied
        var broadMoffats = 0
        for index in 0..<12 {
            let varied = Simulator(task: .segmentation, seed: 7, settings: settings, size: 80).image(at: index, keepNoiseless: true)
            let plain = Simulator(task: .segmentation, seed: 7, size: 80).image(at: index, keepNoiseless: true)
            XCTAssertEqual(varied.headerValue("NSTAR"), plain.headerValue("NSTAR"))
            XCTAssertEqual(varied.headerValue("PSF_FWHM"), plain.headerValue("PSF_FWHM"))
            guard case .string(let type)? = varied.headerValue("PSFTYPE"), let truth = varied.truth, let plainTruth = plain.truth,
                  let noiseless = varied.noiseless, case .float(let sky)? = varied.headerValue("SKYSIG")
            else { return XCTFail("map \(index): PSFTYPE, truth, noiseless or SKYSIG missing") }
            // A labelled pixel has at least one source above 1 SKYSIG, so the sum is too.
            for (p, code) in truth.enumerated() where code != 0 { XCTAssertGreaterThan(noiseless[p], sky, "map \(index) pixel \(p)") }
            guard type == "MOFFAT", case .float(let beta)? = varied.headerValue("PSFBETA"), beta < 3.5,
                  case .integer(let stars)? = plain.headerValue("NSTAR"), stars > 0 else { continue }
            broadMoffats += 1
            XCTAssertGreaterThan(truth.filter { $0 == 1 }.count, plainTruth.filter { $0 == 1 }.count, "map \(index), β \(beta)")
        }
        XCTAssertGreaterThan(broadMoffats, 0, "no broad Moffat map with stars among 12")
    }
}
