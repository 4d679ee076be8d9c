import FITS
import Foundation
import NN
import Preprocessing
import Training

/// Everything besides the weights that a trained model needs to be used: the
/// task, how inputs are read and prepared, and what the outputs mean. Stored as
/// JSON in the model file's `astrolabe.preprocessing` metadata, so that the file
/// alone runs on raw FITS files exactly as the model was trained.
public struct ModelRecipe: Codable, Equatable, Sendable {
    public var task: PipelineTask
    /// Every stage, augmentations included (they only run in training).
    public var stages: [Stage]
    public var hdu: HDUSelector
    public var bands: [String]
    public var bandFiles: [String: String]
    /// `[channels, height, width]` the network was trained on.
    public var inputShape: [Int]
    public var classNames: [String]
    public var targetNames: [String]
    /// Regression targets are learned standardised: `(t - mean) / std`.
    public var targetMean: [Double]
    public var targetStd: [Double]
    /// Whether the network outputs a log-variance per target (Gaussian NLL).
    public var predictsUncertainty: Bool
    /// Targets learned as log10 of their value (may be absent in a recipe).
    public var logTargetNames: [String]?
    public var logTargets: [String] { logTargetNames ?? [] }
    /// A posterior model's prior range `[lo, hi]` per target in catalog units: the flow
    /// works on `logit((v − lo) / (hi − lo))` of each (log10) target, standardised.
    public var targetBounds: [[Double]]?
    /// A posterior model's draws per input for its medians and percentiles (absent: 1,000).
    public var posteriorDraws: Int?
    /// The observation the model was trained for (nil in files that record none).
    public var observation: Observation?
    /// Where the model came from: training pipeline, data, epochs, seed, date (strings).
    public var provenance: [String: String]?
    /// Light-curve models: the sequence stages (absent for image models).
    public var sequenceStages: [SequenceStage]?
    /// Class models: the softmax temperature fitted on held-out data (`astrolabe evaluate
    /// --calibrate`); probabilities are softmax(logits / T). Absent: 1.
    public var temperature: Double?
    /// Class models: the energy score (−log Σ exp(logits)) above which an image is unlike the
    /// training data, the 95th percentile of the scores on held-out simulated data; rows above
    /// it say `atypical` in `outside_domain`. Absent: no such flag.
    public var oodEnergyThreshold: Double?
    /// Class models and regressions with a ResNet (a posterior model's encoder): Gaussians of
    /// the pooled penultimate features on held-out simulated data (`astrolabe evaluate
    /// --calibrate`; one per class, a regression's as one class), with the distance (the 95th
    /// percentile on other held-out images) above which a row says `unfamiliar`. Absent: no such score.
    public var featureDensity: FeatureDensity?
    /// Posterior models: per `outside_domain` flag of a run (`neighbours`: `mask_neighbours`
    /// masked pixels; `sky`: `fit_sky` subtracted a residual sky; `correlated_noise`: its frame
    /// found the noise correlated), per target the factors
    /// `[s68, s95]` by which the central 68 % and 95 % intervals of a row with that flag are
    /// widened about the median, in the flow's unbounded space, so they hold 68 % and 95 % of
    /// the truths on held-out simulated cutouts with it; `neighbours+sky` for rows with both
    /// (without it, such a row takes the larger factor per target); `none` for rows with none
    /// of them (held-out TASKS.md cutouts); `profile_fit` for rows whose posterior a profile
    /// fit gave (`ProfileRefinement`; the others apply to the network's posteriors only).
    /// Absent: not widened.
    public var intervalScales: [String: [[Double]]]?
    /// Class-conditional generators: how often `generate` draws each class (the training data's
    /// class frequencies, in `classNames`' order).
    public var classFrequencies: [Double]?
    /// The `intervalScales` key of rows without a flag that widens intervals.
    public static let unflagged = "none"

