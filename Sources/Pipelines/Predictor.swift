import Autograd
import FITS
import Foundation
import NN
import Preprocessing
import Training

/// The one inference path: a model file with its recipe → inputs read and
/// prepared the recipe's way → the fused network in batches → typed results.
///
///     let predictor = try Predictor(contentsOf: url)
///     let sample = try predictor.prepared(entry)            // read + stages, as in training
///     let results = predictor.predict([sample.image])       // [Prediction]
///
/// `astrolabe run`, `predict` and `evaluate` format what it returns; segmentation
/// of large maps goes through `segment(_:to:...)` (tiles, streamed by rows).
public final class Predictor: @unchecked Sendable {
    public let network: any Layer
    public let architecture: Architecture
    /// nil for a plain state dict or a model file that records no recipe.
    public let recipe: ModelRecipe?
    /// The model file, for messages.
    public let path: String
    /// How files are read: HDU, bands (cube planes) or one file per band.
    public let input: FITSInput
    /// The inference stages (augmentations removed).
    public let preparation: Preparation
    /// Whether results are the raw network outputs (`Prediction.logits`).
    public let raw: Bool
    /// Whether inputs are read without the recipe: pixels of the first image HDU, no stages
    /// (`raw`, or a model file without a recipe).
    public let rawInput: Bool
    /// Class names of a classifier or segmenter, in index order.
    public let classNames: [String]

    /// The precision asked for: the pipeline's or the model file's `inference_precision`, else float32.
    public let requestedPrecision: InferencePrecision
    /// The arithmetic the network's convolutions run in here: the requested precision where it
    /// runs on this machine (`InferencePrecision.runsHere`), else float32.
    public var inferencePrecision: InferencePrecision { requestedPrecision.runsHere ? requestedPrecision : .float32 }
    /// Header values that replace or complete each file's (the pipeline's `input.header_values`).
    public let headerValues: [String: Double]
    /// The observation-matching stages that run before the recipe's (empty when the
    /// recipe records no observation or matching is off).
    public let matchingStages: [Stage]
    /// The recipe's own inference stages (or the pipeline's), after matching and masking.
    public let ownStages: [Stage]
    /// The header keyword of the image's noise (the recipe's `scale_by_noise`, else SKYSIG).
    public let noiseKeyword: String
    /// Sérsic regression: a residual sky fitted against each prediction and removed where
    /// it stands out (`fittingSky`); nil: none (the pipeline's `input.fit_sky`).
    public var skyFitting: SkyFitting?
    /// Deblenders: the central galaxy fitted as a Sérsic profile from the network's image (`ProfileFitting`).
    public var profileFitting: ProfileFitting?
    /// The profile fit of bright galaxies' posteriors (`input.fit_profiles` with a regression posterior model).
    public var profileRefinement: ProfileRefinement?
    /// Whether a run keeps each file's matched image (counts, before the recipe's stages) for a fit.
    public var keepsMatchedImages: Bool { skyFitting != nil || profileRefinement != nil }

    /// A network with its recipe (nil: a plain state dict). `stages`, `input` and
    /// `classNames` replace the recipe's when given (a pipeline's own); `raw` reads
    /// the pixels unchanged and returns the network's outputs as they are. With
    /// `matchObservation`, images are first brought to the observation the recipe
    /// records (`Observation.matchingStages`); with `maskNeighbours`, a `mask_neighbours`
    /// stage follows them (unless the model's own stages have one).
    public init(network: any Layer, architecture: Architecture, recipe: ModelRecipe?, path: String,
                stages: [Stage]? = nil, input: FITSInput? = nil, classNames: [String]? = nil, raw: Bool = false,
                matchObservation: Bool = true, headerValues: [String: Double] = [:], maskNeighbours: Bool = false,
                precision: InferencePrecision? = nil) {
        network.eval()
        self.network = withNoGrad { network.fusedForInference() }
        requestedPrecision = precision ?? ((try? architecture.precision()) ?? nil) ?? .float32
        // The kernels run float32 where the requested precision does not run.
        if requestedPrecision != .float32 { self.network.setInferencePrecision(requestedPrecision) }
        self.architecture = architecture
        self.recipe = recipe
        self.path = path
        self.raw = raw
        rawInput = raw || recipe == nil
        self.input = input ?? recipe?.fitsInput ?? FITSInput()
        self.headerValues = headerValues
        let own = Preparation(stages ?? recipe?.stages ?? []).inferenceStages
        // The noise keywords the recipe's scale_by_noise reads (SKYSIG when it reads none).
        var keyword = "SKYSIG", bandKeywords = [String]()
        for case let .scaleByNoise(.header(k, b)) in own { (keyword, bandKeywords) = (k, b) }
        noiseKeyword = keyword
        var matching = [Stage]()
        if !rawInput, matchObservation, let observation = recipe?.observation {
            matching = observation.matchingStages(noiseKeyword: keyword, bandNoiseKeywords: bandKeywords)
            // A map's class map lies on the input's pixels: no resampling, no change of PSF, no size.
            if recipe?.task == .deblend {
                // The output is in the input's counts on its pixels: only the noise level is settled from the data.
                matching = matching.filter { if case .estimateNoise = $0 { return true } else { return false } }
            } else if recipe?.task == .segment {
                matching = matching.filter {
                    switch $0 { case .matchPixelScale, .matchPSF, .fitSize: return false
                    default: return true }
                }
            }
        }
        matchingStages = matching
        var masking = [Stage]()
        if maskNeighbours, !own.contains(where: { if case .maskNeighbours = $0 { return true } else { return false } }) {
            masking = [.maskNeighbours(NeighbourMasking(keyword: keyword, bandKeywords: bandKeywords))]
        }
        preparation = Preparation(rawInput ? [] : matching + masking + own)
        ownStages = rawInput ? [] : own
        let names = classNames ?? recipe?.classNames ?? []
        self.classNames = names.count == architecture.classes ? names : (0..<architecture.classes).map(String.init)
    }

