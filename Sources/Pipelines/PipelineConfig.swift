import Autograd
import Explain
import FITS
import NN
import Foundation
import Preprocessing

/// What a pipeline's model does, which decides its outputs (TASKS.md); model
/// files record it (`"task": "classify"`, its raw value).
///
/// SkySim's `SimulationTask` is a different thing on purpose: it names a kind of
/// simulated data set (`astrolabe simulate --task morphology`), which TASKS.md
/// calls by data (`morphology`, `segmentation`, `regression`), while this names
/// what a model outputs. Pipelines do not depend on the simulator.
public enum PipelineTask: String, Equatable, Sendable, CaseIterable, Codable, ConfigName {
    /// Classes of single-object cutouts (morphology).
    case classify
    /// Lens / non-lens probabilities of multi-band cutouts.
    case lens
    /// Per-pixel classes of maps of any size, through tiles.
    case segment
    /// Continuous targets (Sérsic parameters), optionally with uncertainties.
    case regress
    /// Classes of multi-band light curves read from a table (TASKS.md task 5); its
    /// `stages` are sequence stages (`SequenceStage`).
    case lightcurves
    /// The central galaxy of a blend alone (TASKS.md task 6): an image in, an image in
    /// counts out, one FITS file per input.
    case deblend
    /// Images from noise (an unconditional DCGAN trained adversarially on the input images):
    /// trained by `astrolabe train`, sampled by `astrolabe generate`.
    case generate

    /// Whether a run writes one FITS image per input into an output folder (not a table).
    public var writesImages: Bool { self == .segment || self == .deblend }
}

/// A whole pipeline file: see docs/pipelines.md for every key.
public struct PipelineConfig: Equatable, Sendable {
    public var name: String
    public var description: String
    public var task: PipelineTask
    public var input: InputConfig
    public var stages: [Stage]
    /// The stages of a `lightcurves` pipeline (its `stages` key).
    public var sequenceStages: [SequenceStage]
    public var model: ModelConfig
    public var tiling: TilingConfig?
    public var outputs: OutputsConfig
    public var run: RunConfig
    /// The observation the training data follow, recorded in the trained model file.
    public var observation: Observation?
}

/// Where the FITS files are and what in them to read.
public struct InputConfig: Equatable, Sendable {
    /// A folder, a glob (`data/*.fits`) or a catalog CSV; relative paths are
    /// relative to the pipeline file. `--input` replaces it.
    public var path: String?
    /// The image HDU; nil takes the model recipe's (inference) or the primary HDU (training).
    public var hdu: HDUSelector?
    /// Band names. For a cube the planes are taken in this order (their count
    /// must match NAXIS3); with `bandFiles`, one file per band.
    public var bands: [String]
    /// Per band, a file-name pattern where `{stem}` is the catalog entry's name
    /// without `.fits` (e.g. `{stem}_g.fits`): bands from separate files.
    public var bandFiles: [String: String]
    public var labelColumn: String?
    public var classNames: [String]
    public var targetColumns: [String]
    /// Numeric header keywords handed to the stages (e.g. SKYSIG, SKYSIG_G...).
    public var headerKeywords: [String]
    /// Regression targets learned as log10 (sizes spanning a decade): predictions
    /// are turned back, and their sigmas propagated.
    public var logTargets: [String]
    /// Prior range `[lo, hi]` per target (catalog units), for a posterior model's logit transform.
    public var targetBounds: [String: [Double]] = [:]
    /// Header values given by the user (`--set input.header_values.MAGZERO=27.5`): they
    /// replace or complete each file's header for the stages.
    public var headerValues: [String: Double] = [:]
    /// Whether inference brings images to the model's recorded observation (default true).
    public var matchObservation: Bool = true
    /// Inference of regression models on single-object cutouts: mask the neighbours after
    /// observation matching and before the model's stages (`mask_neighbours` with its defaults).
    public var maskNeighbours: Bool = false
    /// Sérsic regression of cutouts: fit a residual sky plane against each prediction and,
    /// where it stands out of the noise, subtract it and predict again (`SkyFitting`).
    public var fitSky: Bool = false
    /// Deblending: fit the blend as Sérsic profiles and point sources from the network's image
    /// and write the fitted central galaxy (`ProfileFitting`).
    public var fitProfiles: Bool = false
}

