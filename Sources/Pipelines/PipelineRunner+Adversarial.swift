import Autograd
import Foundation
import NN
import Preprocessing
import Training

/// `model.train.adversarial`: how a network is trained against a discriminator through the GAN
/// API, for both tasks that do:
/// - `task: deblend`: pix2pix's conditional GAN (Isola et al. 2017,
///   https://arxiv.org/abs/1611.07004): the pipeline's U-Net is the generator, a PatchGAN
///   discriminator judges (blend, image) pairs, and the generator's loss is the adversarial term
///   plus `l1_weight` × the L1 distance to the truth (`model.train.loss: mae`);
/// - `task: generate`: an unconditional DCGAN (`model.architecture.name: dcgan`) against a
///   DCGAN discriminator, with `sample_count` generated images drawn after every epoch.
///
///     adversarial: {loss: non_saturating, label_smoothing: 0, ema_decay: 0.999, discriminator_width: 64,
///                   discriminator_learning_rate: 0.0002, spectral_norm: false, beta1: 0.5,
///                   r1_weight: 0, r1_step: 0.05,
///                   l1_weight: 100,       # deblend only
///                   sample_count: 64, observe_noise: false, minibatch_stddev: 0,
///                   discriminator_scales: 1}     # generate only
///
/// Both networks use Adam's or AdamW's β1 `beta1` (pix2pix's and DCGAN's 0.5); a deblender's
/// follow `model.train.optimizer` and `schedule` per epoch, a generator's are Adam at a
/// constant rate.
public struct AdversarialConfig: Equatable, Sendable {
    public var loss: AdversarialLoss = .nonSaturating
    /// One-sided: real samples' target is `1 - label_smoothing`.
    public var labelSmoothing: Double = 0
    /// The decay of the exponential moving average of the generator's weights, the weights
    /// saved; nil: the task's default (`emaDecay(for:)`), 0: the last weights.
    public var emaDecaySetting: Double?
    /// The discriminator's first width, doubled by each later layer; nil: the task's default
    /// (`discriminatorWidth(for:generatorWidths:)`).
    public var discriminatorWidthSetting: Int?
    /// The discriminator's rate (default `model.train.learning_rate`).
    public var discriminatorLearningRate: Double?
    public var spectralNorm: Bool = false
    /// A generator's discriminator gets a minibatch standard deviation channel before its last
    /// convolution over groups of this many images (`MinibatchStdDev`; ProGAN's 4); 0: none.
    public var minibatchStdDev: Int = 0
    /// A generator's discriminator judges the images at this many resolutions, each half the
    /// last (`MultiScaleDiscriminator`); 1: one `DCGANDiscriminator`.
    public var discriminatorScales: Int = 1
    /// γ of the discriminator's R1 gradient penalty on real samples (`GAN.gradientPenalty`);
    /// 0: none.
    public var r1Weight: Double = 0
    /// The finite-difference step σ of the R1 estimate, in the networks' input units (after
    /// the stages).
    public var r1Step: Double = 0.05
    /// Adam's (or AdamW's) first-moment decay for both networks.
    public var beta1: Double = 0.5
    /// pix2pix's λ: the weight of the L1 term in a deblender's loss (nil: 100). A generator has none.
    public var l1WeightSetting: Double?
    /// Generated images drawn to `<model>-samples.png` after every epoch of a generator (0: none;
    /// nil: 64). A deblender draws none.
    public var sampleCountSetting: Int?
    /// A generator's model selection: after every epoch its (averaged) weights draw `count`
    /// images, whose Fréchet distance to the `reference` images in a `classifier`'s features
    /// is measured; the saved generator is the epoch with the smallest (nil: the last epoch).
    public var monitor: GeneratorMonitor?
    /// A generator of noiseless images: its images are observed (`ObservationNoise`: the
    /// recorded observation's sky noise and the sources' Poisson noise) before the
    /// discriminator judges them against the (noisy) training images, and `generate` observes
    /// them the same way (AmbientGAN, Bora et al. 2018). false: the generator makes the noise too.
    public var observeNoise = false

    public var l1Weight: Double { l1WeightSetting ?? 100 }
    public var sampleCount: Int { sampleCountSetting ?? 64 }

    public init() {}

