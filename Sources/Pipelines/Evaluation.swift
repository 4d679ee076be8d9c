import AstroBase
import FITS
import Foundation
import NN
import Plotting
import Preprocessing
import SkySim
import Training

/// The result of `astrolabe evaluate`: the metrics of TASKS.md and the pictures.
public struct EvaluationReport {
    public var metrics: [String: Double]
    public var files: [String]
}

extension PipelineRunner {
    /// Runs the pipeline on a catalog with truth, then writes into `folder`
    /// the predictions, `metrics.json`, `report.md` and pictures: a confusion
    /// matrix (classes), ROC curve with TPR at 1 % FPR (lenses), predicted-vs-true
    /// scatter plots with 1σ bars (regression), an overlay (segmentation). A posterior
    /// model gets `PosteriorEvaluation`'s errors per magnitude bin and calibration tests
    /// (`calibration.csv`, `sbc_ranks.csv`, `tarp.csv`, `calibration.png`, `sbc_ranks.png`,
    /// `corner-*.png`).
    ///
    /// Class models also get their calibration: expected calibration error, negative
    /// log-likelihood and Brier score, the temperature that minimises the NLL on these files
    /// and the same numbers after it, and `reliability.png` (before and after).
    ///
    /// `cramerRao`: a CSV of per-galaxy Cramér–Rao bounds (`scripts/regression_fisher.py --out`)
    /// whose NMAD per magnitude bin goes beside the posterior model's.
    /// `calibratedModel`: where to write a copy of the model file whose recipe carries the
    /// fitted temperature (a new file; never the model itself).
    public func evaluate(into folder: URL, cramerRao: URL? = nil, calibratedModel: URL? = nil, compare: [URL] = [],
                         sersicModel: URL? = nil) throws -> EvaluationReport {
        if (!compare.isEmpty || sersicModel != nil) && config.task != .deblend {
            throw PipelineError.unsupported("--compare and --sersic evaluate deblenders (task deblend), not \(config.task.rawValue)")
        }
        if let calibratedModel {
            guard [.classify, .lens, .regress].contains(config.task) else {
                throw PipelineError.unsupported("--calibrate fits a softmax temperature and a feature density: it needs an "
                                                + "image class model (classify or lens) or a regression, not \(config.task.rawValue)")
            }
            guard !FileManager.default.fileExists(atPath: calibratedModel.path) else {
                throw PipelineError.unsupported("--calibrate \(calibratedModel.path): the file exists; "
                                                + "name a new file (the calibrated model never replaces one)")
            }
        }
        if config.task == .lightcurves { return try evaluateLightCurves(into: folder) }
        if config.task == .deblend { return try evaluateDeblend(into: folder, compare: compare, sersicModel: sersicModel) }
        if config.task == .generate {
            throw PipelineError.unsupported("\(pipelinePath): a generator is evaluated with `astrolabe generate --weights MODEL "
                                            + "--compare-to DIR --classifier MODEL` (Fréchet distance and class mix)")
        }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let predictions = folder.appendingPathComponent(config.task == .segment ? "maps" : "predictions.csv")
        var inferOptions = options
        inferOptions.output = predictions.path
        inferOptions.keptPosteriorSamples = Int.max   // a posterior model's calibration needs every draw
        let run = try PipelineRunner(pipelinePath: pipelinePath, options: inferOptions).predictAll()
        let predictor = run.predictor
        let classNames = predictor.classNames
        let catalog = try inputCatalog()
        var metrics = [String: Double]()
        var pictures = [String](), tables = [String]()
        func save(_ canvas: Canvas, _ name: String) throws {
            try canvas.write(to: folder.appendingPathComponent(name))
            pictures.append(name)
        }
        var results = [String: Prediction]()
        for (entry, prediction) in run.results { results[entry.name] = prediction }

        switch config.task {
        case .classify, .lens:
            let truthCatalog = try Catalog.resolve(catalogPath(), labelColumn: config.input.labelColumn ?? "label",
                                                   classNames: classNames)
            var predicted = [Int](), truth = [Int](), positive = [Double]()
            for entry in truthCatalog.entries {
                guard case let .classes(p)? = results[entry.name], let label = entry.label else { continue }
                predicted.append(p.predicted)
                truth.append(label)
                if let last = p.probabilities.last { positive.append(last) }
            }
            guard !truth.isEmpty else { throw PipelineError.missingTruth(file: catalogPath(), what: "a label for any predicted file") }
            let k = classNames.count
            let prf = ClassificationMetrics.precisionRecallF1(predicted: predicted, truth: truth, classCount: k)
            metrics["accuracy"] = ClassificationMetrics.accuracy(predicted: predicted, truth: truth)
            metrics["macro_f1"] = prf.macroF1
            for (c, name) in classNames.enumerated() { metrics["f1_" + name] = prf.f1[c] }
            let matrix = ClassificationMetrics.confusionMatrix(predicted: predicted, truth: truth, classCount: k)
            try save(TrainingPlots.confusionMatrix(matrix, classNames: classNames), "confusion_matrix.png")
            let probabilities = truthCatalog.entries.compactMap { entry -> [Double]? in
                guard case let .classes(p)? = results[entry.name], entry.label != nil else { return nil }
                return p.probabilities
            }
            let temperature = try calibrate(probabilities, truth: truth, predictor: predictor, metrics: &metrics,
                                            save: { try save($0, "reliability.png") })
            // The energy above which 5 % of these images lie: the `atypical` threshold for data like them.
            let energies = truthCatalog.entries.compactMap { entry -> Double? in
                guard case let .classes(p)? = results[entry.name] else { return nil }
                return p.energy
            }.sorted()
            let threshold = energies.isEmpty ? nil : PixelStatistics.percentile(sorted: energies, 95)
            if let threshold { metrics["ood_energy_p95"] = threshold }
            let distances = truthCatalog.entries.compactMap { entry -> Double? in
                guard case let .classes(p)? = results[entry.name] else { return nil }
                return p.featureDistance
            }.sorted()
            if !distances.isEmpty { metrics["ood_features_p95"] = PixelStatistics.percentile(sorted: distances, 95) }
            metrics.merge(flagMetrics(truthCatalog.entries.compactMap { entry in
                guard case let .classes(p)? = results[entry.name], let label = entry.label else { return nil }
                return (p, label)
            }, recipe: predictor.recipe, density: predictor.featureDensity?.0)) { $1 }
            if let calibratedModel {
                let density = try fitFeatureDensity(predictor, entries: truthCatalog.entries.filter { results[$0.name] != nil })
                if let threshold = density?.threshold { metrics["ood_features_threshold"] = threshold }
                try writeCalibrated(predictor, temperature: temperature, energyThreshold: threshold, featureDensity: density,
                                    to: calibratedModel)
            }
            if config.task == .lens, positive.count == truth.count {
                let auc = ClassificationMetrics.rocAUC(scores: positive, truth: truth)
                metrics["roc_auc"] = auc
                metrics["tpr_at_fpr_0.01"] = ClassificationMetrics.truePositiveRate(atFalsePositiveRate: 0.01,
                                                                                    scores: positive, truth: truth).tpr
                let curve = ClassificationMetrics.rocCurve(scores: positive, truth: truth)
                try save(TrainingPlots.rocCurve(falsePositiveRates: curve.fpr, truePositiveRates: curve.tpr, auc: auc), "roc_curve.png")
            }
        case .regress where predictor.isPosterior:
            let recipe = predictor.recipe!
            let truthCatalog = try Catalog.resolve(catalogPath(), targetColumns: recipe.targetNames)
            let objects = truthCatalog.entries.compactMap { entry -> PosteriorEvaluation.Object? in
                guard case let .posterior(p)? = results[entry.name], entry.targets.count == recipe.targetNames.count else { return nil }
                return PosteriorEvaluation.Object(name: entry.name, truth: entry.targets, posterior: p)
            }
            guard !objects.isEmpty else { throw PipelineError.missingTruth(file: catalogPath(), what: "targets for any predicted file") }
            var evaluation = PosteriorEvaluation(targets: recipe.targetNames, logTargets: recipe.logTargets, objects: objects)
            if let cramerRao {
                evaluation.bounds = try PosteriorEvaluation.readBounds(cramerRao, targets: recipe.targetNames,
                                                                       binTarget: evaluation.binTarget)
            }
            let (numbers, files) = try evaluation.write(into: folder)
            metrics.merge(numbers) { $1 }
            pictures += files.filter { $0.hasSuffix(".png") }
            tables += files.filter { !$0.hasSuffix(".png") }
            metrics.merge(try regressionFeatureDensity(predictor, truthCatalog.entries, results, calibratedModel)) { $1 }
        case .regress:
            let recipe = predictor.recipe!
            let truthCatalog = try Catalog.resolve(catalogPath(), targetColumns: recipe.targetNames)
            metrics.merge(try regressionFeatureDensity(predictor, truthCatalog.entries, results, calibratedModel)) { $1 }
            var panels = [Canvas]()
            var inside = 0, total = 0
            for (k, name) in recipe.targetNames.enumerated() {
                var p = [Double](), t = [Double](), s = [Double]()
                for entry in truthCatalog.entries {
                    guard case let .regression(estimate)? = results[entry.name] else { continue }
                    p.append(estimate.values[k])
                    t.append(entry.targets[k])
                    s.append(estimate.sigmas?[k] ?? .nan)
                }
                guard !p.isEmpty else { continue }
                metrics["rmse_" + name] = RegressionMetrics.rmse(predicted: p, truth: t)
                metrics["nmad_" + name] = RegressionMetrics.nmad(predicted: p, truth: t)
                metrics["truth_below_estimate_" + name] = RegressionMetrics.fractionBelow(predicted: p, truth: t)
                metrics["median_error_" + name] = RegressionMetrics.medianError(predicted: p, truth: t)
                if recipe.logTargets.contains(name) {
                    metrics["nmad_log10_" + name] = RegressionMetrics.nmad(predicted: p.map(Foundation.log10), truth: t.map(Foundation.log10))
                    metrics["rmse_log10_" + name] = RegressionMetrics.rmse(predicted: p.map(Foundation.log10), truth: t.map(Foundation.log10))
                }
                if s.allSatisfy(\.isFinite) {
                    let c = RegressionMetrics.coverage(predicted: p, sigma: s, truth: t)
                    metrics["coverage_1sigma_" + name] = c
                    inside += Int((c * Double(p.count)).rounded())
                    total += p.count
                }
                var plot = LinePlot(title: name.uppercased(), xLabel: "TRUE", yLabel: "PREDICTED")
                let lo = Swift.min(t.min()!, p.min()!), hi = Swift.max(t.max()!, p.max()!)
                plot.add(x: [lo, hi], y: [lo, hi], label: "y = x", color: .lightGray)
                plot.addPoints(x: t, y: p, errors: s.allSatisfy(\.isFinite) ? s : nil, label: "1 sigma", color: .blue)
                panels.append(plot.canvas(width: 480, height: 400))
            }
            if total > 0 { metrics["coverage_1sigma"] = Double(inside) / Double(total) }
            if !panels.isEmpty { try save(TrainingPlots.stacked(panels), "scatter.png") }
        case .lightcurves:
            preconditionFailure("evaluate: light curves are evaluated by evaluateLightCurves")
        case .deblend:
            preconditionFailure("evaluate: deblending is evaluated by evaluateDeblend")
        case .generate:
            preconditionFailure("evaluate: a generator is evaluated by evaluateGenerator")
        case .segment:
            var predicted = [Int](), truth = [Int]()
            var overlayDone = false
            for (entry, prediction) in run.results {
                guard case let .segmentation(output) = prediction else { continue }
                let map = try FITSFile(path: run.output.appendingPathComponent(output.output).path).readImage(0, as: Float.self)
                let truthImage: FITSImage<Float>
                do { truthImage = try FITSFile(path: entry.url.path).readImage("TRUTH", as: Float.self) } catch {
                    throw PipelineError.missingTruth(file: entry.name, what: "the TRUTH extension")
                }
                predicted += map.pixels.map { Int($0) }
                truth += truthImage.pixels.map { Int($0) }
                if !overlayDone {
                    let image = try FITSFile(path: entry.url.path).readImage(predictor.input.hdu, as: Float.self)
                    try save(Self.overlay(image: image, classes: map), "overlay.png")
                    overlayDone = true
                }
            }
            guard !truth.isEmpty else { throw PipelineError.missingTruth(file: catalogPath(), what: "any segmented map") }
            // Per class under the model's class names; the mean over every class but the background (0).
            let k = classNames.count
            let iou = SegmentationMetrics.intersectionOverUnion(predicted: predicted, truth: truth, classCount: k)
            for (c, name) in classNames.enumerated() { metrics["iou_" + name] = iou[c] }
            metrics["mean_iou"] = SegmentationMetrics.meanIntersectionOverUnion(predicted: predicted, truth: truth,
                                                                                classCount: k, classes: Array(1..<k))
            metrics["pixel_accuracy"] = SegmentationMetrics.pixelAccuracy(predicted: predicted, truth: truth)
        }

        try writeReport(metrics, pictures: pictures, into: folder,
                        summary: "Model `\(predictor.path)` on `\(catalogPath())` (\(catalog.count) files).")
        return EvaluationReport(metrics: metrics, files: ["metrics.json", "report.md"] + tables + pictures)
    }

