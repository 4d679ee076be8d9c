import AstroBase
import Autograd
import Foundation
import NN
import Plotting
import Preprocessing
import Training

extension PipelineRunner {
    /// Trains an unconditional DCGAN (`task: generate`) on the pipeline's images through the
    /// GAN API and writes the generator (the averaged weights when `ema_decay` is on) as a
    /// model file whose recipe records the stages, input shape and observation, so `astrolabe
    /// generate` writes its images back in counts. Also writes the history (CSV), curves and,
    /// after every epoch, a PNG of generated images; resumes from its checkpoint unless `--fresh`.
    func trainGenerator(cancellation: CancellationFlag?) throws -> RunSummary {
        let start = Date()
        let t = config.model.train!
        guard let arch = config.model.architecture, arch.name == .dcgan else {
            throw PipelineError.unsupported("\(pipelinePath): a generate pipeline trains model.architecture.name: dcgan, not "
                                            + "\(config.model.architecture?.name.rawValue ?? "nothing").")
        }
        guard communicator.size == 1 else {
            throw PipelineError.unsupported("\(pipelinePath): a generator trains in one process (not under mpirun).")
        }
        let adversarial = t.adversarial ?? AdversarialConfig()
        guard t.optimizer == .adam, t.loss == .crossEntropy(labelSmoothing: 0) else {
            throw PipelineError.unsupported("\(pipelinePath): a generator trains with Adam (β1 model.train.adversarial.beta1, "
                                            + "β2 0.999) against its adversary: leave model.train.optimizer and loss out "
                                            + "(model.train.adversarial sets the adversarial loss).")
        }
        if case .plateau = t.schedule {
            throw PipelineError.unsupported("\(pipelinePath): a generator's losses do not settle, so schedule: plateau has "
                                            + "nothing to follow; use constant, step, exponential, cosine or one_cycle (both networks' rates).")
        }
        guard adversarial.l1WeightSetting == nil else {
            throw PipelineError.unsupported("\(pipelinePath): model.train.adversarial.l1_weight belongs to a deblender "
                                            + "(task: deblend); a generator has no reconstruction term.")
        }
        try ImageGenerator.checkInvertible(config.stages, path: pipelinePath)
        guard let dataPath = options.input.map({ resolveArgument($0).path }) ?? t.data.map({ resolve($0).path })
                ?? config.input.path.map({ resolve($0).path }) else { throw PipelineError.noInput(pipeline: pipelinePath) }
        // input.label_column: a class-conditional generator over input.class_names.
        let classNames = config.input.classNames
        if config.input.labelColumn != nil && classNames.isEmpty {
            throw PipelineError.unsupported("\(pipelinePath): a class-conditional generator (input.label_column) needs "
                                            + "input.class_names, the classes in the order of their codes.")
        }
        let labelled = config.input.labelColumn != nil
        let training = try Catalog.resolve(dataPath, labelColumn: config.input.labelColumn, classNames: classNames)
        guard training.count > 0 else { throw TrainingError.emptyData(what: dataPath) }
        let classCount = labelled ? classNames.count : 0
        let input = FITSInput(hdu: config.input.hdu ?? 0, bands: config.input.bands, bandFiles: config.input.bandFiles)
        let load = sampleLoader(input, withTruth: false)
        let preparation = Preparation(config.stages, seed: t.seed)
        let inputShape = try Preparation(preparation.inferenceStages).prepare(try load(training.entries[0]), training: false).image.shape
        let (channels, size) = (inputShape[0], inputShape[1])
        guard inputShape[1] == inputShape[2], size >= 8, size & (size - 1) == 0 else {
            throw PipelineError.unsupported("\(pipelinePath): a DCGAN makes square images whose side is a power of two ≥ 8; "
                                            + "the prepared images are \(inputShape) (channels, height, width).")
        }
        let widths = arch.widths.isEmpty ? DCGANGenerator.widths(imageSize: size, width: arch.width ?? 64) : arch.widths
        guard 4 << widths.count == size else {
            throw PipelineError.unsupported("\(pipelinePath): dcgan widths \(widths) make \(4 << widths.count)-pixel images; "
                                            + "the data's are \(size) (give \(size.trailingZeroBitCount - 2) widths).")
        }
        let latent = arch.latent ?? 100
        let discriminatorWidth = adversarial.discriminatorWidth(for: .generate, generatorWidths: widths)
        let discriminatorWidths = widths.indices.map { discriminatorWidth << $0 }
        let emaDecay = adversarial.emaDecay(for: .generate)
        var seeds = LayerSeeds(t.seed &+ 0x5EED)
        let upsampling = arch.upsample ?? .transposed
        let generator = DCGANGenerator(latentDimension: latent, outputChannels: channels, widths: widths, upsampling: upsampling,
                                       classCount: classCount, seed: seeds.next())
        guard adversarial.discriminatorScales <= widths.count else {
            throw PipelineError.unsupported("\(pipelinePath): model.train.adversarial.discriminator_scales \(adversarial.discriminatorScales) "
                                            + "needs images of at least \(4 << adversarial.discriminatorScales) pixels; these are \(size) "
                                            + "(at most \(widths.count) scales).")
        }
        let discriminator: any Layer = adversarial.discriminatorScales > 1
            ? MultiScaleDiscriminator(inputChannels: channels + classCount, widths: discriminatorWidths, scaleCount: adversarial.discriminatorScales,
                                      spectralNorm: adversarial.spectralNorm, minibatchStdDevGroup: adversarial.minibatchStdDev,
                                      seed: seeds.next())
            : DCGANDiscriminator(inputChannels: channels + classCount, widths: discriminatorWidths,
                                 spectralNorm: adversarial.spectralNorm, minibatchStdDevGroup: adversarial.minibatchStdDev,
                                 seed: seeds.next())
        let gan = GAN(generator: generator, discriminator: discriminator,
                      conditioning: labelled ? .labelled(latentDimension: latent, classCount: classCount) : .unconditional(latentDimension: latent))
        let adam = OptimizerKind.adam(beta1: Float(adversarial.beta1), beta2: 0.999)
        let gRate = t.learningRate, dRate = adversarial.discriminatorLearningRate ?? t.learningRate
        gan.compile(generatorOptimizer: adam, generatorLearningRate: Float(gRate), discriminatorOptimizer: adam,
                    discriminatorLearningRate: Float(dRate), loss: adversarial.loss,
                    labelSmoothing: Float(adversarial.labelSmoothing), emaDecay: emaDecay.map(Float.init),
                    gradientPenalty: adversarial.gradientPenalty)

        let (save, stem, checkpoint) = try trainingPaths(t) { try gan.resume(from: $0); return gan.completedEpochs }
        let setRates = scheduleRates(gan, t, generatorRate: gRate, discriminatorRate: dRate)
        let source = CatalogBatchSource(catalog: training, batchSize: t.batchSize, preparation: preparation, training: true,
                                        seed: t.seed, targets: labelled ? .classes : .none, threads: config.run.threads, load: load)
        log("training dcgan (generator \(generator.parameterCount), discriminator \(discriminator.parameterCount) parameters) "
            + "on \(training.count) files, images \(inputShape), noise \(latent)")
        let samples = URL(fileURLWithPath: stem.path + "-samples.png")
        var recipe = ModelRecipe(task: .generate, stages: config.stages, input: config.input, inputShape: inputShape,
                                 classNames: labelled ? classNames : [], observation: config.observation)
        if labelled {
            var counts = [Int](repeating: 0, count: classCount)
            for entry in training.entries { if let label = entry.label, (0..<classCount).contains(label) { counts[label] += 1 } }
            recipe.classFrequencies = counts.map { Double($0) / Double(training.count) }
            log("class-conditional: " + zip(classNames, counts).map { "\($0.0) \($0.1)" }.joined(separator: ", ")
                + " training images; generate draws the classes as often")
        }
        let architecture = Architecture(name: .dcgan, inChannels: latent, classes: channels, widths: widths,
                                        noiseless: adversarial.observeNoise ? true : nil,
                                        upsample: upsampling == .transposed ? nil : upsampling.rawValue,
                                        labels: labelled ? classCount : nil)
        if adversarial.observeNoise {
            let noise = try ObservationNoise(recipe: recipe, path: pipelinePath)
            gan.measurement = { noise.measurement($0, seed: $1) }
            log(String(format: "the generator makes noiseless images; the discriminator sees them with sky noise of %g–%g counts "
                       + "and the sources' Poisson noise (observe_noise)", noise.skySigmaRange.lowerBound, noise.skySigmaRange.upperBound))
        }
        let selection = try adversarial.monitor.map {
            try GeneratorSelection($0, runner: self, copy: DCGANGenerator(latentDimension: latent, outputChannels: channels,
                                                                          widths: widths, upsampling: upsampling,
                                                                          classCount: classCount, seed: 0),
                                   table: URL(fileURLWithPath: stem.path + "-frechet.csv"))
        }
        let history = try gan.fit(source, epochs: t.epochs, checkpoint: checkpoint,
                                  historyCSV: URL(fileURLWithPath: stem.path + ".history.csv"),
                                  curves: URL(fileURLWithPath: stem.path + "-curves.png"), seed: t.seed,
                                  verbose: !options.quiet, cancellation: cancellation) { gan, epoch, _ in
            setRates(epoch + 1)
            if let selection {
                let distance = try selection.measure(gan.generatorWeights(averaged: true), epoch: epoch + 1,
                                                     architecture: architecture, recipe: recipe, seed: t.seed)
                log(String(format: "epoch %d: Fréchet distance %.3f to %@ (best %.3f, epoch %d)", epoch + 1, distance,
                           selection.monitor.reference, selection.best?.distance ?? distance, selection.best?.epoch ?? epoch + 1))
            }
            guard adversarial.sampleCount > 0 else { return }
            // The same noise every epoch: how the (averaged) generator's images evolve.
            let images = gan.generate(count: adversarial.sampleCount, seed: t.seed)
            var sheet = ContactSheet(columns: 8, cellSize: 64, title: "EPOCH \(epoch + 1)")
            let plane = size * size
            for i in 0..<adversarial.sampleCount {
                let band = Array(images.scalars[(i * channels * plane)..<(i * channels * plane + plane)])
                sheet.add(gray: band.map { UInt8(max(0, min(255, ($0 + 1) * 127.5))) }, width: size, height: size, label: "")
            }
            try sheet.write(to: samples)
        }

        recipe.provenance = ["pipeline": pipelinePath, "data": options.input ?? t.data ?? "", "epochs": String(t.epochs),
                             "seed": String(t.seed), "trained": ISO8601DateFormatter().string(from: Date()),
                             "history": stem.lastPathComponent + ".history.csv",
                             "weights": emaDecay.map { "moving average of the generator's weights, decay \($0)" }
                                ?? "the generator's last weights",
                             "adversarial": "\(adversarial.loss.rawValue), label smoothing \(adversarial.labelSmoothing), discriminator "
                                + "widths \(discriminatorWidths)\(adversarial.spectralNorm ? " spectrally normalised" : "")"
                                + (adversarial.minibatchStdDev > 0 ? ", minibatch standard deviation over groups of \(adversarial.minibatchStdDev)" : "")
                                + (adversarial.discriminatorScales > 1 ? ", at \(adversarial.discriminatorScales) resolutions" : "")
                                + adversarial.gradientPenaltyProvenance
                                + (adversarial.observeNoise ? "; generated images observed with the observation's noise" : "")]
        var weights = gan.generatorWeights(averaged: true)
        if let selection, let best = selection.best {
            weights = best.weights
            recipe.provenance?["selected"] = String(format: "epoch %d of those run here (to %d): Fréchet distance %.3f to %@ "
                + "(%d images, features of %@; per epoch in %@)", best.epoch, history.epochs, best.distance,
                selection.monitor.reference, selection.monitor.count, selection.monitor.classifier, selection.table.lastPathComponent)
        }
        for (key, tensor) in generator.stateDict() { if let w = weights[key] { tensor.assign(w) } }
        generator.eval()
        try ModelFile(model: generator, architecture: architecture, preprocessing: recipe.json).write(to: save)
        try? FileManager.default.removeItem(at: checkpoint)
        log("saved \(save.path) after \(history.epochs) epochs")
        return RunSummary(done: training.count, failed: 0, resumed: 0, seconds: Date().timeIntervalSince(start),
                          outputs: [save.path, stem.path + "-curves.png", samples.path], errorsFile: nil)
    }
}

