import AstroBase
import Autograd
import Foundation
import NN

/// The generator's adversarial loss.
public enum AdversarialLoss: String, CaseIterable, Sendable, Codable {
    /// The lecture's min-max game: the generator minimises `log(1 - D(G(z)))`, i.e.
    /// `-BCE(D(G(z)), 0)`. Its gradient vanishes while the discriminator wins easily
    /// (early in training), which is why the non-saturating form is the usual choice.
    case minimax
    /// Goodfellow et al.'s non-saturating form: the generator maximises `log D(G(z))`,
    /// i.e. minimises `BCE(D(G(z)), 1)`; same fixed point, strong gradients early.
    case nonSaturating = "non_saturating"
    /// The hinge loss of SNGAN and BigGAN (Lim & Ye 2017; Miyato et al. 2018): the
    /// discriminator minimises `½(E[max(0, 1 − D(x))] + E[max(0, 1 + D(G(z)))])`, the generator
    /// `−E[D(G(z))]`. Usually with spectral normalisation in the discriminator; no label smoothing.
    case hinge
}

/// What the generator receives.
public enum GANConditioning: Equatable, Sendable {
    /// pix2pix: the generator maps an input image to an output image; the discriminator
    /// judges (input, output) pairs concatenated on the channel axis. The data's inputs are
    /// the conditions and its `.values` targets the real outputs.
    case conditional
    /// The generator maps Gaussian noise `[N, latentDimension]` to images; the discriminator
    /// judges images alone. The data's inputs are the real images (targets are ignored).
    case unconditional(latentDimension: Int)
    /// A class-conditional generator (Mirza & Osindero 2014): the generator maps noise
    /// `[N, latentDimension]` followed by a one-hot class code `[N, classCount]` to images; the
    /// discriminator judges each image with its class as `classCount` constant one-hot planes
    /// concatenated before it. The data's inputs are the real images and its `.classes` their
    /// classes; the generated images of a step take the real batch's classes, so the classes
    /// are drawn as often as the data holds them.
    case labelled(latentDimension: Int, classCount: Int)

    /// The discriminator's class planes `[N, classCount, height, width]` of `labels`: each
    /// image's one-hot code as constant planes.
    public static func classPlanes(_ labels: [Int], classCount: Int, height: Int, width: Int) -> Tensor {
        Tensor.oneHot(labels, classCount: classCount).reshaped(to: [labels.count, classCount, 1, 1])
            .expanded(to: [labels.count, classCount, height, width])
    }
}

/// The values of one adversarial step.
public struct AdversarialStep: Equatable, Sendable {
    /// The discriminator's loss: the mean of its BCE on real (target `1 - labelSmoothing`)
    /// and on generated samples (target 0), or of its two hinge terms.
    public var discriminatorLoss: Float
    /// The generator's total loss: adversarial plus `reconstructionWeight × L1`.
    public var generatorLoss: Float
    public var adversarialLoss: Float
    /// Mean absolute error between generated and real outputs (conditional only; 0 otherwise).
    public var reconstructionLoss: Float
    /// The discriminator's mean probability "real" on real and on generated samples.
    public var realScore: Float
    public var fakeScore: Float
    /// The discriminator's R1 penalty term as added to its loss (0 without one).
    public var gradientPenalty: Float = 0
}

