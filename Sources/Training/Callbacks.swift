import Autograd
import Foundation
import NN

/// Hooks into `fit`. Every method has a default that does nothing.
public protocol TrainingCallback: AnyObject {
    func trainingWillBegin(_ model: Model) throws
    func batchDidEnd(_ model: Model, batch: Int, loss: Double)
    /// `logs` holds the epoch's values (`loss`, metrics, `val_*`, `lr`); set
    /// `model.stopTraining` to end training after this epoch.
    func epochDidEnd(_ model: Model, epoch: Int, logs: [String: Double]) throws
    func trainingDidEnd(_ model: Model) throws
}

extension TrainingCallback {
    public func trainingWillBegin(_ model: Model) throws {}
    public func batchDidEnd(_ model: Model, batch: Int, loss: Double) {}
    public func epochDidEnd(_ model: Model, epoch: Int, logs: [String: Double]) throws {}
    public func trainingDidEnd(_ model: Model) throws {}
}

/// Whether lower or higher is better for a logged quantity.
public enum MonitorMode: Sendable {
    case min, max
    /// `min` for losses and errors, `max` for accuracies and scores (Keras' "auto").
    public static func automatic(for name: String) -> MonitorMode {
        let lowerIsBetter = ["loss", "rmse", "mae", "nmad"].contains { name.hasSuffix($0) }
        return lowerIsBetter ? .min : .max
    }
}

/// Stops training when `monitor` has not improved by `minDelta` for `patience`
/// epochs; optionally puts back the best epoch's weights.
public final class EarlyStopping: TrainingCallback {
    public let monitor: String
    public let patience: Int
    public let minDelta: Double
    public let mode: MonitorMode
    public let restoreBestWeights: Bool
    public private(set) var best: Double
    public private(set) var bestEpoch = -1
    public private(set) var stoppedEpoch: Int?
    private var wait = 0
    private var bestWeights: [String: Tensor]?

    public init(monitor: String = "val_loss", patience: Int = 5, minDelta: Double = 0, mode: MonitorMode? = nil,
                restoreBestWeights: Bool = true) {
        self.monitor = monitor
        self.patience = patience
        self.minDelta = minDelta
        self.mode = mode ?? .automatic(for: monitor)
        self.restoreBestWeights = restoreBestWeights
        best = self.mode == .min ? .infinity : -.infinity
    }

    public func epochDidEnd(_ model: Model, epoch: Int, logs: [String: Double]) throws {
        guard let value = logs[monitor] else {
            throw TrainingError.checkpoint(path: "EarlyStopping", reason: "no logged value '\(monitor)'; logged: "
                                           + logs.keys.sorted().joined(separator: ", "))
        }
        let improved = mode == .min ? value < best - minDelta : value > best + minDelta
        if improved {
            best = value
            bestEpoch = epoch
            wait = 0
            if restoreBestWeights { bestWeights = model.network.stateDict().mapValues { $0.copy() } }
        } else {
            wait += 1
            if wait >= patience {
                stoppedEpoch = epoch
                model.stopTraining = true
                if restoreBestWeights, let bestWeights { try model.network.load(stateDict: bestWeights) }
            }
        }
    }
}

/// Saves a resumable checkpoint after every epoch, or only when `monitor` improves.
public final class ModelCheckpoint: TrainingCallback {
    public let url: URL
    public let monitor: String?
    public let mode: MonitorMode
    private var best: Double

    /// - Parameter monitor: nil saves every epoch; a name saves only the best epoch.
    public init(url: URL, monitor: String? = nil, mode: MonitorMode? = nil) {
        self.url = url
        self.monitor = monitor
        self.mode = mode ?? .automatic(for: monitor ?? "loss")
        best = self.mode == .min ? .infinity : -.infinity
    }

    public func epochDidEnd(_ model: Model, epoch: Int, logs: [String: Double]) throws {
        if let monitor {
            guard let value = logs[monitor] else { return }
            let improved = mode == .min ? value < best : value > best
            guard improved else { return }
            best = value
        }
        try TrainingCheckpoint(model: model, completedEpochs: epoch + 1).write(to: url)
    }
}

/// Writes the history as CSV after every epoch (atomically).
public final class CSVLogger: TrainingCallback {
    public let url: URL
    public init(url: URL) { self.url = url }
    public func epochDidEnd(_ model: Model, epoch: Int, logs: [String: Double]) throws {
        try writeAtomically(Data(model.history.csv.utf8), to: url)
    }
}

/// A callback from closures, for quick user hooks.
public final class LambdaCallback: TrainingCallback {
    let onEpoch: (Model, Int, [String: Double]) throws -> Void
    let onBatch: (Model, Int, Double) -> Void
    public init(onEpochEnd: @escaping (Model, Int, [String: Double]) throws -> Void = { _, _, _ in },
                onBatchEnd: @escaping (Model, Int, Double) -> Void = { _, _, _ in }) {
        onEpoch = onEpochEnd
        onBatch = onBatchEnd
    }
    public func epochDidEnd(_ model: Model, epoch: Int, logs: [String: Double]) throws { try onEpoch(model, epoch, logs) }
    public func batchDidEnd(_ model: Model, batch: Int, loss: Double) { onBatch(model, batch, loss) }
}

/// Divides the learning rate by `1 / factor` when `monitor` stops improving
/// (PyTorch's `ReduceLROnPlateau` as a callback).
public final class ReduceLearningRateOnPlateau: TrainingCallback {
    public let monitor: String
    private var plateau: ReduceOnPlateau

    public init(monitor: String = "val_loss", factor: Double = 0.1, patience: Int = 3, minimumRate: Double = 0) {
        self.monitor = monitor
        plateau = ReduceOnPlateau(mode: MonitorMode.automatic(for: monitor) == .min ? .min : .max, factor: factor,
                                  patience: patience, minimumRate: minimumRate)
    }

    public func epochDidEnd(_ model: Model, epoch: Int, logs: [String: Double]) throws {
        guard let value = logs[monitor] else { return }
        model.baseLearningRate = Float(plateau.step(value, rate: Double(model.baseLearningRate)))
    }
}