/// Which model, and how to train it if the pipeline trains.
public struct ModelConfig: Equatable, Sendable {
    /// A safetensors file; relative to the pipeline file.
    public var weights: String?
    public var architecture: ArchitectureConfig?
    public var train: TrainConfig?
    /// Inference: the arithmetic of the model's convolutions, replacing the model file's
    /// `inference_precision` (nil: the file's, float32 when it records none).
    public var inferencePrecision: InferencePrecision?
}

public struct ArchitectureConfig: Equatable, Sendable {
    public var name: ArchitectureName
    public var inputChannels: Int
    public var classes: Int
    public var width: Int?
    /// ResNet: a 3×3/1 stem without max-pool (`small_image_stem`, as model files spell it).
    public var smallImageStem: Bool
    /// ResNet: false drops the max-pool after the standard 7×7/2 stem (default true).
    public var stemPool: Bool
    public var widths: [Int]
    /// `resnet18_flow`: the flow over the targets (`classes` is the context width).
    public var flow: FlowSettings?
    /// `resnet18_flow`: the symmetric views the encoder's output is averaged over (1, 4 or 8).
    public var views: Int?
    /// dcgan: the noise dimension (default 100).
    public var latent: Int?
    /// dcgan: how the generator doubles its images' size (default transposed convolutions).
    public var upsample: DCGANGenerator.Upsampling?
}

public struct TrainConfig: Equatable, Sendable {
    public enum OptimizerChoice: Equatable, Sendable {
        case sgd(momentum: Double, nesterov: Bool)
        case adam
        case adamW
        case rmsprop
    }
    public enum LossChoice: Equatable, Sendable {
        /// `outsideWeight` > 0: catalog rows labelled `outside` (none of the classes) train
        /// towards equal probabilities with that weight (outlier exposure).
        case crossEntropy(labelSmoothing: Double, outsideWeight: Double = 0)
        case binaryCrossEntropy
        case mse
        case mae
        case huber(delta: Double)
        case gaussianNLL
        case pixelCrossEntropy(diceWeight: Double)
        /// A posterior model's negative log-likelihood of its targets (`resnet18_flow`).
        case negativeLogLikelihood
    }
    public enum ScheduleChoice: Equatable, Sendable {
        case constant
        case step(everyEpochs: Int, gamma: Double)
        case exponential(gamma: Double)
        case cosine(warmupEpochs: Int, minimum: Double)
        case oneCycle(maxRate: Double)
        case plateau(factor: Double, patience: Int)
    }
    public var data: String?
    public var validation: String?
    public var validationSplit: Double
    public var epochs: Int
    public var batchSize: Int
    public var optimizer: OptimizerChoice
    public var learningRate: Double
    public var weightDecay: Double
    public var gradientClip: Double?
    public var loss: LossChoice
    public var schedule: ScheduleChoice
    public var seed: UInt64
    public var classWeights: [Double]?
    public var earlyStoppingPatience: Int?
    public var checkpoint: String?
    public var save: String
    public var pretrained: String?
    public var freeze: [String]
    public var layerDecay: Double?
    /// Data-parallel training (mpirun): gradients are summed in buckets of this many megabytes.
    public var bucketMB: Double
    /// Data-parallel training: batch norm over the global batch (all processes' images)
    /// rather than each process's part (`sync_batch_norm`, default false).
    public var syncBatchNorm: Bool = false
    /// pix2pix training of a deblender (`model.train.adversarial`): the U-Net against a
    /// PatchGAN discriminator, with `loss` as the L1 term (weight `l1_weight`).
    public var adversarial: AdversarialConfig? = nil
}

public struct TilingConfig: Equatable, Sendable {
    public var tile: Int
    public var overlap: Int
    public var weighting: StitchWeighting

    public init(tile: Int, overlap: Int, weighting: StitchWeighting) {
        self.tile = tile
        self.overlap = overlap
        self.weighting = weighting
    }
}

