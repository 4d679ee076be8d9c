// GRU and LSTM layers against torch.nn.GRU / torch.nn.LSTM (Fixtures/make_recurrent_fixtures.py):
// one and two layers, both directions, packed sequences of different lengths; and the GRU's
// gradients against central differences.
@testable import Autograd
import Foundation
import NN
import TestSupport
import XCTest

final class RecurrentTests: XCTestCase {
    /// The cases of `recurrent.json`.
    static let cases: [[String: Any]] = {
        let data = try! Data(contentsOf: Fixtures.url("recurrent.json"))
        let json = try! JSONSerialization.jsonObject(with: data) as! [String: Any]
        return json["cases"] as! [[String: Any]]
    }()

    private static func tensor(_ value: Any?) -> Tensor {
        let entry = value as! [String: Any]
        return Tensor(shape: entry["shape"] as! [Int], data: (entry["data"] as! [NSNumber]).map(\.floatValue))
    }

    /// Largest `|a - e|` over the elements.
    private static func maxDifference(_ a: Tensor, _ e: Tensor) -> Float {
        zip(a.scalars, e.scalars).map { abs($0 - $1) }.max() ?? 0
    }

    /// Runs one fixture case: loads PyTorch's state dict strictly, compares outputs, final
    /// states and every gradient; returns the largest output / state difference.
    private func check(_ c: [String: Any], file: StaticString = #filePath, line: UInt = #line) throws -> Float {
        let name = c["name"] as! String, cell = c["cell"] as! String
        let (features, hidden, layers) = (c["features"] as! Int, c["hidden"] as! Int, c["layers"] as! Int)
        let bidirectional = c["bidirectional"] as! Bool, lengths = c["lengths"] as? [Int]
        let layer: any Layer = cell == "gru"
            ? GRU(inputFeatures: features, hiddenSize: hidden, layerCount: layers, bidirectional: bidirectional, seed: 1)
            : LSTM(inputFeatures: features, hiddenSize: hidden, layerCount: layers, bidirectional: bidirectional, seed: 1)
        let stateDict = (c["state_dict"] as! [String: Any]).mapValues { Self.tensor($0) }
        let report = try layer.load(stateDict: stateDict)
        XCTAssertTrue(report.isComplete, "\(name): strict load", file: file, line: line)

        let x = Self.tensor(c["input"]).copy()
        x.requiresGrad = true
        layer.zeroGrad()
        let outputs: Tensor, h: Tensor, cellState: Tensor?
        if let gru = layer as? GRU {
            (outputs, h) = gru.run(x, lengths: lengths)
            cellState = nil
        } else {
            let r = (layer as! LSTM).run(x, lengths: lengths)
            (outputs, h, cellState) = (r.outputs, r.hidden, r.cell)
        }
        var worst: Float = 0
        for (actual, key) in [(outputs, "output"), (h, "h_n")] + (cellState.map { [($0, "c_n")] } ?? []) {
            let expected = Self.tensor(c[key])
            assertClose(actual, expected, relativeTolerance: 1e-5, absoluteTolerance: 2e-6, "\(name): \(key)", file: file, line: line)
            if actual.shape == expected.shape { worst = max(worst, Self.maxDifference(actual, expected)) }
        }
        var loss = (outputs * Self.tensor(c["direction"])).sum() + (h * Self.tensor(c["direction_h"])).sum()
        if let cellState { loss = loss + (cellState * Self.tensor(c["direction_c"])).sum() }
        loss.backward()
        assertClose(x.grad!, Self.tensor(c["grad.input"]), relativeTolerance: 1e-4, absoluteTolerance: 1e-5,
                    "\(name): grad.input", file: file, line: line)
        let parameters = layer.namedParameters()
        XCTAssertEqual(parameters.map(\.key).sorted(), stateDict.keys.sorted(), "\(name): keys", file: file, line: line)
        for (key, p) in parameters {
            assertClose(p.grad!, Self.tensor(c["grad.\(key)"]), relativeTolerance: 1e-4, absoluteTolerance: 1e-5,
                        "\(name): grad.\(key)", file: file, line: line)
        }
        return worst
    }

