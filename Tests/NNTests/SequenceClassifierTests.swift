// The masked GRU classifier of light curves: lengths from the mask, padding without effect,
// per-step logits agreeing with the final ones, the `gru` architecture of model files.
import Autograd
import Foundation
import NN
import TestSupport
import XCTest

final class SequenceClassifierTests: XCTestCase {
    /// `[1, steps, 4]` random features with the mask (1) last, then `padding` zero steps.
    func sequence(steps: Int, padding: Int, seed: UInt64) -> [Float] {
        var rng = SeededGenerator(seed: seed)
        var values: [Float] = []
        for _ in 0..<steps { values += [rng.nextNormal(), rng.nextNormal(), rng.nextNormal(), 1] }
        return values + [Float](repeating: 0, count: 4 * padding)
    }

    func testPaddingDoesNotChangeTheResultAndStepsAgree() {
        let model = SequenceClassifier(features: 4, hiddenSize: 6, layerCount: 2, classCount: 3, seed: 1)
        model.eval()
        let short = sequence(steps: 5, padding: 0, seed: 2), long = sequence(steps: 9, padding: 0, seed: 3)
        let alone = model(Tensor(shape: [1, 5, 4], data: short)).scalars
        let batch = Tensor(shape: [2, 9, 4], data: sequence(steps: 5, padding: 4, seed: 2) + long)
        XCTAssertEqual(SequenceClassifier.lengths(of: batch), [5, 9])
        let together = model(batch).scalars
        for k in 0..<3 { XCTAssertEqual(together[k], alone[k], accuracy: 1e-5, "a padded row gives its own result") }
        let steps = model.stepLogits(batch)
        XCTAssertEqual(steps.shape, [2, 9, 3])
        let s = steps.scalars
        for k in 0..<3 {
            XCTAssertEqual(s[4 * 3 + k], together[k], accuracy: 1e-5, "row 0 at its last real step")
            XCTAssertEqual(s[(9 + 8) * 3 + k], together[3 + k], accuracy: 1e-5, "row 1 at its last step")
        }
        // An earlier step is the classification of the curve cut there.
        let cut = model(Tensor(shape: [1, 3, 4], data: Array(short[0..<12]))).scalars
        for k in 0..<3 { XCTAssertEqual(s[2 * 3 + k], cut[k], accuracy: 1e-5) }
    }

    func testGradientsReachEveryParameterAndArchitectureBuildsIt() throws {
        let model = try Architecture(name: .gru, inChannels: 4, classes: 3, hidden: 5, layers: 2).makeModel(seed: 3)
        XCTAssert(model is SequenceClassifier)
        XCTAssertEqual(Set(model.namedTensors().map(\.key)), Set(["gru.weight_ih_l0", "gru.weight_hh_l0", "gru.bias_ih_l0",
                                                                  "gru.bias_hh_l0", "gru.weight_ih_l1", "gru.weight_hh_l1",
                                                                  "gru.bias_ih_l1", "gru.bias_hh_l1", "fc.weight", "fc.bias"]))
        let x = Tensor(shape: [2, 6, 4], data: sequence(steps: 3, padding: 3, seed: 4) + sequence(steps: 6, padding: 0, seed: 5))
        model(x).sum().backward()
        for (key, tensor) in model.namedParameters() {
            XCTAssertGreaterThan(tensor.grad?.scalars.map(abs).max() ?? 0, 0, key)
        }
        XCTAssertThrowsError(try Architecture(name: .gru, inChannels: 4, classes: 3, hidden: 5, layers: 0).makeModel())
        let json = Architecture(name: .gru, inChannels: 9, classes: 7, hidden: 64, layers: 2).json
        XCTAssert(json.contains("\"name\":\"gru\"") && json.contains("\"layers\":2"), json)
    }
}