    /// Writes `metrics.json` (non-finite values as -1) and `report.md`: a title, `summary`,
    /// the metrics table and the pictures.
    /// Calibration metrics of class probabilities before and after temperature scaling, and
    /// the reliability diagram; returns the model's new temperature (its current one times
    /// the factor fitted here).
    func calibrate(_ probabilities: [[Double]], truth: [Int], predictor: Predictor, metrics: inout [String: Double],
                   save: (Canvas) throws -> Void) throws -> Double {
        let logProbabilities = probabilities.map { $0.map { Foundation.log(Swift.max($0, Double.leastNonzeroMagnitude)) } }
        let factor = ProbabilityCalibration.fitTemperature(logProbabilities, truth: truth)
        let after = logProbabilities.map { ProbabilityCalibration.probabilities($0, temperature: factor) }
        let current = predictor.recipe?.temperature ?? 1
        metrics["ece"] = ProbabilityCalibration.expectedCalibrationError(probabilities, truth: truth)
        metrics["nll"] = ProbabilityCalibration.negativeLogLikelihood(logProbabilities, truth: truth)
        metrics["brier"] = ProbabilityCalibration.brierScore(probabilities, truth: truth)
        metrics["temperature_model"] = current
        metrics["temperature_fitted"] = current * factor
        metrics["ece_after_temperature"] = ProbabilityCalibration.expectedCalibrationError(after, truth: truth)
        metrics["nll_after_temperature"] = ProbabilityCalibration.negativeLogLikelihood(logProbabilities, truth: truth,
                                                                                         temperature: factor)
        metrics["brier_after_temperature"] = ProbabilityCalibration.brierScore(after, truth: truth)
        try save(TrainingPlots.reliabilityDiagram([
            (String(format: "model, T = %.3f", current), ProbabilityCalibration.reliability(probabilities, truth: truth),
             metrics["ece"]!),
            (String(format: "T = %.3f fitted here", current * factor), ProbabilityCalibration.reliability(after, truth: truth),
             metrics["ece_after_temperature"]!)]))
        return current * factor
    }

