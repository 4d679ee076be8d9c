import Autograd
import Cluster
import FITS
import Foundation
import NN
import Preprocessing
import Training

extension PipelineRunner {
    /// Trains the pipeline's model from simulated or real FITS files and writes a
    /// self-describing model file (weights + architecture + recipe), its history
    /// (CSV) and training curves (PNG). An interrupted run (Ctrl-C, a crash after
    /// an epoch) resumes from its checkpoint when started again. `cancellation` (set by the
    /// tool on Ctrl-C) stops training after the current batch, with the checkpoint saved.
    ///
    /// Launched by mpirun (or srun) with several processes, it trains data-parallel: each
    /// process trains on its part of every batch, gradients are summed over the processes
    /// (`model.train.bucket_mb`), and rank 0 alone writes the checkpoint, history, curves,
    /// model file and progress. Every process reads the checkpoint to resume (a shared file system).
    public func train(cancellation: CancellationFlag? = nil) throws -> RunSummary {
        if config.task == .lightcurves { return try trainLightCurves(cancellation: cancellation) }
        if config.task == .generate { return try trainGenerator(cancellation: cancellation) }
        let start = Date()
        let comm = communicator
        let writes = comm.rank == 0
        let t = config.model.train!
        guard let arch = config.model.architecture else {
            throw PipelineError.unsupported("\(pipelinePath): model.train needs model.architecture.")
        }
        let task = config.task
        let classNames = config.input.classNames
        let labelColumn = (task == .classify || task == .lens) ? (config.input.labelColumn ?? "label") : nil
        let targetNames = task == .regress ? config.input.targetColumns : []
        if task == .regress && targetNames.isEmpty {
            throw PipelineError.unsupported("\(pipelinePath): a regression pipeline needs input.target_columns.")
        }
        guard let dataPath = options.input.map({ resolveArgument($0).path }) ?? t.data.map({ resolve($0).path })
                ?? config.input.path.map({ resolve($0).path }) else { throw PipelineError.noInput(pipeline: pipelinePath) }
        var outlierExposure = false
        if case let .crossEntropy(_, outsideWeight) = t.loss, outsideWeight > 0 {
            guard task == .classify else {
                throw PipelineError.unsupported("\(pipelinePath): loss.cross_entropy.outside_weight trains a classifier on rows "
                                                + "of none of its classes (task: classify), not task \(task.rawValue).")
            }
            outlierExposure = true
        }
        let all = try Catalog.resolve(dataPath, labelColumn: labelColumn, classNames: classNames, targetColumns: targetNames,
                                      allowOutside: outlierExposure)
        var training = all, validation: Catalog?
        if let v = t.validation {
            validation = try Catalog.resolve(resolve(v).path, labelColumn: labelColumn, classNames: classNames,
                                             targetColumns: targetNames, allowOutside: outlierExposure)
        } else if t.validationSplit > 0 {
            (training, validation) = all.split(validationFraction: t.validationSplit, seed: t.seed)
        }
        guard training.count > 0 else { throw TrainingError.emptyData(what: dataPath) }

        let input = FITSInput(hdu: config.input.hdu ?? 0, bands: config.input.bands, bandFiles: config.input.bandFiles)
        if task == .deblend { try checkDeblendTraining(arch, t) }
        if t.adversarial != nil {
            guard task == .deblend else {
                throw PipelineError.unsupported("\(pipelinePath): model.train.adversarial trains a deblender (task: deblend, "
                                                + "pix2pix) or a generator (task: generate), not task \(task.rawValue).")
            }
            try checkAdversarialTraining(t)
        }
        let load = task == .deblend ? imagePairLoader(input) : sampleLoader(input, withTruth: task == .segment)
        let preparation = Preparation(config.stages, seed: t.seed)
        let first = try Preparation(preparation.inferenceStages).prepare(try load(training.entries[0]), training: false)
        var inputShape = first.image.shape
        // A deblender's samples hold the blend's bands then the truth's.
        if task == .deblend { inputShape[0] /= 2 }

        // Targets: regression learns standardised values; their scale goes into the recipe.
        var scaling: TargetScaling?
        if task == .regress {
            var bounds: [[Double]]?
            if !config.input.targetBounds.isEmpty {
                bounds = try targetNames.map { name in
                    guard let range = config.input.targetBounds[name] else {
                        throw PipelineError.unsupported("\(pipelinePath): input.target_bounds names no range for '\(name)'; "
                                                        + "give one for every target column or none.")
                    }
                    return range
                }
            }
            if arch.name == .resnet18Flow && bounds == nil {
                throw PipelineError.unsupported("\(pipelinePath): resnet18_flow needs input.target_bounds (the prior range of "
                                                + "every target) for its unbounded logit space.")
            }
            let fitted = try TargetScaling(fitting: training, names: targetNames, logTargets: config.input.logTargets,
                                           bounds: bounds)
            for entry in validation?.entries ?? [] { _ = try fitted.learnedValues(entry.targets, file: entry.name) }
            scaling = fitted
        }
        let posterior = arch.name == .resnet18Flow
        if posterior && (task != .regress || ![.negativeLogLikelihood, .crossEntropy(labelSmoothing: 0)].contains(t.loss)) {
            throw PipelineError.unsupported("\(pipelinePath): resnet18_flow is a regression model trained by "
                                            + "loss: negative_log_likelihood (task: regress).")
        }
        if !posterior && t.loss == .negativeLogLikelihood {
            throw PipelineError.unsupported("\(pipelinePath): loss negative_log_likelihood needs a posterior model "
                                            + "(architecture resnet18_flow).")
        }
        let loss = posterior ? .negativeLogLikelihood : lossFunction(t.loss, task: task)
        let uncertainty = loss == .gaussianNegativeLogLikelihood
        let outputs: Int
        switch task {
        case .classify, .lens, .lightcurves: outputs = classNames.isEmpty ? arch.classes : classNames.count
        case .regress: outputs = posterior ? arch.classes : targetNames.count * (uncertainty ? 2 : 1)
        case .segment: outputs = arch.classes
        case .deblend: outputs = inputShape[0]
        case .generate: preconditionFailure("train: generators are trained by trainGenerator")
        }
        if (task == .classify || task == .lens) && loss.usesClassLabels {
            // Catalogs without class names hold bare indices: each must be one of the model's classes.
            for catalog in [training] + (validation.map { [$0] } ?? []) {
                let misfit = catalog.entries.first { entry in
                    entry.label.map { !(0..<outputs).contains($0) && !(outlierExposure && $0 == OutsideClass.label) } ?? false
                }
                if let misfit {
                    throw PipelineError.unsupported("\(pipelinePath): \(catalog.source) labels \(misfit.name) as class \(misfit.label!); "
                                                    + "the model has \(outputs) classes (labels 0 to \(outputs - 1)"
                                                    + (outlierExposure ? ", or '\(OutsideClass.name)')." : ")."))
                }
            }
        }
        // A posterior model's header channels join its flow's context (PosteriorRegressor).
        let headerChannels = config.stages.filter(\.isHeaderChannel).count
        var flow = arch.flow
        flow?.features = targetNames.count
        var widths = arch.widths.isEmpty ? nil : arch.widths
        if widths == nil, let base = arch.width, [.resnet18, .resnet34, .resnet18Flow].contains(arch.name) { widths = ResNet.stageWidths(base: base) }
        let architecture = Architecture(name: arch.name, inChannels: inputShape[0],
                                        classes: outputs, widths: widths, smallImageStem: arch.smallImageStem,
                                        stemPool: arch.stemPool ? nil : false,
                                        imageSize: arch.name == .cnn ? inputShape[1] : nil, flow: flow,
                                        contextChannels: posterior && headerChannels > 0 ? headerChannels : nil,
                                        views: arch.views)
        let initialization = t.seed &+ 0x5EED
        let model: Model
        if let pretrained = t.pretrained {
            let url = resolve(pretrained)
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw PipelineError.missingFile(path: url.path, what: "pretrained weights (model.train.pretrained)")
            }
            let (tuned, report) = try Model.fineTuning(architecture, from: url, seed: initialization)
            model = tuned
            log("fine-tuning from \(pretrained): loaded \(report.loaded.count) tensors"
                + (report.shapeMismatches.isEmpty ? "" : ", new: " + report.shapeMismatches.map(\.key).joined(separator: ", ")))
        } else {
            model = Model(try architecture.makeModel(seed: initialization))
        }
        let network = model.network
        if !t.freeze.isEmpty { model.freeze(prefixes: t.freeze) }
        model.compile(optimizer: optimizerKind(t), learningRate: Float(t.learningRate), loss: loss,
                      metrics: posterior ? [] : metrics(task), schedule: schedule(t), gradientClipNorm: t.gradientClip.map(Float.init),
                      layerRateDecay: t.layerDecay.map(Float.init))

