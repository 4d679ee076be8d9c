import AstroBase
import Foundation
import XCTest
@testable import SkySim

/// Random numbers, noise and the lens model.
final class NoiseAndLensTests: XCTestCase {
    func testPoissonMeanAndVariance() {
        var random = SeededGenerator(seed: 42)
        for lambda in [0.3, 4.0, 25.0, 1000.0] {
            let samples = (0..<40_000).map { _ in random.poisson(lambda) }
            let mean = samples.reduce(0, +) / Double(samples.count)
            let variance = samples.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(samples.count - 1)
            XCTAssertEqual(mean / lambda, 1, accuracy: 0.03, "mean for λ = \(lambda)")
            XCTAssertEqual(variance / lambda, 1, accuracy: 0.05, "variance for λ = \(lambda)")
            XCTAssert(samples.allSatisfy { $0 >= 0 && $0 == $0.rounded() }, "non-negative integers for λ = \(lambda)")
        }
    }

    func testGeneratorsAreIndependentAndRepeatable() {
        var a = SeededGenerator(seed: 7, stream: 3), b = SeededGenerator(seed: 7, stream: 3), c = SeededGenerator(seed: 7, stream: 4)
        let xa = (0..<8).map { _ in a.next() }, xb = (0..<8).map { _ in b.next() }, xc = (0..<8).map { _ in c.next() }
        XCTAssertEqual(xa, xb)
        XCTAssertNotEqual(xa, xc)
    }

    /// Empty regions of simulated images have standard deviation SKYSIG within 2 %.
    func testSkyNoiseMatchesSKYSIG() {
        let settings = ObservationSettings()
        var ratios: [Double] = []
        var residuals: [Double] = []
        for index in 0..<24 {
            let image = MorphologyScene.make(index: index, seed: 5, settings: settings, size: 64, forcedLabel: 4)
            guard case .float(let sky)? = image.headerValue("SKYSIG") else { return XCTFail("SKYSIG missing") }
            var corner: [Double] = []
            for j in 0..<64 { for i in 0..<64 where (i < 14 || i > 49) && (j < 14 || j > 49) { corner.append(Double(image.pixels[j * 64 + i])) } }
            residuals += corner.map { $0 / sky }
            let mean = corner.reduce(0, +) / Double(corner.count)
            ratios.append((corner.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(corner.count - 1)).squareRoot() / sky)
        }
        let pooled = (residuals.map { $0 * $0 }.reduce(0, +) / Double(residuals.count)).squareRoot()
        XCTAssertEqual(pooled, 1, accuracy: 0.02, "pooled std / SKYSIG")
        XCTAssert(ratios.allSatisfy { abs($0 - 1) < 0.12 }, "per-image std / SKYSIG: \(ratios)")
    }

    /// ∇·α = 2κ and ∂α_x/∂y = ∂α_y/∂x for the SIE + shear (shear is trace-free), checking
    /// the deflection formulas against lenstronomy's convergence convention.
    func testSIEDeflectionMatchesConvergence() {
        let lens = SIELens(centerX: 1.5, centerY: -2, einsteinRadius: 7, q: 0.65, angle: 0.8, shear1: 0.03, shear2: -0.02)
        let h = 1e-4
        for (x, y) in [(9.0, 3.0), (-4.0, 6.5), (0.5, -9.0), (12.0, -1.0)] {
            let axp = lens.deflection(x: x + h, y: y), axm = lens.deflection(x: x - h, y: y)
            let ayp = lens.deflection(x: x, y: y + h), aym = lens.deflection(x: x, y: y - h)
            let divergence = (axp.x - axm.x) / (2 * h) + (ayp.y - aym.y) / (2 * h)
            XCTAssertEqual(divergence, 2 * lens.convergence(x: x, y: y), accuracy: 1e-6, "∇·α at (\(x), \(y))")
            XCTAssertEqual((ayp.x - aym.x) / (2 * h), (axp.y - axm.y) / (2 * h), accuracy: 1e-6, "curl at (\(x), \(y))")
        }
        // A round lens is the singular isothermal sphere: |α| = θ_E everywhere.
        let sis = SIELens(centerX: 0, centerY: 0, einsteinRadius: 5, q: 1, angle: 0)
        let a = sis.deflection(x: 3, y: 4)
        XCTAssertEqual((a.x * a.x + a.y * a.y).squareRoot(), 5, accuracy: 1e-12)
    }

    /// A round source exactly behind a singular isothermal sphere forms a ring at θ_E.
    func testEinsteinRing() {
        let size = 96, c = 47.5, thetaE = 12.0
        let lens = SIELens(centerX: c, centerY: c, einsteinRadius: thetaE, q: 1, angle: 0)
        let source = SersicProfile(n: 1, halfLightRadius: 0.8, flux: 1000, geometry: EllipseGeometry(centerX: c, centerY: c))
        let component = SceneComponent.lensed(LensedSource(source: source, lens: lens))
        let image = Renderer(width: size, height: size, psfSigma: 0, components: [component]).render([component])
        var weighted = 0.0, total = 0.0
        var quadrants = [Double](repeating: 0, count: 4)
        var radialProfile = [Double](repeating: 0, count: 48)
        for j in 0..<size {
            for i in 0..<size {
                let dx = Double(i) - c, dy = Double(j) - c, r = (dx * dx + dy * dy).squareRoot(), v = image[j * size + i]
                weighted += v * r; total += v
                quadrants[(dx > 0 ? 1 : 0) + (dy > 0 ? 2 : 0)] += v
                if Int(r) < 48 { radialProfile[Int(r)] += v / (2 * Double.pi * (Double(Int(r)) + 0.5)) }
            }
        }
        XCTAssertEqual(weighted / total, thetaE, accuracy: 0.2, "flux-weighted ring radius")
        XCTAssertEqual(Double(radialProfile.indices.max { radialProfile[$0] < radialProfile[$1] }!), thetaE, accuracy: 1, "peak of the radial profile")
        for q in quadrants { XCTAssertEqual(q / (total / 4), 1, accuracy: 0.03, "ring is round") }
        XCTAssertLessThan(image[47 * size + 47], 1e-6 * total, "no light at the centre")
        // Magnification of a point inside the SIS ring: μ = 2 θ_E / β → large total flux.
        XCTAssertGreaterThan(total / 1000, 5)
    }

    func testWorldCoordinatesMatchAstropy() {
        let wcs = TangentPlaneWCS(referenceRA: 150.1, referenceDec: 2.2, referencePixelX: 512.5, referencePixelY: 512.5, pixelScale: 0.2)
        // astropy.wcs.WCS(...).all_pix2world for 1-based pixels (1, 1) and (1001.3, 21.7).
        let a = wcs.world(x: 0, y: 0), b = wcs.world(x: 1000.3, y: 20.7)
        XCTAssertEqual(a.ra, 150.1284370834276, accuracy: 1e-9); XCTAssertEqual(a.dec, 2.1715830684517003, accuracy: 1e-9)
        XCTAssertEqual(b.ra, 150.07282491261768, accuracy: 1e-9); XCTAssertEqual(b.dec, 2.172733091241791, accuracy: 1e-9)
    }
}