    /// What the out-of-distribution flags say about these labelled rows: the fraction flagged
    /// `atypical` (energy) and `unfamiliar` (feature distance), the accuracy of the rows with and
    /// without either flag, and how well each score ranks the wrong rows above the right ones
    /// (ROC AUC of "the predicted class is wrong"; 0.5 is chance).
    func flagMetrics(_ rows: [(ClassProbabilities, Int)], recipe: ModelRecipe?, density: FeatureDensity?) -> [String: Double] {
        var metrics = [String: Double]()
        let wrong = rows.map { $0.0.predicted != $0.1 ? 1 : 0 }
        let energies = rows.compactMap { $0.0.energy }, distances = rows.compactMap { $0.0.featureDistance }
        if energies.count == rows.count { metrics["error_auroc_energy"] = ClassificationMetrics.rocAUC(scores: energies, truth: wrong) }
        if distances.count == rows.count { metrics["error_auroc_features"] = ClassificationMetrics.rocAUC(scores: distances, truth: wrong) }
        let energyThreshold = recipe?.oodEnergyThreshold, featureThreshold = density?.threshold
        guard energyThreshold != nil || featureThreshold != nil, !rows.isEmpty else { return metrics }
        let flags = rows.map { Prediction.classes($0.0).oodFlags(energyThreshold: energyThreshold, featureThreshold: featureThreshold) }
        for (flag, threshold) in [("atypical", energyThreshold), ("unfamiliar", featureThreshold)] where threshold != nil {
            metrics["flagged_" + flag] = Double(flags.filter { $0.contains(flag) }.count) / Double(rows.count)
        }
        let flagged = flags.map { !$0.isEmpty }
        for (name, keep) in [("accuracy_flagged", true), ("accuracy_unflagged", false)] {
            let chosen = zip(flagged, wrong).filter { $0.0 == keep }
            if !chosen.isEmpty { metrics[name] = Double(chosen.filter { $0.1 == 0 }.count) / Double(chosen.count) }
        }
        return metrics
    }