/// Two networks trained against each other, with Keras' style of API: `compile`, `fit`,
/// `predict` / `generate`, checkpoints and resume.
///
///     let gan = GAN(generator: UNet(inputChannels: 1, classCount: 1), discriminator: PatchDiscriminator(),
///                   conditioning: .conditional)
///     gan.compile(loss: .nonSaturating, labelSmoothing: 0.1, reconstructionWeight: 100, emaDecay: 0.999)
///     try gan.fit(data, epochs: 20, checkpoint: url)
///
/// Each step is an update of the discriminator (on real samples and on the generator's
/// current output, detached), then an update of the generator through the discriminator
/// (whose weights do not change in that step), each with its own optimiser. Optionally an
/// exponential moving average of the generator's weights is kept (`emaDecay`), the weights
/// usually used for inference (`predict(averaged: true)`, `averagedGeneratorWeights()`).
public final class GAN {
    public let generator: any Layer
    public let discriminator: any Layer
    public let conditioning: GANConditioning
    public private(set) var generatorOptimizer: ModelOptimizer?
    public private(set) var discriminatorOptimizer: ModelOptimizer?
    public private(set) var loss: AdversarialLoss = .nonSaturating
    /// One-sided label smoothing: real samples' target is `1 - labelSmoothing`.
    public private(set) var labelSmoothing: Float = 0
    /// Weight of the L1 term between generated and real outputs (pix2pix's λ; conditional only).
    public private(set) var reconstructionWeight: Float = 0
    public private(set) var emaDecay: Float?
    /// The zero-centred gradient penalty on real samples (R1, Mescheder et al. 2018): the
    /// discriminator's loss gains `γ/2 · E‖∇ₓD(x)‖²` with `γ = gradientPenalty.weight`, which
    /// lets the game converge locally instead of circling its equilibrium. The engine has no
    /// second derivatives, so the squared gradient norm is estimated by a finite difference
    /// along random directions, `E_ε[(D(x + σε) − D(x))²] / σ²` with `ε ~ N(0, I)` and
    /// `σ = gradientPenalty.step`: exact for a discriminator linear over `σ`, and a smoothed
    /// norm otherwise (Zhang et al. 2020's consistency regularisation is the same term at a
    /// large `σ`). One more discriminator pass on the real batch per step. nil: none.
    public private(set) var gradientPenalty: (weight: Float, step: Float)?
    /// The moving average of the generator's state (parameters averaged, buffers copied).
    public internal(set) var averagedGenerator: [String: Tensor]?
    public internal(set) var history = History()
    public internal(set) var completedEpochs = 0
    /// Set (from `onEpochEnd`) to end `fit` after the current epoch.
    public var stopTraining = false
    /// What observing a generated sample does to it, for data that are noisy observations of
    /// what the generator should learn (AmbientGAN, Bora et al. 2018): the discriminator
    /// judges `measurement(G(z), seed)` against the real data, and the generator, whose
    /// gradient flows through the measurement, learns the noiseless images. `seed` draws the
    /// measurement's randomness (a new one each step). nil: the discriminator sees `G(z)`.
    public var measurement: ((Tensor, UInt64) -> Tensor)?

    public init(generator: any Layer, discriminator: any Layer, conditioning: GANConditioning) {
        self.generator = generator
        self.discriminator = discriminator
        self.conditioning = conditioning
    }

    /// Chooses the two optimisers (pix2pix and DCGAN defaults: Adam, rate 2e-4, betas 0.5 and
    /// 0.999), the generator's loss, label smoothing, the L1 weight and the weight averaging.
    public func compile(generatorOptimizer: OptimizerKind = .adam(beta1: 0.5, beta2: 0.999), generatorLearningRate: Float = 2e-4,
                        discriminatorOptimizer: OptimizerKind = .adam(beta1: 0.5, beta2: 0.999),
                        discriminatorLearningRate: Float = 2e-4, loss: AdversarialLoss = .nonSaturating,
                        labelSmoothing: Float = 0, reconstructionWeight: Float = 0, emaDecay: Float? = nil,
                        gradientPenalty: (weight: Float, step: Float)? = nil) {
        precondition((0..<1).contains(labelSmoothing), "GAN: labelSmoothing must be in [0, 1), got \(labelSmoothing)")
        precondition(loss != .hinge || labelSmoothing == 0, "GAN: the hinge loss takes no label smoothing, got \(labelSmoothing)")
        precondition(gradientPenalty.map { $0.weight >= 0 && $0.step > 0 } ?? true,
                     "GAN: the gradient penalty's weight must be >= 0 and its step > 0, got \(gradientPenalty!)")
        precondition(emaDecay.map { (0..<1).contains($0) } ?? true, "GAN: emaDecay must be in [0, 1), got \(emaDecay!)")
        func trainable(_ layer: any Layer) -> [TrainableParameter] {
            layer.namedParameters().map { TrainableParameter(name: $0.key, tensor: $0.tensor) }
        }
        self.generatorOptimizer = ModelOptimizer(generatorOptimizer, parameters: trainable(generator), learningRate: generatorLearningRate)
        self.discriminatorOptimizer = ModelOptimizer(discriminatorOptimizer, parameters: trainable(discriminator),
                                                     learningRate: discriminatorLearningRate)
        self.loss = loss
        self.labelSmoothing = labelSmoothing
        self.reconstructionWeight = reconstructionWeight
        self.emaDecay = emaDecay
        self.gradientPenalty = gradientPenalty.flatMap { $0.weight > 0 ? $0 : nil }
        averagedGenerator = emaDecay == nil ? nil : generator.stateDict().mapValues { $0.copy() }
    }

    // MARK: - One step

    /// The discriminator's input for `sample` (conditional: the condition concatenated before it).
    func discriminatorInput(condition: Tensor?, sample: Tensor) -> Tensor {
        guard let condition else { return sample }
        return Tensor.concatenate([condition, sample], axis: 1)
    }