    /// Reads an Astrolabe model file (weights, architecture and recipe).
    public convenience init(contentsOf url: URL, stages: [Stage]? = nil, input: FITSInput? = nil,
                            classNames: [String]? = nil, raw: Bool = false, matchObservation: Bool = true,
                            headerValues: [String: Double] = [:]) throws {
        let model = try TrainedModel(contentsOf: url)
        self.init(network: model.network, architecture: model.architecture, recipe: model.recipe, path: model.path,
                  stages: stages, input: input, classNames: classNames, raw: raw, matchObservation: matchObservation,
                  headerValues: headerValues)
    }

    /// What the model does; a model without a recipe is taken for a classifier.
    public var task: PipelineTask { recipe?.task ?? .classify }

    /// Whether the recipe names the classes (otherwise `classNames` are the indices).
    public var hasClassNames: Bool { classNames != (0..<architecture.classes).map(String.init) }

    // MARK: - Inputs

    /// Reads `entry` the recipe's way (HDU, bands, band files, header keywords), or
    /// for raw input the first image HDU that holds data.
    public func read(_ entry: CatalogEntry) throws -> Sample {
        if rawInput { return try Self.firstImage(entry) }
        var sample = try Sample.load(entry, input: input)
        sample.header.merge(headerValues) { $1 }
        return sample
    }

    /// The pixels of the first image HDU of `entry` that holds data, unchanged.
    public static func firstImage(_ entry: CatalogEntry) throws -> Sample {
        let fits = try FITSFile(path: entry.url.path)
        guard let hdu = try fits.hdus().first(where: { $0.kind == .image && $0.elementCount > 0 }) else {
            throw InputError.notAnImage(file: entry.name, shape: [])
        }
        let image = try fits.readImage(.index(hdu.index), as: Float.self)
        return Sample(image: try PlanarImage(fits: image, file: entry.name), name: entry.name,
                      header: Sample.numericKeywords(image.header))
    }

    /// Reads and prepares `entry` as in training; its shape is checked against the model.
    public func prepared(_ entry: CatalogEntry) throws -> Sample {
        let sample = try prepare(read(entry), file: entry.name)
        try checkShape(sample.image.shape, file: entry.name)
        return sample
    }

    /// The inference stages applied to a read image of `file` (its shape is not checked). A
    /// single-object image without one measured pixel is an error, not a row predicted from
    /// fill values.
    public func prepare(_ input: Sample, file: String) throws -> Sample {
        try checkHasData(input, file: file)
        return try preparation.prepare(input, training: false)
    }

    /// `prepare` in two steps: the image after observation matching and neighbour masking
    /// (counts, as `fittingSky` needs it), then the input the network takes.
    public func prepareInSteps(_ input: Sample, file: String) throws -> (matched: Sample, prepared: Sample) {
        try checkHasData(input, file: file)
        let stages = preparation.stages
        let matched = try Preparation(Array(stages[..<(stages.count - ownStages.count)])).prepare(input, training: false)
        return (matched, try Preparation(ownStages).prepare(matched, training: false))
    }