    /// What a regression's feature density says about rows with truth (`ood_features_p95`,
    /// `flagged_unfamiliar`, and per target the NMAD of the point estimates of the rows with
    /// and without the flag: `nmad_<target>_unfamiliar`, `nmad_<target>_familiar`, log10 for
    /// logarithmic targets); with `calibratedModel`, the density is fitted on these files and
    /// written into a copy of the model file (`ood_features_threshold`).
    func regressionFeatureDensity(_ predictor: Predictor, _ entries: [CatalogEntry], _ results: [String: Prediction],
                                  _ calibratedModel: URL?) throws -> [String: Double] {
        var metrics = [String: Double]()
        let rows = entries.compactMap { entry in results[entry.name].map { (entry, $0) } }
        let distances = rows.compactMap(\.1.featureDistance).sorted()
        if !distances.isEmpty { metrics["ood_features_p95"] = PixelStatistics.percentile(sorted: distances, 95) }
        if let threshold = predictor.featureDensity?.0.threshold, !rows.isEmpty {
            let flagged = rows.map { !$0.1.oodFlags(energyThreshold: nil, featureThreshold: threshold).isEmpty }
            metrics["flagged_unfamiliar"] = Double(flagged.filter { $0 }.count) / Double(rows.count)
            let recipe = predictor.recipe!
            for (k, name) in recipe.targetNames.enumerated() {
                let scale: (Double) -> Double = recipe.logTargets.contains(name) ? Foundation.log10 : { $0 }
                for (suffix, keep) in [("_unfamiliar", true), ("_familiar", false)] {
                    let chosen = zip(rows, flagged).filter { $0.1 == keep }.compactMap { row, _ -> (Double, Double)? in
                        guard let values = row.1.pointEstimates, k < values.count, k < row.0.targets.count else { return nil }
                        return (scale(values[k]), scale(row.0.targets[k]))
                    }
                    guard chosen.count >= 2 else { continue }
                    metrics["nmad_" + (recipe.logTargets.contains(name) ? "log10_" : "") + name + suffix] =
                        RegressionMetrics.nmad(predicted: chosen.map(\.0), truth: chosen.map(\.1))
                }
            }
        }
        if let calibratedModel {
            guard let density = try fitFeatureDensity(predictor, entries: rows.map(\.0)) else {
                throw PipelineError.unsupported("--calibrate: the network of \(predictor.path) (\(predictor.architecture.name.rawValue)) "
                                                + "has no pooled features for a density (a ResNet or a posterior model's ResNet encoder has), "
                                                + "or fewer than two files were predicted")
            }
            metrics["ood_features_threshold"] = density.threshold ?? .nan
            try writeCalibrated(predictor, temperature: nil, energyThreshold: nil, featureDensity: density, to: calibratedModel)
        }
        return metrics
    }

