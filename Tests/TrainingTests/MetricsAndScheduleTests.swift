import AstroBase
import Foundation
import XCTest
@testable import Training

/// Metrics against scikit-learn and schedules against torch.optim.lr_scheduler
/// (fixtures by `Fixtures/make_fixtures.py`).
final class MetricsAndScheduleTests: XCTestCase {
    static let fixture: [String: Any] = {
        let url = Bundle.module.url(forResource: "training_fixtures", withExtension: "json", subdirectory: "Fixtures")!
        return try! JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    }()

    func testSchedulesMatchPyTorch() {
        let cases = Self.fixture["schedules"] as! [[String: Any]]
        XCTAssertEqual(cases.count, 6)
        for c in cases {
            let expected = c["rates"] as! [Double]
            let base = 0.1
            var got = [Double]()
            switch c["kind"] as! String {
            case "step":
                let s = LearningRateSchedule.step(stepSize: c["stepSize"] as! Int, gamma: c["gamma"] as! Double)
                got = expected.indices.map { s.rate(at: $0, base: base) }
            case "exponential":
                let s = LearningRateSchedule.exponential(gamma: c["gamma"] as! Double)
                got = expected.indices.map { s.rate(at: $0, base: base) }
            case "cosine":
                let s = LearningRateSchedule.cosine(totalSteps: c["total"] as! Int, warmupSteps: c["warmup"] as! Int,
                                                    warmupStartFactor: c["startFactor"] as! Double,
                                                    minimum: c["minimum"] as! Double)
                got = expected.indices.map { s.rate(at: $0, base: base) }
            case "oneCycle":
                let s = LearningRateSchedule.oneCycle(maxRate: c["maxRate"] as! Double, totalSteps: c["total"] as! Int,
                                                      pctStart: c["pctStart"] as! Double)
                got = expected.indices.map { s.rate(at: $0, base: base) }
            case "plateau":
                var plateau = ReduceOnPlateau(factor: c["factor"] as! Double, patience: c["patience"] as! Int,
                                              cooldown: c["cooldown"] as! Int)
                var rate = base
                for value in c["values"] as! [Double] {
                    got.append(rate)
                    rate = plateau.step(value, rate: rate)
                }
            default: XCTFail("unknown schedule")
            }
            XCTAssertEqual(got.count, expected.count)
            for (t, (a, b)) in zip(got, expected).enumerated() {
                XCTAssertEqual(a, b, accuracy: 1e-9 + 1e-6 * abs(b), "\(c["kind"]!) step \(t)")
            }
        }
    }

    func testClassificationMetricsMatchScikitLearn() {
        let c = Self.fixture["classification"] as! [String: Any]
        let truth = c["truth"] as! [Int], predicted = c["predicted"] as! [Int]
        XCTAssertEqual(ClassificationMetrics.accuracy(predicted: predicted, truth: truth), c["accuracy"] as! Double, accuracy: 1e-12)
        XCTAssertEqual(ClassificationMetrics.confusionMatrix(predicted: predicted, truth: truth, classCount: 5),
                       c["confusion"] as! [[Int]])
        let prf = ClassificationMetrics.precisionRecallF1(predicted: predicted, truth: truth, classCount: 5)
        for (a, b) in zip(prf.precision, c["precision"] as! [Double]) { XCTAssertEqual(a, b, accuracy: 1e-12) }
        for (a, b) in zip(prf.recall, c["recall"] as! [Double]) { XCTAssertEqual(a, b, accuracy: 1e-12) }
        for (a, b) in zip(prf.f1, c["f1"] as! [Double]) { XCTAssertEqual(a, b, accuracy: 1e-12) }
        XCTAssertEqual(prf.macroF1, c["macroF1"] as! Double, accuracy: 1e-12)
        XCTAssertEqual(prf.precision[3], 0, "a class never predicted scores 0 (zero_division=0)")

        let binary = c["binaryTruth"] as! [Int], scores = c["scores"] as! [Double]
        XCTAssertEqual(ClassificationMetrics.rocAUC(scores: scores, truth: binary), c["auc"] as! Double, accuracy: 1e-12)
        XCTAssertEqual(ClassificationMetrics.truePositiveRate(atFalsePositiveRate: 0.01, scores: scores, truth: binary).tpr,
                       c["tprAt1"] as! Double, accuracy: 1e-12)
        XCTAssertEqual(ClassificationMetrics.truePositiveRate(atFalsePositiveRate: 0.10, scores: scores, truth: binary).tpr,
                       c["tprAt10"] as! Double, accuracy: 1e-12)
    }

