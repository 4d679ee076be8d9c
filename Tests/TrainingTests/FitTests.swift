import Autograd
import Foundation
import NN
import TestSupport
import XCTest
@testable import Training

final class FitTests: XCTestCase {
    /// The classic three-arm spiral of the ConvNetJS demo: 100 points per arm.
    static func spiral(pointsPerArm: Int = 100, arms: Int = 3, seed: UInt64 = 1) -> (Tensor, [Int]) {
        var rng = SeededGenerator(seed: seed)
        var xs = [Float](), labels = [Int]()
        for arm in 0..<arms {
            for i in 0..<pointsPerArm {
                let r = Float(i) / Float(pointsPerArm)
                let t = Float(arm) * 4 + 4 * r + (rng.nextUnit() - 0.5) * 0.4
                xs += [r * Foundation.sin(t), r * Foundation.cos(t)]
                labels.append(arm)
            }
        }
        return (Tensor(shape: [pointsPerArm * arms, 2], data: xs), labels)
    }

    func testFitBeforeCompileIsAClearError() {
        let model = Model(MLP.make(inputFeatures: 2, widths: [2]))
        XCTAssertThrowsError(try model.fit(x: Tensor(shape: [1, 2], data: [0, 0]), y: .classes([0]), epochs: 1)) {
            XCTAssertEqual($0 as? TrainingError, .notCompiled(operation: "fit"))
            XCTAssert($0.localizedDescription.contains("call compile(optimizer:loss:metrics:) first"))
        }
    }

    func testXORWithAnMLP() throws {
        let model = Model(MLP.make(inputFeatures: 2, widths: [8, 2], activation: .tanh, seed: 3))
        model.compile(optimizer: .adam, learningRate: 0.05, loss: .sparseCategoricalCrossentropy, metrics: [.accuracy])
        let x = Tensor(shape: [4, 2], data: [0, 0, 0, 1, 1, 0, 1, 1])
        let history = try model.fit(x: x, y: .classes([0, 1, 1, 0]), batchSize: 4, epochs: 150, verbose: false)
        XCTAssertEqual(history["accuracy"]!.last!, 1)
        XCTAssertLessThan(history["loss"]!.last!, 0.05)
        XCTAssertEqual(model.predict(x).argmaxIndices(axis: 1), [0, 1, 1, 0])
    }

    func testThreeArmSpiralReaches95Percent() throws {
        let (x, y) = Self.spiral()
        let model = Model(MLP.make(inputFeatures: 2, widths: [64, 64, 3], seed: 7))
        model.compile(optimizer: .adam, learningRate: 0.01, loss: .sparseCategoricalCrossentropy, metrics: [.accuracy, .macroF1])
        try model.fit(x: x, y: .classes(y), batchSize: 32, epochs: 200, seed: 1, verbose: false)
        let result = try model.evaluate(x: x, y: .classes(y))
        XCTAssertGreaterThanOrEqual(result["accuracy"]!, 0.95)
        XCTAssertGreaterThanOrEqual(result["macro_f1"]!, 0.95)
    }

    /// Outlier exposure: rows labelled `OutsideClass.label` (here the points of a fourth arm) train
    /// towards equal probabilities, count in the loss and not in the accuracy; the three known
    /// arms are still learned.
    func testOutsideRowsLearnEqualProbabilitiesAndStayOutOfTheAccuracy() throws {
        let (x, arms) = Self.spiral(arms: 4, seed: 2)
        let labels = arms.map { $0 == 3 ? OutsideClass.label : $0 }
        let model = Model(MLP.make(inputFeatures: 2, widths: [64, 64, 3], seed: 7))
        model.compile(optimizer: .adam, learningRate: 0.01, loss: .sparseCategoricalCrossentropy(outsideWeight: 1),
                      metrics: [.accuracy])
        let history = try model.fit(x: x, y: .classes(labels), batchSize: 32, epochs: 200, seed: 1, verbose: false)
        let probabilities = model.predict(x).softmax(axis: 1).scalars
        let inside = labels.indices.filter { labels[$0] >= 0 }, outside = labels.indices.filter { labels[$0] < 0 }
        let correct = inside.filter { i in (0..<3).max { probabilities[i * 3 + $0] < probabilities[i * 3 + $1] } == labels[i] }
        XCTAssertGreaterThanOrEqual(Double(correct.count) / Double(inside.count), 0.9)
        let topOutside = outside.map { i in (0..<3).map { probabilities[i * 3 + $0] }.max()! }.sorted()
        XCTAssertLessThan(topOutside[topOutside.count / 2], 0.5, "median top probability of the outside arm")
        // The epoch's accuracy is over the 300 known rows: a multiple of 1/300, not of 1/400.
        let accuracy = try XCTUnwrap(history["accuracy"]?.last)
        XCTAssertEqual(accuracy * 300, (accuracy * 300).rounded(), accuracy: 1e-6)
        XCTAssertGreaterThanOrEqual(accuracy, 0.9)
        let evaluated = try model.evaluate(x: x, y: .classes(labels))["accuracy"]!
        XCTAssertEqual(evaluated, Double(correct.count) / Double(inside.count), accuracy: 1e-9)
    }

