// End-to-end: the built `astrolabe predict` on FITS cutouts against PyTorch's logits.
import Autograd
import Foundation
import NN
import TestSupport
import XCTest

final class PredictCommandTests: XCTestCase {
    /// NNTests' fixtures: PyTorch weights, cutouts and the logits PyTorch gave.
    static let fixtures = repositoryRoot.appendingPathComponent("Tests/NNTests/Fixtures")

    func run(_ arguments: [String]) throws -> ToolRun {
        try runTool(arguments, in: Self.fixtures)
    }

    /// Logits from the CSV against PyTorch's, within `relative` of the largest one.
    func assertLogits(_ table: [[String]], _ expected: String, relative: Float, file: StaticString = #filePath, line: UInt = #line) throws {
        let reference = try Safetensors(contentsOf: Self.fixtures.appendingPathComponent("predict_expected.safetensors"))
        let want = try XCTUnwrap(reference.tensors[expected]).scalars
        let got = table.dropFirst().flatMap { $0.dropFirst().map { Float($0)! } }
        XCTAssertEqual(got.count, want.count, file: file, line: line)
        let scale = want.map(abs).max() ?? 1
        for (a, e) in zip(got, want) { XCTAssertEqual(a, e, accuracy: relative * scale, file: file, line: line) }
    }

    func rows(_ url: URL) throws -> [[String]] {
        try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map { $0.split(separator: ",").map(String.init) }
    }

    func testRawPlainStateDictGivesPyTorchLogits() throws {
        let out = try makeTemporaryDirectory("predict").appendingPathComponent("out.csv")
        let r = try run(["predict", "--weights", "cnn.weights.safetensors", "--arch", "cnn", "--classes", "5", "--in-channels", "1",
                         "--raw", "cutout_0.fits", "cutout_1.fits", "--output", out.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let table = try rows(out)
        XCTAssertEqual(table[0], ["file", "logit_0", "logit_1", "logit_2", "logit_3", "logit_4"])
        XCTAssertEqual(table.map { $0[0] }.dropFirst(), ["cutout_0.fits", "cutout_1.fits"])
        try assertLogits(table, "logits", relative: 1e-4)
    }

    /// A plain torchvision-named ResNet-18 state dict of compact width on 3-band FITS cubes.
    func testRawResNetOnCubesReadsWidthsFromTheWeights() throws {
        let out = try makeTemporaryDirectory("predict").appendingPathComponent("out.csv")
        let r = try run(["predict", "--weights", "resnet18_torchvision.weights.safetensors", "--arch", "resnet18", "--classes", "5",
                         "--in-channels", "3", "--raw", "cube_0.fits", "cube_1.fits", "--output", out.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let table = try rows(out)
        XCTAssertEqual(table.count, 3)
        try assertLogits(table, "resnet_logits", relative: 1e-4)
    }

    func testModelFileNeedsNoArchitectureAndWritesProbabilities() throws {
        let dir = try makeTemporaryDirectory("predict")
        let model = SimpleCNN.make(inputChannels: 1, classCount: 5, imageSize: 16)
        try model.load(contentsOf: Self.fixtures.appendingPathComponent("cnn.weights.safetensors"))
        let weights = dir.appendingPathComponent("cnn.safetensors"), out = dir.appendingPathComponent("p.csv")
        try ModelFile(model: model, architecture: Architecture(name: .cnn, inChannels: 1, classes: 5, imageSize: 16),
                      preprocessing: "[]").write(to: weights)
        let r = try run(["predict", "--weights", weights.path, "cutout_0.fits", "--output", out.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let table = try rows(out)
        XCTAssertEqual(table[0].first, "file")
        XCTAssertEqual(table[0][1], "probability_0")
        XCTAssertEqual(table[1].dropFirst().map { Double($0)! }.reduce(0, +), 1, accuracy: 1e-5)
        // --raw on a model file: logits, the same as the library computes.
        let r2 = try run(["predict", "--weights", weights.path, "--raw", "cutout_0.fits", "--output", out.path])
        XCTAssertEqual(r2.status, 0, r2.stderr)
        XCTAssertEqual(try rows(out)[0][1], "logit_0")
        // Options that contradict the file are refused.
        let r3 = try run(["predict", "--weights", weights.path, "--classes", "4", "cutout_0.fits", "--output", out.path])
        XCTAssertNotEqual(r3.status, 0)
        XCTAssertTrue(r3.stderr.contains("records 5 classes"), r3.stderr)
    }

    func testErrorsAreClearAndLeaveTheOutputAlone() throws {
        let out = try makeTemporaryDirectory("predict").appendingPathComponent("out.csv")
        try Data("previous\n".utf8).write(to: out)
        let cases: [([String], String)] = [
            (["--weights", "cnn.weights.safetensors", "--raw", "cutout_0.fits"], "give --arch, --classes and --in-channels"),
            (["--weights", "cnn.weights.safetensors", "--arch", "resnet18", "--classes", "5", "--in-channels", "1", "--raw", "cutout_0.fits"],
             "missing from the file"),
            (["--weights", "cnn.weights.safetensors", "--arch", "cnn", "--classes", "5", "--in-channels", "1", "--raw", "absent.fits"],
             "Fixtures/absent.fits; check the path"),
            (["--weights", "cutout_0.fits", "--arch", "cnn", "--classes", "5", "--in-channels", "1", "--raw", "cutout_0.fits"],
             "not a safetensors file"),
            (["--weights", "cnn.weights.safetensors", "--arch", "cnn", "--classes", "5", "--in-channels", "3", "--raw", "cutout_0.fits"],
             "band"),
        ]
        for (arguments, words) in cases {
            let r = try run(["predict"] + arguments + ["--output", out.path])
            XCTAssertNotEqual(r.status, 0, "\(arguments)")
            XCTAssertTrue(r.stderr.contains(words), "\(arguments): '\(words)' not in \(r.stderr)")
        }
        XCTAssertEqual(try String(contentsOf: out, encoding: .utf8), "previous\n")
    }
}
