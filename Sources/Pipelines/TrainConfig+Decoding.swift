import Foundation
import Preprocessing

extension TrainConfig: Decodable {
    static let keys = [
        "data", "validation", "validation_split", "epochs", "batch_size", "optimizer", "learning_rate",
        "weight_decay", "gradient_clip", "loss", "schedule", "seed", "class_weights", "early_stopping",
        "checkpoint", "save", "pretrained", "freeze", "layer_decay",
    ]

    public init(from decoder: Decoder) throws {
        let c = try StrictContainer(decoder, section: "model.train", known: Self.keys)
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
        guard epochs > 0, batchSize > 0, learningRate > 0, (0..<1).contains(validationSplit) else {
            throw c.invalid("epochs", "model.train needs epochs, batch_size and learning_rate > 0 "
                            + "and validation_split in [0, 1).")
        }

        optimizer = .adam
        if c.has("optimizer") {
            let choice = try c.container.decode(NamedChoiceBox.self, forKey: ConfigKey("optimizer")).choice
            let names = ["sgd", "adam", "adamw", "rmsprop"]
            switch choice.name {
            case "sgd":
                let p = try choice.strict("optimizer sgd", known: ["momentum", "nesterov"])
                optimizer = .sgd(momentum: try p?.optional("momentum") ?? 0.9, nesterov: try p?.optional("nesterov") ?? false)
            case "adam": _ = try choice.strict("optimizer adam", known: []); optimizer = .adam
            case "adamw": _ = try choice.strict("optimizer adamw", known: []); optimizer = .adamW
            case "rmsprop": _ = try choice.strict("optimizer rmsprop", known: []); optimizer = .rmsprop
            default: throw choice.unknown("optimizer", among: names)
            }
        }

        loss = .crossEntropy(labelSmoothing: 0)
        if c.has("loss") {
            let choice = try c.container.decode(NamedChoiceBox.self, forKey: ConfigKey("loss")).choice
            let names = ["cross_entropy", "binary_cross_entropy", "mse", "mae", "huber", "gaussian_nll", "pixel_cross_entropy"]
            switch choice.name {
            case "cross_entropy":
                let p = try choice.strict("loss cross_entropy", known: ["label_smoothing"])
                loss = .crossEntropy(labelSmoothing: try p?.optional("label_smoothing") ?? 0)
            case "binary_cross_entropy": loss = .binaryCrossEntropy
            case "mse": loss = .mse
            case "mae": loss = .mae
            case "huber":
                let p = try choice.strict("loss huber", known: ["delta"])
                loss = .huber(delta: try p?.optional("delta") ?? 1)
            case "gaussian_nll": loss = .gaussianNLL
            case "pixel_cross_entropy":
                let p = try choice.strict("loss pixel_cross_entropy", known: ["dice_weight"])
                loss = .pixelCrossEntropy(diceWeight: try p?.optional("dice_weight") ?? 0)
            default: throw choice.unknown("loss", among: names)
            }
        }

        schedule = .constant
        if c.has("schedule") {
            let choice = try c.container.decode(NamedChoiceBox.self, forKey: ConfigKey("schedule")).choice
            let names = ["constant", "step", "exponential", "cosine", "one_cycle", "plateau"]
            switch choice.name {
            case "constant": schedule = .constant
            case "step":
                let p = try choice.strict("schedule step", known: ["every_epochs", "gamma"])
                schedule = .step(everyEpochs: try p?.optional("every_epochs") ?? 10, gamma: try p?.optional("gamma") ?? 0.1)
            case "exponential":
                let p = try choice.strict("schedule exponential", known: ["gamma"])
                schedule = .exponential(gamma: try p?.optional("gamma") ?? 0.95)
            case "cosine":
                let p = try choice.strict("schedule cosine", known: ["warmup_epochs", "minimum"])
                schedule = .cosine(warmupEpochs: try p?.optional("warmup_epochs") ?? 0, minimum: try p?.optional("minimum") ?? 0)
            case "one_cycle":
                let p = try choice.strict("schedule one_cycle", known: ["max_rate"])
                schedule = .oneCycle(maxRate: try p?.optional("max_rate") ?? learningRate * 10)
            case "plateau":
                let p = try choice.strict("schedule plateau", known: ["factor", "patience"])
                schedule = .plateau(factor: try p?.optional("factor") ?? 0.1, patience: try p?.optional("patience") ?? 3)
            default: throw choice.unknown("schedule", among: names)
            }
        }
    }
}

/// Lets a `NamedChoice` be decoded from a keyed container.
struct NamedChoiceBox: Decodable {
    let choice: NamedChoice
    init(from decoder: Decoder) throws { choice = try NamedChoice(decoder) }
}