    /// BENCH.md's cnn (at 16×16) tells a compact blob from a ring.
    func testBenchCNNLearnsASyntheticImageTask() throws {
        var rng = SeededGenerator(seed: 5)
        let n = 96, s = 16
        var pixels = [Float](), labels = [Int]()
        for i in 0..<n {
            let label = i % 2
            let cx = 7.5 + (rng.nextUnit() - 0.5) * 3, cy = 7.5 + (rng.nextUnit() - 0.5) * 3
            for y in 0..<s { for x in 0..<s {
                let r = ((Float(x) - cx) * (Float(x) - cx) + (Float(y) - cy) * (Float(y) - cy)).squareRoot()
                let signal = label == 0 ? Foundation.exp(-r * r / 4) : Foundation.exp(-(r - 5) * (r - 5) / 2)
                pixels.append(signal + (rng.nextUnit() - 0.5) * 0.3)
            } }
            labels.append(label)
        }
        let model = Model(SimpleCNN.make(inputChannels: 1, classCount: 2, imageSize: s, seed: 11))
        model.compile(optimizer: .adam, learningRate: 1e-3, loss: .sparseCategoricalCrossentropy, metrics: [.accuracy])
        let history = try model.fit(x: Tensor(shape: [n, 1, s, s], data: pixels), y: .classes(labels), batchSize: 16,
                                    epochs: 8, validationSplit: 0.25, verbose: false)
        XCTAssertGreaterThanOrEqual(history["val_accuracy"]!.last!, 0.95)
        XCTAssertLessThan(history["loss"]!.last!, history["loss"]!.first!)
    }

    func testEarlyStoppingStopsAndRestoresTheBestWeights() throws {
        let (x, y) = Self.spiral(pointsPerArm: 20)
        let model = Model(MLP.make(inputFeatures: 2, widths: [16, 3], seed: 2))
        // A step schedule that raises the rate after epoch 1: the monitored `lr`
        // (lower is better) stops improving, so the stopper must fire at epoch 1 + patience.
        model.compile(optimizer: .sgd(momentum: 0.9), learningRate: 0.05, loss: .sparseCategoricalCrossentropy,
                      schedule: .step(stepSize: 2, gamma: 2))
        let stopper = EarlyStopping(monitor: "lr", patience: 3, mode: .min)
        var weightsAfterEpoch: [[Float]] = []
        let watcher = LambdaCallback(onEpochEnd: { model, _, _ in
            weightsAfterEpoch.append(model.network.parameters[0].scalars)
        })
        let history = try model.fit(x: x, y: .classes(y), batchSize: 60, epochs: 100,
                                    callbacks: [watcher, stopper], verbose: false)
        XCTAssertEqual(stopper.bestEpoch, 0, "ties do not count as improvements")
        XCTAssertEqual(stopper.stoppedEpoch, 3)
        XCTAssertEqual(history.epochs, 4)
        XCTAssertEqual(model.network.parameters[0].scalars, weightsAfterEpoch[0], "best weights restored")
        XCTAssertNotEqual(weightsAfterEpoch[3], weightsAfterEpoch[0])
    }

    func testEarlyStoppingNamesAMissingMonitor() {
        let model = Model(MLP.make(inputFeatures: 2, widths: [3]))
        model.compile(loss: .sparseCategoricalCrossentropy)
        let (x, y) = Self.spiral(pointsPerArm: 5)
        XCTAssertThrowsError(try model.fit(x: x, y: .classes(y), epochs: 2, callbacks: [EarlyStopping()], verbose: false)) {
            XCTAssert($0.localizedDescription.contains("no logged value 'val_loss'"), $0.localizedDescription)
        }
    }