    /// The R1 penalty as `GAN.compile` takes it (nil: none).
    public var gradientPenalty: (weight: Float, step: Float)? {
        r1Weight > 0 ? (Float(r1Weight), Float(r1Step)) : nil
    }

    /// The R1 penalty's words in a model file's provenance ("" without one).
    var gradientPenaltyProvenance: String { r1Weight > 0 ? ", R1 penalty γ \(r1Weight) (step \(r1Step))" : "" }

    /// The generator's weight average: a DCGAN's 0.999 unless set, none for a deblender unless set.
    public func emaDecay(for task: PipelineTask) -> Double? {
        let decay = emaDecaySetting ?? (task == .generate ? 0.999 : 0)
        return decay == 0 ? nil : decay
    }

    /// The discriminator's first width: pix2pix's 64 for a deblender, the generator's last
    /// width for a DCGAN (its discriminator mirrors the generator), unless set.
    public func discriminatorWidth(for task: PipelineTask, generatorWidths: [Int] = []) -> Int {
        discriminatorWidthSetting ?? (task == .generate ? generatorWidths.last ?? 64 : 64)
    }
}

extension AdversarialConfig: Decodable {
    enum Key: String, ConfigName {
        case l1Weight = "l1_weight", loss, labelSmoothing = "label_smoothing", emaDecay = "ema_decay"
        case discriminatorWidth = "discriminator_width", discriminatorLearningRate = "discriminator_learning_rate"
        case spectralNorm = "spectral_norm", beta1, sampleCount = "sample_count", monitor, observeNoise = "observe_noise"
        case minibatchStdDev = "minibatch_stddev", discriminatorScales = "discriminator_scales"
        case r1Weight = "r1_weight", r1Step = "r1_step"
    }

    public init(from decoder: Decoder) throws {
        let c = try StrictKeyed<Key>(decoder, section: "model.train.adversarial")
        let d = AdversarialConfig()
        l1WeightSetting = try c.optional(.l1Weight)
        loss = try c.choice(.loss, Dictionary(uniqueKeysWithValues: AdversarialLoss.allCases.map { ($0.rawValue, $0) }))
            ?? d.loss
        labelSmoothing = try c.optional(.labelSmoothing) ?? d.labelSmoothing
        emaDecaySetting = try c.optional(.emaDecay)
        discriminatorWidthSetting = try c.optional(.discriminatorWidth)
        discriminatorLearningRate = try c.optional(.discriminatorLearningRate)
        spectralNorm = try c.optional(.spectralNorm) ?? d.spectralNorm
        beta1 = try c.optional(.beta1) ?? d.beta1
        sampleCountSetting = try c.optional(.sampleCount)
        monitor = try c.optional(.monitor)
        observeNoise = try c.optional(.observeNoise) ?? d.observeNoise
        minibatchStdDev = try c.optional(.minibatchStdDev) ?? d.minibatchStdDev
        discriminatorScales = try c.optional(.discriminatorScales) ?? d.discriminatorScales
        r1Weight = try c.optional(.r1Weight) ?? d.r1Weight
        r1Step = try c.optional(.r1Step) ?? d.r1Step
        guard r1Weight >= 0 else { throw c.invalid(.r1Weight, "r1_weight is the R1 penalty's γ, 0 for none; got \(r1Weight).") }
        guard r1Step > 0 else {
            throw c.invalid(.r1Step, "r1_step is the R1 estimate's finite-difference step (in the networks' input units), > 0; got \(r1Step).")
        }
        guard l1Weight >= 0 else { throw c.invalid(.l1Weight, "l1_weight must be >= 0, got \(l1Weight).") }
        guard (0..<1).contains(labelSmoothing) else {
            throw c.invalid(.labelSmoothing, "label_smoothing must be in [0, 1), got \(labelSmoothing).")
        }
        guard loss != .hinge || labelSmoothing == 0 else {
            throw c.invalid(.labelSmoothing, "the hinge loss has no labels to smooth: leave label_smoothing out or 0, got \(labelSmoothing).")
        }
        if let decay = emaDecaySetting, !(0..<1).contains(decay) {
            throw c.invalid(.emaDecay, "ema_decay must be in [0, 1) (0: the last weights), got \(decay).")
        }
        if let width = discriminatorWidthSetting, width <= 0 {
            throw c.invalid(.discriminatorWidth, "discriminator_width must be positive, got \(width).")
        }
        if let rate = discriminatorLearningRate, rate <= 0 {
            throw c.invalid(.discriminatorLearningRate, "discriminator_learning_rate must be positive, got \(rate).")
        }
        guard (0..<1).contains(beta1) else { throw c.invalid(.beta1, "beta1 must be in [0, 1), got \(beta1).") }
        guard minibatchStdDev >= 0 else {
            throw c.invalid(.minibatchStdDev, "minibatch_stddev is a group size (ProGAN's 4), 0 for none; got \(minibatchStdDev).")
        }
        guard discriminatorScales >= 1 else {
            throw c.invalid(.discriminatorScales, "discriminator_scales is a number of resolutions, 1 or more; got \(discriminatorScales).")
        }
        guard sampleCount >= 0 else { throw c.invalid(.sampleCount, "sample_count must be 0 or more, got \(sampleCount).") }
    }
}