public struct OutputsConfig: Equatable, Sendable {
    public var csv: String?
    public var probabilities: Bool
    public var fitsTable: String?
    public var fitsImages: String?
    public var previews: String?
    public var previewCount: Int
    public var report: String?
    /// A posterior model's draws as a FITS binary table (`EXTNAME = SAMPLES`), and how many
    /// per input (default 100, at most the model's draws).
    public var posteriorSamples: String? = nil
    public var posteriorSampleCount: Int = 100
    /// Attribution maps beside the predictions (see docs/interpretability.md).
    public var explain: ExplainConfig?
}

public struct RunConfig: Equatable, Sendable {
    public enum ErrorPolicy: String, Equatable, Sendable, ConfigName { case skip, stop }
    public var batchSize: Int
    public var threads: Int
    public var onError: ErrorPolicy
    public var errorsFile: String?
    public var resume: Bool
}

// MARK: - Decoding

extension PipelineConfig: Decodable {
    enum Key: String, ConfigName { case name, description, task, input, stages, model, tiling, outputs, run, observation }

    public init(from decoder: Decoder) throws {
        let c = try StrictKeyed<Key>(decoder, section: "the pipeline")
        name = try c.optional(.name) ?? ""
        description = try c.optional(.description) ?? ""
        task = try c.choice(.task, PipelineTask.self)
            ?? { throw c.invalid(.task, "The pipeline needs a 'task': " + PipelineTask.allCases.map(\.rawValue).joined(separator: ", ") + ".") }()
        input = try c.optional(.input) ?? InputConfig.defaults
        if task == .lightcurves {
            sequenceStages = try c.optional(.stages) ?? []
            stages = []
            do { _ = try SequencePreparation(sequenceStages) } catch { throw c.invalid(.stages, error.localizedDescription) }
        } else {
            stages = try c.optional(.stages) ?? []
            sequenceStages = []
            if let reason = Preparation.headerChannelOrderProblem(stages) { throw c.invalid(.stages, reason) }
        }
        model = try c.required(.model)
        tiling = try c.optional(.tiling)
        outputs = try c.optional(.outputs) ?? OutputsConfig.defaults
        run = try c.optional(.run) ?? RunConfig.defaults
        observation = try c.optional(.observation)
        if task == .segment && tiling == nil { tiling = TilingConfig(tile: 256, overlap: 32, weighting: .smooth) }
    }
}

extension InputConfig: Decodable {
    enum Key: String, ConfigName {
        case path, hdu, bands, band_files, label_column, class_names, target_columns, header_keywords, log_targets
        case target_bounds, header_values, match_observation, mask_neighbours, fit_sky, fit_profiles
    }
    static let defaults = InputConfig(path: nil, hdu: nil, bands: [], bandFiles: [:], labelColumn: nil,
                                      classNames: [], targetColumns: [], headerKeywords: [], logTargets: [])
    public init(from decoder: Decoder) throws {
        let c = try StrictKeyed<Key>(decoder, section: "input")
        path = try c.optional(.path)
        hdu = try c.optional(.hdu)
        bands = try c.optional(.bands) ?? []
        bandFiles = try c.optional(.band_files) ?? [:]
        labelColumn = try c.optional(.label_column)
        classNames = try c.optional(.class_names) ?? []
        targetColumns = try c.optional(.target_columns) ?? []
        headerKeywords = try c.optional(.header_keywords) ?? []
        logTargets = try c.optional(.log_targets) ?? []
        targetBounds = try c.optional(.target_bounds) ?? [:]
        for (name, range) in targetBounds {
            guard targetColumns.contains(name) else {
                throw c.invalid(.target_bounds, "target_bounds names '\(name)', which is not in target_columns \(targetColumns).")
            }
            guard range.count == 2, range[0] < range[1], range.allSatisfy(\.isFinite),
                  !logTargets.contains(name) || range[0] > 0 else {
                throw c.invalid(.target_bounds, "target_bounds of '\(name)' must be [lo, hi] with lo < hi"
                                + (logTargets.contains(name) ? " and lo > 0 (a log10 target)" : "") + "; got \(range).")
            }
        }
        headerValues = Dictionary(uniqueKeysWithValues: (try c.optional(.header_values, [String: Double].self) ?? [:])
            .map { ($0.key.uppercased(), $0.value) })
        matchObservation = try c.optional(.match_observation) ?? true
        maskNeighbours = try c.optional(.mask_neighbours) ?? false
        fitSky = try c.optional(.fit_sky) ?? false
        fitProfiles = try c.optional(.fit_profiles) ?? false
        for name in logTargets where !targetColumns.contains(name) {
            throw c.invalid(.log_targets, "log_targets names '\(name)', which is not in target_columns \(targetColumns).")
        }
        for band in bandFiles.keys where !bands.isEmpty && !bands.contains(band) {
            throw c.invalid(.band_files, "band_files names the band '\(band)', which is not in bands \(bands).")
        }
        for (band, pattern) in bandFiles where !pattern.contains("{stem}") {
            throw c.invalid(.band_files, "The pattern for band '\(band)' must contain {stem}, e.g. '{stem}_\(band).fits'.")
        }
    }
}

