import Autograd
import Foundation
import NN

/// Problems met while training, with what to do about them.
public enum TrainingError: Error, Equatable, LocalizedError {
    case notCompiled(operation: String)
    case emptyData(what: String)
    case nonFiniteLoss(epoch: Int, batch: Int)
    /// The run's `CancellationFlag` was set (Ctrl-C in the tool): the state was saved to `checkpoint`.
    case interrupted(epoch: Int, checkpoint: String?)
    case checkpoint(path: String, reason: String)
    /// Data-parallel training: these processes' weights differ from rank 0's after an epoch.
    case processesDiverged(epoch: Int, ranks: [Int])

    public var errorDescription: String? {
        switch self {
        case let .notCompiled(operation):
            return "\(operation) needs a compiled model: call compile(optimizer:loss:metrics:) first."
        case let .emptyData(what):
            return "\(what) holds no samples."
        case let .nonFiniteLoss(epoch, batch):
            return "the loss became NaN or infinite at epoch \(epoch), batch \(batch): lower the learning rate, "
                + "clip gradients, or check the inputs for NaN (add a fill_blanks stage)."
        case let .interrupted(epoch, checkpoint):
            return "training interrupted during epoch \(epoch)"
                + (checkpoint.map { "; state saved to \($0) (resume with it to continue exactly)" } ?? "")
        case let .checkpoint(path, reason):
            return "\(path): cannot use this checkpoint: \(reason)"
        case let .processesDiverged(epoch, ranks):
            return "after epoch \(epoch) the weights of rank(s) \(ranks.map(String.init).joined(separator: ", ")) differ from "
                + "rank 0's: the processes no longer train the same model (a bug: please report it)."
        }
    }
}

/// A network with Keras' training API: `compile`, `fit`, `evaluate`, `predict`.
///
///     let model = Model(SimpleCNN.make(inputChannels: 1, classCount: 5))
///     model.compile(optimizer: .adam, loss: .sparseCategoricalCrossentropy, metrics: [.accuracy])
///     let history = try model.fit(x: images, y: .classes(labels), epochs: 10, validationSplit: 0.1)
public final class Model {
    public let network: any Layer
    public private(set) var optimizer: ModelOptimizer?
    public private(set) var loss: LossFunction?
    public private(set) var metrics: [Metric] = []
    public private(set) var schedule: LearningRateSchedule = .constant
    public internal(set) var baseLearningRate: Float = 1e-3
    public var gradientClipNorm: Float?
    /// Set by a callback (early stopping) to end `fit` after the current epoch.
    public var stopTraining = false
    /// Key prefixes of parameters that do not train (and whose batch norms stay in
    /// inference mode, as Keras does for frozen layers: fine-tuning on a small
    /// data set must not overwrite the pretrained running statistics).
    public private(set) var frozenPrefixes: [String] = []
    /// Layer-wise rate decay: the top-level block `i` of `L` trains at
    /// `decay^(L - 1 - i)` of the rate (the head at the full rate).
    public private(set) var layerRateDecay: Float?
    public internal(set) var history = History()
    /// The epoch `fit` starts from (after a resume: the epoch after the checkpoint's).
    public internal(set) var completedEpochs = 0
    var compileKind: OptimizerKind = .adam

    public init(_ network: any Layer) { self.network = network }

    // MARK: - Compile

    /// Chooses the optimiser, loss and metrics. Call again after freezing or
    /// unfreezing to rebuild the optimiser over the trainable parameters.
    public func compile(optimizer: OptimizerKind = .adam, learningRate: Float = 1e-3, loss: LossFunction,
                        metrics: [Metric] = [], schedule: LearningRateSchedule = .constant,
                        gradientClipNorm: Float? = nil, layerRateDecay: Float? = nil) {
        self.loss = loss
        self.metrics = metrics
        self.schedule = schedule
        self.baseLearningRate = learningRate
        self.gradientClipNorm = gradientClipNorm
        self.layerRateDecay = layerRateDecay
        self.compileKind = optimizer
        rebuildOptimizer()
    }

    func rebuildOptimizer() {
        let blocks = network.children.map(\.key)
        var trainable = [TrainableParameter]()
        for (key, tensor) in network.namedParameters() {
            let frozen = isFrozen(key)
            tensor.requiresGrad = !frozen
            guard !frozen else { continue }
            var multiplier: Float = 1
            if let decay = layerRateDecay, let block = blocks.firstIndex(where: { key == $0 || key.hasPrefix($0 + ".") }) {
                multiplier = Foundation.pow(decay, Float(blocks.count - 1 - block))
            }
            trainable.append(TrainableParameter(name: key, tensor: tensor, rateMultiplier: multiplier))
        }
        optimizer = ModelOptimizer(compileKind, parameters: trainable, learningRate: baseLearningRate)
    }

    // MARK: - Fine-tuning

    func isFrozen(_ key: String) -> Bool {
        frozenPrefixes.contains { key == $0 || key.hasPrefix($0.hasSuffix(".") ? $0 : $0 + ".") }
    }

    /// Freezes every parameter whose key starts with one of `prefixes` (`conv1`, `layer1`).
    public func freeze(prefixes: [String]) {
        frozenPrefixes = Array(Set(frozenPrefixes + prefixes)).sorted()
        if loss != nil { rebuildOptimizer() }
    }

