import Foundation
import Preprocessing

extension TrainConfig: Decodable {
    /// The keys of `model.train`.
    enum Key: String, ConfigName {
        case data, validation, validationSplit = "validation_split", epochs, batchSize = "batch_size", optimizer
        case learningRate = "learning_rate", weightDecay = "weight_decay", gradientClip = "gradient_clip", loss
        case schedule, seed, classWeights = "class_weights", earlyStopping = "early_stopping", checkpoint, save
        case pretrained, freeze, layerDecay = "layer_decay", bucketMB = "bucket_mb", syncBatchNorm = "sync_batch_norm"
        case adversarial
    }

    /// The YAML names of the optimizers, losses and schedules.
    enum OptimizerName: String, ConfigName { case sgd, adam, adamw, rmsprop }
    enum LossName: String, ConfigName {
        case crossEntropy = "cross_entropy", binaryCrossEntropy = "binary_cross_entropy", mse, mae, huber
        case gaussianNLL = "gaussian_nll", pixelCrossEntropy = "pixel_cross_entropy"
        case negativeLogLikelihood = "negative_log_likelihood"
    }
    enum ScheduleName: String, ConfigName {
        case constant, step, exponential, cosine, oneCycle = "one_cycle", plateau
    }

    /// The parameter keys of the optimizers, losses and schedules that take any.
    enum SGDKey: String, ConfigName { case momentum, nesterov }
    enum CrossEntropyKey: String, ConfigName { case labelSmoothing = "label_smoothing", outsideWeight = "outside_weight" }
    enum HuberKey: String, ConfigName { case delta }
    enum PixelCrossEntropyKey: String, ConfigName { case diceWeight = "dice_weight" }
    enum StepKey: String, ConfigName { case everyEpochs = "every_epochs", gamma }
    enum ExponentialKey: String, ConfigName { case gamma }
    enum CosineKey: String, ConfigName { case warmupEpochs = "warmup_epochs", minimum }
    enum OneCycleKey: String, ConfigName { case maxRate = "max_rate" }
    enum PlateauKey: String, ConfigName { case factor, patience }

    public init(from decoder: Decoder) throws {
        let c = try StrictContainer(decoder, section: "model.train", keys: Key.self)
        data = try c.optional("data")
        validation = try c.optional("validation")
        validationSplit = try c.optional("validation_split") ?? (validation == nil ? 0.1 : 0)
        epochs = try c.optional("epochs") ?? 10
        batchSize = try c.optional("batch_size") ?? 32
        learningRate = try c.optional("learning_rate") ?? 1e-3
        weightDecay = try c.optional("weight_decay") ?? 0
        gradientClip = try c.optional("gradient_clip")
        seed = try c.optional("seed") ?? 0
        classWeights = try c.optional("class_weights")
        earlyStoppingPatience = try c.optional("early_stopping")
        checkpoint = try c.optional("checkpoint")
        save = try c.required("save")
        pretrained = try c.optional("pretrained")
        freeze = try c.optional("freeze") ?? []
        layerDecay = try c.optional("layer_decay")
        bucketMB = try c.optional("bucket_mb") ?? 4
        syncBatchNorm = try c.optional("sync_batch_norm") ?? false
        adversarial = try c.optional("adversarial")
        guard epochs > 0, batchSize > 0, learningRate > 0, (0..<1).contains(validationSplit) else {
            throw c.invalid("epochs", "model.train needs epochs, batch_size and learning_rate > 0 "
                            + "and validation_split in [0, 1).")
        }
        guard bucketMB > 0 else { throw c.invalid("bucket_mb", "model.train.bucket_mb must be positive.") }

        optimizer = .adam
        if let choice = try c.optional("optimizer", NamedChoiceBox.self)?.choice {
            let name = try choice.name(OptimizerName.self, what: "optimizer")
            let section = "optimizer \(name.rawValue)"
            switch name {
            case .sgd:
                let p = try choice.strict(section, keys: SGDKey.self)
                optimizer = .sgd(momentum: try p.optional("momentum") ?? 0.9, nesterov: try p.optional("nesterov") ?? false)
            case .adam: _ = try choice.strict(section, known: []); optimizer = .adam
            case .adamw: _ = try choice.strict(section, known: []); optimizer = .adamW
            case .rmsprop: _ = try choice.strict(section, known: []); optimizer = .rmsprop
            }
        }

        loss = .crossEntropy(labelSmoothing: 0)
        if let choice = try c.optional("loss", NamedChoiceBox.self)?.choice {
            let name = try choice.name(LossName.self, what: "loss")
            let section = "loss \(name.rawValue)"
            switch name {
            case .crossEntropy:
                let p = try choice.strict(section, keys: CrossEntropyKey.self)
                let smoothing: Double = try p.optional("label_smoothing") ?? 0
                let outsideWeight: Double = try p.optional("outside_weight") ?? 0
                guard (0..<1).contains(smoothing) else {
                    throw c.invalid("loss", "loss.cross_entropy.label_smoothing must be in [0, 1), got \(smoothing).")
                }
                guard outsideWeight >= 0, outsideWeight.isFinite else {
                    throw c.invalid("loss", "loss.cross_entropy.outside_weight must be a non-negative number, got \(outsideWeight).")
                }
                loss = .crossEntropy(labelSmoothing: smoothing, outsideWeight: outsideWeight)
            case .binaryCrossEntropy: _ = try choice.strict(section, known: []); loss = .binaryCrossEntropy
            case .mse: _ = try choice.strict(section, known: []); loss = .mse
            case .mae: _ = try choice.strict(section, known: []); loss = .mae
            case .huber:
                let p = try choice.strict(section, keys: HuberKey.self)
                loss = .huber(delta: try p.optional("delta") ?? 1)
            case .gaussianNLL: _ = try choice.strict(section, known: []); loss = .gaussianNLL
            case .negativeLogLikelihood: _ = try choice.strict(section, known: []); loss = .negativeLogLikelihood
            case .pixelCrossEntropy:
                let p = try choice.strict(section, keys: PixelCrossEntropyKey.self)
                loss = .pixelCrossEntropy(diceWeight: try p.optional("dice_weight") ?? 0)
            }
        }

        schedule = .constant
        if let choice = try c.optional("schedule", NamedChoiceBox.self)?.choice {
            let name = try choice.name(ScheduleName.self, what: "schedule")
            let section = "schedule \(name.rawValue)"
            switch name {
            case .constant: _ = try choice.strict(section, known: []); schedule = .constant
            case .step:
                let p = try choice.strict(section, keys: StepKey.self)
                schedule = .step(everyEpochs: try p.optional("every_epochs") ?? 10, gamma: try p.optional("gamma") ?? 0.1)
            case .exponential:
                let p = try choice.strict(section, keys: ExponentialKey.self)
                schedule = .exponential(gamma: try p.optional("gamma") ?? 0.95)
            case .cosine:
                let p = try choice.strict(section, keys: CosineKey.self)
                schedule = .cosine(warmupEpochs: try p.optional("warmup_epochs") ?? 0, minimum: try p.optional("minimum") ?? 0)
            case .oneCycle:
                let p = try choice.strict(section, keys: OneCycleKey.self)
                schedule = .oneCycle(maxRate: try p.optional("max_rate") ?? learningRate * 10)
            case .plateau:
                let p = try choice.strict(section, keys: PlateauKey.self)
                schedule = .plateau(factor: try p.optional("factor") ?? 0.1, patience: try p.optional("patience") ?? 3)
            }
        }
    }
}