    func checkHasData(_ input: Sample, file: String) throws {
        guard rawInput || task == .segment || input.image.pixels.isEmpty || input.image.pixels.contains(where: \.isFinite) else {
            throw InputError.noData(file: file, shape: input.image.shape)
        }
    }

    /// The `[C, H, W]` the network takes (any H, W for segmentation, which tiles).
    public var expectedShape: [Int] {
        if !rawInput, let shape = recipe?.inputShape, task != .segment { return shape }
        return [architecture.inChannels, -1, -1]
    }

    /// A prepared image that the model cannot take is a model/data mismatch, named with both shapes.
    public func checkShape(_ shape: [Int], file: String) throws {
        let expected = expectedShape
        let matches = shape.count == 3 && zip(shape, expected).allSatisfy { $1 < 0 || $0 == $1 }
        if !matches {
            throw PipelineError.inputMismatch(file: file, received: shape, expected: expected, model: path)
        }
    }

    // MARK: - Network

    /// Posterior draws per input kept in each `PosteriorEstimate.samples` (0: none), for
    /// `outputs.posterior_samples` and `evaluate`; at most the recipe's `posteriorDraws`.
    public var keptPosteriorSamples = 0
    /// The seed of the posterior draws: the same batch gives the same draws.
    public var posteriorSeed: UInt64 = 0x5EED_F10E

    /// Whether the network is a posterior model (an encoder and a flow).
    public var isPosterior: Bool { !raw && network is PosteriorRegressor }

    /// The draws per input behind a posterior model's medians and percentiles.
    public var posteriorDraws: Int { recipe?.posteriorDraws ?? 1000 }

    /// The density of the network's pooled features (`ModelRecipe.featureDensity`) of a class
    /// model or a regression (a ResNet, or a posterior model with a ResNet encoder): each
    /// result carries its distance.
    var featureDensity: (FeatureDensity, any FeatureExtractor)? {
        guard !raw, let density = recipe?.featureDensity, let extractor = featureExtractor else { return nil }
        return (density, extractor)
    }

    /// The network as a `FeatureExtractor` for a task whose rows can carry a feature distance.
    var featureExtractor: (any FeatureExtractor)? {
        guard !raw, [.classify, .lens, .regress].contains(task), let extractor = network as? any FeatureExtractor,
              extractor.featureCount != nil else { return nil }
        return extractor
    }

    /// The rows of a `[N, D]` tensor.
    static func rows(_ matrix: Tensor) -> [[Float]] {
        let d = matrix.shape[1], values = matrix.scalars
        return (0..<matrix.shape[0]).map { Array(values[($0 * d)..<(($0 + 1) * d)]) }
    }

    /// The `dihedralView`s a ResNet's outputs are averaged over (`Architecture.views`: 1, the 4
    /// rotations, or 8 with their mirror images); a posterior model averages inside itself.
    var averagedViews: [Int] {
        guard [.classify, .lens, .regress].contains(task), architecture.name != .resnet18Flow,
              let views = architecture.views, let indices = PosteriorRegressor.viewIndices(views) else { return [0] }
        return indices
    }

    /// The network's output `[N, K]` for a batch `[N, C, H, W]`, and with `features` its pooled
    /// penultimate features `[N, D]` (nil without a `featureExtractor`). A ResNet class or
    /// regression model with `views` runs the batch's rotations (and mirror images) as one batch
    /// and averages both per image (square images: a rectangle has no quarter turns).
    func outputAndFeatures(_ batch: Tensor, features: Bool) -> (output: Tensor, features: Tensor?) {
        let views = batch.rank == 4 && batch.shape[2] == batch.shape[3] ? averagedViews : [0]
        let input = views.count > 1 ? Tensor.concatenate(views.map { batch.dihedralView($0) }, axis: 0) : batch
        let perImage = { (rows: Tensor) in
            views.count > 1 ? rows.reshaped(to: [views.count, batch.shape[0], rows.shape[1]]).mean(axes: [0]) : rows
        }
        return withNoGrad {
            guard features, let extractor = featureExtractor else { return (perImage(network(input)), nil) }
            let (f, output) = extractor.featuresAndOutput(input)
            return (perImage(output), perImage(f))
        }
    }

