// Adversarial training: one step against PyTorch (scripts/make_gan_fixtures.py), weight
// averaging, resume, interruption, and a small game that must find the real distribution.
import Autograd
import Foundation
import NN
import TestSupport
import XCTest
@testable import Training

final class GANTests: XCTestCase {
    static let fixture: [String: Tensor] = try! Safetensors(contentsOf: Bundle.module.url(forResource: "gan_step", withExtension: "safetensors",
                                                                        subdirectory: "Fixtures")!).tensors

    func tinyConditional(_ prefix: String = "") -> GAN {
        let fx = Self.fixture
        let g = Conv2D(inputChannels: 1, outputChannels: 1, kernelSize: 3, padding: 1, seed: 1)
        let d = Conv2D(inputChannels: 2, outputChannels: 1, kernelSize: 3, stride: 2, padding: 1, seed: 2)
        try! g.load(stateDict: ["weight": fx["g0.weight"]!, "bias": fx["g0.bias"]!])
        try! d.load(stateDict: ["weight": fx["d0.weight"]!, "bias": fx["d0.bias"]!])
        return GAN(generator: g, discriminator: d, conditioning: .conditional)
    }

    func testOneStepMatchesPyTorchForEveryLoss() throws {
        let fx = Self.fixture
        for loss in AdversarialLoss.allCases {
            let gan = tinyConditional()
            gan.compile(generatorLearningRate: 1e-2, discriminatorLearningRate: 1e-2, loss: loss,
                        labelSmoothing: loss == .hinge ? 0 : 0.1,
                        reconstructionWeight: 100)
            let step = try gan.trainOnBatch(TrainingBatch(inputs: fx["x"]!, targets: .values(fx["y"]!)))
            let name = loss.rawValue
            XCTAssertEqual(step.discriminatorLoss, fx["\(name).d_loss"]!.scalars[0], accuracy: 1e-5, name)
            XCTAssertEqual(step.generatorLoss, fx["\(name).g_loss"]!.scalars[0], accuracy: 1e-4, name)
            for (key, tensor) in gan.generator.stateDict() {
                assertClose(tensor.scalars, fx["\(name).g1.\(key)"]!.scalars, accuracy: 2e-6, "\(name): generator \(key)")
            }
            for (key, tensor) in gan.discriminator.stateDict() {
                assertClose(tensor.scalars, fx["\(name).d1.\(key)"]!.scalars, accuracy: 2e-6, "\(name): discriminator \(key)")
            }
        }
    }

    func testTheAverageFollowsTheExponentialMovingAverage() throws {
        let fx = Self.fixture
        let gan = tinyConditional()
        gan.compile(emaDecay: 0.75)
        let w0 = gan.generator.stateDict()["weight"]!.scalars
        try gan.trainOnBatch(TrainingBatch(inputs: fx["x"]!, targets: .values(fx["y"]!)))
        let w1 = gan.generator.stateDict()["weight"]!.scalars
        let expected = zip(w0, w1).map { 0.75 * $0 + 0.25 * $1 }
        assertClose(gan.averagedGenerator!["weight"]!.scalars, expected, accuracy: 1e-7)
        XCTAssertNotEqual(w0, w1)
        // Inference uses the average unless told otherwise, and leaves the weights as they were.
        let averaged = gan.predict(fx["x"]!), current = gan.predict(fx["x"]!, averaged: false)
        let reference = withNoGrad { fx["x"]!.conv2d(weight: gan.averagedGenerator!["weight"]!, bias: gan.averagedGenerator!["bias"]!,
                                                    stride: 1, padding: 1, dilation: 1) }
        assertClose(averaged.scalars, reference.scalars, accuracy: 1e-5)
        XCTAssertNotEqual(averaged.scalars, current.scalars)
        XCTAssertEqual(gan.generator.stateDict()["weight"]!.scalars, w1)
    }

