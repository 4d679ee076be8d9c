import Autograd
import Foundation
import NN

extension Model {
    /// Trains for `epochs` epochs (counted from 0; a model resumed from a
    /// checkpoint continues from its next epoch) and returns the history.
    ///
    /// - Parameters:
    ///   - validation: evaluated after every epoch (`val_loss`, `val_<metric>`).
    ///   - cancellation: checked after every batch; once set, `fit` saves the state as of the
    ///     start of the current epoch to `interruptCheckpoint` and throws
    ///     `TrainingError.interrupted` (the tool sets it on Ctrl-C).
    ///   - interruptCheckpoint: where a cancelled run saves the state (default: the first
    ///     `ModelCheckpoint` callback's path, else none).
    ///   - seed: fixes dropout; shuffling is the source's, by epoch.
    @discardableResult
    public func fit(_ data: BatchSource, epochs: Int, validation: BatchSource? = nil, classWeights: [Float]? = nil,
                    callbacks: [TrainingCallback] = [], seed: UInt64 = 0, verbose: Bool = true,
                    cancellation: CancellationFlag? = nil, interruptCheckpoint: URL? = nil) throws -> History {
        guard let optimizer, let loss else { throw TrainingError.notCompiled(operation: "fit") }
        guard data.sampleCount > 0 else { throw TrainingError.emptyData(what: "the training data") }
        let weights = classWeights.map { Tensor($0) }
        let checkpointURL = interruptCheckpoint ?? callbacks.compactMap { ($0 as? ModelCheckpoint)?.url }.first
        stopTraining = false
        for callback in callbacks { try callback.trainingWillBegin(self) }
        let samplesPerEpoch = Swift.max(1, data.sampleCount)

        var epoch = completedEpochs
        while epoch < epochs && !stopTraining {
            let rate = schedule.rate(at: epoch, base: Double(baseLearningRate))
            optimizer.learningRate = Float(rate)
            reseedDropout(seed: seed, epoch: epoch)
            // The state at the epoch's start: what a cancelled run saves, so that a resume
            // redoes this epoch with the same batches and dropout masks.
            let snapshot = TrainingCheckpoint(model: self, completedEpochs: epoch)
            var accumulator = MetricAccumulator()
            let progress = verbose ? ProgressBar(total: samplesPerEpoch, label: "epoch \(epoch + 1)/\(epochs)", unit: "img") : nil
            var batchIndex = 0
            for result in try data.batches(epoch: epoch) {
                let batch = try result.get()
                setTrainingMode()
                optimizer.zeroGrad()
                let output = network(batch.inputs)
                let value = loss(output, batch.targets, network: network, classWeights: weights)
                let lossValue = value.scalars[0]
                guard lossValue.isFinite else { throw TrainingError.nonFiniteLoss(epoch: epoch + 1, batch: batchIndex + 1) }
                value.backward()
                if let clip = gradientClipNorm { clipGradientNorm(optimizer.parameters, maxNorm: clip) }
                optimizer.step()
                let size = batch.inputs.shape[0]
                withNoGrad {
                    accumulator.add(output: output.detached(), targets: batch.targets, loss: loss,
                                    lossValue: lossValue, batchSize: size)
                }
                batchIndex += 1
                progress?.advance(by: size, values: ["loss": accumulator.loss])
                for callback in callbacks { callback.batchDidEnd(self, batch: batchIndex, loss: Double(lossValue)) }
                if cancellation?.isCancelled == true {
                    if let url = checkpointURL { try snapshot.write(to: url) }
                    throw TrainingError.interrupted(epoch: epoch + 1, checkpoint: checkpointURL?.path)
                }
            }
            guard accumulator.lossCount > 0 else { throw TrainingError.emptyData(what: "the training data") }
            var logs: [(String, Double)] = [("loss", accumulator.loss)]
            for metric in metrics { logs.append((metric.name, accumulator.value(metric))) }
            if let validation {
                let v = try evaluate(validation, classWeights: weights)
                logs.append(("val_loss", v["loss"]!))
                for metric in metrics { logs.append(("val_" + metric.name, v[metric.name]!)) }
            }
            logs.append(("lr", rate))
            history.append(logs)
            completedEpochs = epoch + 1
            if verbose {
                let text = logs.map { "\($0.0) \(ProgressBar.format($0.1))" }.joined(separator: "  ")
                FileHandle.standardError.write(Data("epoch \(epoch + 1)/\(epochs): \(text)\n".utf8))
            }
            let dictionary = Dictionary(logs, uniquingKeysWith: { a, _ in a })
            for callback in callbacks { try callback.epochDidEnd(self, epoch: epoch, logs: dictionary) }
            epoch += 1
        }
        for callback in callbacks { try callback.trainingDidEnd(self) }
        return history
    }

    /// Keras-style `fit` on tensors in memory.
    @discardableResult
    public func fit(x: Tensor, y: Targets, batchSize: Int = 32, epochs: Int, validationSplit: Double = 0,
                    validationData: (Tensor, Targets)? = nil, shuffle: Bool = true, classWeights: [Float]? = nil,
                    callbacks: [TrainingCallback] = [], seed: UInt64 = 0, verbose: Bool = true,
                    cancellation: CancellationFlag? = nil) throws -> History {
        var source = ArrayBatchSource(inputs: x, targets: y, batchSize: batchSize, shuffle: shuffle, seed: seed)
        var validation: BatchSource?
        if let (vx, vy) = validationData {
            validation = ArrayBatchSource(inputs: vx, targets: vy, batchSize: batchSize, shuffle: false)
        } else if validationSplit > 0 {
            let parts = source.splitting(validationFraction: validationSplit)
            source = parts.training
            validation = parts.validation
        }
        return try fit(source, epochs: epochs, validation: validation, classWeights: classWeights,
                       callbacks: callbacks, seed: seed, verbose: verbose, cancellation: cancellation)
    }

    /// Gives each dropout layer its own stream for this epoch, so that a resumed
    /// run draws the same masks as an uninterrupted one.
    func reseedDropout(seed: UInt64, epoch: Int) {
        for (index, (_, layer)) in network.namedLayers().enumerated() {
            (layer as? Dropout)?.reseed(seed &+ UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(index))
        }
    }

    /// Restores weights, optimiser state and history from a checkpoint; the next
    /// `fit` continues from the epoch after the one it recorded.
    public func resume(from url: URL) throws {
        guard optimizer != nil else { throw TrainingError.notCompiled(operation: "resume") }
        let state = try TrainingCheckpoint(contentsOf: url)
        do { try network.load(stateDict: state.weights, mode: .strict) } catch {
            throw TrainingError.checkpoint(path: url.path, reason: error.localizedDescription)
        }
        optimizer!.loadState(state.optimizer)
        history = state.history
        completedEpochs = state.completedEpochs
    }
}