        let targets: CatalogBatchSource.TargetKind = task == .segment ? .pixelClasses : task == .deblend ? .pixelValues
            : scaling.map { .values($0) } ?? .classes
        let source = CatalogBatchSource(catalog: training, batchSize: t.batchSize, preparation: preparation, training: true,
                                        seed: t.seed, targets: targets, threads: config.run.threads, load: load)
        let validationSource = validation.map {
            CatalogBatchSource(catalog: $0, batchSize: t.batchSize, preparation: preparation, training: false, seed: t.seed,
                               targets: targets, threads: config.run.threads, load: load)
        }
        var recipe = ModelRecipe(task: task, stages: config.stages, input: config.input, inputShape: inputShape,
                                 classNames: classNames, targetScaling: scaling, predictsUncertainty: uncertainty,
                                 observation: config.observation, posteriorDraws: posterior ? 1000 : nil)
        recipe.provenance = ["pipeline": pipelinePath, "data": options.input ?? t.data ?? "", "epochs": String(t.epochs),
                             "seed": String(t.seed), "trained": ISO8601DateFormatter().string(from: Date()),
                             "history": resolve(t.save).deletingPathExtension().lastPathComponent + ".history.csv"]
        if let adversarial = t.adversarial {
            return try trainAdversarial(adversarial, network: network, architecture: architecture, training: training,
                                        source: source, validation: validationSource, recipe: recipe, start: start,
                                        cancellation: cancellation)
        }