    enum CodingKeys: String, CodingKey {
        case task, stages, hdu, bands, bandFiles, inputShape, classNames, targetNames, targetMean, targetStd,
             predictsUncertainty, logTargetNames = "logTargets", targetBounds, posteriorDraws, observation, provenance,
             sequenceStages, temperature, oodEnergyThreshold, featureDensity, intervalScales, classFrequencies
    }

    public init(task: PipelineTask, stages: [Stage], input: InputConfig, inputShape: [Int], classNames: [String] = [],
                targetScaling: TargetScaling? = nil, predictsUncertainty: Bool = false, observation: Observation? = nil,
                posteriorDraws: Int? = nil, sequenceStages: [SequenceStage]? = nil) {
        self.observation = observation
        targetBounds = targetScaling?.bounds
        self.posteriorDraws = posteriorDraws
        self.task = task
        self.stages = stages
        hdu = input.hdu ?? 0
        bands = input.bands
        bandFiles = input.bandFiles
        self.inputShape = inputShape
        self.classNames = classNames
        targetNames = targetScaling?.names ?? []
        targetMean = targetScaling?.mean ?? []
        targetStd = targetScaling?.std ?? []
        self.predictsUncertainty = predictsUncertainty
        logTargetNames = input.logTargets
        self.sequenceStages = sequenceStages
    }

    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try! encoder.encode(self), as: UTF8.self)
    }

    public static func decode(_ json: String, path: String) throws -> ModelRecipe {
        do { return try JSONDecoder().decode(ModelRecipe.self, from: Data(json.utf8)) } catch let error as DecodingError {
            let (keys, detail): ([CodingKey], String)
            switch error {
            case let .keyNotFound(key, context): (keys, detail) = (context.codingPath + [key], "missing")
            case let .typeMismatch(_, context), let .valueNotFound(_, context), let .dataCorrupted(context):
                (keys, detail) = (context.codingPath, context.debugDescription)
            @unknown default: (keys, detail) = ([], "\(error)")
            }
            let at = keys.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
            throw PipelineError.modelFile(path: path, reason: "its 'astrolabe.preprocessing' metadata is not an "
                                          + "Astrolabe recipe (" + (at.isEmpty ? "" : "at '\(at)': ") + detail + ")")
        } catch {
            throw PipelineError.modelFile(path: path, reason: "its 'astrolabe.preprocessing' metadata is not an "
                                          + "Astrolabe recipe (\(error.localizedDescription))")
        }
    }

    public var fitsInput: FITSInput {
        FITSInput(hdu: hdu, bands: bands, bandFiles: bandFiles)
    }

    /// How the regression targets were scaled for learning (and are scaled back).
    public var targetScaling: TargetScaling {
        TargetScaling(names: targetNames, mean: targetMean, std: targetStd, logTargets: logTargets, bounds: targetBounds)
    }
}

/// A trained model with its recipe, read from one file.
public struct TrainedModel {
    public var network: any Layer
    public var architecture: Architecture
    public var recipe: ModelRecipe
    public var path: String

    public init(contentsOf url: URL) throws {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw PipelineError.missingFile(path: url.path, what: "model weights")
        }
        let file = try ModelFile(contentsOf: url)
        guard let json = file.preprocessing else {
            throw PipelineError.modelFile(path: url.path, reason: "it records no recipe ('astrolabe.preprocessing'): "
                                          + "it was not trained by Astrolabe; run it with `astrolabe predict --raw`")
        }
        network = file.model
        architecture = file.architecture
        recipe = try ModelRecipe.decode(json, path: url.path)
        path = url.path
        if let density = recipe.featureDensity, let count = (network as? any FeatureExtractor)?.featureCount,
           count != density.dimension {
            throw PipelineError.modelFile(path: url.path, reason: "its feature density has dimension \(density.dimension), "
                                          + "but the network has \(count) penultimate features")
        }
    }
}

