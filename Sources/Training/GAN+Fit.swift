import AstroBase
import Autograd
import Foundation
import NN

extension GAN {
    /// Trains for `epochs` epochs (counted from 0; a GAN resumed from a checkpoint continues
    /// from its next epoch) and returns the history: per epoch `d_loss`, `g_loss`, `g_adv_loss`,
    /// `l1_loss` (conditional), `d_real`, `d_fake` (the discriminator's mean probability "real"
    /// on real and generated samples) and, with `validation`, `val_l1_loss` (of the averaged
    /// generator when averaging is on).
    ///
    /// - Parameters:
    ///   - checkpoint: written after every epoch (generator, discriminator, averaged weights,
    ///     both optimisers' states, history); a cancelled run writes the state as of the start
    ///     of the interrupted epoch there, so `resume(from:)` redoes that epoch exactly.
    ///   - historyCSV / curves: the history as CSV and as a PNG of the curves, after every epoch.
    ///   - seed: the unconditional generator's noise, drawn per epoch and batch from it.
    ///   - onEpochEnd: called with the epoch (from 0) and its logs; may set `stopTraining`.
    @discardableResult
    public func fit(_ data: BatchSource, epochs: Int, validation: BatchSource? = nil, checkpoint: URL? = nil,
                    historyCSV: URL? = nil, curves: URL? = nil, seed: UInt64 = 0, verbose: Bool = true,
                    cancellation: CancellationFlag? = nil,
                    onEpochEnd: (GAN, Int, [String: Double]) throws -> Void = { _, _, _ in }) throws -> History {
        guard generatorOptimizer != nil else { throw TrainingError.notCompiled(operation: "GAN.fit") }
        guard data.sampleCount > 0 else { throw TrainingError.emptyData(what: "the training data") }
        stopTraining = false
        var epoch = completedEpochs
        while epoch < epochs && !stopTraining {
            let snapshot = GANCheckpoint(self, completedEpochs: epoch)
            let progress = verbose ? ProgressBar(total: data.sampleCount, label: "epoch \(epoch + 1)/\(epochs)", unit: "img") : nil
            var sums = [Double](repeating: 0, count: 7)
            var samples = 0, batchIndex = 0
            for result in try data.batches(epoch: epoch) {
                let batch = try result.get()
                let n = batch.inputs.shape[0]
                let noiseSeed = seed &+ UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(batchIndex) &* 0xD1B5_4A32_D192_ED03
                let step: AdversarialStep
                do { step = try trainOnBatch(batch, seed: noiseSeed) } catch TrainingError.nonFiniteLoss {
                    throw TrainingError.nonFiniteLoss(epoch: epoch + 1, batch: batchIndex + 1)
                }
                let values = [step.discriminatorLoss, step.generatorLoss, step.adversarialLoss, step.reconstructionLoss,
                              step.realScore, step.fakeScore, step.gradientPenalty]
                for k in 0..<values.count { sums[k] += Double(values[k]) * Double(n) }
                samples += n
                batchIndex += 1
                progress?.advance(by: n, values: ["d_loss": sums[0] / Double(samples), "g_loss": sums[1] / Double(samples)])
                if cancellation?.isCancelled == true {
                    if let checkpoint { try snapshot.write(to: checkpoint) }
                    throw TrainingError.interrupted(epoch: epoch + 1, checkpoint: checkpoint?.path)
                }
            }
            guard samples > 0 else { throw TrainingError.emptyData(what: "the training data") }
            let mean = sums.map { $0 / Double(samples) }
            var logs: [(String, Double)] = [("d_loss", mean[0]), ("g_loss", mean[1]), ("g_adv_loss", mean[2])]
            if conditioning == .conditional { logs.append(("l1_loss", mean[3])) }
            logs += [("d_real", mean[4]), ("d_fake", mean[5])]
            if gradientPenalty != nil { logs.append(("d_penalty", mean[6])) }
            if let validation, conditioning == .conditional { logs.append(("val_l1_loss", try validationL1(validation))) }
            history.append(logs)
            completedEpochs = epoch + 1
            if verbose {
                let text = logs.map { "\($0.0) \(ProgressBar.format($0.1))" }.joined(separator: "  ")
                FileHandle.standardError.write(Data("epoch \(epoch + 1)/\(epochs): \(text)\n".utf8))
            }
            if let checkpoint { try GANCheckpoint(self, completedEpochs: epoch + 1).write(to: checkpoint) }
            if let historyCSV { try writeAtomically(Data(history.csv.utf8), to: historyCSV) }
            if let curves { try TrainingPlots.curves(history, title: "GAN").write(to: curves) }
            try onEpochEnd(self, epoch, Dictionary(logs, uniquingKeysWith: { a, _ in a }))
            epoch += 1
        }
        return history
    }