    /// Every case on the portable Swift path, and again with the AVX-512 kernels where
    /// the CPU has them (hidden sizes that are multiples of 16).
    func testOutputsStatesAndGradientsMatchPyTorch() throws {
        XCTAssertEqual(Self.cases.count, 11)
        let saved = AVX512Kernels.enabled
        defer { AVX512Kernels.enabled = saved }
        for kernels in [false, true] where !kernels || saved {
            AVX512Kernels.enabled = kernels
            var worst: [String: Float] = [:]
            for c in Self.cases { worst[c["name"] as! String] = try check(c) }
            print("RecurrentTests: largest |ours - PyTorch| of outputs and final states (recurrent kernels \(kernels)):",
                  worst.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
    }

    /// Outputs past a row's end are exactly zero; a row's outputs and final state equal those
    /// of the same row run alone at its own length (both directions, two layers).
    func testLengthsEqualRunningEachRowAlone() {
        let gru = GRU(inputFeatures: 3, hiddenSize: 4, layerCount: 2, bidirectional: true, seed: 3)
        let x = Tensor.randomNormal([3, 6, 3], seed: 4)
        let lengths = [6, 2, 4]
        let (outputs, hidden) = withNoGrad { gru.run(x, lengths: lengths) }
        XCTAssertEqual(outputs.shape, [3, 6, 8])
        XCTAssertEqual(hidden.shape, [4, 3, 4])
        for (i, length) in lengths.enumerated() {
            let alone = withNoGrad { gru.run(x[i..<(i + 1)].sliced(axis: 1, 0..<length)) }
            assertClose(outputs[i..<(i + 1)].sliced(axis: 1, 0..<length), alone.outputs,
                        relativeTolerance: 1e-5, absoluteTolerance: 1e-6, "row \(i): outputs")
            assertClose(hidden.sliced(axis: 1, i..<(i + 1)), alone.hidden,
                        relativeTolerance: 1e-5, absoluteTolerance: 1e-6, "row \(i): final states")
            if length < 6 {
                XCTAssertEqual(outputs[i].sliced(axis: 0, length..<6).scalars.map(abs).max(), 0, "row \(i): padding")
            }
        }
    }

    /// `finalState` (the one-layer fast path and the general one) is `h_n[-1]` of `run`.
    func testFinalStateIsTheLastLayersLastDirection() {
        let x = Tensor.randomNormal([2, 5, 3], seed: 8)
        for gru in [GRU(inputFeatures: 3, hiddenSize: 4, seed: 5),
                    GRU(inputFeatures: 3, hiddenSize: 4, layerCount: 2, bidirectional: true, seed: 6)] {
            let (_, hidden) = gru.run(x, lengths: [5, 3])
            assertClose(gru.finalState(x, lengths: [5, 3]), hidden[hidden.shape[0] - 1], relativeTolerance: 0,
                        absoluteTolerance: 0, "\(gru.layerDescription) with lengths")
            assertClose(gru.finalState(x), gru.run(x).hidden[hidden.shape[0] - 1], relativeTolerance: 1e-6,
                        absoluteTolerance: 1e-7, "\(gru.layerDescription)")
        }
        let lstm = LSTM(inputFeatures: 3, hiddenSize: 16, layerCount: 2, bidirectional: true, seed: 7)
        let r = lstm.run(x, lengths: [2, 5]), f = lstm.finalState(x, lengths: [2, 5])
        assertClose(f.hidden, r.hidden[3], relativeTolerance: 0, absoluteTolerance: 0, "LSTM h")
        assertClose(f.cell, r.cell[3], relativeTolerance: 0, absoluteTolerance: 0, "LSTM c")
    }

    /// Central differences for the input and every parameter of a two-layer bidirectional GRU
    /// over rows of different lengths, through the outputs and the final states.
    func testGRUGradientsMatchCentralDifferences() {
        let gru = GRU(inputFeatures: 2, hiddenSize: 3, layerCount: 2, bidirectional: true, seed: 9)
        let x = Tensor.randomNormal([3, 4, 2], seed: 10)
        XCTAssertEqual(gru.parameters.count, 16)
        assertGradientsMatch([x] + gru.parameters) { inputs in
            let (outputs, hidden) = gru.run(inputs[0], lengths: [4, 2, 1])
            return Tensor.concatenate([outputs.reshaped(to: [-1]), hidden.reshaped(to: [-1])], axis: 0)
        }
    }

    func testDescriptionsAndKeys() {
        XCTAssertEqual(GRU(inputFeatures: 8, hiddenSize: 64).description, "GRU(8 → hidden 64, batch first)")
        XCTAssertEqual(LSTM(inputFeatures: 2, hiddenSize: 4, layerCount: 2, bidirectional: true).description,
                       "LSTM(2 → hidden 4, 2 layers, bidirectional, batch first)")
        let keys = GRU(inputFeatures: 3, hiddenSize: 4, layerCount: 2, bidirectional: true).namedParameters()
        XCTAssertEqual(keys.map(\.key), ["l0", "l0_reverse", "l1", "l1_reverse"].flatMap { s in
            ["weight_ih_\(s)", "weight_hh_\(s)", "bias_ih_\(s)", "bias_hh_\(s)"]
        })
        XCTAssertEqual(keys.map(\.tensor.shape), [[12, 3], [12, 4], [12], [12], [12, 3], [12, 4], [12], [12],
                                                  [12, 8], [12, 4], [12], [12], [12, 8], [12, 4], [12], [12]])
    }
}

extension RecurrentTests {
    /// BENCH.md's gru has exactly `reference_models.LightCurveGRU`'s state_dict keys and shapes.
    func testLightCurveGRUKeysMatchReferenceModel() throws {
        let data = try Data(contentsOf: Fixtures.url("recurrent.json"))
        let json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        let expected = json["bench_gru_keys"] as! [String: [Int]]
        let mine = Dictionary(uniqueKeysWithValues: LightCurveGRU().namedTensors().map { ($0.key, $0.tensor.shape) })
        XCTAssertEqual(mine, expected)
    }
}