    func makeDropoutModel() -> Model {
        let model = Model(MLP.make(inputFeatures: 2, widths: [16, 16, 3], dropout: 0.2, seed: 21))
        model.compile(optimizer: .adamW, learningRate: 0.01, loss: .sparseCategoricalCrossentropy, metrics: [.accuracy])
        return model
    }

    func testCheckpointResumeReachesTheSameWeights() throws {
        let (x, y) = Self.spiral(pointsPerArm: 30)
        let source = ArrayBatchSource(inputs: x, targets: .classes(y), batchSize: 16, shuffle: true, seed: 9)
        let uninterrupted = makeDropoutModel()
        try uninterrupted.fit(source, epochs: 6, seed: 4, verbose: false)

        let folder = try makeTemporaryDirectory("ckpt")
        let url = folder.appendingPathComponent("state.safetensors")
        let first = makeDropoutModel()
        try first.fit(source, epochs: 3, callbacks: [ModelCheckpoint(url: url)], seed: 4, verbose: false)
        let resumed = makeDropoutModel()
        try resumed.resume(from: url)
        XCTAssertEqual(resumed.completedEpochs, 3)
        let history = try resumed.fit(source, epochs: 6, seed: 4, verbose: false)
        XCTAssertEqual(history.epochs, 6)
        for (a, b) in zip(resumed.network.parameters, uninterrupted.network.parameters) {
            XCTAssertEqual(a.scalars, b.scalars)
        }
        XCTAssertEqual(history["loss"], uninterrupted.history["loss"])
        try? FileManager.default.removeItem(at: folder)
    }

    /// A cancellation flag set in the middle of epoch 3 (as the tool's Ctrl-C handler does):
    /// `fit` finishes the batch, saves the state of the epoch's start and throws; resuming redoes
    /// that epoch and reaches the uninterrupted run's weights exactly.
    func testCancellationSavesACheckpointAndResumingMatchesAnUninterruptedRun() throws {
        let (x, y) = Self.spiral(pointsPerArm: 30)
        let source = ArrayBatchSource(inputs: x, targets: .classes(y), batchSize: 16, shuffle: true, seed: 9)
        let uninterrupted = makeDropoutModel()
        try uninterrupted.fit(source, epochs: 4, seed: 4, verbose: false)

        let url = try makeTemporaryDirectory("cancel").appendingPathComponent("state.safetensors")
        let interrupted = makeDropoutModel()
        let flag = CancellationFlag()
        var batches = 0, batchesAfterCancel = 0
        let canceller = LambdaCallback(onBatchEnd: { _, _, _ in
            batches += 1
            if flag.isCancelled { batchesAfterCancel += 1 }
            // From another thread, as a signal source's handler would.
            if batches == 2 * 6 + 3 { DispatchQueue.global().sync { flag.cancel() } }
        })
        XCTAssertThrowsError(try interrupted.fit(source, epochs: 4, callbacks: [canceller], seed: 4, verbose: false,
                                                 cancellation: flag, interruptCheckpoint: url)) {
            XCTAssertEqual($0 as? TrainingError, .interrupted(epoch: 3, checkpoint: url.path))
        }
        XCTAssertEqual(batches, 15, "stopped after the batch during which the flag was set")
        XCTAssertEqual(batchesAfterCancel, 0)
        XCTAssertTrue(FileManager.default.fileExists(atPath: url.path))
        let resumed = makeDropoutModel()
        try resumed.resume(from: url)
        XCTAssertEqual(resumed.completedEpochs, 2, "the interrupted epoch is redone")
        try resumed.fit(source, epochs: 4, seed: 4, verbose: false)
        for (a, b) in zip(resumed.network.parameters, uninterrupted.network.parameters) {
            XCTAssertEqual(a.scalars, b.scalars)
        }
        XCTAssertEqual(resumed.history["loss"], uninterrupted.history["loss"])
    }