/// `model.train.adversarial.monitor` of a generator: paths relative to the pipeline file.
public struct GeneratorMonitor: Equatable, Sendable {
    /// A folder or catalog of FITS images in counts (e.g. simulated ones not used in training).
    public var reference: String
    /// An image classifier's model file (a ResNet; the shipped morphology model).
    public var classifier: String
    /// Images drawn per epoch, and reference images read (at most).
    public var count: Int = 500
}

extension GeneratorMonitor: Decodable {
    enum Key: String, ConfigName { case reference, classifier, count }

    public init(from decoder: Decoder) throws {
        let c = try StrictKeyed<Key>(decoder, section: "model.train.adversarial.monitor")
        reference = try c.required(.reference)
        classifier = try c.required(.classifier)
        count = try c.optional(.count) ?? 500
        guard count >= 10 else { throw c.invalid(.count, "count must be at least 10 (a covariance of the features), got \(count).") }
    }
}

extension PipelineRunner {
    /// The settings of `model.train` that adversarial training does not use, named in an error.
    func checkAdversarialTraining(_ t: TrainConfig) throws {
        var unused = [String]()
        if t.adversarial?.sampleCountSetting != nil { unused.append("adversarial.sample_count (a generator's)") }
        if t.adversarial?.monitor != nil { unused.append("adversarial.monitor (a generator's)") }
        if t.adversarial?.observeNoise == true { unused.append("adversarial.observe_noise (a generator's)") }
        if (t.adversarial?.minibatchStdDev ?? 0) > 0 { unused.append("adversarial.minibatch_stddev (a generator's)") }
        if (t.adversarial?.discriminatorScales ?? 1) > 1 { unused.append("adversarial.discriminator_scales (a generator's)") }
        if t.loss != .mae { unused.append("loss (the reconstruction term is L1: loss: mae)") }
        if t.gradientClip != nil { unused.append("gradient_clip") }
        if t.classWeights != nil { unused.append("class_weights") }
        if t.earlyStoppingPatience != nil { unused.append("early_stopping") }
        if !t.freeze.isEmpty { unused.append("freeze") }
        if t.layerDecay != nil { unused.append("layer_decay") }
        if case .plateau = t.schedule { unused.append("schedule: plateau") }
        if communicator.size > 1 { unused.append("data-parallel processes (mpirun)") }
        guard unused.isEmpty else {
            throw PipelineError.unsupported("\(pipelinePath): model.train.adversarial (pix2pix) does not take "
                                            + unused.joined(separator: ", ") + ".")
        }
    }

    /// Sets both optimisers' rates for an epoch from `model.train.schedule` (each from its own
    /// base rate), first for the GAN's next epoch; the returned function sets them for a later one.
    func scheduleRates(_ gan: GAN, _ t: TrainConfig, generatorRate: Double, discriminatorRate: Double) -> (_ epoch: Int) -> Void {
        let schedule = schedule(t)
        let setRates = { (epoch: Int) in
            gan.generatorOptimizer?.learningRate = Float(schedule.rate(at: epoch, base: generatorRate))
            gan.discriminatorOptimizer?.learningRate = Float(schedule.rate(at: epoch, base: discriminatorRate))
        }
        setRates(gan.completedEpochs)
        return setRates
    }