    /// Restores both networks, the averaged weights, both optimisers' states and the history
    /// from a checkpoint; the next `fit` continues from the epoch after the one it recorded.
    public func resume(from url: URL) throws {
        guard let generatorOptimizer, let discriminatorOptimizer else { throw TrainingError.notCompiled(operation: "GAN.resume") }
        let state = try GANCheckpoint(contentsOf: url)
        do {
            try generator.load(stateDict: state.generator, mode: .strict)
            try discriminator.load(stateDict: state.discriminator, mode: .strict)
        } catch {
            throw TrainingError.checkpoint(path: url.path, reason: error.localizedDescription)
        }
        if emaDecay != nil {
            guard !state.averaged.isEmpty else {
                throw TrainingError.checkpoint(path: url.path, reason: "this GAN averages its generator's weights but the "
                    + "checkpoint holds no averaged weights (it was trained without emaDecay)")
            }
            averagedGenerator = state.averaged.mapValues { $0.copy() }
        }
        generatorOptimizer.loadState(state.generatorOptimizer)
        discriminatorOptimizer.loadState(state.discriminatorOptimizer)
        history = state.history
        completedEpochs = state.completedEpochs
    }
}

/// Everything needed to continue adversarial training exactly, as one safetensors file:
/// `generator.<key>`, `discriminator.<key>`, `averaged.<key>` tensors, the two optimisers'
/// states under `generator_optimizer.` and `discriminator_optimizer.`, and the history and
/// epoch count as JSON in the metadata (`astrolabe.gan_checkpoint`). Written atomically.
public struct GANCheckpoint {
    public var generator: [String: Tensor]
    public var discriminator: [String: Tensor]
    public var averaged: [String: Tensor]
    public var generatorOptimizer: [String: Tensor]
    public var discriminatorOptimizer: [String: Tensor]
    public var history: History
    public var completedEpochs: Int
    static let metadataKey = "astrolabe.gan_checkpoint"
    static let prefixes = ["generator.", "discriminator.", "averaged.", "generator_optimizer.", "discriminator_optimizer."]

    /// The GAN's current state (copied).
    public init(_ gan: GAN, completedEpochs: Int) {
        generator = gan.generator.stateDict().mapValues { $0.copy() }
        discriminator = gan.discriminator.stateDict().mapValues { $0.copy() }
        averaged = gan.averagedGenerator?.mapValues { $0.copy() } ?? [:]
        generatorOptimizer = gan.generatorOptimizer?.stateTensors() ?? [:]
        discriminatorOptimizer = gan.discriminatorOptimizer?.stateTensors() ?? [:]
        history = gan.history
        self.completedEpochs = completedEpochs
    }

    private struct Info: Codable { var completedEpochs: Int; var history: History }

    public init(contentsOf url: URL) throws {
        let file: Safetensors
        do { file = try Safetensors(contentsOf: url) } catch {
            throw TrainingError.checkpoint(path: url.path, reason: error.localizedDescription)
        }
        guard let json = file.metadata[Self.metadataKey],
              let info = try? JSONDecoder().decode(Info.self, from: Data(json.utf8)) else {
            throw TrainingError.checkpoint(path: url.path, reason: "it is not a GAN training checkpoint (no \(Self.metadataKey) "
                + "metadata); a plain weights file loads with Layer.load(contentsOf:)")
        }
        var parts = [[String: Tensor]](repeating: [:], count: Self.prefixes.count)
        for (key, tensor) in file.tensors {
            for (index, prefix) in Self.prefixes.enumerated() where key.hasPrefix(prefix) {
                parts[index][String(key.dropFirst(prefix.count))] = tensor
                break
            }
        }
        (generator, discriminator, averaged, generatorOptimizer, discriminatorOptimizer) = (parts[0], parts[1], parts[2], parts[3], parts[4])
        history = info.history
        completedEpochs = info.completedEpochs
    }

    public func write(to url: URL) throws {
        var tensors = [String: Tensor]()
        for (prefix, part) in zip(Self.prefixes, [generator, discriminator, averaged, generatorOptimizer, discriminatorOptimizer]) {
            for (key, tensor) in part { tensors[prefix + key] = tensor }
        }
        let info = String(decoding: try JSONEncoder().encode(Info(completedEpochs: completedEpochs, history: history)), as: UTF8.self)
        try writeAtomically(Safetensors(tensors: tensors, metadata: [Self.metadataKey: info]).serialized(), to: url)
    }
}
