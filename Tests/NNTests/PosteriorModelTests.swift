import Autograd
import Foundation
import XCTest
@testable import NN

/// The posterior model: its coupling masks, taking a regressor's weights, the draws' layout
/// and training by the negative log-likelihood.
final class PosteriorModelTests: XCTestCase {
    /// Every pair of the 4 targets is split apart by some layer (else their dependence could
    /// not be learned), and each feature is transformed by some layer.
    func testCouplingMasksSeparateEveryPair() {
        let masks = Flow.couplingMasks(features: 4, layers: 6)
        XCTAssertEqual(masks[0], [true, false, true, false])
        XCTAssertEqual(masks[1], [false, true, false, true])
        for i in 0..<4 {
            XCTAssert(masks.contains { $0[i] }, "feature \(i) transformed")
            for j in (i + 1)..<4 { XCTAssert(masks.contains { $0[i] != $0[j] }, "pair \(i), \(j) split") }
        }
        XCTAssert(Flow.couplingMasks(features: 3, layers: 4).allSatisfy { $0.contains(true) && $0.contains(false) })
    }

    func makeModel(seed: UInt64) throws -> PosteriorRegressor {
        let architecture = Architecture(name: .resnet18Flow, inChannels: 1, classes: 6, widths: [4, 4, 4, 4], stemPool: false,
                                        flow: FlowSettings(features: 4, layers: 2, hidden: [8], bins: 4))
        return try XCTUnwrap(try architecture.makeModel(seed: seed) as? PosteriorRegressor)
    }

    /// A regressor's weights go to `encoder.…`; its 4-output head fills the first 4 of the 6
    /// context rows and the other rows keep their values.
    func testEncoderTakesARegressorsWeights() throws {
        let model = try makeModel(seed: 1)
        let regressor = ResNet(.init(blocks: [2, 2, 2, 2], inputChannels: 1, classCount: 4, widths: [4, 4, 4, 4],
                                     smallImageStem: false, stemPool: false), seed: 9)
        let before = model.encoder.namedTensors().first { $0.key == "fc.weight" }!.tensor.scalars
        let weights = model.encoderWeights(from: Dictionary(uniqueKeysWithValues: regressor.namedTensors().map { ($0.key, $0.tensor) }))
        let report = try model.load(stateDict: weights, mode: .partial)
        XCTAssert(report.missing.allSatisfy { $0.hasPrefix("flow.") }, "\(report.missing)")
        XCTAssert(report.shapeMismatches.isEmpty && report.unexpected.isEmpty)
        let fc = model.encoder.namedTensors().first { $0.key == "fc.weight" }!.tensor.scalars
        XCTAssertEqual(Array(fc.prefix(4 * 4)), Array(regressor.fc.weight.scalars))
        XCTAssertEqual(Array(fc.suffix(2 * 4)), Array(before.suffix(2 * 4)))
        let conv = model.encoder.namedTensors().first { $0.key == "conv1.weight" }!.tensor.scalars
        XCTAssertEqual(conv, regressor.conv1.weight.scalars)
    }

    /// Draws of row i come in a block; equal contexts give draws of one law, and the
    /// eval-mode fused model samples the same draws as the model.
    func testSamplesAreGroupedByContextAndFusionKeepsThem() throws {
        let model = try makeModel(seed: 2)
        model.eval()
        var g = SeededGenerator(seed: 4)
        let images = Tensor.randomNormal([2, 1, 32, 32], generator: &g)
        let context = withNoGrad { model(images) }
        var g1 = SeededGenerator(seed: 5), g2 = SeededGenerator(seed: 5)
        let draws = withNoGrad { model.sample(context: context, count: 50, generator: &g1) }
        XCTAssertEqual(draws.shape, [100, 4])
        let fused = try XCTUnwrap(model.fusedForInference() as? PosteriorRegressor)
        let fusedDraws = withNoGrad { fused.sample(context: fused(images), count: 50, generator: &g2) }
        for (a, b) in zip(draws.scalars, fusedDraws.scalars) { XCTAssertEqual(a, b, accuracy: 1e-3 * Swift.max(1, abs(a))) }
        // Row 0's draws come from context 0: the flow maps them back to the same latent normals.
        let first = draws.sliced(axis: 0, 0..<50)
        let (z, _) = withNoGrad { model.flow.latent(first, context: context.sliced(axis: 0, 0..<1).expanded(to: [50, 6])) }
        var g3 = SeededGenerator(seed: 5)
        let normals = Tensor.randomNormal([100, 4], generator: &g3).sliced(axis: 0, 0..<50)
        for (a, b) in zip(z.scalars, normals.scalars) { XCTAssertEqual(a, b, accuracy: 1e-3) }
    }