    func testTopKAccuracy() {
        let scores: [Float] = [0.1, 0.7, 0.2,   0.5, 0.3, 0.2,   0.2, 0.3, 0.5]
        XCTAssertEqual(ClassificationMetrics.topKAccuracy(scores: scores, classCount: 3, truth: [2, 0, 0], k: 1), 1.0 / 3)
        XCTAssertEqual(ClassificationMetrics.topKAccuracy(scores: scores, classCount: 3, truth: [2, 0, 0], k: 2), 2.0 / 3)
        XCTAssertEqual(ClassificationMetrics.topKAccuracy(scores: scores, classCount: 3, truth: [2, 0, 0], k: 3), 1)
    }

    func testRegressionMetricsMatchScikitLearn() {
        let c = Self.fixture["regression"] as! [String: Any]
        let truth = c["truth"] as! [Double], predicted = c["predicted"] as! [Double]
        XCTAssertEqual(RegressionMetrics.rmse(predicted: predicted, truth: truth), c["rmse"] as! Double, accuracy: 1e-12)
        XCTAssertEqual(RegressionMetrics.mae(predicted: predicted, truth: truth), c["mae"] as! Double, accuracy: 1e-12)
        XCTAssertEqual(RegressionMetrics.r2(predicted: predicted, truth: truth), c["r2"] as! Double, accuracy: 1e-12)
        XCTAssertEqual(RegressionMetrics.nmad(predicted: predicted, truth: truth), c["nmad"] as! Double, accuracy: 1e-12)
        XCTAssertLessThan(RegressionMetrics.nmad(predicted: predicted, truth: truth), 0.25, "outliers do not inflate NMAD")
        XCTAssertEqual(RegressionMetrics.coverage(predicted: [0, 0, 0, 0], sigma: [1, 1, 1, 1], truth: [0.5, -0.9, 1.5, 3]), 0.5)
    }

    /// The bootstrap standard error of an NMAD matches the NMAD's actual spread over 300
    /// independent samples of 400 Gaussian residuals (σ 1: about 1/√(0.74·400) ≈ 0.058), within
    /// the 20 % that 300 repeats and the bootstrap's own noise allow.
    func testNMADStandardErrorMatchesTheSpreadOverSamples() {
        var generator = SeededGenerator(seed: 4)
        var nmads = [Double](), errors = [Double]()
        for repeatIndex in 0..<300 {
            let residuals = (0..<400).map { _ in generator.normal() }
            let zeros = [Double](repeating: 0, count: 400)
            nmads.append(RegressionMetrics.nmad(predicted: residuals, truth: zeros))
            if repeatIndex < 20 { errors.append(RegressionMetrics.nmadStandardError(predicted: residuals, truth: zeros)) }
        }
        let spread = PixelStatistics.meanAndStd(nmads).std
        let bootstrap = errors.reduce(0, +) / Double(errors.count)
        XCTAssertEqual(spread, 0.058, accuracy: 0.012)
        XCTAssertEqual(bootstrap / spread, 1, accuracy: 0.2, "bootstrap \(bootstrap), spread over samples \(spread)")
        XCTAssert(RegressionMetrics.nmadStandardError(predicted: [1], truth: [0]).isNaN, "one object has no spread")
    }

    func testFractionBelowAndMedianError() {
        // Truths 1, 2, 3, 4 against estimates 2, 2, 2, 5: below, tie (half), above, below.
        XCTAssertEqual(RegressionMetrics.fractionBelow(predicted: [2, 2, 2, 5], truth: [1, 2, 3, 4]), 2.5 / 4)
        // Errors 1, 0, -1, 1: median 0.5.
        XCTAssertEqual(RegressionMetrics.medianError(predicted: [2, 2, 2, 5], truth: [1, 2, 3, 4]), 0.5)
    }

    func testSegmentationMetrics() {
        let truth =     [0, 0, 1, 1, 2, 2, 2, 0]
        let predicted = [0, 1, 1, 1, 2, 2, 0, 0]
        let iou = SegmentationMetrics.intersectionOverUnion(predicted: predicted, truth: truth, classCount: 3)
        XCTAssertEqual(iou[0], 2.0 / 4)   // ∩ {0, 7}, ∪ {0, 1, 6, 7}
        XCTAssertEqual(iou[1], 2.0 / 3)   // ∩ {2, 3}, ∪ {1, 2, 3}
        XCTAssertEqual(iou[2], 2.0 / 3)   // ∩ {4, 5}, ∪ {4, 5, 6}
        XCTAssertEqual(SegmentationMetrics.meanIntersectionOverUnion(predicted: predicted, truth: truth, classCount: 3,
                                                                      classes: [1, 2]), 2.0 / 3)
        XCTAssertEqual(SegmentationMetrics.pixelAccuracy(predicted: predicted, truth: truth), 6.0 / 8)
        XCTAssert(SegmentationMetrics.intersectionOverUnion(predicted: [0], truth: [0], classCount: 2)[1].isNaN)
    }
}
