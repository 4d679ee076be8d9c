import AstroBase
import Foundation
import XCTest
@testable import SkySim

/// `SceneFit`: maximum-likelihood fits of Sérsic profiles and point sources.
final class SceneFitTests: XCTestCase {
    let psfSigma = 0.8 / 0.2 / 2.3548

    /// A galaxy and a star neighbour, drawn and made noisy as the simulator does, refitted from
    /// starts 20–40 % off: the parameters come back within a few of their statistical errors and
    /// the central galaxy's image within the noise.
    func testRecoversABlendFromPerturbedStarts() {
        let fit = SceneFit(width: 64, height: 64, psfSigma: psfSigma, skySigma: 10, gain: 1)
        let central = FitComponent.sersic(x: 32.3, y: 31.6, flux: 10_000, halfLightRadius: 4, n: 2.5, q: 0.6, angle: 0.7)
        let neighbour = FitComponent.sersic(x: 41, y: 36, flux: 6_000, halfLightRadius: 3, n: 1, q: 0.8, angle: 2.0)
        let star = FitComponent.point(x: 22, y: 25, flux: 5_000)
        let truth = fit.image([central, neighbour, star])
        var random = SeededGenerator(seed: 3)
        let noisy = NoiseModel.noisy(truth, skySigma: 10, gain: 1, random: &random)
        var start = [central, neighbour, star]
        start[0].x += 1; start[0].flux *= 0.7; start[0].halfLightRadius *= 1.4; start[0].n = 1.5; start[0].q = 0.9
        start[1].y -= 1; start[1].flux *= 1.3; start[1].halfLightRadius *= 0.7; start[1].n = 2
        start[2].x += 0.7; start[2].flux *= 0.8
        let clock = ContinuousClock.now
        let result = fit.fit(noisy, from: start)
        print("SceneFit: \(result.iterations) iterations in \(ContinuousClock.now - clock), χ²/dof \(result.reducedChiSquare)")
        XCTAssertEqual(result.components.count, 3)
        let c = result.components[0]
        XCTAssertEqual(c.x, 32.3, accuracy: 0.1)
        XCTAssertEqual(c.y, 31.6, accuracy: 0.1)
        XCTAssertEqual(Foundation.log(c.flux / 10_000), 0, accuracy: 0.05)
        XCTAssertEqual(c.halfLightRadius, 4, accuracy: 0.4)
        XCTAssertEqual(c.n, 2.5, accuracy: 0.5)
        XCTAssertEqual(c.q, 0.6, accuracy: 0.05)
        XCTAssertEqual(result.components[2].flux, 5_000, accuracy: 250)
        XCTAssertEqual(result.reducedChiSquare, 1, accuracy: 0.1)
        // The central galaxy alone against its noiseless truth: residuals well below the sky noise.
        let alone = fit.image([c]), exact = fit.image([central])
        let rms = (zip(alone, exact).map { ($0 - $1) * ($0 - $1) }.reduce(0, +) / Double(alone.count)).squareRoot()
        XCTAssertLessThan(rms, 1.5, "rms \(rms) counts against a sky σ of 10")
    }

    /// The Fisher error of the flux matches the scatter of fitted fluxes over noise draws (a
    /// galaxy with a neighbour, 40 draws: the standard deviation of ln flux within 35 %).
    func testFluxErrorsMatchTheScatterOverNoiseDraws() throws {
        let fit = SceneFit(width: 48, height: 48, psfSigma: psfSigma, skySigma: 10, gain: 1)
        let central = FitComponent.sersic(x: 23.6, y: 24.2, flux: 3_000, halfLightRadius: 3, n: 1.5, q: 0.7, angle: 0.3)
        let neighbour = FitComponent.sersic(x: 30, y: 27, flux: 5_000, halfLightRadius: 2.5, n: 1, q: 0.8, angle: 1.9)
        let truth = fit.image([central, neighbour])
        var random = SeededGenerator(seed: 8)
        var logs: [Double] = []
        var predicted: [Double] = []
        for _ in 0..<40 {
            let noisy = NoiseModel.noisy(truth, skySigma: 10, gain: 1, random: &random)
            let result = fit.fit(noisy, from: [central, neighbour])
            logs.append(Foundation.log(result.components[0].flux))
            predicted.append(try XCTUnwrap(fit.fluxErrors(noisy, at: result.components)?.first))
        }
        let mean = logs.reduce(0, +) / Double(logs.count)
        let scatter = (logs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(logs.count - 1)).squareRoot()
        let expected = predicted.sorted()[predicted.count / 2]
        XCTAssertEqual(scatter / expected, 1, accuracy: 0.35, "scatter \(scatter), Fisher \(expected)")
    }
}