    /// The R1 estimate on a linear discriminator `D(x) = w·x + b`: its value is exactly
    /// `γ/2 · mean((w·ε)²)` for the step's directions ε, the update it adds to `w` is exactly
    /// `-rate · γ · mean((w·ε) ε)`, which is close to `-rate · γ · w` (the gradient of
    /// `γ/2 ‖∇ₓD‖²`), and it leaves `b` (on which `∇ₓD` does not depend) alone.
    func testR1PenaltyOnALinearDiscriminatorIsTheGradientNorm() throws {
        let n = 4096, features = 4, weight: Float = 2, step: Float = 0.05, rate: Float = 0.1, seed: UInt64 = 77
        let real = Tensor.randomNormal([n, features], mean: 0.5, seed: 5)
        func make(penalty: Bool) -> GAN {
            let gan = GAN(generator: Dense(inputFeatures: 3, outputFeatures: features, seed: 1),
                          discriminator: Dense(inputFeatures: features, outputFeatures: 1, seed: 2),
                          conditioning: .unconditional(latentDimension: 3))
            gan.compile(generatorOptimizer: .sgd(), generatorLearningRate: rate, discriminatorOptimizer: .sgd(),
                        discriminatorLearningRate: rate, gradientPenalty: penalty ? (weight, step) : nil)
            return gan
        }
        let with = make(penalty: true), without = make(penalty: false)
        let w = (with.discriminator as! Dense).weight.scalars
        let stepWith = try with.trainOnBatch(TrainingBatch(inputs: real, targets: .values(real)), seed: seed)
        let stepWithout = try without.trainOnBatch(TrainingBatch(inputs: real, targets: .values(real)), seed: seed)
        XCTAssertEqual(stepWithout.gradientPenalty, 0)
        let eps = Tensor.randomNormal([n, features], seed: seed &+ 0x5231_5231).scalars
        var value = 0.0, gradient = [Double](repeating: 0, count: features)
        for i in 0..<n {
            let projection = (0..<features).reduce(0.0) { $0 + Double(w[$1]) * Double(eps[i * features + $1]) }
            value += projection * projection / Double(n)
            for j in 0..<features { gradient[j] += projection * Double(eps[i * features + j]) / Double(n) }
        }
        XCTAssertEqual(Double(stepWith.gradientPenalty), Double(weight) / 2 * value, accuracy: 1e-3 * Double(weight) * value)
        XCTAssertEqual(stepWith.discriminatorLoss - stepWithout.discriminatorLoss, stepWith.gradientPenalty, accuracy: 1e-4)
        let dWith = with.discriminator as! Dense, dWithout = without.discriminator as! Dense
        let difference = zip(dWith.weight.scalars, dWithout.weight.scalars).map { Double($0 - $1) }
        let norm = sqrt(w.reduce(0.0) { $0 + Double($1) * Double($1) })
        for j in 0..<features {
            XCTAssertEqual(difference[j], -Double(rate * weight) * gradient[j], accuracy: 1e-3 * Double(rate * weight) * norm, "w[\(j)]")
            XCTAssertEqual(difference[j], -Double(rate * weight) * Double(w[j]), accuracy: 0.1 * Double(rate * weight) * norm, "w[\(j)]")
        }
        XCTAssertEqual(dWith.bias!.scalars[0], dWithout.bias!.scalars[0], accuracy: 1e-6)
    }

    /// Networks with batch norm (running statistics in the checkpoint) for both kinds of GAN.
    func makeGAN(conditional: Bool) -> GAN {
        if conditional {
            let g = Sequential {
                Conv2D(inputChannels: 1, outputChannels: 4, kernelSize: 3, padding: 1, seed: 1)
                BatchNorm(features: 4)
                Activation(.leakyReLU(negativeSlope: 0.2))
                Conv2D(inputChannels: 4, outputChannels: 1, kernelSize: 3, padding: 1, seed: 2)
            }
            return GAN(generator: g, discriminator: PatchDiscriminator(width: 4, seed: 3), conditioning: .conditional)
        }
        let g = Sequential { Dense(inputFeatures: 3, outputFeatures: 8, seed: 1); Activation(.leakyReLU(negativeSlope: 0.2))
                             Dense(inputFeatures: 8, outputFeatures: 2, seed: 2) }
        let d = Sequential { SpectralNorm(Dense(inputFeatures: 2, outputFeatures: 8, seed: 3), seed: 4)
                             Activation(.leakyReLU(negativeSlope: 0.2)); Dense(inputFeatures: 8, outputFeatures: 1, seed: 5) }
        return GAN(generator: g, discriminator: d, conditioning: .unconditional(latentDimension: 3))
    }

    func data(conditional: Bool) -> ArrayBatchSource {
        if conditional {
            let x = Tensor.randomNormal([24, 1, 16, 16], seed: 11)
            return ArrayBatchSource(inputs: x, targets: .values(x * 2 + 1), batchSize: 8, shuffle: true, seed: 3)
        }
        let x = Tensor.randomNormal([24, 2], mean: 1, seed: 12)
        return ArrayBatchSource(inputs: x, targets: .values(x), batchSize: 8, shuffle: true, seed: 3)
    }

