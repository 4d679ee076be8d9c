import AstroBase
import Foundation
@testable import Training
import XCTest

final class ProbabilityCalibrationTests: XCTestCase {
    /// Logits `z` of 5 classes, labels drawn from softmax(z / trueT): the labels are
    /// calibrated at `trueT`, so the fitted temperature must find it.
    func sample(count: Int, trueT: Double, seed: UInt64) -> (logits: [[Double]], truth: [Int]) {
        var rng = SeededGenerator(seed: seed)
        var logits = [[Double]](), truth = [Int]()
        for _ in 0..<count {
            let z = (0..<5).map { _ in 3 * rng.normal() }
            let p = ProbabilityCalibration.probabilities(z, temperature: trueT)
            var u = rng.uniform(), label = 0
            while label < 4 && u >= p[label] { u -= p[label]; label += 1 }
            logits.append(z)
            truth.append(label)
        }
        return (logits, truth)
    }

    func testFittedTemperatureRecoversTheTemperatureTheLabelsWereDrawnAt() {
        for trueT in [0.5, 1.0, 2.5] {
            let (logits, truth) = sample(count: 20_000, trueT: trueT, seed: UInt64(trueT * 100))
            let fitted = ProbabilityCalibration.fitTemperature(logits, truth: truth)
            XCTAssertEqual(fitted, trueT, accuracy: 0.06 * trueT, "labels drawn at T = \(trueT)")
            // The fit is the NLL's minimum: both neighbours are worse.
            let nll = ProbabilityCalibration.negativeLogLikelihood(logits, truth: truth, temperature: fitted)
            XCTAssertLessThan(nll, ProbabilityCalibration.negativeLogLikelihood(logits, truth: truth, temperature: fitted * 1.1))
            XCTAssertLessThan(nll, ProbabilityCalibration.negativeLogLikelihood(logits, truth: truth, temperature: fitted / 1.1))
        }
    }

    func testCalibratedProbabilitiesHaveSmallECEAndOverconfidentOnesDoNot() {
        let (logits, truth) = sample(count: 20_000, trueT: 2, seed: 7)
        let right = logits.map { ProbabilityCalibration.probabilities($0, temperature: 2) }
        let overconfident = logits.map { ProbabilityCalibration.probabilities($0, temperature: 1) }
        let good = ProbabilityCalibration.expectedCalibrationError(right, truth: truth)
        let bad = ProbabilityCalibration.expectedCalibrationError(overconfident, truth: truth)
        XCTAssertLessThan(good, 0.02)
        XCTAssertGreaterThan(bad, 0.05)
        XCTAssertLessThan(ProbabilityCalibration.brierScore(right, truth: truth),
                          ProbabilityCalibration.brierScore(overconfident, truth: truth))
        // Overconfident: every populated bin's accuracy is below its confidence on average.
        let bins = ProbabilityCalibration.reliability(overconfident, truth: truth, bins: 10)
        XCTAssertEqual(bins.reduce(0) { $0 + $1.count }, truth.count)
        XCTAssertGreaterThan(bins.reduce(0.0) { $0 + Double($1.count) * ($1.confidence - $1.accuracy) }, 0)
    }

    func testSmallHandComputedCase() {
        // Two inputs, two classes: p = (0.8, 0.2) with truth 0, p = (0.6, 0.4) with truth 1.
        let p = [[0.8, 0.2], [0.6, 0.4]], truth = [0, 1]
        XCTAssertEqual(ProbabilityCalibration.brierScore(p, truth: truth), ((0.04 + 0.04) + (0.36 + 0.36)) / 2, accuracy: 1e-12)
        let logs = p.map { $0.map { log($0) } }
        XCTAssertEqual(ProbabilityCalibration.negativeLogLikelihood(logs, truth: truth), -(log(0.8) + log(0.4)) / 2, accuracy: 1e-12)
        // Bins of 0.1: 0.8 → bin 8 (correct), 0.6 → bin 6 (wrong): ECE = (|1 − 0.8| + |0 − 0.6|) / 2.
        XCTAssertEqual(ProbabilityCalibration.expectedCalibrationError(p, truth: truth, bins: 10), 0.4, accuracy: 1e-12)
    }
}
