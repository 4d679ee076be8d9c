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
    ///   - parallel: this process's place in a data-parallel job: it trains on its part of every
    ///     batch (`data.batches(epoch:part:)`), gradients are summed over the processes in
    ///     buckets started during the backward pass, and every process applies the same update.
    ///     The history's loss and metrics are over the whole epoch of all processes; batch
    ///     norm uses each process's batch statistics (or, with `synchronisedBatchNorm`, those of
    ///     the global batch), and the running statistics are averaged over the processes after
    ///     every epoch. Callbacks run in every process (so early
    ///     stopping decides alike); give the ones that write files to one process only.
    ///     A stop request (`cancellation`) in any process stops all of them after the same batch.
    @discardableResult
    public func fit(_ data: BatchSource, epochs: Int, validation: BatchSource? = nil, classWeights: [Float]? = nil,
                    callbacks: [TrainingCallback] = [], seed: UInt64 = 0, verbose: Bool = true,
                    cancellation: CancellationFlag? = nil, interruptCheckpoint: URL? = nil,
                    parallel: DataParallel? = nil) throws -> History {
        guard let optimizer, let loss else { throw TrainingError.notCompiled(operation: "fit") }
        guard data.sampleCount > 0 else { throw TrainingError.emptyData(what: "the training data") }
        let weights = classWeights.map { Tensor($0) }
        let checkpointURL = interruptCheckpoint ?? callbacks.compactMap { ($0 as? ModelCheckpoint)?.url }.first
        stopTraining = false
        let part = parallel?.shard ?? .whole
        let buckets = parallel.map {
            GradientBuckets(parameters: optimizer.parameters, collectives: $0.collectives, bucketBytes: $0.bucketBytes)
        }
        if let parallel { try synchronizeState(from: 0, parallel.collectives) }
        let batchStatistics = parallel.flatMap { $0.synchronisedBatchNorm && $0.size > 1
            ? SynchronisedBatchStatistics(collectives: $0.collectives) : nil }
        let batchNorms = network.namedLayers().compactMap { $0.1 as? BatchNorm }
        if let batchStatistics { for layer in batchNorms { layer.synchronisation = batchStatistics } }
        defer { if batchStatistics != nil { for layer in batchNorms { layer.synchronisation = nil } } }
        for callback in callbacks { try callback.trainingWillBegin(self) }
        let samplesPerEpoch = Swift.max(1, data.sampleCount)

        var epoch = completedEpochs
        while epoch < epochs && !stopTraining {
            let rate = schedule.rate(at: epoch, base: Double(baseLearningRate))
            optimizer.learningRate = Float(rate)
            reseedDropout(seed: seed &+ UInt64(part.index) &* 0xD1B5_4A32_D192_ED03, epoch: epoch)
            // The state at the epoch's start: what a cancelled run saves, so that a resume
            // redoes this epoch with the same batches and dropout masks.
            let snapshot = TrainingCheckpoint(model: self, completedEpochs: epoch)
            var accumulator = MetricAccumulator()
            let progress = verbose ? ProgressBar(total: samplesPerEpoch, label: "epoch \(epoch + 1)/\(epochs)", unit: "img") : nil
            var batchIndex = 0
            var reduceWait = 0.0, reduceSpan = 0.0, backwardTime = 0.0
            for result in try data.batches(epoch: epoch, part: part) {
                let batch = try result.get()
                setTrainingMode()
                optimizer.zeroGrad()
                batchStatistics?.share = Double(batch.inputs.shape[0]) / Double(Swift.max(1, batch.globalCount))
                let output = network(batch.inputs)
                let value = loss(output, batch.targets, network: network, classWeights: weights)
                let lossValue = value.scalars[0]
                guard lossValue.isFinite else { throw TrainingError.nonFiniteLoss(epoch: epoch + 1, batch: batchIndex + 1) }
                var stopRequested = cancellation?.isCancelled == true
                if let buckets {
                    buckets.begin(localCount: batch.inputs.shape[0], globalCount: batch.globalCount)
                    var reduceError: Error?
                    try value.checkedBackward(gradientReady: { tensor in
                        guard reduceError == nil else { return }
                        do { try buckets.gradientReady(tensor) } catch { reduceError = error }
                    })
                    if let reduceError { throw reduceError }
                    try batchStatistics?.check()
                    stopRequested = try buckets.finish(stopRequested: stopRequested)
                    reduceWait += buckets.lastWaitSeconds
                    reduceSpan += buckets.lastReduceSeconds
                    backwardTime += buckets.lastBackwardSeconds
                } else {
                    value.backward()
                }
                if let clip = gradientClipNorm { clipGradientNorm(optimizer.parameters, maxNorm: clip) }
                optimizer.step()
                let size = batch.inputs.shape[0]
                withNoGrad {
                    accumulator.add(output: output.detached(), targets: batch.targets, loss: loss,
                                    lossValue: lossValue, batchSize: size)
                }
                batchIndex += 1
                progress?.advance(by: batch.globalCount, values: ["loss": accumulator.loss])
                for callback in callbacks { callback.batchDidEnd(self, batch: batchIndex, loss: Double(lossValue)) }
                if buckets == nil ? cancellation?.isCancelled == true : stopRequested {
                    if let url = checkpointURL { try snapshot.write(to: url) }
                    throw TrainingError.interrupted(epoch: epoch + 1, checkpoint: checkpointURL?.path)
                }
            }
            if let parallel {
                accumulator = try accumulator.merged(over: parallel.collectives)
                try averageBuffers(parallel.collectives)
                let checksum = try verifyIdenticalState(parallel.collectives, epoch: epoch + 1)
                if verbose && batchIndex > 0 {
                    let ms = { (seconds: Double) in String(format: "%.2f", seconds / Double(batchIndex) * 1000) }
                    FileHandle.standardError.write(Data(("epoch \(epoch + 1)/\(epochs): \(parallel.size) processes, "
                        + "\(buckets!.bucketCount) gradient buckets; per step: backward \(ms(backwardTime)) ms, all-reduce "
                        + "\(ms(reduceSpan)) ms from the first bucket's start to the last one's end, waiting "
                        + "\(ms(reduceWait)) ms for it after backward; weights identical in every process (checksum "
                        + String(checksum, radix: 16) + ")\n").utf8))
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

    /// Makes every process's weights and buffers `root`'s (the start of data-parallel training).
    func synchronizeState(from root: Int, _ collectives: TrainingCollectives) throws {
        guard collectives.size > 1 else { return }
        for (_, tensor, _) in network.namedTensors() {
            try collectives.broadcast(UnsafeMutableRawBufferPointer(start: tensor.storage.pointer,
                                                                    count: tensor.count * MemoryLayout<Float>.stride),
                                      root: root)
        }
    }

    /// Checks that every process holds bit-identical weights and buffers (a hash of their
    /// bytes, compared over the processes) and returns the hash; a difference is
    /// `TrainingError.processesDiverged`.
    func verifyIdenticalState(_ collectives: TrainingCollectives, epoch: Int) throws -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for (_, tensor, _) in network.namedTensors() {
            let bytes = UnsafeRawBufferPointer(start: tensor.storage.pointer, count: tensor.count * MemoryLayout<Float>.stride)
            for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        }
        let all = try collectives.allGather(withUnsafeBytes(of: hash) { Array($0) })
        let hashes = all.map { $0.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) } }
        let differing = hashes.indices.filter { hashes[$0] != hashes[0] }
        guard differing.isEmpty else { throw TrainingError.processesDiverged(epoch: epoch, ranks: differing) }
        return hash
    }

    /// Replaces the running statistics (buffers) by their mean over the processes, so that
    /// every process validates and saves the same model.
    func averageBuffers(_ collectives: TrainingCollectives) throws {
        let buffers = network.namedTensors().filter { $0.role == .buffer }.map(\.tensor)
        let total = buffers.reduce(0) { $0 + $1.count }
        guard collectives.size > 1, total > 0 else { return }
        let joined = UnsafeMutableBufferPointer<Float>.allocate(capacity: total)
        defer { joined.deallocate() }
        var offset = 0
        for b in buffers {
            (joined.baseAddress! + offset).update(from: b.storage.pointer, count: b.count)
            offset += b.count
        }
        try collectives.startSum(joined).wait()
        let scale = 1 / Float(collectives.size)
        offset = 0
        for b in buffers {
            let p = b.storage.pointer
            for j in 0..<b.count { p[j] = joined[offset + j] * scale }
            offset += b.count
        }
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