    /// Freezes all top-level blocks but the last `trainableTopBlocks` (e.g. 1: only the head trains).
    public func freeze(allButTopBlocks trainableTopBlocks: Int) {
        let blocks = network.children.map(\.key)
        freeze(prefixes: Array(blocks.dropLast(trainableTopBlocks)))
    }

    public func unfreeze(prefixes: [String]? = nil) {
        frozenPrefixes = prefixes.map { p in frozenPrefixes.filter { !p.contains($0) } } ?? []
        for (_, tensor) in network.namedParameters() { tensor.requiresGrad = true }
        if loss != nil { rebuildOptimizer() }
    }

    /// Training mode for the network, with frozen layers kept in inference mode.
    func setTrainingMode() {
        network.train()
        guard !frozenPrefixes.isEmpty else { return }
        for (path, layer) in network.namedLayers() where !path.isEmpty && isFrozen(path) { layer.eval() }
    }

    // MARK: - One batch

    /// One optimisation step; returns the batch's loss.
    @discardableResult
    public func trainOnBatch(_ batch: TrainingBatch, classWeights: Tensor? = nil) throws -> Float {
        guard let optimizer, let loss else { throw TrainingError.notCompiled(operation: "trainOnBatch") }
        setTrainingMode()
        optimizer.zeroGrad()
        let output = network(batch.inputs)
        let value = loss(output, batch.targets, network: network, classWeights: classWeights)
        value.backward()
        if let clip = gradientClipNorm { clipGradientNorm(optimizer.parameters, maxNorm: clip) }
        optimizer.step()
        return value.scalars[0]
    }

    // MARK: - Inference

    /// Outputs for `inputs` (`[N, ...]`) in batches, in inference mode, without gradients.
    public func predict(_ inputs: Tensor, batchSize: Int = 64) -> Tensor {
        network.eval()
        let n = inputs.shape.first ?? 0
        guard n > 0 else { return inputs }
        return withNoGrad {
            var outputs = [Tensor]()
            var start = 0
            while start < n {
                let end = Swift.min(n, start + batchSize)
                outputs.append(network(inputs.sliced(axis: 0, start..<end)))
                start = end
            }
            return outputs.count == 1 ? outputs[0] : Tensor.concatenate(outputs, axis: 0)
        }
    }

    /// Loss and metrics over `data`, in inference mode.
    public func evaluate(_ data: BatchSource, classWeights: Tensor? = nil) throws -> [String: Double] {
        guard let loss else { throw TrainingError.notCompiled(operation: "evaluate") }
        network.eval()
        var accumulator = MetricAccumulator()
        try withNoGrad {
            for result in try data.batches(epoch: 0) {
                let batch = try result.get()
                let output = network(batch.inputs)
                let value = loss(output, batch.targets, network: network, classWeights: classWeights)
                accumulator.add(output: output, targets: batch.targets, loss: loss, lossValue: value.scalars[0],
                                batchSize: batch.inputs.shape[0])
            }
        }
        guard accumulator.lossCount > 0 else { throw TrainingError.emptyData(what: "the evaluation data") }
        var logs = ["loss": accumulator.loss]
        for metric in metrics { logs[metric.name] = accumulator.value(metric) }
        return logs
    }

    public func evaluate(x: Tensor, y: Targets, batchSize: Int = 64) throws -> [String: Double] {
        try evaluate(ArrayBatchSource(inputs: x, targets: y, batchSize: batchSize, shuffle: false))
    }
}

// MARK: - A new head on pretrained weights

extension Model {
    /// A model of `architecture` (typically a pretrained one with another class
    /// count or number of bands) initialised from `weights` wherever names and
    /// shapes fit: the encoder is pretrained, the head (and anything else that does
    /// not fit) is new. A first convolution trained on another number of bands is
    /// adapted (1 band to N: repeated and scaled; N to 1: averaged). `seed` fixes the new
    /// parts' initial weights (nil: random). A posterior model (`PosteriorRegressor`) given a
    /// plain regression model's weights takes them for its encoder (see
    /// `PosteriorRegressor.encoderWeights(from:)`).
    public static func fineTuning(_ architecture: Architecture, from weights: URL,
                                  seed: UInt64? = nil) throws -> (Model, LoadReport) {
        let network = try architecture.makeModel(seed: seed)
        var tensors = try Safetensors(contentsOf: weights).tensors
        if let first = network.namedParameters().first, let pretrained = tensors[first.key],
           pretrained.shape.count == 4, first.tensor.shape.count == 4, pretrained.shape[1] != first.tensor.shape[1] {
            let method: InputChannelAdaptation = pretrained.shape[1] == 1 ? .repeatAndScale : .mean
            tensors = try tensors.adaptingInputChannels(key: first.key, to: first.tensor.shape[1], method: method)
        }
        if let posterior = network as? PosteriorRegressor {
            tensors = tensors.keys.contains(where: { $0.hasPrefix("encoder.") }) ? posterior.contextWidened(from: tensors)
                : posterior.encoderWeights(from: tensors)
        }
        let report = try network.load(stateDict: tensors, mode: .partial)
        return (Model(network), report)
    }
}