    /// The feature density of a model whose network has pooled features (`Predictor.featureExtractor`;
    /// nil for others) on `entries` (a class model's labelled ones; a regression's all, as one
    /// class): class means and covariance from the even-numbered files, the threshold (95th
    /// percentile of the distances) from the odd-numbered ones, so that it is not set on the
    /// images the Gaussians were fitted to.
    func fitFeatureDensity(_ predictor: Predictor, entries: [CatalogEntry]) throws -> FeatureDensity? {
        guard let extractor = try? ClassifierFeatures(predictor: predictor) else { return nil }
        let regression = predictor.task == .regress
        let labelled = regression ? entries : entries.filter { $0.label != nil }
        let fitting = labelled.enumerated().filter { $0.offset % 2 == 0 }.map(\.element)
        let thresholding = labelled.enumerated().filter { $0.offset % 2 == 1 }.map(\.element)
        guard !thresholding.isEmpty else { return nil }
        let features = try extractor.features(Catalog(entries: fitting)).features
        var density = try FeatureDensity.fit(features: features, labels: fitting.map { regression ? 0 : $0.label! })
        let distances = try extractor.features(Catalog(entries: thresholding)).features
            .map { try density.distance($0.map(Float.init)) }.sorted()
        density.threshold = PixelStatistics.percentile(sorted: distances, 95)
        return density
    }

