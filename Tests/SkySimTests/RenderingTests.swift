import AstroBase
import Foundation
import XCTest
@testable import SkySim

/// Photometry and profile accuracy of the noiseless renderer.
final class RenderingTests: XCTestCase {
    func testSersicBSolvesTheHalfLightEquation() {
        // scipy.special.gammaincinv(2n, 0.5), scipy 1.x.
        let reference: [(Double, Double)] = [(0.5, 0.6931471805599455), (1, 1.6783469900166612),
                                             (4, 7.669249442500804), (6, 11.668363153044767)]
        for (n, b) in reference {
            XCTAssertEqual(SpecialFunctions.sersicB(n: n), b, accuracy: 1e-9 * b, "b_n for n = \(n)")
        }
    }

    /// Total counts of noiseless galaxies equal 10^(0.4 (30 - m)) within 1 %, including steep
    /// profiles a pixel across, spirals (the arm term must not change the flux) and stars.
    func testTotalCountsMatchMagnitude() {
        let settings = ObservationSettings()
        let size = 384, c = Double(size - 1) / 2 + 0.3
        let magnitude = 19.3, flux = settings.flux(magnitude: magnitude)
        XCTAssertEqual(flux, 19_054.607179632483, accuracy: 1e-6)
        let sigma = settings.psfSigma(fwhm: 0.7)
        var cases: [(String, SceneComponent)] = []
        for (n, re, q) in [(0.5, 0.3, 0.3), (1.0, 0.3, 0.5), (4.0, 0.3, 0.8), (6.0, 0.3, 0.4), (4.0, 1.0, 1.0)] {
            cases.append(("sersic n=\(n) re=\(re)", .sersic(SersicProfile(n: n, halfLightRadius: settings.pixels(re), flux: flux,
                geometry: EllipseGeometry(centerX: c, centerY: c, q: q, angle: 0.7)))))
        }
        let disk = SersicProfile(n: 1, halfLightRadius: settings.pixels(2), flux: flux,
                                 geometry: EllipseGeometry(centerX: c, centerY: c, q: 0.7, angle: 1.1))
        cases.append(("spiral", .spiral(SpiralDisk(disk: disk, armCount: 3, pitch: 0.3, phase: 1, sharpness: 4,
                                                   armFraction: 0.5, transitionRadius: 5))))
        cases.append(("star", .gaussian(GaussianBlob(centerX: c, centerY: c, sigma: 0, flux: flux))))
        for (name, component) in cases {
            let image = Renderer(width: size, height: size, psfSigma: sigma, components: [component]).render([component])
            let total = image.reduce(0, +)
            // The stamp is 77" wide: the n <= 4 profiles lose < 0.1 % beyond it.
            XCTAssertEqual(total / flux, 1, accuracy: 0.01, "\(name): total \(total) vs \(flux)")
        }
    }

    /// The arm term of a spiral, c T(R) D(R) S/⟨S⟩, holds the drawn fraction of the disk light,
    /// and the arms leave the total unchanged (point-sampled on a fine grid, no PSF).
    func testSpiralArmsHoldTheirFraction() {
        let disk = SersicProfile(n: 1, halfLightRadius: 8, flux: 1000, geometry: EllipseGeometry(centerX: 0, centerY: 0, q: 0.6, angle: 0.5))
        for (fraction, sharpness, arms) in [(0.2, 2, 2), (0.5, 6, 4), (0.35, 4, 3)] {
            let spiral = SpiralDisk(disk: disk, armCount: arms, pitch: -0.35, phase: 0.4, sharpness: sharpness,
                                    armFraction: fraction, transitionRadius: 4)
            var total = 0.0, armTerm = 0.0
            let step = 0.2
            for j in -600..<600 {
                for i in -600..<600 {
                    let x = (Double(i) + 0.5) * step, y = (Double(j) + 0.5) * step
                    let value = spiral.intensity(x: x, y: y)
                    let (u, v) = disk.geometry.frame(x, y)
                    let base = disk.intensity(circularRadiusSquared: disk.geometry.circularRadiusSquared(u: u, v: v))
                    let w = v / disk.geometry.q
                    let fade = 1 - exp(-(u * u + w * w) / 16)
                    total += value * step * step
                    armTerm += (value - base * (1 - spiral.strength * fade)) * step * step
                }
            }
            XCTAssertEqual(total / 1000, 1, accuracy: 0.005, "total flux, k = \(sharpness)")
            XCTAssertEqual(armTerm / 1000, fraction, accuracy: 0.005, "arm fraction, k = \(sharpness)")
        }
    }