    /// A flag that is already set stops `fit` after its first batch; one left alone changes nothing.
    func testAFlagSetBeforehandStopsAfterOneBatchAndTheCheckpointCallbackPathIsUsed() throws {
        let (x, y) = Self.spiral(pointsPerArm: 10)
        let source = ArrayBatchSource(inputs: x, targets: .classes(y), batchSize: 10, shuffle: true, seed: 1)
        let url = try makeTemporaryDirectory("cancel").appendingPathComponent("state.safetensors")
        let flag = CancellationFlag()
        flag.cancel()
        var batches = 0
        let counter = LambdaCallback(onBatchEnd: { _, _, _ in batches += 1 })
        let model = makeDropoutModel()
        XCTAssertThrowsError(try model.fit(source, epochs: 2, callbacks: [counter, ModelCheckpoint(url: url)], verbose: false,
                                           cancellation: flag)) {
            XCTAssertEqual($0 as? TrainingError, .interrupted(epoch: 1, checkpoint: url.path))
        }
        XCTAssertEqual(batches, 1)
        XCTAssertEqual(try TrainingCheckpoint(contentsOf: url).completedEpochs, 0)
        let history = try makeDropoutModel().fit(source, epochs: 2, verbose: false, cancellation: CancellationFlag())
        XCTAssertEqual(history.epochs, 2)
    }

    func testSameSeedSameWeights() throws {
        let (x, y) = Self.spiral(pointsPerArm: 20)
        func train() throws -> [[Float]] {
            let model = makeDropoutModel()
            try model.fit(x: x, y: .classes(y), batchSize: 10, epochs: 3, seed: 8, verbose: false)
            return model.network.parameters.map(\.scalars)
        }
        XCTAssertEqual(try train(), try train())
    }

    func testFrozenLayersDoNotChangeAndLayerDecayScalesRates() throws {
        let network = Sequential([Dense(inputFeatures: 2, outputFeatures: 8, seed: 5), BatchNorm(features: 8),
                                  Activation(.relu), Dense(inputFeatures: 8, outputFeatures: 3, seed: 6)])
        let model = Model(network)
        model.freeze(prefixes: ["0", "1"])
        model.compile(optimizer: .adam, learningRate: 0.01, loss: .sparseCategoricalCrossentropy, layerRateDecay: 0.5)
        let frozen = network.stateDict().filter { $0.key.hasPrefix("0.") || $0.key.hasPrefix("1.") }.mapValues(\.scalars)
        let head = network.stateDict()["3.weight"]!.scalars
        let (x, y) = Self.spiral(pointsPerArm: 10)
        try model.fit(x: x, y: .classes(y), batchSize: 10, epochs: 2, verbose: false)
        for (key, values) in frozen {
            XCTAssertEqual(network.stateDict()[key]!.scalars, values, "\(key) is frozen (BN statistics included)")
        }
        XCTAssertNotEqual(network.stateDict()["3.weight"]!.scalars, head)
        XCTAssertEqual(model.optimizer!.trainable.map(\.name), ["3.weight", "3.bias"])
        XCTAssertEqual(model.optimizer!.trainable[0].rateMultiplier, 1)
        model.unfreeze()
        XCTAssertEqual(model.optimizer!.trainable.count, 6)
        XCTAssertEqual(model.optimizer!.trainable.first { $0.name == "0.weight" }!.rateMultiplier, 0.125)
    }
}

final class FineTuningTests: XCTestCase {
    func testFineTuningKeepsTheEncoderAdaptsTheBandsAndMakesANewHead() throws {
        let pretrained = SimpleCNN.make(inputChannels: 1, classCount: 5, imageSize: 16, seed: 1)
        let url = try makeTemporaryDirectory("pretrained").appendingPathComponent("pre.safetensors")
        try pretrained.save(to: url)
        let architecture = Architecture(name: .cnn, inChannels: 3, classes: 2, imageSize: 16)
        let (model, report) = try Model.fineTuning(architecture, from: url, seed: 2)
        XCTAssertEqual(Set(report.shapeMismatches.map(\.key)), ["12.weight", "12.bias"], "only the head is new")
        let old = pretrained.stateDict(), new = model.network.stateDict()
        XCTAssertEqual(new["3.weight"]!.scalars, old["3.weight"]!.scalars, "the encoder is pretrained")
        XCTAssertEqual(new["0.weight"]!.shape, [32, 3, 3, 3])
        // One band repeated to three and scaled by 1/3: a grey image gives the old response.
        let w1 = old["0.weight"]!.scalars, w3 = new["0.weight"]!.scalars
        XCTAssertEqual(w3[0] * 3, w1[0], accuracy: 1e-6)
        XCTAssertEqual(w3[9] * 3, w1[0], accuracy: 1e-6)
        try? FileManager.default.removeItem(at: url)
    }
}