    /// A copy of the predictor's model file whose recipe carries, where given, `temperature`,
    /// the energy threshold and the feature density of the images they were fitted on.
    func writeCalibrated(_ predictor: Predictor, temperature: Double?, energyThreshold: Double?,
                         featureDensity: FeatureDensity? = nil, to url: URL) throws {
        let file = try ModelFile(contentsOf: URL(fileURLWithPath: predictor.path))
        guard var recipe = predictor.recipe else {
            throw PipelineError.modelFile(path: predictor.path, reason: "it records no recipe to carry a calibration")
        }
        if let temperature { recipe.temperature = temperature }
        if let energyThreshold { recipe.oodEnergyThreshold = energyThreshold }
        if let featureDensity { recipe.featureDensity = featureDensity }
        try ModelFile(model: file.model, architecture: file.architecture, preprocessing: recipe.json).write(to: url)
    }

    func writeReport(_ metrics: [String: Double], pictures: [String], into folder: URL, summary: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try writeAtomically(try encoder.encode(metrics.mapValues { $0.isFinite ? $0 : -1 }),
                            to: folder.appendingPathComponent("metrics.json"))
        var markdown = "# Evaluation: \(config.name.isEmpty ? pipelinePath : config.name)\n\n"
        markdown += summary + "\n\n| metric | value |\n| --- | --- |\n"
        for key in metrics.keys.sorted() { markdown += "| \(key) | \(String(format: "%.4f", metrics[key]!)) |\n" }
        markdown += "\n" + pictures.map { "![\($0)](\($0))\n" }.joined()
        try writeAtomically(Data(markdown.utf8), to: folder.appendingPathComponent("report.md"))
    }

    func catalogPath() -> String {
        if let input = options.input { return resolveArgument(input).path }
        return config.input.path.map { resolve($0).path } ?? ""
    }

    /// The image (asinh-stretched, grey) with stars tinted red and galaxies blue.
    static func overlay(image: FITSImage<Float>, classes: FITSImage<Float>) -> Canvas {
        let w = image.shape[0], h = image.shape[1]
        var values = image.pixels
        let normalization = ImageNormalization(interval: .percentile(99.5), stretch: .asinh())
        values.withUnsafeMutableBufferPointer { normalization.apply(to: $0) }
        var canvas = Canvas(width: w, height: h, background: .black)
        for y in 0..<h {
            for x in 0..<w {
                let v = values[y * w + x].isFinite ? Double(values[y * w + x]) : 0
                let g = UInt8(Swift.max(0, Swift.min(255, v * 255)))
                let color: Color
                switch Int(classes.pixels[y * w + x]) {
                case 1: color = Color(red: UInt8(Swift.min(255, Int(g) / 2 + 128)), green: g / 2, blue: g / 2)
                case 2: color = Color(red: g / 2, green: g / 2, blue: UInt8(Swift.min(255, Int(g) / 2 + 128)))
                default: color = Color(gray: g)
                }
                canvas.set(x: x, y: h - 1 - y, color: color)   // row 0 at the bottom, as FITS viewers show it
            }
        }
        return canvas
    }
}