    /// The NLL is the flow's mean −log p given the encoder's context, and a gradient step lowers it.
    func testNegativeLogLikelihoodTrains() throws {
        let model = try makeModel(seed: 3)
        var g = SeededGenerator(seed: 6)
        let images = Tensor.randomNormal([8, 1, 32, 32], generator: &g)
        let targets = Tensor.randomNormal([8, 4], generator: &g) * 0.3
        model.eval()
        let context = model(images)
        let nll = model.negativeLogLikelihood(context: context, targets: targets)
        XCTAssertEqual(nll.item, -model.flow.logProbability(targets, context: context).mean().item, accuracy: 1e-5)
        let optimizer = ModelOptimizer(.adam(), tensors: model.parameters, learningRate: 0.01)
        var last = nll.item
        for _ in 0..<20 {
            optimizer.zeroGrad()
            let loss = model.negativeLogLikelihood(context: model(images), targets: targets)
            loss.backward()
            optimizer.step()
            last = loss.item
        }
        XCTAssertLessThan(last, nll.item - 0.5)
    }

    /// With header channels the encoder sees the image channels, the planes' values end the
    /// context, and a model trained without them, widened by `contextWidened`, gives the same
    /// log-probabilities before training.
    func testHeaderChannelsJoinTheContextAndWideningKeepsThePosterior() throws {
        let narrow = try makeModel(seed: 7)
        let architecture = Architecture(name: .resnet18Flow, inChannels: 2, classes: 6, widths: [4, 4, 4, 4], stemPool: false,
                                        flow: FlowSettings(features: 4, layers: 2, hidden: [8], bins: 4), contextChannels: 1)
        let wide = try XCTUnwrap(try architecture.makeModel(seed: 8) as? PosteriorRegressor)
        XCTAssertEqual(wide.contextFeatures, 7)
        let pretrained = Dictionary(uniqueKeysWithValues: narrow.namedTensors().map { ($0.key, $0.tensor) })
        let report = try wide.load(stateDict: wide.contextWidened(from: pretrained), mode: .strict)
        XCTAssert(report.shapeMismatches.isEmpty)
        narrow.eval(); wide.eval()
        var g = SeededGenerator(seed: 9)
        let images = Tensor.randomNormal([3, 1, 32, 32], generator: &g)
        let planes = Tensor(shape: [3, 1, 32, 32], data: [0.5, -1, 0.25].flatMap { [Float](repeating: $0, count: 32 * 32) })
        let input = Tensor.concatenate([images, planes], axis: 1)
        let context = withNoGrad { wide(input) }, narrowContext = withNoGrad { narrow(images) }
        XCTAssertEqual(context.shape, [3, 7])
        XCTAssertEqual(Array(context.scalars.enumerated().filter { $0.offset % 7 == 6 }.map(\.element)), [0.5, -1, 0.25])
        for row in 0..<3 {
            for k in 0..<6 { XCTAssertEqual(context.scalars[row * 7 + k], narrowContext.scalars[row * 6 + k], accuracy: 1e-5) }
        }
        let targets = Tensor.randomNormal([3, 4], generator: &g) * 0.5
        let a = withNoGrad { wide.logProbability(targets, context: context) }.scalars
        let b = withNoGrad { narrow.logProbability(targets, context: narrowContext) }.scalars
        for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: 1e-4) }
        // Context channels must leave the encoder at least one image channel.
        XCTAssertThrowsError(try Architecture(name: .resnet18Flow, inChannels: 1, classes: 6, widths: [4, 4, 4, 4],
                                              flow: FlowSettings(features: 4), contextChannels: 1).makeModel(seed: 1))
    }

    /// With `views` 8 the context is the same for every rotation and mirror image of the input
    /// (and differs from the one-view encoder's), with 4 for the rotations; other counts are refused.
    func testViewAveragedContextIsInvariant() throws {
        func model(views: Int) throws -> PosteriorRegressor {
            let architecture = Architecture(name: .resnet18Flow, inChannels: 1, classes: 6, widths: [4, 4, 4, 4], stemPool: false,
                                            flow: FlowSettings(features: 4, layers: 2, hidden: [8], bins: 4), views: views)
            let model = try XCTUnwrap(try architecture.makeModel(seed: 3) as? PosteriorRegressor)
            model.eval()
            return model
        }
        var g = SeededGenerator(seed: 11)
        let images = Tensor.randomNormal([2, 1, 16, 16], generator: &g)
        let eight = try model(views: 8), four = try model(views: 4), one = try model(views: 1)
        let reference = withNoGrad { eight(images) }.scalars
        for view in 1..<8 {
            let context = withNoGrad { eight(images.dihedralView(view)) }.scalars
            for (a, b) in zip(context, reference) { XCTAssertEqual(a, b, accuracy: 1e-4 * Swift.max(1, abs(b)), "view \(view)") }
        }
        let rotations = withNoGrad { four(images) }.scalars
        for view in [3, 5, 6] {
            let context = withNoGrad { four(images.dihedralView(view)) }.scalars
            for (a, b) in zip(context, rotations) { XCTAssertEqual(a, b, accuracy: 1e-4 * Swift.max(1, abs(b)), "rotation \(view)") }
        }
        let single = withNoGrad { one(images) }.scalars
        XCTAssertGreaterThan(zip(single, reference).map { abs($0 - $1) }.max()!, 1e-3)
        let fused = try XCTUnwrap(eight.fusedForInference() as? PosteriorRegressor)
        XCTAssertEqual(fused.views, 8)
        for (a, b) in zip(withNoGrad { fused(images.dihedralView(6)) }.scalars, reference) {
            XCTAssertEqual(a, b, accuracy: 1e-3 * Swift.max(1, abs(b)))
        }
        XCTAssertThrowsError(try Architecture(name: .resnet18Flow, inChannels: 1, classes: 6, widths: [4, 4, 4, 4],
                                              flow: FlowSettings(features: 4), views: 2).makeModel(seed: 1))
    }

    /// `featuresAndOutput` gives the context `forward` gives (with a header plane and four
    /// views) and the encoder's pooled features averaged over the views; a fused copy the same.
    func testFeaturesAndOutputMatchForwardAndTheEncodersFeatures() throws {
        let architecture = Architecture(name: .resnet18Flow, inChannels: 2, classes: 6, widths: [4, 4, 4, 8], stemPool: false,
                                        flow: FlowSettings(features: 4, layers: 2, hidden: [8], bins: 4), contextChannels: 1, views: 4)
        let model = try XCTUnwrap(try architecture.makeModel(seed: 5) as? PosteriorRegressor)
        model.eval()
        var g = SeededGenerator(seed: 12)
        let image = Tensor.randomNormal([3, 1, 16, 16], generator: &g)
        let plane = Tensor(shape: [3, 1, 16, 16], data: (0..<3).flatMap { i in [Float](repeating: Float(i) - 0.5, count: 256) })
        let input = Tensor.concatenate([image, plane], axis: 1)
        for network in [model, try XCTUnwrap(model.fusedForInference() as? PosteriorRegressor)] {
            XCTAssertEqual(network.featureCount, 8)
            let (features, output) = withNoGrad { network.featuresAndOutput(input) }
            XCTAssertEqual(output.shape, [3, 7])
            XCTAssertEqual(output.scalars, withNoGrad { network(input) }.scalars)
            XCTAssertEqual(features.shape, [3, 8])
            let encoder = try XCTUnwrap(network.encoder as? any FeatureClassifier)
            let views = [0, 3, 5, 6].map { view in withNoGrad { encoder.features(image.dihedralView(view)) }.scalars }
            for j in 0..<24 {
                XCTAssertEqual(features.scalars[j], views.map { $0[j] }.reduce(0, +) / 4, accuracy: 1e-5 * Swift.max(1, abs(features.scalars[j])))
            }
        }
    }
}