extension ModelConfig: Decodable {
    enum Key: String, ConfigName { case weights, architecture, train, inference_precision }

    public init(from decoder: Decoder) throws {
        let c = try StrictKeyed<Key>(decoder, section: "model")
        weights = try c.optional(.weights)
        architecture = try c.optional(.architecture)
        train = try c.optional(.train)
        inferencePrecision = try c.choice(.inference_precision,
                                          Dictionary(uniqueKeysWithValues: InferencePrecision.allCases.map { ($0.rawValue, $0) }))
        if weights == nil && architecture == nil {
            throw c.invalid(.weights, "model needs 'weights' (a safetensors file) or an 'architecture' to train.")
        }
        if train == nil && weights == nil {
            throw c.invalid(.weights, "A model without 'weights' must have a 'train' block.")
        }
    }
}

extension ArchitectureConfig: Decodable {
    enum Key: String, ConfigName { case name, in_channels, classes, width, small_image_stem, stem_pool, widths, flow, views, latent, upsample }

    public init(from decoder: Decoder) throws {
        let c = try StrictKeyed<Key>(decoder, section: "model.architecture")
        let text: String = try c.required(.name)
        guard let name = ArchitectureName(rawValue: text) else {
            let names = ArchitectureName.allCases.map(\.rawValue)
            throw c.invalid(.name, "Unknown architecture '\(text)'." + NearMiss.hint(for: text, among: names)
                            + " Known: \(names.joined(separator: ", ")).")
        }
        self.name = name
        inputChannels = try c.optional(.in_channels) ?? 1
        classes = try c.required(.classes)
        width = try c.optional(.width)
        smallImageStem = try c.optional(.small_image_stem) ?? false
        stemPool = try c.optional(.stem_pool) ?? true
        widths = try c.optional(.widths) ?? []
        guard inputChannels > 0, classes > 0 else {
            throw c.invalid(.classes, "in_channels and classes must be positive.")
        }
        flow = (try c.optional(.flow) as FlowConfig?)?.settings
        if name == .resnet18Flow && flow == nil {
            throw c.invalid(.flow, "resnet18_flow needs a 'flow' block (layers, hidden, transform, bins, tail_bound).")
        }
        if name != .resnet18Flow && flow != nil {
            throw c.invalid(.flow, "'flow' belongs to resnet18_flow, not \(name.rawValue).")
        }
        views = try c.optional(.views)
        if let views, name != .resnet18Flow || PosteriorRegressor.viewIndices(views) == nil {
            throw c.invalid(.views, name == .resnet18Flow ? "views must be 1, 4 (the 90° rotations) or 8 (and their mirror images); got \(views)."
                            : "'views' belongs to resnet18_flow, not \(name.rawValue).")
        }
        latent = try c.optional(.latent)
        if let latent, name != .dcgan || latent <= 0 {
            throw c.invalid(.latent, name == .dcgan ? "latent must be positive; got \(latent)."
                            : "'latent' belongs to dcgan, not \(name.rawValue).")
        }
        upsample = try c.choice(.upsample, Dictionary(uniqueKeysWithValues: DCGANGenerator.Upsampling.allCases.map { ($0.rawValue, $0) }))
        if upsample != nil && name != .dcgan { throw c.invalid(.upsample, "'upsample' belongs to dcgan, not \(name.rawValue).") }
    }
}