    /// Generator input and real samples of `batch`, with noise from `seed` when unconditional.
    func split(_ batch: TrainingBatch, seed: UInt64) throws -> (input: Tensor, condition: Tensor?, real: Tensor) {
        switch conditioning {
        case .conditional:
            guard case let .values(real) = batch.targets, real.shape.first == batch.inputs.shape.first else {
                throw TrainingError.emptyData(what: "a conditional GAN batch without image targets (.values [N, C, H, W])")
            }
            return (batch.inputs, batch.inputs, real)
        case let .unconditional(latent):
            let noise = Tensor.randomNormal([batch.inputs.shape[0], latent], seed: seed)
            return (noise, nil, batch.inputs)
        case let .labelled(latent, classCount):
            let n = batch.inputs.shape[0]
            guard case let .classes(labels) = batch.targets, labels.count == n, labels.allSatisfy({ (0..<classCount).contains($0) }) else {
                throw TrainingError.emptyData(what: "a class-conditional GAN batch without a class in 0..<\(classCount) for each of its \(n) images")
            }
            let noise = Tensor.randomNormal([n, latent], seed: seed)
            let input = Tensor.concatenate([noise, Tensor.oneHot(labels, classCount: classCount)], axis: 1)
            let planes = GANConditioning.classPlanes(labels, classCount: classCount, height: batch.inputs.shape[2], width: batch.inputs.shape[3])
            return (input, planes, batch.inputs)
        }
    }

    /// One discriminator update and one generator update; `seed` draws the noise of an
    /// unconditional GAN.
    @discardableResult
    public func trainOnBatch(_ batch: TrainingBatch, seed: UInt64 = 0) throws -> AdversarialStep {
        guard let generatorOptimizer, let discriminatorOptimizer else {
            throw TrainingError.notCompiled(operation: "GAN.trainOnBatch")
        }
        let (input, condition, real) = try split(batch, seed: seed)
        generator.train()
        discriminator.train()
        let made = generator(input)
        let fake = measurement.map { $0(made, seed &+ 0x6D65_6173) } ?? made
        precondition(fake.shape == real.shape, "GAN: the generator made \(fake.shape) for real samples \(real.shape)")

        // Discriminator: real pairs towards 1 - smoothing, generated ones (detached) towards 0.
        discriminatorOptimizer.zeroGrad()
        let realLogits = discriminator(discriminatorInput(condition: condition, sample: real))
        let fakeLogits = discriminator(discriminatorInput(condition: condition, sample: fake.detached()))
        let realLoss: Tensor, fakeLoss: Tensor
        if loss == .hinge {
            realLoss = (1 - realLogits).relu().mean()
            fakeLoss = (fakeLogits + 1).relu().mean()
        } else {
            realLoss = Loss.binaryCrossEntropy(logits: realLogits,
                                               targets: Tensor(repeating: 1 - labelSmoothing, shape: realLogits.shape))
            fakeLoss = Loss.binaryCrossEntropy(logits: fakeLogits, targets: Tensor.zeros(fakeLogits.shape))
        }
        var dLoss = (realLoss + fakeLoss) * 0.5
        var penaltyValue: Float = 0
        if let (weight, step) = gradientPenalty {
            let nudged = real + Tensor.randomNormal(real.shape, seed: seed &+ 0x5231_5231) * step
            let nudgedLogits = discriminator(discriminatorInput(condition: condition, sample: nudged))
            let penalty = (nudgedLogits - realLogits).squared().mean() * (weight / (2 * step * step))
            penaltyValue = penalty.scalars[0]
            dLoss = dLoss + penalty
        }
        dLoss.backward()
        discriminatorOptimizer.step()

        // Generator through the updated discriminator, whose weights take no gradient here.
        generatorOptimizer.zeroGrad()
        let dParameters = discriminator.parameters
        for p in dParameters { p.requiresGrad = false }
        defer { for p in dParameters { p.requiresGrad = true } }
        let logits = discriminator(discriminatorInput(condition: condition, sample: fake))
        let adversarial: Tensor
        switch loss {
        case .nonSaturating: adversarial = Loss.binaryCrossEntropy(logits: logits, targets: Tensor.ones(logits.shape))
        case .minimax: adversarial = -Loss.binaryCrossEntropy(logits: logits, targets: Tensor.zeros(logits.shape))
        case .hinge: adversarial = -logits.mean()
        }
        var gLoss = adversarial
        var l1: Float = 0
        if conditioning == .conditional {
            let reconstruction = Loss.meanAbsoluteError(fake, real)
            l1 = reconstruction.scalars[0]
            if reconstructionWeight > 0 { gLoss = gLoss + reconstruction * reconstructionWeight }
        }
        gLoss.backward()
        generatorOptimizer.step()
        updateAverage()
        let step = AdversarialStep(discriminatorLoss: dLoss.scalars[0], generatorLoss: gLoss.scalars[0],
                                   adversarialLoss: adversarial.scalars[0], reconstructionLoss: l1,
                                   realScore: withNoGrad { realLogits.detached().sigmoid().mean().scalars[0] },
                                   fakeScore: withNoGrad { fakeLogits.detached().sigmoid().mean().scalars[0] },
                                   gradientPenalty: penaltyValue)
        guard step.discriminatorLoss.isFinite && step.generatorLoss.isFinite else {
            throw TrainingError.nonFiniteLoss(epoch: completedEpochs + 1, batch: 0)
        }
        return step
    }

