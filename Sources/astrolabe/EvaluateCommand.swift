import ArgumentParser
import Foundation
import Pipelines

/// `astrolabe evaluate`: metrics and plots of a pipeline's model against truth.
struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a pipeline's model on files with known truth: metrics and pictures.",
        discussion: """
        Runs the pipeline on INPUT (a catalog CSV with the truth: label, or the regression targets; \
        for segmentation and deblending a folder of files with a TRUTH extension) and writes into --report: the \
        predictions, metrics.json, report.md and pictures — the confusion matrix, the ROC curve with \
        the true-positive rate at 1% false positives, predicted-vs-true plots with 1-sigma bars, or a \
        segmentation overlay. For a deblender: PSNR, SSIM and flux error (median, NMAD) of the central \
        galaxy against TRUTH for the model, each --compare pipeline's model and the classical SEP-style \
        deblender, and grid.png; with --sersic MODEL, the Sérsic parameters MODEL measures on each deblended \
        image against the galaxy observed alone. For a posterior model: NMAD of the posterior medians and coverage of the \
        68% and 95% intervals per target and magnitude bin (calibration.csv), simulation-based \
        calibration rank histograms (sbc_ranks.csv/png), the TARP expected-coverage test of the joint \
        posterior (tarp.csv; area difference and KS p-value in metrics.json), calibration.png and \
        corner plots of three galaxies (corner-1..3.png). For a class model: the expected calibration \
        error, NLL and Brier score before and after the softmax temperature that fits these files best, \
        and reliability.png; --calibrate writes a copy of the model file carrying that temperature, \
        the energy threshold of these files (their 95th percentile: 'atypical') and, for a ResNet, \
        the density of its penultimate features (class means and covariance from the even-numbered \
        files, its threshold from the odd-numbered ones: 'unfamiliar'); for a regression (a ResNet or a \
        posterior model's ResNet encoder) the density alone, one Gaussian. Run it on held-out files \
        that the model was not trained on.

        Example:
          astrolabe evaluate pipelines/classify-galaxies.yaml --input data/test/catalog.csv --report eval/
        """)

    @Argument(help: "The (inference) pipeline file.") var pipeline: String
    @Option(help: "Files with truth: a catalog CSV (or a folder for segmentation or deblending).") var input: String?
    @Option(help: "Folder for the report.") var report: String = "evaluation"
    @Option(name: .customLong("cramer-rao"),
            help: "Per-galaxy Cramér–Rao bounds (scripts/regression_fisher.py --out) to set beside a posterior model's errors.")
    var cramerRao: String?
    @Option(help: "Write a copy of the model file with the temperature, energy threshold and feature density (a regression: the density) fitted on INPUT (a new file).")
    var calibrate: String?
    @Option(name: .customLong("compare"), parsing: .singleValue,
            help: "Deblending: another deblend pipeline whose model is measured on the same files (repeatable).")
    var compare: [String] = []
    @Option(help: "Deblending: a regression model file that measures the Sérsic parameters on each deblended image and on the galaxy observed alone.")
    var sersic: String?
    @Option(name: .customLong("set"), parsing: .singleValue, help: "Override a key of the pipeline.")
    var overrides: [String] = []

    func run() throws {
        try runReportingErrors {
            let runner = try PipelineRunner(pipelinePath: pipeline, options: RunOptions(
                input: input, overrides: overrides, quiet: true, fresh: true))
            let result = try runner.evaluate(into: URL(fileURLWithPath: report), cramerRao: cramerRao.map { URL(fileURLWithPath: $0) },
                                             calibratedModel: calibrate.map { URL(fileURLWithPath: $0) },
                                             compare: compare.map { URL(fileURLWithPath: $0) },
                                             sersicModel: sersic.map { URL(fileURLWithPath: $0) })
            for key in result.metrics.keys.sorted() { print(String(format: "%@ %.4f", key, result.metrics[key]!)) }
            print("report: \(report)/report.md")
            if let calibrate { print("calibrated model: \(calibrate)") }
        }
    }
}
