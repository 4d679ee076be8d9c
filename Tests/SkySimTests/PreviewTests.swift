import AstroBase
import Foundation
import Plotting
import XCTest
@testable import SkySim

/// Visual checks, run on demand: `SKYSIM_PREVIEW_DIR=/tmp/x swift test --filter PreviewTests`
/// writes noiseless and noisy sheets of every morphology class for a human to look at.
final class PreviewTests: XCTestCase {
    func testWriteClassSheets() throws {
        guard let directory = ProcessInfo.processInfo.environment["SKYSIM_PREVIEW_DIR"] else {
            throw XCTSkip("set SKYSIM_PREVIEW_DIR to write preview sheets")
        }
        var sheet = ContactSheet(columns: 8, cellSize: 128, title: "NOISELESS MORPHOLOGY CLASSES")
        for label in 0..<5 {
            for index in 0..<8 {
                let image = MorphologyScene.make(index: index, seed: 99, settings: ObservationSettings(), size: 64,
                                                 keepNoiseless: true, forcedLabel: label)
                let pixels = image.noiseless!.map(Float.init)
                sheet.add(gray: ImageNormalization.display(for: pixels).bytes(pixels), width: 64, height: 64, label: image.caption)
            }
        }
        try sheet.write(to: URL(fileURLWithPath: directory).appendingPathComponent("morphology_noiseless.png"))
    }
}

/// Reference dumps for cross-checks against GalSim (scripts/crosscheck_galsim.py), run on demand.
final class ReferenceDumpTests: XCTestCase {
    /// (n, r_e arcsec, q, PA rad, PSF FWHM arcsec, centre x, centre y) of the dumped cases.
    static let cases: [(Double, Double, Double, Double, Double, Double, Double)] = [
        (6.0, 0.3, 0.4, 0.3, 0.6, 31.5, 31.5), (4.0, 0.5, 0.8, 1.0, 0.8, 32.2, 30.9),
        (1.0, 0.3, 0.3, 2.0, 0.6, 31.0, 31.0), (0.5, 0.3, 0.2, 0.5, 1.0, 30.7, 32.4),
        (2.5, 1.5, 0.6, 2.8, 0.7, 31.5, 31.5), (6.0, 3.0, 0.2, 0.1, 0.6, 32.0, 31.0),
    ]

    func testDumpSersicReferences() throws {
        guard let directory = ProcessInfo.processInfo.environment["SKYSIM_PREVIEW_DIR"] else {
            throw XCTSkip("set SKYSIM_PREVIEW_DIR to dump reference images")
        }
        let settings = ObservationSettings()
        for (k, c) in Self.cases.enumerated() {
            let profile = SersicProfile(n: c.0, halfLightRadius: settings.pixels(c.1), flux: 1e4,
                                        geometry: EllipseGeometry(centerX: c.5, centerY: c.6, q: c.2, angle: c.3))
            let sigma = settings.psfSigma(fwhm: c.4)
            var renderer = Renderer(width: 64, height: 64, psfSigma: sigma, components: [.sersic(profile)])
            if let forced = ProcessInfo.processInfo.environment["SKYSIM_OVERSAMPLING"].flatMap(Int.init) {
                renderer = Renderer(width: 64, height: 64, psfSigma: sigma, oversampling: forced)
            }
            let image = renderer.render([.sersic(profile)])
            let data = image.withUnsafeBufferPointer { Data(buffer: $0) }
            try data.write(to: URL(fileURLWithPath: directory).appendingPathComponent("sersic_\(k).f64"))
        }
    }
}

/// Lensed-source dumps for the lenstronomy cross-check (scripts/crosscheck_lenstronomy.py).
final class LensReferenceDumpTests: XCTestCase {
    /// (θ_E, mass q, mass PA, γ1, γ2, source dx, dy, source r_e, source q, source PA, PSF FWHM), arcsec/rad;
    /// lens centred at pixel (31.5, 31.5) of a 64 x 64 image, source flux 1000.
    static let cases: [[Double]] = [
        [1.2, 0.7, 0.4, 0.02, -0.01, 0.10, 0.05, 0.2, 0.6, 1.0, 0.7],
        [2.0, 0.9, 2.0, 0.0, 0.04, -0.3, 0.2, 0.1, 0.5, 0.3, 0.6],
        [0.9, 0.6, 1.2, 0.03, 0.0, 0.05, -0.2, 0.4, 0.9, 2.5, 1.0],
    ]

    func testDumpLensedReferences() throws {
        guard let directory = ProcessInfo.processInfo.environment["SKYSIM_PREVIEW_DIR"] else {
            throw XCTSkip("set SKYSIM_PREVIEW_DIR to dump reference images")
        }
        let settings = ObservationSettings()
        for (k, c) in Self.cases.enumerated() {
            let px = settings.pixels
            let lens = SIELens(centerX: 31.5, centerY: 31.5, einsteinRadius: px(c[0]), q: c[1], angle: c[2], shear1: c[3], shear2: c[4])
            let source = SersicProfile(n: 1, halfLightRadius: px(c[7]), flux: 1000,
                                       geometry: EllipseGeometry(centerX: 31.5 + px(c[5]), centerY: 31.5 + px(c[6]), q: c[8], angle: c[9]))
            let component = SceneComponent.lensed(LensedSource(source: source, lens: lens))
            let image = Renderer(width: 64, height: 64, psfSigma: settings.psfSigma(fwhm: c[10]), components: [component]).render([component])
            let data = image.withUnsafeBufferPointer { Data(buffer: $0) }
            try data.write(to: URL(fileURLWithPath: directory).appendingPathComponent("lensed_\(k).f64"))
        }
    }
}