extension PipelineRunner {
    /// `astrolabe evaluate` of a deblend pipeline: runs it into `folder/deblended` (and each
    /// pipeline of `compare`, named by its file's stem, into `folder/deblended-<name>`), then
    /// measures each output against the input's `TRUTH` (TASKS.md task 6: PSNR, SSIM, flux
    /// error over the whole stamp), and the classical SEP-style deblender
    /// (`SourceExtraction.deblendCentral`, noise from `SKYSIG` or measured) on the same
    /// files: medians of PSNR and SSIM, median and NMAD of the flux error in magnitudes (stamps whose
    /// predicted flux is not positive are counted in `*_flux_undefined` and left out), in
    /// `metrics.json` and `report.md`, with `grid.png` (blend, truth, each method, and each
    /// method's residual against truth) for the first inputs.
    ///
    /// With `sersicModel` (a regression model file, e.g. the shipped `regression.safetensors`),
    /// the Sérsic parameters that model measures on each method's deblended image are compared
    /// with what it measures on the same galaxy observed alone: `TRUTH` with a new draw of the
    /// blend's noise (`SKYSIG`, `GAIN`; seeded by the file's position): per parameter the median
    /// and NMAD of the difference (`r_e` as a fraction of the isolated value), `<method>_sersic_<p>_*`.
    func evaluateDeblend(into folder: URL, compare: [URL] = [], sersicModel: URL? = nil) throws -> EvaluationReport {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let sersic = try sersicModel.map { try Predictor(contentsOf: $0) }
        if let sersic, sersic.task != .regress {
            throw PipelineError.unsupported("--sersic \(sersic.path): a regression model (task regress) measures the "
                                            + "Sérsic parameters, not a \(sersic.task.rawValue) model.")
        }
        var inferOptions = options
        inferOptions.output = folder.appendingPathComponent("deblended").path
        let run = try PipelineRunner(pipelinePath: pipelinePath, options: inferOptions).predictAll()
        let predictor = run.predictor
        // The compared pipelines' outputs, by input name.
        var compared = [(name: String, output: URL, files: [String: String])]()
        for url in compare {
            let name = url.deletingPathExtension().lastPathComponent
            var options = self.options
            options.output = folder.appendingPathComponent("deblended-\(name)").path
            let other = try PipelineRunner(pipelinePath: url.path, options: options)
            guard other.config.task == .deblend else {
                throw PipelineError.unsupported("--compare \(url.path): a deblend pipeline, not task \(other.config.task.rawValue).")
            }
            let result = try other.predictAll()
            var files = [String: String]()
            for (entry, prediction) in result.results { if case let .deblended(image) = prediction { files[entry.name] = image.output } }
            compared.append((name, result.output, files))
        }
        let methods = ["model"] + compared.map(\.name) + ["classical"]
        let classical = SourceExtraction()
        var psnr: [String: [Double]] = [:], ssim: [String: [Double]] = [:], flux: [String: [Double]] = [:]
        let residualLabels = methods.map { "\($0)-truth" }
        var sheet = ContactSheet(columns: 2 + 2 * methods.count, cellSize: 96,
                                 title: (["blend", "truth"] + methods + residualLabels).joined(separator: "  ").uppercased())
        var rows = 0
        // Sérsic measurements: per method, the prepared images; the isolated ones first.
        var sersicImages: [String: [PlanarImage]] = [:]
        for (index, (entry, prediction)) in run.results.enumerated() {
            guard case let .deblended(image) = prediction else { continue }
            let file = try FITSFile(path: entry.url.path)
            let truth: FITSImage<Float>
            do { truth = try file.readImage("TRUTH", as: Float.self) } catch {
                throw PipelineError.missingTruth(file: entry.name, what: "the TRUTH extension (the central galaxy alone)")
            }
            let blend = try file.readImage(predictor.input.hdu, as: Float.self)
            let model = try FITSFile(path: run.output.appendingPathComponent(image.output).path).readImage(0, as: Float.self)
            var outputs = [("model", model.pixels)]
            for other in compared {
                guard let name = other.files[entry.name] else {
                    throw PipelineError.missingTruth(file: entry.name, what: "a deblended image from --compare \(other.name)")
                }
                let pixels = try FITSFile(path: other.output.appendingPathComponent(name).path).readImage(0, as: Float.self)
                guard pixels.shape == model.shape else {
                    throw PipelineError.inputMismatch(file: entry.name, received: pixels.shape, expected: model.shape, model: other.name)
                }
                outputs.append((other.name, pixels.pixels))
            }
            guard truth.shape == model.shape, blend.shape == model.shape, model.shape.count == 2 else {
                throw PipelineError.inputMismatch(file: entry.name, received: truth.shape, expected: model.shape,
                                                  model: predictor.path)
            }
            let (w, h) = (model.shape[0], model.shape[1])
            let keywords = Sample.numericKeywords(blend.header)
            let sigma = keywords["SKYSIG"] ?? PixelStatistics.madStd(blend.pixels)
            outputs.append(("classical", classical.deblendCentral(blend.pixels, width: w, height: h, noise: sigma)))
            for (name, pixels) in outputs {
                psnr[name, default: []].append(ImageQuality.psnr(pixels, truth: truth.pixels))
                ssim[name, default: []].append(ImageQuality.ssim(pixels, truth: truth.pixels, width: w, height: h))
                if let error = ImageQuality.fluxError(pixels, truth: truth.pixels) { flux[name, default: []].append(error) }
            }
            if let sersic {
                // The same galaxy observed alone: TRUTH with another draw of the blend's noise.
                var random = SeededGenerator(seed: 0x150_1A7E &+ UInt64(index))
                let isolated = NoiseModel.noisy(truth.pixels.map(Double.init), skySigma: sigma, gain: keywords["GAIN"] ?? 1,
                                                random: &random)
                for (name, pixels) in [("isolated", isolated)] + outputs {
                    let sample = Sample(image: PlanarImage(height: h, width: w, pixels: pixels), name: entry.name, header: keywords)
                    let prepared = try sersic.preparation.prepare(sample, training: false)
                    try sersic.checkShape(prepared.image.shape, file: entry.name)
                    sersicImages[name, default: []].append(prepared.image)
                }
            }
            if rows < 8 {
                let display = ImageNormalization.display(for: blend.pixels)
                for (label, pixels) in [("blend", blend.pixels), ("truth", truth.pixels)] + outputs {
                    sheet.add(gray: display.bytes(pixels), width: w, height: h, label: rows == 0 ? label : "")
                }
                let residual = ImageNormalization(interval: .percentile(99), stretch: .linear())
                for (label, pixels) in outputs {
                    sheet.add(gray: residual.bytes(zip(pixels, truth.pixels).map { $0 - $1 }), width: w, height: h,
                              label: rows == 0 ? "\(label)-truth" : "")
                }
                rows += 1
            }
        }
        guard let count = psnr["model"]?.count, count > 0 else {
            throw PipelineError.missingTruth(file: catalogPath(), what: "any deblended image")
        }
        var metrics = ["count": Double(count)]
        func robust(_ values: [Double], _ key: String) {
            metrics["\(key)_median"] = PixelStatistics.median(values)
            metrics["\(key)_nmad"] = PixelStatistics.madToSigma * PixelStatistics.medianAbsoluteDeviation(values)
        }
        for name in methods {
            metrics["\(name)_psnr_median"] = PixelStatistics.median(psnr[name] ?? [])
            metrics["\(name)_ssim_median"] = PixelStatistics.median(ssim[name] ?? [])
            let errors = flux[name] ?? []
            robust(errors, "\(name)_flux_error")
            // A stamp whose predicted flux is not positive has no magnitude: counted, left out of the flux error.
            metrics["\(name)_flux_undefined"] = Double(count - errors.count)
        }
        if let sersic {
            let targets = sersic.recipe?.targetNames ?? []
            func measured(_ name: String) -> [[Double]] {
                sersic.predict(sersicImages[name] ?? []).map { $0.pointEstimates ?? [] }
            }
            let isolated = measured("isolated")
            for name in methods {
                let values = measured(name)
                for (k, target) in targets.enumerated() {
                    let differences = zip(values, isolated).compactMap { (v, i) -> Double? in
                        guard k < v.count, k < i.count else { return nil }
                        return target == "r_e" ? (v[k] - i[k]) / i[k] : v[k] - i[k]
                    }
                    robust(differences, "\(name)_sersic_\(target)")
                }
            }
        }
        try sheet.write(to: folder.appendingPathComponent("grid.png"))
        let others = compared.isEmpty ? "" : ", the models of " + compared.map { "`\($0.name)`" }.joined(separator: ", ")
        try writeReport(metrics, pictures: ["grid.png"], into: folder,
                        summary: "Model `\(predictor.path)`\(others) and the classical SEP-style deblender on `\(catalogPath())` "
                            + "(\(count) blends; PSNR, SSIM and flux error of the central galaxy against TRUTH, TASKS.md task 6"
                            + (sersic.map { "; Sérsic parameters by `\($0.path)` on each deblended image minus on the galaxy "
                                + "observed alone (r_e as a fraction)" } ?? "") + ").")
        return EvaluationReport(metrics: metrics, files: ["metrics.json", "report.md", "grid.png"])
    }
}
