import AstroBase
import Autograd
import Foundation
import NN
import Preprocessing

/// The classes of one light curve.
public struct LightCurvePrediction: Equatable, Sendable {
    public var objectID: Int64
    public var classes: ClassProbabilities

    public init(objectID: Int64, classes: ClassProbabilities) {
        self.objectID = objectID; self.classes = classes
    }
}

/// The class probabilities of one curve after each of its points (the network is
/// unidirectional, so step `t` sees only the points up to `t`).
public struct StepProbabilities: Sendable {
    public var objectID: Int64
    /// The time of each step's point.
    public var mjd: [Double]
    /// One probability vector per step.
    public var probabilities: [[Double]]
}

extension Predictor {
    /// The inference sequence stages: `stages` when given (a pipeline's own), otherwise
    /// the model recipe's; augmentations removed.
    public func sequencePreparation(_ stages: [SequenceStage]? = nil) throws -> SequencePreparation {
        let list = stages ?? recipe?.sequenceStages ?? []
        return try SequencePreparation(SequencePreparation(list).inferenceStages)
    }

    /// A preparation whose step width the network cannot take is a model/data mismatch.
    func checkFeatures(_ preparation: SequencePreparation) throws {
        guard preparation.featureCount == architecture.inChannels else {
            throw PipelineError.inputMismatch(file: "light-curve stages", received: [preparation.featureCount],
                                              expected: [architecture.inChannels], model: path)
        }
    }

    /// Prepares `curves` (in parallel) the way `preparation` says.
    public func prepared(_ curves: [LightCurve], preparation: SequencePreparation) -> [PreparedSequence] {
        let box = SequenceBox(count: curves.count)
        DispatchQueue.concurrentPerform(iterations: max(1, (curves.count + 255) / 256)) { block in
            var rng = SeededGenerator(seed: 0)
            let range = (block * 256)..<min(curves.count, block * 256 + 256)
            box.store(range.lowerBound, range.map { preparation.prepare(curves[$0], rng: &rng) })
        }
        return box.items.map { $0! }
    }

    /// The classes of `curves`, in their order: sequences bucketed by length into batches of
    /// up to `batchSize`, each padded only to its longest member.
    public func classify(_ curves: [LightCurve], preparation: SequencePreparation, batchSize: Int = 256) throws -> [LightCurvePrediction] {
        try checkFeatures(preparation)
        let sequences = prepared(curves, preparation: preparation)
        var none: SeededGenerator?
        let batches = SequenceBatcher(batchSize: batchSize).batches(lengths: sequences.map(\.steps), rng: &none)
        var results = [LightCurvePrediction?](repeating: nil, count: curves.count)
        for batch in batches {
            let (shape, data) = SequenceBatcher.tensorData(batch.map { sequences[$0] })
            let rows = predict(batch: Tensor(shape: shape, data: data))
            for (k, index) in batch.enumerated() {
                guard case let .classes(p) = rows[k] else { continue }
                results[index] = LightCurvePrediction(objectID: curves[index].objectID, classes: p)
            }
        }
        return results.map { $0! }
    }

    /// The class probabilities after every point of `curve` (needs a `gru` model).
    public func stepProbabilities(_ curve: LightCurve, preparation: SequencePreparation) throws -> StepProbabilities {
        try checkFeatures(preparation)
        guard let network = network as? SequenceClassifier else {
            throw PipelineError.unsupported("\(path): per-step outputs need a gru model, not \(architecture.name.rawValue)")
        }
        var rng = SeededGenerator(seed: 0)
        let sequence = preparation.prepare(curve, rng: &rng)
        let logits = withNoGrad { network.stepLogits(Tensor(shape: [1, sequence.steps, sequence.featureCount], data: sequence.features)) }
        let k = logits.shape[2]
        let values = logits.scalars
        let probabilities = (0..<sequence.steps).map { t in ClassProbabilities(logits: values[(t * k)..<((t + 1) * k)], temperature: recipe?.temperature ?? 1).probabilities }
        return StepProbabilities(objectID: curve.objectID, mjd: sequence.mjd.isEmpty ? [0] : sequence.mjd,
                                 probabilities: probabilities)
    }
}

/// Per-index results of parallel preparation.
private final class SequenceBox: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var items: [PreparedSequence?]
    init(count: Int) { items = Array(repeating: nil, count: count) }
    func store(_ first: Int, _ values: [PreparedSequence]) {
        lock.lock()
        for (k, value) in values.enumerated() { items[first + k] = value }
        lock.unlock()
    }
}