extension ModelRecipe {
    /// What `astrolabe inspect MODEL.safetensors` prints about the recipe: task, input,
    /// stages, classes or targets, the observation and the provenance.
    public var descriptionLines: [String] {
        let headerChannels = stages.compactMap { stage -> String? in
            if case let .headerChannel(keyword, _) = stage { return keyword }
            return nil
        }
        var lines = ["task          \(task.rawValue)",
                     "input         HDU \(hdu), shape \(inputShape) (channels, height, width) after the stages"
                        + (headerChannels.isEmpty ? "" : ", the last \(headerChannels.count) from the header: "
                            + headerChannels.joined(separator: ", "))
                        + (bands.isEmpty ? "" : ", bands \(bands.joined(separator: ", "))")
                        + (bandFiles.isEmpty ? "" : ", band files " + bandFiles.sorted { $0.key < $1.key }
                            .map { "\($0.key): \($0.value)" }.joined(separator: ", "))]
        if let classFrequencies, classFrequencies.count == classNames.count {
            lines.append("classes       " + zip(classNames, classFrequencies).enumerated()
                .map { String(format: "%d=%@ (drawn %.3f)", $0.offset, $0.element.0, $0.element.1) }.joined(separator: ", "))
        } else if !classNames.isEmpty {
            lines.append("classes       " + classNames.enumerated().map { "\($0.offset)=\($0.element)" }.joined(separator: ", "))
            lines.append("temperature   " + (temperature.map { String(format: "%.4f (fitted on held-out data)", $0) }
                                             ?? "1 (probabilities not recalibrated)"))
            lines.append("ood energy    " + (oodEnergyThreshold.map { String(format: "above %.3f: the row says 'atypical' "
                + "(95th percentile on held-out simulated data)", $0) } ?? "no threshold recorded"))
        }
        if (!classNames.isEmpty && task != .generate) || task == .regress {
            lines.append("ood features  " + (featureDensity.map { density in
                "Mahalanobis distance to the " + (density.means.count == 1 ? "mean" : "nearest class mean") + " of \(density.dimension) penultimate features (\(density.count) "
                + "held-out images)" + (density.threshold.map { String(format: "; above %.1f the row says 'unfamiliar'", $0) } ?? "")
            } ?? "no feature density recorded"))
        }
        for (flag, scales) in (intervalScales ?? [:]).sorted(by: { $0.key < $1.key }) where scales.count == targetNames.count {
            lines.append(flag.padding(toLength: max(13, flag.count), withPad: " ", startingAt: 0)
                + (flag == Self.unflagged ? " intervals of rows without those flags scaled "
                    : flag == ProfileRefinement.source ? " intervals of rows whose posterior a profile fit gave scaled "
                    : " intervals of rows flagged '\(flag)' widened ")
                + zip(targetNames, scales).map { String(format: "%@ x%.2f/x%.2f", $0.0, $0.1.first ?? 1, $0.1.last ?? 1) }
                    .joined(separator: ", ") + " (68 % / 95 %)")
        }
        if !targetNames.isEmpty {
            lines.append("targets       " + targetNames.joined(separator: ", ") + (logTargets.isEmpty ? "" : " (log10: \(logTargets.joined(separator: ", ")))")
                         + (predictsUncertainty ? ", with uncertainties" : ""))
        }
        lines.append("stages (inference runs those not marked 'training only'):")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        for stage in stages {
            let json = (try? encoder.encode(stage)).map { String(decoding: $0, as: UTF8.self) } ?? stage.name
            lines.append("  - " + json + (stage.isAugmentation ? "   (training only)" : ""))
        }
        if let observation {
            lines.append("observation (images are brought to it before the stages):")
            lines += observation.summaryLines.map { "  " + $0 }
        } else {
            lines.append("observation   not recorded: images are used as they are (no matching)")
        }
        if let provenance, !provenance.isEmpty {
            lines.append("provenance:")
            lines += provenance.sorted { $0.key < $1.key }.map { "  \($0.key): \($0.value)" }
        }
        return lines
    }
}
