// Saving and loading: round trips, self-describing files, clear errors, partial loading,
// input-band adaptation, other dtypes.
import Autograd
import Foundation
import NN
import TestSupport
import XCTest

final class WeightsTests: XCTestCase {
    func compactResNet(classes: Int = 5, bands: Int = 3) -> ResNet {
        ResNet.resnet18(inputChannels: bands, classCount: classes, widths: [8, 16, 32, 64])
    }

    func testSaveLoadRoundTripGivesIdenticalOutputs() throws {
        let dir = try makeTemporaryDirectory("nn")
        let a = compactResNet(), b = compactResNet()
        a.eval(); b.eval()
        let x = Tensor.randomNormal([2, 3, 32, 32], seed: 5)
        XCTAssertNotEqual(withNoGrad { a(x) }.scalars, withNoGrad { b(x) }.scalars)
        let url = dir.appendingPathComponent("m.safetensors")
        try a.save(to: url)
        try b.load(contentsOf: url)
        XCTAssertEqual(withNoGrad { a(x) }.scalars, withNoGrad { b(x) }.scalars)
    }

    func testModelFileRebuildsFromMetadataAlone() throws {
        let dir = try makeTemporaryDirectory("nn")
        let architecture = Architecture(name: .resnet18, inChannels: 2, classes: 4, widths: [8, 16, 32, 64], smallImageStem: true)
        let model = try architecture.makeModel()
        model.eval()
        let preprocessing = #"[{"stage":"asinh","softening":0.1}]"#
        let url = dir.appendingPathComponent("model.safetensors")
        try ModelFile(model: model, architecture: architecture, preprocessing: preprocessing).write(to: url)
        let loaded = try ModelFile(contentsOf: url)
        XCTAssertEqual(loaded.architecture, architecture)
        XCTAssertEqual(loaded.preprocessing, preprocessing)
        XCTAssertFalse(loaded.model.isTraining)
        let x = Tensor.randomNormal([1, 2, 16, 16], seed: 6)
        XCTAssertEqual(withNoGrad { model(x) }.scalars, withNoGrad { loaded.model(x) }.scalars)
        let raw = try Safetensors(contentsOf: url)
        XCTAssertTrue(raw.metadata[ModelFile.architectureKey]!.contains(#""name":"resnet18""#))
    }

    func testStemPoolIsRecordedOnlyWhenDropped() throws {
        let standard = Architecture(name: .resnet18, inChannels: 1, classes: 8, widths: [4, 8, 16, 32])
        XCTAssertFalse(standard.json.contains("stem_pool"), "files of the standard stem stay as before")
        XCTAssertNotNil((try standard.makeModel() as! ResNet).maxpool)
        let unpooled = Architecture(name: .resnet18, inChannels: 1, classes: 8, widths: [4, 8, 16, 32], stemPool: false)
        XCTAssertTrue(unpooled.json.contains(#""stem_pool":false"#), unpooled.json)
        let decoded = try JSONDecoder().decode(Architecture.self, from: Data(unpooled.json.utf8))
        XCTAssertEqual(decoded, unpooled)
        XCTAssertNil((try decoded.makeModel() as! ResNet).maxpool)
    }

    func testEveryArchitectureRoundTripsThroughAModelFile() throws {
        let dir = try makeTemporaryDirectory("nn")
        let cases: [(Architecture, [Int])] = [
            (Architecture(name: .resnet34, inChannels: 1, classes: 3, widths: [4, 8, 8, 8]), [1, 1, 32, 32]),
            (Architecture(name: .resnet18, inChannels: 1, classes: 3, widths: [4, 8, 8, 8], stemPool: false), [1, 1, 32, 32]),
            (Architecture(name: .cnn, inChannels: 1, classes: 5, imageSize: 16), [1, 1, 16, 16]),
            (Architecture(name: .unet, inChannels: 1, classes: 2, widths: [4, 8], bottleneck: 8), [1, 1, 8, 8]),
            (Architecture(name: .lstm, inChannels: 2, classes: 4, hidden: 8), [1, 5, 2]),
            (Architecture(name: .mlp, inChannels: 6, classes: 2, widths: [8], activation: "gelu"), [1, 6]),
        ]
        for (architecture, shape) in cases {
            let model = try architecture.makeModel()
            model.eval()
            let url = dir.appendingPathComponent("\(architecture.name).safetensors")
            try ModelFile(model: model, architecture: architecture).write(to: url)
            let loaded = try ModelFile(contentsOf: url)
            let x = Tensor.randomNormal(shape, seed: 7)
            XCTAssertEqual(withNoGrad { model(x) }.scalars, withNoGrad { loaded.model(x) }.scalars, architecture.name.rawValue)
        }
    }

    func testWrongFilesGiveClearErrors() throws {
        let dir = try makeTemporaryDirectory("nn")
        let good = dir.appendingPathComponent("good.safetensors")
        try compactResNet().save(to: good)
        let bytes = try Data(contentsOf: good)

        func error(_ data: Data, into model: (any Layer)? = nil) -> String {
            let url = dir.appendingPathComponent("bad-\(UUID().uuidString).safetensors")
            try! data.write(to: url)
            do {
                try (model ?? compactResNet()).load(contentsOf: url)
                return "no error"
            } catch { return (error as? LocalizedError)?.errorDescription ?? "\(error)" }
        }
        // (file contents, model, words the message must contain)
        let cases: [(Data, (any Layer)?, [String])] = [
            (bytes.prefix(bytes.count - 100), nil, ["is truncated", "needs bytes up to", "cut short"]),
            (Data("hello, world, this is not a weights file".utf8), nil, ["not a safetensors file", "header length"]),
            (Data([1, 2, 3]), nil, ["not a safetensors file", "fewer than the 8-byte"]),
            (bytes, compactResNet(classes: 7), ["shape mismatches (2)", "fc.weight: model [7, 64], file [5, 64]", "fc.bias"]),
            (bytes, ResNet.resnet34(inputChannels: 3, classCount: 5, widths: [8, 16, 32, 64]), ["missing from the file", "layer1.2.conv1.weight"]),
            (bytes, SimpleCNN.make(imageSize: 16), ["missing from the file (10)", "0.weight", "unexpected in the file", "layer1.0.bn1.bias"]),
        ]
        for (k, (data, model, words)) in cases.enumerated() {
            let message = error(data, into: model)
            for w in words { XCTAssertTrue(message.contains(w), "case \(k): '\(w)' not in: \(message)") }
        }
        XCTAssertThrowsError(try Safetensors(contentsOf: dir.appendingPathComponent("absent.safetensors"))) { e in
            XCTAssertTrue((e as! WeightsError).errorDescription!.contains("Cannot read weights file"))
        }
        // A plain state dict has no architecture: ModelFile says what to give instead.
        XCTAssertThrowsError(try ModelFile(contentsOf: good)) { e in
            XCTAssertTrue((e as! WeightsError).errorDescription!.contains("--arch"))
        }
    }

    func testStrictLoadChangesNothingOnError() throws {
        let source = compactResNet(classes: 7), target = compactResNet()
        let before = target.conv1.weight.scalars
        XCTAssertThrowsError(try target.load(stateDict: source.stateDict()))
        XCTAssertEqual(target.conv1.weight.scalars, before)
    }

    func testPartialLoadKeepsANewHead() throws {
        let pretrained = compactResNet(classes: 5), fineTuned = compactResNet(classes: 2)
        let head = fineTuned.fc.weight.scalars
        let report = try fineTuned.load(stateDict: pretrained.stateDict(), mode: .partial)
        XCTAssertEqual(report.shapeMismatches.map(\.key), ["fc.weight", "fc.bias"])
        XCTAssertEqual(report.missing, [])
        XCTAssertEqual(fineTuned.conv1.weight.scalars, pretrained.conv1.weight.scalars)
        XCTAssertEqual(fineTuned.layer4.namedTensors().map(\.tensor.scalars), pretrained.layer4.namedTensors().map(\.tensor.scalars))
        XCTAssertEqual(fineTuned.fc.weight.scalars, head)
    }

    func testAdaptingTheFirstConvolutionToOneBand() throws {
        let rgb = compactResNet(bands: 3), mono = compactResNet(bands: 1)
        rgb.eval(); mono.eval()
        let adapted = try rgb.stateDict().adaptingInputChannels(to: 1, method: .sum)
        try mono.load(stateDict: adapted)
        // A grey image through the summed kernel equals the same image in all three bands.
        let grey = Tensor.randomNormal([1, 1, 32, 32], seed: 8)
        let tripled = Tensor.concatenate([grey, grey, grey], axis: 1)
        let a = withNoGrad { mono(grey) }, b = withNoGrad { rgb(tripled) }
        assertMatches(a, b, relative: 1e-4, "summed kernel")
        // mean = sum / 3; repeatAndScale for 5 bands keeps the total response.
        let w = rgb.conv1.weight.scalars
        let mean = try rgb.stateDict().adaptingInputChannels(to: 1, method: .mean)["conv1.weight"]!.scalars
        XCTAssertEqual(mean[0], (w[0] + w[49] + w[98]) / 3, accuracy: 1e-6)
        let five = try rgb.stateDict().adaptingInputChannels(to: 5, method: .repeatAndScale)["conv1.weight"]!
        XCTAssertEqual(five.shape, [8, 5, 7, 7])
        XCTAssertEqual(five.scalars[3 * 49], w[0] * 3 / 5, accuracy: 1e-6)
    }

    /// F16, BF16, F64 and I64 tensors are converted to Float32; our writer's files are read
    /// back bit for bit.
    func testOtherDTypes() throws {
        func file(_ entries: [(String, String, [Int], [UInt8])]) -> Data {
            var header = "{", body = [UInt8]()
            for (k, (name, dtype, shape, bytes)) in entries.enumerated() {
                header += (k > 0 ? "," : "") + "\"\(name)\":{\"dtype\":\"\(dtype)\",\"shape\":\(shape),\"data_offsets\":[\(body.count),\(body.count + bytes.count)]}"
                body += bytes
            }
            header += ",\"__metadata__\":{\"format\":\"pt\"}}"
            var d = Data()
            var n = UInt64(header.utf8.count).littleEndian
            withUnsafeBytes(of: &n) { d.append(contentsOf: $0) }
            d.append(Data(header.utf8)); d.append(contentsOf: body)
            return d
        }
        func bytes<T>(_ values: [T]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }
        let data = file([
            ("half", "F16", [2], bytes([Float16(1.5), Float16(-0.25)])),
            ("bf", "BF16", [2], bytes([UInt16(0x3FC0), UInt16(0xC080)])),   // 1.5, -4
            ("double", "F64", [1, 2], bytes([2.5, -1e-3])),
            ("num_batches_tracked", "I64", [], bytes([Int64(42)])),
        ])
        let st = try Safetensors(data: data)
        XCTAssertEqual(st.tensors["half"]!.scalars, [1.5, -0.25])
        XCTAssertEqual(st.tensors["bf"]!.scalars, [1.5, -4])
        XCTAssertEqual(st.tensors["double"]!.shape, [1, 2])
        XCTAssertEqual(st.tensors["double"]!.scalars, [2.5, Float(-1e-3)])
        XCTAssertEqual(st.tensors["num_batches_tracked"]!.item, 42)
        XCTAssertEqual(st.metadata["format"], "pt")
        XCTAssertThrowsError(try Safetensors(data: file([("c", "C64", [1], [0, 0, 0, 0, 0, 0, 0, 0])]))) { e in
            XCTAssertTrue((e as! WeightsError).errorDescription!.contains("dtype C64"))
        }
        let written = try Safetensors(tensors: ["a": Tensor([1, 2, 3]), "b.c": Tensor(shape: [2, 1], data: [-1, .pi])],
                                      metadata: ["k": "v"]).serialized()
        let reread = try Safetensors(data: written)
        XCTAssertEqual(reread.tensors["b.c"]!.scalars, [-1, .pi])
        XCTAssertEqual(reread.metadata, ["k": "v"])
        XCTAssertEqual(Int(written[0]) % 8, 0, "header padded to 8 bytes")
    }

    func testAtomicWriteLeavesNoPartialFile() throws {
        let dir = try makeTemporaryDirectory("nn")
        let url = dir.appendingPathComponent("m.safetensors")
        try SimpleCNN.make(imageSize: 8).save(to: url)
        let first = try Data(contentsOf: url)
        try SimpleCNN.make(imageSize: 8).save(to: url)
        XCTAssertEqual(try Data(contentsOf: url).count, first.count)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["m.safetensors"])
        XCTAssertThrowsError(try SimpleCNN.make(imageSize: 8).save(to: dir.appendingPathComponent("no/such/dir/m.safetensors")))
    }
}
