import AstroBase
import Foundation
import Plotting
import Preprocessing
import Training

/// TASKS.md task 5's metrics of class probabilities against labels (label 0 is `sn_ia`).
public enum LightCurveMetrics {
    /// accuracy, macro_f1, f1_<class>, roc_auc_sn_ia (p_sn_ia as the score), accuracy_sn_ia
    /// (`predicted == sn_ia` against `label == sn_ia`) and log_loss (mean −ln p of the true
    /// class, p clipped to [1e-15, 1] as scikit-learn's `log_loss`).
    public static func compute(probabilities: [[Double]], truth: [Int], classNames: [String]) -> [String: Double] {
        precondition(probabilities.count == truth.count, "LightCurveMetrics: \(probabilities.count) predictions, \(truth.count) labels")
        let predicted = probabilities.map { ClassProbabilities(probabilities: $0).predicted }
        let k = classNames.count
        let prf = ClassificationMetrics.precisionRecallF1(predicted: predicted, truth: truth, classCount: k)
        var metrics: [String: Double] = [
            "accuracy": ClassificationMetrics.accuracy(predicted: predicted, truth: truth),
            "macro_f1": prf.macroF1,
        ]
        for (c, name) in classNames.enumerated() { metrics["f1_" + name] = prf.f1[c] }
        let isIa = truth.map { $0 == 0 ? 1 : 0 }
        metrics["roc_auc_sn_ia"] = ClassificationMetrics.rocAUC(scores: probabilities.map { $0[0] }, truth: isIa)
        metrics["accuracy_sn_ia"] = ClassificationMetrics.accuracy(predicted: predicted.map { $0 == 0 ? 1 : 0 }, truth: isIa)
        let losses = zip(probabilities, truth).map { -Foundation.log(min(max($0[$1], 1e-15), 1)) }
        metrics["log_loss"] = losses.reduce(0, +) / Double(max(losses.count, 1))
        return metrics
    }
}

extension PipelineRunner {
    /// `astrolabe evaluate` for light curves: classifies the table complete and cut early
    /// (TASKS.md), then writes metrics.json, report.md, both confusion matrices, the sn_ia ROC
    /// curve and `lightcurves.png` (one curve per class with its class probabilities after
    /// every point).
    func evaluateLightCurves(into folder: URL) throws -> EvaluationReport {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var complete = options, early = options
        complete.output = folder.appendingPathComponent("predictions.csv").path
        early.output = folder.appendingPathComponent("predictions_early.csv").path
        let full = try PipelineRunner(pipelinePath: pipelinePath, options: complete).classifyLightCurves(keepPredictions: true)
        let cut = try PipelineRunner(pipelinePath: pipelinePath, options: early).classifyLightCurves(stages: [.earlyCut],
                                                                                                     keepPredictions: true)
        let table = try lightCurveTable(training: false)
        let curves = try table.readAll()
        let truth = try Self.labels(for: table, curves: curves)
        let names = full.predictor.classNames
        var metrics = LightCurveMetrics.compute(probabilities: full.predictions.map(\.classes.probabilities), truth: truth, classNames: names)
        for (key, value) in LightCurveMetrics.compute(probabilities: cut.predictions.map(\.classes.probabilities), truth: truth,
                                                      classNames: names) {
            metrics["early_" + key] = value
        }
        metrics["curves"] = Double(curves.count)
        metrics["curves_per_second"] = full.curvesPerSecond

        var pictures = [String]()
        func save(_ canvas: Canvas, _ name: String) throws {
            try canvas.write(to: folder.appendingPathComponent(name))
            pictures.append(name)
        }
        for (run, suffix, title) in [(full, "", "CONFUSION MATRIX (COMPLETE CURVES)"), (cut, "_early", "CONFUSION MATRIX (EARLY CURVES)")] {
            let predicted = run.predictions.map(\.classes.predicted)
            let matrix = ClassificationMetrics.confusionMatrix(predicted: predicted, truth: truth, classCount: names.count)
            try save(TrainingPlots.confusionMatrix(matrix, classNames: names, title: title), "confusion_matrix\(suffix).png")
        }
        let isIa = truth.map { $0 == 0 ? 1 : 0 }
        let scores = full.predictions.map { $0.classes.probabilities[0] }
        let roc = ClassificationMetrics.rocCurve(scores: scores, truth: isIa)
        try save(TrainingPlots.rocCurve(falsePositiveRates: roc.fpr, truePositiveRates: roc.tpr, auc: metrics["roc_auc_sn_ia"]!),
                 "roc_sn_ia.png")
        let examples = names.indices.compactMap { c in truth.firstIndex(of: c) }
        try save(try Self.stepSheet(examples.map { curves[$0] }, truth: examples.map { names[truth[$0]] }, predictor: full.predictor,
                                    preparation: try full.predictor.sequencePreparation(config.sequenceStages.isEmpty ? nil : config.sequenceStages)),
                 "lightcurves.png")

        try writeReport(metrics, pictures: pictures, into: folder,
                        summary: "Model `\(full.predictor.path)` on `\(table.url.path)` (\(curves.count) light curves); `early_` "
                            + "metrics on the curves cut \(Int(LightCurve.earlyWindow)) days after the first point with "
                            + "flux / flux_err > \(Int(LightCurve.earlyDetectionSNR)) (TASKS.md).")
        return EvaluationReport(metrics: metrics, files: ["predictions.csv", "predictions_early.csv", "metrics.json", "report.md"] + pictures)
    }

    /// Per curve, flux against time above the class probabilities after each point.
    static func stepSheet(_ curves: [LightCurve], truth: [String], predictor: Predictor,
                          preparation: SequencePreparation) throws -> Canvas {
        let colors: [Color] = [.red, .blue, .green, Color(red: 150, green: 60, blue: 200), Color(red: 240, green: 140, blue: 20),
                               Color(red: 20, green: 180, blue: 180), Color(gray: 90)]
        var sheet = ContactSheet(columns: 4, cellSize: 560, title: "CLASS PROBABILITIES AFTER EACH POINT")
        for (curve, name) in zip(curves, truth) {
            let steps = try predictor.stepProbabilities(curve, preparation: preparation)
            let flux = LinePlot.bands(title: "\(curve.objectID): \(name)", mjd: curve.points.map(\.mjd), flux: curve.points.map(\.flux),
                                      errors: curve.points.map(\.fluxError), band: curve.points.map(\.band.index),
                                      bandNames: PhotometricBand.allCases.map(\.rawValue))
            var probabilities = LinePlot(title: "", xLabel: "mjd [d]", yLabel: "p")
            probabilities.add(x: [0, 200], y: [0, 1], label: "", color: .white)
            for (c, className) in predictor.classNames.enumerated() {
                probabilities.add(x: steps.mjd, y: steps.probabilities.map { $0[c] }, label: className, color: colors[c % colors.count])
            }
            let canvas = TrainingPlots.stacked([flux.canvas(width: 560, height: 260), probabilities.canvas(width: 560, height: 280)])
            sheet.add(rgb: canvas.pixels, width: canvas.width, height: canvas.height, label: name)
        }
        return sheet.canvas(flipVertically: false)
    }
}