    /// Runs a batch `[N, C, H, W]` and returns one result per image.
    public func predict(batch: Tensor) -> [Prediction] {
        guard let (density, _) = featureDensity else { return results(network: outputAndFeatures(batch, features: false).output) }
        let (output, features) = outputAndFeatures(batch, features: true)
        return zip(results(network: output), Self.rows(features!)).map { prediction, feature in
            var prediction = prediction
            prediction.featureDistance = try? density.distance(feature)
            return prediction
        }
    }

    /// The results of the network's output for a batch: a posterior model's draws, else `results(_:)`.
    func results(network output: Tensor) -> [Prediction] {
        guard isPosterior, let posterior = network as? PosteriorRegressor, let recipe else { return results(output) }
        return posteriorResults(context: output, model: posterior, scaling: recipe.targetScaling)
    }

    /// `prediction` as the run reports it for a file judged `domain`: a posterior flagged
    /// `neighbours`, `sky` or `correlated_noise` gets the intervals the recipe's `intervalScales`
    /// widen; with two, the factors recorded for the pair (`neighbours+sky`), else the larger
    /// factor per target; with none, the factors of `none` (the recalibration on clean data). A
    /// profile fit's posterior (`ProfileRefinement.source`) takes that key's factors instead.
    public func reported(_ prediction: Prediction, domain: DomainCheck?) -> Prediction {
        guard case let .posterior(estimate) = prediction, let all = recipe?.intervalScales,
              let scaling = recipe?.targetScaling else { return prediction }
        let usable = { (scales: [[Double]]?) in scales.flatMap { $0.count == scaling.names.count ? $0 : nil } }
        if estimate.source == ProfileRefinement.source {
            return usable(all[ProfileRefinement.source]).map { .posterior(scaling.widened(estimate, by: $0)) } ?? prediction
        }
        guard let domain else { return prediction }
        let flags = domain.outside.filter { $0 != ModelRecipe.unflagged && all[$0] != nil }.sorted()
        var chosen = usable(all[flags.isEmpty ? ModelRecipe.unflagged : flags.joined(separator: "+")])
        if chosen == nil {
            for flag in flags {
                guard let other = usable(all[flag]) else { continue }
                chosen = chosen.map { zip($0, other).map { pair in zip(pair.0, pair.1).map { Swift.max($0, $1) } } } ?? other
            }
        }
        guard let scales = chosen else { return prediction }
        return .posterior(scaling.widened(estimate, by: scales))
    }

    /// A posterior model's results: `posteriorDraws` flow samples per input (batched, the
    /// inputs of a batch drawn together), turned into medians and percentiles.
    func posteriorResults(context: Tensor, model: PosteriorRegressor, scaling: TargetScaling) -> [Prediction] {
        let n = context.shape[0], draws = posteriorDraws, k = model.features
        var generator = SeededGenerator(seed: posteriorSeed)
        let samples = withNoGrad { model.sample(context: context, count: draws, generator: &generator) }
        return withExtendedLifetime(samples) {
            let all = UnsafeBufferPointer(start: samples.storage.pointer, count: n * draws * k)
            return Threading.parallelMap(n, costPerItem: draws * k * 16) { i in
                .posterior(scaling.posterior(UnsafeBufferPointer(rebasing: all[(i * draws * k)..<((i + 1) * draws * k)]),
                                             keepSamples: keptPosteriorSamples))
            }
        }
    }

    /// Runs images in batches of up to `batchSize` consecutive images of one shape.
    public func predict(_ images: [PlanarImage], batchSize: Int = 64) -> [Prediction] {
        var results = [Prediction]()
        var start = 0
        while start < images.count {
            var end = start + 1
            while end < images.count && end - start < batchSize && images[end].shape == images[start].shape { end += 1 }
            let chunk = images[start..<end]
            results += predict(batch: Tensor(shape: [chunk.count] + images[start].shape, data: chunk.flatMap(\.pixels)))
            start = end
        }
        return results
    }

    /// Network outputs `[N, K]` → one typed result per row.
    public func results(_ output: Tensor) -> [Prediction] {
        let width = output.shape[1]
        let values = output.scalars
        return (0..<output.shape[0]).map { i in
            let row = values[(i * width)..<((i + 1) * width)]
            guard !raw else { return .logits(row.map(Double.init)) }
            switch task {
            case .classify, .lens, .lightcurves:
                return .classes(ClassProbabilities(logits: row, temperature: recipe?.temperature ?? 1))
            case .regress:
                let recipe = recipe!
                return .regression(recipe.targetScaling.estimate(Array(row), uncertainty: recipe.predictsUncertainty))
            case .segment, .deblend, .generate:
                return .logits(row.map(Double.init))
            }
        }
    }
}
