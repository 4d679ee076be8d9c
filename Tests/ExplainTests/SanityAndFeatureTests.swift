import Autograd
@testable import Explain
import NN
import TestSupport
import XCTest

final class SanityAndFeatureTests: XCTestCase {
    /// Spearman's ρ with ties as scipy.stats.spearmanr (the values printed by scipy for these samples).
    func testSpearmanMatchesScipy() {
        XCTAssertEqual(RankCorrelation.spearman([1, 2, 2, 3], [1, 3, 2, 4]), 0.9486832980505139, accuracy: 1e-12)
        XCTAssertEqual(RankCorrelation.spearman([3, 1, 2, 2, 5, 0.5], [1, 1.5, 2, 7, 3, 3.5]), -0.23190841426097936, accuracy: 1e-12)
        XCTAssertEqual(RankCorrelation.ranks([5, 1, 5, 2]), [3.5, 1, 3.5, 2])
        XCTAssertEqual(RankCorrelation.spearman([1, 1, 1], [1, 2, 3]), 0)
    }

    /// Blocks of a ResNet go from the head to the stem, one per residual block.
    func testBlocksOfAResNetFromTheOutputDown() {
        let model = ResNet.resnet18(inputChannels: 1, classCount: 3, widths: [4, 8, 8, 8], seed: 1)
        XCTAssertEqual(CascadingRandomisation.blocks(of: model).map(\.path),
                       ["fc", "layer4.1", "layer4.0", "layer3.1", "layer3.0", "layer2.1", "layer2.0", "layer1.1", "layer1.0",
                        "bn1", "conv1"])
        XCTAssertEqual(CascadingRandomisation.blocks(of: SimpleCNN.make(inputChannels: 1, classCount: 3, imageSize: 16, seed: 1))
            .map(\.path), ["12", "10", "6", "3", "0"])
    }

    /// Randomising every block decorrelates the gradient maps; before any randomisation
    /// the maps are those of the model (ρ = 1 is not a step, the first step is the head).
    func testCascadeDecorrelatesSaliency() throws {
        let model = SimpleCNN.make(inputChannels: 1, classCount: 3, imageSize: 16, seed: 3)
        let x = Tensor.randomNormal([4, 1, 16, 16], seed: 5)
        let steps = try CascadingRandomisation(methods: [.saliency], seed: 2).run(model: model, input: x, targets: [0, 1, 2, 0])
        XCTAssertEqual(steps.map(\.block), ["12", "10", "6", "3", "0"])
        let rho = steps.map { $0.correlations[.saliency]! }
        XCTAssertTrue(rho.allSatisfy { $0 < 0.5 }, "\(rho)")
        // Re-drawing keeps each tensor's mean and spread but changes the values.
        let dense = Dense(inputFeatures: 64, outputFeatures: 64, seed: 1)
        let before = dense.weight.scalars
        CascadingRandomisation.randomise(dense, seed: 4)
        let after = dense.weight.scalars
        XCTAssertLessThan(abs(RankCorrelation.spearman(before, after)), 0.1)
        func std(_ v: [Float]) -> Float {
            let m = v.reduce(0, +) / Float(v.count)
            return (v.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Float(v.count)).squareRoot()
        }
        XCTAssertEqual(std(after), std(before), accuracy: 0.1 * std(before))
    }

    /// Gradient ascent raises the chosen channel's mean activation well above its start.
    func testActivationMaximisationRaisesTheChannel() throws {
        let model = SimpleCNN.make(inputChannels: 1, classCount: 3, imageSize: 16, seed: 3)
        let result = try ActivationMaximisation(steps: 24, seed: 1).visualise(model: model, layer: "4", channel: 5,
                                                                             shape: [1, 16, 16])
        XCTAssertGreaterThan(result.end, result.start + 0.1, "\(result.start) → \(result.end)")
        XCTAssertEqual(result.image.count, 256)
        XCTAssertThrowsError(try ActivationMaximisation(steps: 1).visualise(model: model, layer: "4", channel: 64, shape: [1, 16, 16]))
        let filters = try XCTUnwrap(FeaturePictures.firstLayerFilters(model))
        XCTAssertEqual(filters.tiles.count, 32)
        XCTAssertEqual(filters.tiles[0].width, 3)
    }

    /// The jitter's roll is undone by the opposite roll; the blur keeps a constant image.
    func testRollAndBlur() {
        let x = (0..<24).map(Float.init)
        XCTAssertEqual(ActivationMaximisation.roll(ActivationMaximisation.roll(x, 2, 3, 4, 1, -2), 2, 3, 4, -1, 2), x)
        XCTAssertEqual(ActivationMaximisation.roll([0, 1, 2, 3], 1, 1, 4, 0, 1), [3, 0, 1, 2])
        assertClose(ActivationMaximisation.blur([Float](repeating: 2, count: 12), 1, 3, 4), [Float](repeating: 2, count: 12), accuracy: 1e-6)
    }
}