        let (save, stem, checkpoint, allCallbacks) = try trainingFiles(model, t, validating: validation != nil)
        // In an MPI job rank 0 alone writes the history and the checkpoint.
        let callbacks = writes ? allCallbacks : allCallbacks.filter { !($0 is CSVLogger || $0 is ModelCheckpoint) }
        log("training \(arch.name.rawValue) (\(network.parameterCount) parameters) on \(training.count) files"
            + (validation.map { ", validating on \($0.count)" } ?? "") + ", input \(inputShape)"
            + (comm.size > 1 ? ", \(comm.size) processes with \(t.batchSize / comm.size)-\((t.batchSize + comm.size - 1) / comm.size) "
               + "images of every batch of \(t.batchSize) each, \(Threading.workerCount) threads per process"
               + (t.syncBatchNorm ? ", batch norm synchronised over the processes" : "") : ""))
        if comm.size > 1 && t.batchSize < comm.size {
            throw PipelineError.unsupported("\(pipelinePath): model.train.batch_size \(t.batchSize) is smaller than the "
                                            + "\(comm.size) processes: every process needs at least one image of each batch.")
        }
        let parallel = comm.size > 1
            ? DataParallel(collectives: comm, bucketBytes: Int(t.bucketMB * 1_048_576),
                           synchronisedBatchNorm: t.syncBatchNorm) : nil
        let history = try model.fit(source, epochs: t.epochs, validation: validationSource, classWeights: t.classWeights?.map(Float.init),
                                    callbacks: callbacks, seed: t.seed, verbose: !options.quiet && writes, cancellation: cancellation,
                                    interruptCheckpoint: writes ? checkpoint : nil, parallel: parallel)
        guard writes else {
            return RunSummary(done: training.count, failed: 0, resumed: 0, seconds: Date().timeIntervalSince(start),
                              outputs: [], errorsFile: nil)
        }