    /// Trains `network` (the generator) against a PatchGAN with the GAN API, then writes the
    /// generator (its averaged weights with `ema_decay`) as the model file, with the history
    /// (CSV), the curves (PNG) and a checkpoint of both networks and their optimisers after
    /// every epoch, kept at the end (the model file holds the generator alone): a run started
    /// again resumes from it (unless `--fresh`), up to `model.train.epochs`.
    func trainAdversarial(_ a: AdversarialConfig, network: any Layer, architecture: Architecture, training: Catalog,
                          source: BatchSource, validation: BatchSource?, recipe: ModelRecipe, start: Date,
                          cancellation: CancellationFlag?) throws -> RunSummary {
        let t = config.model.train!
        let channels = architecture.inChannels + architecture.classes
        let width = a.discriminatorWidth(for: .deblend), emaDecay = a.emaDecay(for: .deblend)
        let discriminator = PatchDiscriminator(inputChannels: channels, width: width,
                                               spectralNorm: a.spectralNorm, seed: t.seed &+ 0xD15C)
        let gan = GAN(generator: network, discriminator: discriminator, conditioning: .conditional)
        var kind = optimizerKind(t)
        switch kind {
        case let .adam(_, beta2, epsilon, decay): kind = .adam(beta1: Float(a.beta1), beta2: beta2, epsilon: epsilon, weightDecay: decay)
        case let .adamW(_, beta2, epsilon, decay): kind = .adamW(beta1: Float(a.beta1), beta2: beta2, epsilon: epsilon, weightDecay: decay)
        default: break
        }
        let gRate = t.learningRate, dRate = a.discriminatorLearningRate ?? t.learningRate
        gan.compile(generatorOptimizer: kind, generatorLearningRate: Float(gRate), discriminatorOptimizer: kind,
                    discriminatorLearningRate: Float(dRate), loss: a.loss, labelSmoothing: Float(a.labelSmoothing),
                    reconstructionWeight: Float(a.l1Weight), emaDecay: emaDecay.map(Float.init), gradientPenalty: a.gradientPenalty)

        let (save, stem, checkpoint) = try trainingPaths(t) { try gan.resume(from: $0); return gan.completedEpochs }
        let setRates = scheduleRates(gan, t, generatorRate: gRate, discriminatorRate: dRate)
        log("training pix2pix: \(architecture.name.rawValue) generator (\(network.parameterCount) parameters) against a "
            + "PatchGAN (width \(width), \(discriminator.parameterCount) parameters) on \(training.count) files, "
            + "L1 weight \(a.l1Weight), \(a.loss.rawValue) loss" + (emaDecay.map { ", generator averaged (decay \($0))" } ?? ""))
        let historyCSV = URL(fileURLWithPath: stem.path + ".history.csv")
        let curves = URL(fileURLWithPath: stem.path + "-curves.png")
        let history = try gan.fit(source, epochs: t.epochs, validation: validation, checkpoint: checkpoint, historyCSV: historyCSV,
                                  curves: curves, seed: t.seed, verbose: !options.quiet, cancellation: cancellation) { gan, epoch, _ in
            setRates(epoch + 1)
        }

        var recipe = recipe
        recipe.provenance?["adversarial"] = "pix2pix: PatchGAN width \(width), L1 weight \(a.l1Weight), "
            + "\(a.loss.rawValue)" + (emaDecay.map { ", EMA \($0)" } ?? "")
            + a.gradientPenaltyProvenance
        network.eval()
        try gan.withAveragedGenerator {
            try ModelFile(model: network, architecture: architecture, preprocessing: recipe.json).write(to: save)
        }
        try TrainingPlots.curves(history, title: (config.name.isEmpty ? "PIX2PIX" : config.name.uppercased())).write(to: curves)
        log("saved \(save.path) and \(curves.lastPathComponent); kept \(checkpoint.lastPathComponent) (both networks and "
            + "optimisers): a larger model.train.epochs continues from it, --fresh starts over")
        return RunSummary(done: training.count, failed: 0, resumed: 0, seconds: Date().timeIntervalSince(start),
                          outputs: [save.path, curves.path], errorsFile: nil)
    }
}