/// A generator's model selection by Fréchet distance (`model.train.adversarial.monitor`): the
/// reference images' classifier features once, then after every epoch the averaged generator's
/// images (in counts, drawn from fixed noise), their distance, and the weights of the best epoch.
final class GeneratorSelection {
    let monitor: GeneratorMonitor
    let features: ClassifierFeatures
    let reference: [[Double]]
    let copy: DCGANGenerator
    let table: URL
    private(set) var best: (epoch: Int, distance: Double, weights: [String: Tensor])?

    init(_ monitor: GeneratorMonitor, runner: PipelineRunner, copy: DCGANGenerator, table: URL) throws {
        self.monitor = monitor
        features = try ClassifierFeatures(contentsOf: runner.resolve(monitor.classifier))
        let catalog = try Catalog.resolve(runner.resolve(monitor.reference).path)
        guard catalog.count >= 10 else {
            throw PipelineError.unsupported("\(runner.pipelinePath): model.train.adversarial.monitor.reference has \(catalog.count) "
                                            + "images; a Fréchet distance needs at least 10")
        }
        reference = try features.features(Catalog(entries: Array(catalog.entries.prefix(monitor.count)))).features
        self.copy = copy
        self.table = table
        try FileManager.default.createDirectory(at: table.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data("epoch,frechet_distance\n".utf8).write(to: table)
    }

    /// The distance of the generator with `weights` after `epoch`; kept when it is the best so far.
    func measure(_ weights: [String: Tensor], epoch: Int, architecture: Architecture, recipe: ModelRecipe, seed: UInt64) throws -> Double {
        for (key, tensor) in copy.stateDict() { if let w = weights[key] { tensor.assign(w) } }
        let generator = try ImageGenerator(network: copy, architecture: architecture, recipe: recipe, path: "monitor")
        let images = try features.features(generator.countSamples(count: monitor.count, seed: seed)).features
        let distance = try FrechetDistance.distance(images, reference)
        if distance < best?.distance ?? .infinity {
            best = (epoch, distance, weights.mapValues { Tensor(shape: $0.shape, data: $0.scalars) })
        }
        let handle = try FileHandle(forWritingTo: table)
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(String(format: "%d,%.6f\n", epoch, distance).utf8))
        return distance
    }
}