    /// `ema = decay · ema + (1 - decay) · weights` for parameters; buffers are copied.
    func updateAverage() {
        guard let decay = emaDecay, let averaged = averagedGenerator else { return }
        for (key, tensor, role) in generator.namedTensors() {
            guard let target = averaged[key] else { continue }
            let a = target.storage.pointer, w = tensor.storage.pointer
            if role == .buffer {
                a.update(from: w, count: tensor.count)
            } else {
                for j in 0..<tensor.count { a[j] = decay * a[j] + (1 - decay) * w[j] }
            }
        }
    }

    /// The generator's state to save for inference: the moving average when kept and
    /// `averaged`, else the current weights (copies).
    public func generatorWeights(averaged: Bool = true) -> [String: Tensor] {
        if averaged, let averagedGenerator { return averagedGenerator.mapValues { $0.copy() } }
        return generator.stateDict().mapValues { $0.copy() }
    }

    /// Runs `body` with the averaged weights in the generator (if kept), then puts the
    /// current weights back.
    public func withAveragedGenerator<R>(_ body: () throws -> R) rethrows -> R {
        guard let averagedGenerator else { return try body() }
        let current = generator.stateDict().mapValues { $0.copy() }
        for (key, tensor) in generator.stateDict() { if let a = averagedGenerator[key] { tensor.assign(a) } }
        defer { for (key, tensor) in generator.stateDict() { tensor.assign(current[key]!) } }
        return try body()
    }

    // MARK: - Inference

    /// The generator's outputs for `inputs` (conditions, or noise `[N, latent]`) in batches, in
    /// inference mode, with the averaged weights when `averaged` and kept.
    public func predict(_ inputs: Tensor, batchSize: Int = 64, averaged: Bool = true) -> Tensor {
        let run = { () -> Tensor in
            self.generator.eval()
            let n = inputs.shape.first ?? 0
            return withNoGrad {
                var outputs = [Tensor]()
                var start = 0
                while start < n {
                    let end = Swift.min(n, start + batchSize)
                    outputs.append(self.generator(inputs.sliced(axis: 0, start..<end)))
                    start = end
                }
                return outputs.count == 1 ? outputs[0] : Tensor.concatenate(outputs, axis: 0)
            }
        }
        return averaged ? withAveragedGenerator(run) : run()
    }

    /// `count` samples of an unconditional or class-conditional generator from noise drawn with
    /// `seed`; a class-conditional one makes sample `i` of class `i % classCount`.
    public func generate(count: Int, seed: UInt64, averaged: Bool = true) -> Tensor {
        switch conditioning {
        case .conditional:
            preconditionFailure("GAN.generate: a conditional GAN needs inputs: use predict(_:)")
        case let .unconditional(latent):
            return predict(Tensor.randomNormal([count, latent], seed: seed), averaged: averaged)
        case let .labelled(latent, classCount):
            let codes = Tensor.oneHot((0..<count).map { $0 % classCount }, classCount: classCount)
            return predict(Tensor.concatenate([Tensor.randomNormal([count, latent], seed: seed), codes], axis: 1), averaged: averaged)
        }
    }

    /// Mean absolute error of the (averaged) generator against the real outputs of `data`
    /// (conditional GANs).
    public func validationL1(_ data: BatchSource) throws -> Double {
        var total = 0.0, count = 0
        for result in try data.batches(epoch: 0) {
            let batch = try result.get()
            guard case let .values(real) = batch.targets else { continue }
            let fake = predict(batch.inputs)
            total += Double(withNoGrad { Loss.meanAbsoluteError(fake, real).scalars[0] }) * Double(real.count)
            count += real.count
        }
        guard count > 0 else { throw TrainingError.emptyData(what: "the validation data") }
        return total / Double(count)
    }
}