    func testResumingFromACheckpointContinuesExactly() throws {
        let folder = try makeTemporaryDirectory("gan-resume")
        for conditional in [true, false] {
            let straight = makeGAN(conditional: conditional)
            straight.compile(labelSmoothing: 0.1, reconstructionWeight: conditional ? 10 : 0, emaDecay: 0.9)
            try straight.fit(data(conditional: conditional), epochs: 3, seed: 5, verbose: false)

            let url = folder.appendingPathComponent("gan-\(conditional).safetensors")
            let first = makeGAN(conditional: conditional)
            first.compile(labelSmoothing: 0.1, reconstructionWeight: conditional ? 10 : 0, emaDecay: 0.9)
            try first.fit(data(conditional: conditional), epochs: 1, checkpoint: url, seed: 5, verbose: false)
            let resumed = makeGAN(conditional: conditional)
            resumed.compile(labelSmoothing: 0.1, reconstructionWeight: conditional ? 10 : 0, emaDecay: 0.9)
            try resumed.resume(from: url)
            XCTAssertEqual(resumed.completedEpochs, 1)
            try resumed.fit(data(conditional: conditional), epochs: 3, historyCSV: folder.appendingPathComponent("h.csv"),
                            curves: folder.appendingPathComponent("curves.png"), seed: 5, verbose: false)

            for (a, b) in [(straight.generator, resumed.generator), (straight.discriminator, resumed.discriminator)] {
                let sa = a.stateDict(), sb = b.stateDict()
                for key in sa.keys { XCTAssertEqual(sa[key]!.scalars, sb[key]!.scalars, "conditional \(conditional): \(key)") }
            }
            for key in straight.averagedGenerator!.keys {
                XCTAssertEqual(straight.averagedGenerator![key]!.scalars, resumed.averagedGenerator![key]!.scalars)
            }
            XCTAssertEqual(straight.history, resumed.history)
            let expectedKeys = conditional ? ["d_loss", "g_loss", "g_adv_loss", "l1_loss", "d_real", "d_fake"]
                                           : ["d_loss", "g_loss", "g_adv_loss", "d_real", "d_fake"]
            XCTAssertEqual(resumed.history.keys, expectedKeys)
            let csv = try String(contentsOf: folder.appendingPathComponent("h.csv"), encoding: .utf8)
            XCTAssertEqual(csv.split(separator: "\n").count, 4, "header and three epochs")
            XCTAssert(FileManager.default.fileExists(atPath: folder.appendingPathComponent("curves.png").path))
        }
    }

    func testInterruptionSavesTheEpochsStartAndWrongCheckpointsAreClearErrors() throws {
        let folder = try makeTemporaryDirectory("gan-interrupt")
        let url = folder.appendingPathComponent("state.safetensors")
        let gan = makeGAN(conditional: true)
        gan.compile()
        let before = gan.generator.stateDict().mapValues(\.scalars)
        let flag = CancellationFlag()
        flag.cancel()
        XCTAssertThrowsError(try gan.fit(data(conditional: true), epochs: 2, checkpoint: url, verbose: false, cancellation: flag)) {
            XCTAssertEqual($0 as? TrainingError, .interrupted(epoch: 1, checkpoint: url.path))
        }
        let saved = try GANCheckpoint(contentsOf: url)
        XCTAssertEqual(saved.completedEpochs, 0)
        for (key, values) in before { XCTAssertEqual(saved.generator[key]!.scalars, values, key) }

        // A checkpoint without averaged weights for a GAN that averages; a plain weights file.
        let averaging = makeGAN(conditional: true)
        averaging.compile(emaDecay: 0.99)
        XCTAssertThrowsError(try averaging.resume(from: url)) { XCTAssert("\($0)".contains("averaged")) }
        let plain = folder.appendingPathComponent("plain.safetensors")
        try Safetensors(tensors: gan.generator.stateDict(), metadata: [:]).serialized().write(to: plain)
        XCTAssertThrowsError(try averaging.resume(from: plain)) {
            XCTAssert($0.localizedDescription.contains("not a GAN training checkpoint"), $0.localizedDescription)
        }
        // A conditional GAN needs image targets.
        XCTAssertThrowsError(try gan.trainOnBatch(TrainingBatch(inputs: Tensor.zeros([2, 1, 16, 16]), targets: .classes([0, 1]))))
    }