    /// The half-light radius measured on rendered, noiseless Sérsic images matches r_e within 2 %.
    func testHalfLightRadiusMatches() {
        let size = 121, c = 60.0, re = 10.0, flux = 1e5
        for n in [0.5, 1, 4, 6] {
            for q in [1.0, 0.5] {
                let profile = SersicProfile(n: n, halfLightRadius: re, flux: flux,
                                            geometry: EllipseGeometry(centerX: c, centerY: c, q: q, angle: 0.4))
                let image = Renderer(width: size, height: size, psfSigma: 0, components: [.sersic(profile)]).render([.sersic(profile)])
                let measured = halfLightRadius(image, size: size, geometry: profile.geometry, total: flux)
                XCTAssertEqual(measured / re, 1, accuracy: 0.02, "n = \(n), q = \(q): measured r_e \(measured)")
            }
        }
    }

    /// The centre pixel of a steep profile (n = 6, r_e = 1.5 px, no PSF) carries the exact
    /// integral of the profile over the pixel: 8/(2π) F ∫₀^{π/4} P(2n, b (R(φ)/r_e)^{1/n}) dφ,
    /// R(φ) = 1/(2 cos φ), the polar form of the pixel's square.
    func testSteepProfileCentralPixelIsIntegratedExactly() {
        for (n, re) in [(6.0, 1.5), (4.0, 0.5), (1.0, 0.5)] {
            let size = 15, c = 7.0, flux = 1000.0
            let profile = SersicProfile(n: n, halfLightRadius: re, flux: flux, geometry: EllipseGeometry(centerX: c, centerY: c))
            let image = Renderer(width: size, height: size, psfSigma: 0, components: [.sersic(profile)]).render([.sersic(profile)])
            let steps = 4000
            var integral = 0.0
            for i in 0..<steps {
                let phi = (Double(i) + 0.5) / Double(steps) * Double.pi / 4
                integral += profile.enclosedFraction(radius: 0.5 / Foundation.cos(phi)) * (Double.pi / 4) / Double(steps)
            }
            let exact = 8 / (2 * Double.pi) * flux * integral
            XCTAssertEqual(image[7 * size + 7] / exact, 1, accuracy: 0.01, "n = \(n), r_e = \(re) px")
        }
    }

    /// Fraction of a pixel inside an ellipse, by 16 x 16 sub-points; bisection on the radius
    /// where the enclosed flux reaches half the untruncated total.
    private func halfLightRadius(_ image: [Double], size: Int, geometry: EllipseGeometry, total: Double) -> Double {
        func enclosed(_ radius: Double) -> Double {
            var sum = 0.0
            for j in 0..<size {
                for i in 0..<size {
                    let (u0, v0) = geometry.frame(Double(i), Double(j))
                    let r0 = geometry.circularRadiusSquared(u: u0, v: v0).squareRoot()
                    if r0 > radius + 1.5 { continue }
                    if r0 < radius - 1.5 { sum += image[j * size + i]; continue }
                    var inside = 0
                    for b in 0..<16 {
                        for a in 0..<16 {
                            let (u, v) = geometry.frame(Double(i) - 0.5 + (Double(a) + 0.5) / 16, Double(j) - 0.5 + (Double(b) + 0.5) / 16)
                            if geometry.circularRadiusSquared(u: u, v: v) < radius * radius { inside += 1 }
                        }
                    }
                    sum += image[j * size + i] * Double(inside) / 256
                }
            }
            return sum
        }
        var low = 1.0, high = 50.0
        for _ in 0..<30 {
            let mid = 0.5 * (low + high)
            if enclosed(mid) < 0.5 * total { low = mid } else { high = mid }
        }
        return 0.5 * (low + high)
    }
}
