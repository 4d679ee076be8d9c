import Autograd
import Foundation
import NN
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
        WeightInitialization.reset(seed: 3)
        let model = Model(MLP.make(inputFeatures: 2, widths: [8, 2], activation: .tanh))
        model.compile(optimizer: .adam, learningRate: 0.05, loss: .sparseCategoricalCrossentropy, metrics: [.accuracy])
        let x = Tensor(shape: [4, 2], data: [0, 0, 0, 1, 1, 0, 1, 1])
        let history = try model.fit(x: x, y: .classes([0, 1, 1, 0]), batchSize: 4, epochs: 150, verbose: false)
        XCTAssertEqual(history["accuracy"]!.last!, 1)
        XCTAssertLessThan(history["loss"]!.last!, 0.05)
        XCTAssertEqual(model.predict(x).argmaxIndices(axis: 1), [0, 1, 1, 0])
    }

    func testThreeArmSpiralReaches95Percent() throws {
        WeightInitialization.reset(seed: 7)
        let (x, y) = Self.spiral()
        let model = Model(MLP.make(inputFeatures: 2, widths: [64, 64, 3]))
        model.compile(optimizer: .adam, learningRate: 0.01, loss: .sparseCategoricalCrossentropy, metrics: [.accuracy, .macroF1])
        try model.fit(x: x, y: .classes(y), batchSize: 32, epochs: 200, seed: 1, verbose: false)
        let result = try model.evaluate(x: x, y: .classes(y))
        XCTAssertGreaterThanOrEqual(result["accuracy"]!, 0.95)
        XCTAssertGreaterThanOrEqual(result["macro_f1"]!, 0.95)
    }

    /// BENCH.md's cnn (at 16×16) tells a compact blob from a ring.
    func testBenchCNNLearnsASyntheticImageTask() throws {
        WeightInitialization.reset(seed: 11)
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
        let model = Model(SimpleCNN.make(inputChannels: 1, classCount: 2, imageSize: s))
        model.compile(optimizer: .adam, learningRate: 1e-3, loss: .sparseCategoricalCrossentropy, metrics: [.accuracy])
        let history = try model.fit(x: Tensor(shape: [n, 1, s, s], data: pixels), y: .classes(labels), batchSize: 16,
                                    epochs: 8, validationSplit: 0.25, verbose: false)
        XCTAssertGreaterThanOrEqual(history["val_accuracy"]!.last!, 0.95)
        XCTAssertLessThan(history["loss"]!.last!, history["loss"]!.first!)
    }

    func testEarlyStoppingStopsAndRestoresTheBestWeights() throws {
        WeightInitialization.reset(seed: 2)
        let (x, y) = Self.spiral(pointsPerArm: 20)
        let model = Model(MLP.make(inputFeatures: 2, widths: [16, 3]))
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
        WeightInitialization.reset(seed: 21)
        let model = Model(MLP.make(inputFeatures: 2, widths: [16, 16, 3], dropout: 0.2))
        model.compile(optimizer: .adamW, learningRate: 0.01, loss: .sparseCategoricalCrossentropy, metrics: [.accuracy])
        return model
    }

    func testCheckpointResumeReachesTheSameWeights() throws {
        let (x, y) = Self.spiral(pointsPerArm: 30)
        let source = ArrayBatchSource(inputs: x, targets: .classes(y), batchSize: 16, shuffle: true, seed: 9)
        let uninterrupted = makeDropoutModel()
        try uninterrupted.fit(source, epochs: 6, seed: 4, verbose: false)

        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ckpt-\(UUID().uuidString)")
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

    func testCtrlCSavesACheckpointAndResumingMatchesAnUninterruptedRun() throws {
        let (x, y) = Self.spiral(pointsPerArm: 30)
        let source = ArrayBatchSource(inputs: x, targets: .classes(y), batchSize: 16, shuffle: true, seed: 9)
        let uninterrupted = makeDropoutModel()
        try uninterrupted.fit(source, epochs: 4, seed: 4, verbose: false)

        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ctrlc-\(UUID().uuidString).safetensors")
        let interrupted = makeDropoutModel()
        var batches = 0
        // A real SIGINT, delivered to this process in the middle of epoch 3.
        let sigint = LambdaCallback(onBatchEnd: { model, _, _ in
            batches += 1
            if batches == 2 * 6 + 3 { raise(SIGINT) }
        })
        XCTAssertThrowsError(try interrupted.fit(source, epochs: 4, callbacks: [sigint], seed: 4, verbose: false,
                                                 interruptCheckpoint: url)) {
            XCTAssertEqual($0 as? TrainingError, .interrupted(epoch: 3, checkpoint: url.path))
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: url.path))
        let resumed = makeDropoutModel()
        try resumed.resume(from: url)
        XCTAssertEqual(resumed.completedEpochs, 2, "the interrupted epoch is redone")
        try resumed.fit(source, epochs: 4, seed: 4, verbose: false)
        for (a, b) in zip(resumed.network.parameters, uninterrupted.network.parameters) {
            XCTAssertEqual(a.scalars, b.scalars)
        }
        try? FileManager.default.removeItem(at: url)
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
        WeightInitialization.reset(seed: 5)
        let network = Sequential([Dense(inputFeatures: 2, outputFeatures: 8), BatchNorm(features: 8),
                                  Activation(.relu), Dense(inputFeatures: 8, outputFeatures: 3)])
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
        WeightInitialization.reset(seed: 1)
        let pretrained = SimpleCNN.make(inputChannels: 1, classCount: 5, imageSize: 16)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("pre-\(UUID().uuidString).safetensors")
        try pretrained.save(to: url)
        let architecture = Architecture(name: .cnn, inChannels: 3, classes: 2, imageSize: 16)
        let (model, report) = try Model.fineTuning(architecture, from: url)
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