    /// The game's equilibrium: a generator of 2-D points learns the real distribution's
    /// mean and spread from the discriminator alone.
    func testTheGeneratorLearnsTheRealDistribution() throws {
        let real = Tensor.randomNormal([512, 2], mean: 0, standardDeviation: 1, seed: 21) * 0.5 + Tensor([3, -2])
        let g = Sequential { Dense(inputFeatures: 4, outputFeatures: 16, seed: 1); Activation(.leakyReLU(negativeSlope: 0.2))
                             Dense(inputFeatures: 16, outputFeatures: 2, seed: 2) }
        let d = Sequential { Dense(inputFeatures: 2, outputFeatures: 32, seed: 3); Activation(.leakyReLU(negativeSlope: 0.2))
                             Dense(inputFeatures: 32, outputFeatures: 1, seed: 4) }
        let gan = GAN(generator: g, discriminator: d, conditioning: .unconditional(latentDimension: 4))
        gan.compile(generatorLearningRate: 5e-3, discriminatorLearningRate: 5e-3, loss: .nonSaturating, emaDecay: 0.9)
        let start = gan.generate(count: 1000, seed: 9)
        let startMean = start.mean(axes: [0]).scalars
        try gan.fit(ArrayBatchSource(inputs: real, targets: .values(real), batchSize: 64, shuffle: true), epochs: 60,
                    seed: 1, verbose: false)
        let samples = gan.generate(count: 1000, seed: 9)
        let mean = samples.mean(axes: [0]).scalars
        let spread = samples.variance(axes: [0]).sqrt().scalars
        XCTAssertGreaterThan(Swift.abs(startMean[0] - 3), 1.5, "the untrained generator is far from the data")
        XCTAssertEqual(mean[0], 3, accuracy: 0.3)
        XCTAssertEqual(mean[1], -2, accuracy: 0.3)
        for s in spread { XCTAssert((0.2...1.0).contains(s), "spread \(spread) against the real 0.5") }
    }

    /// A class-conditional GAN: the one-hot codes and class planes are what they say, a batch
    /// without classes is refused by name, and the generator learns a different image per class
    /// (class 0 dark, class 1 bright) from the classes alone.
    func testLabelledGANLearnsEachClass() throws {
        XCTAssertEqual(Tensor.oneHot([2, 0], classCount: 3).scalars, [0, 0, 1, 1, 0, 0])
        let planes = GANConditioning.classPlanes([1], classCount: 2, height: 2, width: 2)
        XCTAssertEqual(planes.shape, [1, 2, 2, 2])
        XCTAssertEqual(planes.scalars, [0, 0, 0, 0, 1, 1, 1, 1])

        let labels = (0..<64).map { $0 % 2 }
        let noise = Tensor.randomNormal([64, 1, 8, 8], seed: 5) * 0.05
        let level = Tensor(shape: [64, 1, 1, 1], data: labels.map { $0 == 0 ? -0.5 : 0.5 })
        let real = noise + level
        let gan = GAN(generator: DCGANGenerator(latentDimension: 2, outputChannels: 1, widths: [8], classCount: 2, seed: 1),
                      discriminator: DCGANDiscriminator(inputChannels: 3, widths: [8], seed: 2),
                      conditioning: .labelled(latentDimension: 2, classCount: 2))
        gan.compile(generatorLearningRate: 2e-3, discriminatorLearningRate: 2e-3)
        XCTAssertThrowsError(try gan.trainOnBatch(TrainingBatch(inputs: real, targets: .values(real)))) {
            XCTAssert("\($0)".contains("class-conditional") && "\($0)".contains("0..<2"), "\($0)")
        }
        try gan.fit(ArrayBatchSource(inputs: real, targets: .classes(labels), batchSize: 16, shuffle: true, seed: 3), epochs: 40,
                    seed: 1, verbose: false)
        let images = gan.generate(count: 200, seed: 9)    // image i of class i % 2
        var means = [0.0, 0.0]
        let plane = 64
        for i in 0..<200 {
            means[i % 2] += images.scalars[(i * plane)..<((i + 1) * plane)].reduce(0.0) { $0 + Double($1) } / Double(plane * 100)
        }
        XCTAssertEqual(means[0], -0.5, accuracy: 0.2, "class 0's images: \(means)")
        XCTAssertEqual(means[1], 0.5, accuracy: 0.2, "class 1's images: \(means)")
    }
}