extension TilingConfig: Decodable {
    enum Key: String, ConfigName { case tile, overlap, weighting }

    public init(from decoder: Decoder) throws {
        let c = try StrictKeyed<Key>(decoder, section: "tiling")
        tile = try c.optional(.tile) ?? 256
        overlap = try c.optional(.overlap) ?? 32
        weighting = try c.choice(.weighting, ["smooth": StitchWeighting.smooth, "average": .average]) ?? .smooth
        guard tile > 0, overlap >= 0, overlap < tile else {
            throw c.invalid(.overlap, "tiling needs 0 ≤ overlap < tile; got tile \(tile), overlap \(overlap).")
        }
    }
}

extension OutputsConfig: Decodable {
    enum Key: String, ConfigName {
        case csv, probabilities, fits_table, fits_images, previews, preview_count, report, posterior_samples
        case posterior_sample_count, explain
    }
    static let defaults = OutputsConfig(csv: nil, probabilities: true, fitsTable: nil, fitsImages: nil,
                                        previews: nil, previewCount: 16, report: nil, explain: nil)
    public init(from decoder: Decoder) throws {
        let c = try StrictKeyed<Key>(decoder, section: "outputs")
        csv = try c.optional(.csv)
        probabilities = try c.optional(.probabilities) ?? true
        fitsTable = try c.optional(.fits_table)
        fitsImages = try c.optional(.fits_images)
        previews = try c.optional(.previews)
        previewCount = try c.optional(.preview_count) ?? 16
        report = try c.optional(.report)
        posteriorSamples = try c.optional(.posterior_samples)
        posteriorSampleCount = try c.optional(.posterior_sample_count) ?? 100
        guard posteriorSampleCount > 0 else {
            throw c.invalid(.posterior_sample_count, "posterior_sample_count must be positive; got \(posteriorSampleCount).")
        }
        explain = try c.optional(.explain)
    }
}

extension RunConfig: Decodable {
    static let defaults = RunConfig(batchSize: 64, threads: 2, onError: .skip, errorsFile: nil, resume: true)
    enum Key: String, ConfigName { case batch_size, threads, on_error, errors_file, resume }

    public init(from decoder: Decoder) throws {
        let c = try StrictKeyed<Key>(decoder, section: "run")
        batchSize = try c.optional(.batch_size) ?? 64
        threads = try c.optional(.threads) ?? 2
        onError = try c.choice(.on_error, ErrorPolicy.self) ?? .skip
        errorsFile = try c.optional(.errors_file)
        resume = try c.optional(.resume) ?? true
        guard batchSize > 0, threads > 0 else { throw c.invalid(.batch_size, "batch_size and threads must be positive.") }
    }
}

/// `model.architecture.flow`: `layers`, `hidden`, `transform` (spline or affine), `bins`,
/// `tail_bound`, `location_scale`; `features` is the number of targets (filled in by training).
struct FlowConfig: Decodable {
    var settings: FlowSettings

    enum Key: String, ConfigName { case features, layers, hidden, transform, bins, tail_bound, location_scale }

    init(from decoder: Decoder) throws {
        let c = try StrictKeyed<Key>(decoder, section: "model.architecture.flow")
        let transform = try c.choice(.transform, Dictionary(uniqueKeysWithValues:
            FlowSettings.TransformName.allCases.map { ($0.rawValue, $0) }))
        settings = FlowSettings(features: try c.optional(.features) ?? 0, layers: try c.optional(.layers) ?? 6,
                                hidden: try c.optional(.hidden) ?? [64, 64], transform: transform ?? .spline,
                                bins: try c.optional(.bins) ?? 8, tailBound: try c.optional(.tail_bound) ?? 5,
                                locationScale: try c.optional(.location_scale))
        let (layers, hidden, bins, tailBound) = (settings.layers, settings.hidden, settings.bins, settings.tailBound)
        guard layers > 0, !hidden.isEmpty, hidden.allSatisfy({ $0 > 0 }), (bins ?? 8) >= 2, (tailBound ?? 5) > 0 else {
            throw c.invalid(.layers, "flow needs layers > 0, positive hidden widths, bins >= 2 and tail_bound > 0.")
        }
    }
}