        network.eval()
        try ModelFile(model: network, architecture: architecture, preprocessing: recipe.json).write(to: save)
        let curves = URL(fileURLWithPath: stem.path + "-curves.png")
        try TrainingPlots.curves(history, title: (config.name.isEmpty ? "TRAINING" : config.name.uppercased())).write(to: curves)
        try? FileManager.default.removeItem(at: checkpoint)
        log("saved \(save.path) and \(curves.lastPathComponent)")
        return RunSummary(done: training.count, failed: 0, resumed: 0, seconds: Date().timeIntervalSince(start),
                          outputs: [save.path, curves.path], errorsFile: nil)
    }

    /// The model file, its stem, the checkpoint (resumed from unless `--fresh`) and the
    /// callbacks of every training run: history CSV, checkpoint, early stopping, plateau.
    func trainingFiles(_ model: Model, _ t: TrainConfig, validating: Bool) throws
        -> (save: URL, stem: URL, checkpoint: URL, callbacks: [TrainingCallback]) {
        let (save, stem, checkpoint) = try trainingPaths(t) { try model.resume(from: $0); return model.completedEpochs }
        var callbacks: [TrainingCallback] = [CSVLogger(url: URL(fileURLWithPath: stem.path + ".history.csv")),
                                             ModelCheckpoint(url: checkpoint)]
        let monitor = validating ? "val_loss" : "loss"
        if let patience = t.earlyStoppingPatience { callbacks.append(EarlyStopping(monitor: monitor, patience: patience)) }
        if case let .plateau(factor, patience) = t.schedule {
            callbacks.append(ReduceLearningRateOnPlateau(monitor: monitor, factor: factor, patience: patience))
        }
        return (save, stem, checkpoint, callbacks)
    }

    /// The model file, its stem and the checkpoint; `resume` (which returns the epochs the
    /// checkpoint completed) runs when the checkpoint exists, unless `--fresh`.
    func trainingPaths(_ t: TrainConfig, resume: (URL) throws -> Int) throws -> (save: URL, stem: URL, checkpoint: URL) {
        let save = resolve(t.save)
        let stem = save.deletingPathExtension()
        let checkpoint = t.checkpoint.map(resolve) ?? URL(fileURLWithPath: stem.path + ".checkpoint.safetensors")
        if FileManager.default.fileExists(atPath: checkpoint.path) && !options.fresh {
            let epochs = try resume(checkpoint)
            log("resuming from \(checkpoint.path) after epoch \(epochs)")
        }
        return (save, stem, checkpoint)
    }

    /// A deblender is a U-Net trained on pixel values (L1, L2 or Huber) whose stages scale the
    /// blend and its truth alike and can be undone (`Predictor.isAffineInCounts`), with flips
    /// and quarter turns as the only augmentations (they move both images alike).
    func checkDeblendTraining(_ arch: ArchitectureConfig, _ t: TrainConfig) throws {
        guard arch.name == .unet else {
            throw PipelineError.unsupported("\(pipelinePath): a deblend model is a U-Net (model.architecture.name: unet), "
                                            + "not \(arch.name.rawValue).")
        }
        switch t.loss {
        case .mae, .mse, .huber: break
        default:
            throw PipelineError.unsupported("\(pipelinePath): a deblend model learns pixel values: model.train.loss is "
                                            + "mae (L1), mse or huber.")
        }
        for stage in config.stages where !Predictor.isAffineInCounts(stage) {
            if case .augment = stage, ["flip", "rotate90"].contains(stage.name) { continue }
            throw PipelineError.unsupported("\(pipelinePath): stage '\(stage.name)' cannot be used to train a deblend model: "
                                            + "its stages must scale the blend and its truth alike and be undone at inference "
                                            + "(fill_blanks, scale_by_noise with a keyword or a value; augmentations flip, rotate90).")
        }
    }

    func lossFunction(_ choice: TrainConfig.LossChoice, task: PipelineTask) -> LossFunction {
        switch (choice, task) {
        case (.crossEntropy, .segment): return .pixelCrossEntropy()
        case let (.crossEntropy(smoothing, outsideWeight), _):
            return task == .regress ? .gaussianNegativeLogLikelihood
                : .sparseCategoricalCrossentropy(labelSmoothing: Float(smoothing), outsideWeight: Float(outsideWeight))
        case (.binaryCrossEntropy, _): return .binaryCrossentropy
        case (.mse, _): return .meanSquaredError
        case (.mae, _): return .meanAbsoluteError
        case let (.huber(delta), _): return .huber(delta: Float(delta))
        case (.gaussianNLL, _): return .gaussianNegativeLogLikelihood
        case (.negativeLogLikelihood, _): return .negativeLogLikelihood
        case let (.pixelCrossEntropy(dice), _): return .pixelCrossEntropy(diceWeight: Float(dice))
        }
    }

    func optimizerKind(_ t: TrainConfig) -> OptimizerKind {
        let wd = Float(t.weightDecay)
        switch t.optimizer {
        case let .sgd(momentum, nesterov): return .sgd(momentum: Float(momentum), nesterov: nesterov, weightDecay: wd)
        case .adam: return .adam(weightDecay: wd)
        case .adamW: return .adamW(weightDecay: wd > 0 ? wd : 0.01)
        case .rmsprop: return .rmsprop(weightDecay: wd)
        }
    }

    func schedule(_ t: TrainConfig) -> LearningRateSchedule {
        switch t.schedule {
        case .constant, .plateau: return .constant
        case let .step(every, gamma): return .step(stepSize: every, gamma: gamma)
        case let .exponential(gamma): return .exponential(gamma: gamma)
        case let .cosine(warmup, minimum):
            return .cosine(totalSteps: t.epochs, warmupSteps: warmup, warmupStartFactor: 0.1, minimum: minimum)
        case let .oneCycle(maxRate): return .oneCycle(maxRate: maxRate, totalSteps: t.epochs)
        }
    }

    func metrics(_ task: PipelineTask) -> [Metric] {
        switch task {
        case .classify, .lightcurves: return [.accuracy, .macroF1]
        case .lens: return [.accuracy, .rocAUC]
        case .regress: return [.rmse, .nmad]
        case .segment: return [.meanIoU(classes: [1, 2]), .pixelAccuracy]
        case .deblend, .generate: return []
        }
    }
}
