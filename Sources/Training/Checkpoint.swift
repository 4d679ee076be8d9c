import Autograd
import Foundation
import NN

/// Everything needed to continue training exactly: weights (parameters and
/// batch-norm statistics), optimiser state, history and the epoch count.
///
/// Stored as one safetensors file: `model.<key>` and `optimizer.<key>` tensors,
/// and the history and epoch count as JSON in the metadata
/// (`astrolabe.checkpoint`). Written atomically.
public struct TrainingCheckpoint {
    public var weights: [String: Tensor]
    public var optimizer: [String: Tensor]
    public var history: History
    public var completedEpochs: Int
    static let metadataKey = "astrolabe.checkpoint"

    /// The model's current state (copied: later training does not change it).
    public init(model: Model, completedEpochs: Int) {
        weights = model.network.stateDict().mapValues { $0.copy() }
        optimizer = model.optimizer?.stateTensors() ?? [:]
        history = model.history
        self.completedEpochs = completedEpochs
    }

    public init(contentsOf url: URL) throws {
        let file: Safetensors
        do { file = try Safetensors(contentsOf: url) } catch {
            throw TrainingError.checkpoint(path: url.path, reason: error.localizedDescription)
        }
        struct Info: Codable { var completedEpochs: Int; var history: History }
        guard let json = file.metadata[Self.metadataKey],
              let info = try? JSONDecoder().decode(Info.self, from: Data(json.utf8)) else {
            throw TrainingError.checkpoint(path: url.path, reason: "it is not a training checkpoint "
                + "(no \(Self.metadataKey) metadata); a plain weights file loads with Layer.load(contentsOf:)")
        }
        var weights = [String: Tensor](), optimizer = [String: Tensor]()
        for (key, tensor) in file.tensors {
            if key.hasPrefix("model.") { weights[String(key.dropFirst(6))] = tensor } else if key.hasPrefix("optimizer.") {
                optimizer[key] = tensor
            }
        }
        self.weights = weights
        self.optimizer = optimizer
        history = info.history
        completedEpochs = info.completedEpochs
    }

    public func write(to url: URL) throws {
        struct Info: Codable { var completedEpochs: Int; var history: History }
        var tensors = optimizer
        for (key, tensor) in weights { tensors["model." + key] = tensor }
        let info = String(decoding: try JSONEncoder().encode(Info(completedEpochs: completedEpochs, history: history)),
                          as: UTF8.self)
        try writeAtomically(Safetensors(tensors: tensors, metadata: [Self.metadataKey: info]).serialized(), to: url)
    }
}
