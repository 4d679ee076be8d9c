// Seeded initialisation: a model built twice from one seed is identical, with no global state.
import Autograd
import Foundation
import NN
import TestSupport
import XCTest

final class InitializationTests: XCTestCase {
    static let factories: [(String, (UInt64?) -> any Layer)] = [
        ("Dense", { Dense(inputFeatures: 5, outputFeatures: 3, seed: $0) }),
        ("Conv2D", { Conv2D(inputChannels: 2, outputChannels: 4, kernelSize: 3, seed: $0) }),
        ("ConvTranspose2D", { ConvTranspose2D(inputChannels: 4, outputChannels: 2, kernelSize: 2, stride: 2, seed: $0) }),
        ("LSTM", { LSTM(inputFeatures: 2, hiddenSize: 4, seed: $0) }),
        ("GRU", { GRU(inputFeatures: 2, hiddenSize: 4, layerCount: 2, bidirectional: true, seed: $0) }),
        ("MLP", { MLP.make(inputFeatures: 3, widths: [8, 2], dropout: 0.1, seed: $0) }),
        ("cnn", { SimpleCNN.make(inputChannels: 1, classCount: 3, imageSize: 8, seed: $0) }),
        ("resnet18", { ResNet.resnet18(inputChannels: 1, classCount: 3, widths: [4, 4, 8, 8], seed: $0) }),
        ("unet", { UNet(inputChannels: 1, classCount: 2, widths: [4, 8], seed: $0) }),
        ("lstm", { LightCurveLSTM(features: 2, hiddenSize: 4, classCount: 3, seed: $0) }),
        ("gru", { LightCurveGRU(features: 2, hiddenSize: 4, classCount: 3, seed: $0) }),
        ("architecture", { try! Architecture(name: .resnet34, inChannels: 2, classes: 3, widths: [4, 4, 4, 4]).makeModel(seed: $0) }),
    ]

    func values(_ layer: any Layer) -> [String: [Float]] {
        Dictionary(uniqueKeysWithValues: layer.namedParameters().map { ($0.key, $0.tensor.scalars) })
    }

    func testSameSeedSameWeightsOtherSeedOtherWeights() {
        for (name, make) in Self.factories {
            let a = values(make(42))
            XCTAssertEqual(a, values(make(42)), "\(name): same seed, same weights")
            XCTAssertNotEqual(a, values(make(43)), "\(name): another seed, other weights")
            XCTAssertNotEqual(values(make(nil)), values(make(nil)), "\(name): no seed, random weights")
        }
    }

    /// A model's seed is split over its layers: two layers of the same shape start apart.
    func testLayersOfOneModelDrawTheirOwnSeeds() {
        let model = ResNet.resnet18(inputChannels: 1, classCount: 3, widths: [4, 4, 8, 8], seed: 1)
        let blocks = model.layer1.layers.compactMap { $0 as? BasicBlock }
        XCTAssertNotEqual(blocks[0].conv1.weight.scalars, blocks[0].conv2.weight.scalars)
        XCTAssertNotEqual(blocks[0].conv1.weight.scalars, blocks[1].conv1.weight.scalars)
        let unet = UNet(inputChannels: 4, classCount: 2, widths: [4, 8], seed: 1)
        let convs = unet.namedParameters().filter { $0.tensor.shape == [4, 4, 3, 3] }
        XCTAssertGreaterThanOrEqual(convs.count, 2)
        XCTAssertNotEqual(convs[0].tensor.scalars, convs[1].tensor.scalars)
    }

    /// Building other models in between (on this or another thread) does not change a seeded one.
    func testSeededModelsDoNotDependOnWhatWasBuiltBefore() {
        let first = values(UNet(inputChannels: 1, classCount: 2, widths: [4, 8], seed: 5))
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) { _ = ResNet.resnet18(inputChannels: 1, classCount: 2, widths: [4, 4, 4, 4]) }
        _ = SimpleCNN.make(inputChannels: 1, classCount: 2, imageSize: 8)
        group.wait()
        XCTAssertEqual(values(UNet(inputChannels: 1, classCount: 2, widths: [4, 8], seed: 5)), first)
    }
}

/// Option strings decoded in NN (architecture names, activations, architecture options):
/// a bad value is a typed error that names it and lists the valid choices.
final class ArchitectureOptionTests: XCTestCase {
    func testUnknownNamesAreTypedErrorsListingTheChoices() {
        let activations = ActivationName.allCases.map(\.rawValue)
        let architectures = ArchitectureName.allCases.map(\.rawValue)
        let cases: [(String, () throws -> Any, WeightsError)] = [
            ("activation", { try ActivationName(decoding: "swish") },
             .unknownChoice(path: "", option: "activation", value: "swish", choices: activations)),
            ("activation in an MLP architecture",
             { try Architecture(name: .mlp, inChannels: 2, classes: 2, widths: [4], activation: "Relu").makeModel() },
             .unknownChoice(path: "", option: "activation", value: "Relu", choices: activations)),
            ("architecture", { try ArchitectureName(decoding: "resnet50") },
             .unknownChoice(path: "", option: "architecture", value: "resnet50", choices: architectures)),
            ("inference precision",
             { var a = Architecture(name: .resnet18, inChannels: 1, classes: 3, widths: [8, 8, 8, 8]); a.inferencePrecision = "half"
               return try a.makeModel() },
             .unknownChoice(path: "", option: "inference_precision", value: "half", choices: ["float32", "bfloat16"])),
        ]
        for (name, body, expected) in cases {
            XCTAssertThrowsError(try body(), name) { error in
                XCTAssertEqual(error as? WeightsError, expected, name)
                guard case let .unknownChoice(_, option, value, choices) = expected else { return }
                let message = error.localizedDescription
                XCTAssertTrue(message.contains("unknown \(option) '\(value)'"), message)
                XCTAssertTrue(message.contains(choices.joined(separator: ", ")), message)
            }
        }
        XCTAssertEqual(activations, ["relu", "gelu", "sigmoid", "tanh", "softplus", "identity", "leaky_relu", "elu"])
    }

    func testEveryActivationNameBuildsAnMLP() throws {
        for name in ActivationName.allCases {
            let model = try Architecture(name: .mlp, inChannels: 3, classes: 2, widths: [4], activation: name.rawValue).makeModel(seed: 1)
            let activation = model.namedLayers().compactMap { $0.layer as? Activation }.first
            XCTAssertEqual(activation?.function, name.function, name.rawValue)
        }
    }

    func testArchitectureOptionsTheModelCannotTakeAreErrors() {
        let cases: [(Architecture, String)] = [
            (Architecture(name: .resnet18, inChannels: 1, classes: 3, widths: [8, 16]), "widths [8, 16] must list the 4 stage widths"),
            (Architecture(name: .cnn, inChannels: 1, classes: 3, imageSize: 20), "image_size 20 must be a positive multiple of 8"),
            (Architecture(name: .unet, inChannels: 1, classes: 3, widths: []), "widths must list at least one level"),
            (Architecture(name: .lstm, inChannels: 0, classes: 3), "in_channels 0 and classes 3 must be positive"),
        ]
        for (architecture, reason) in cases {
            XCTAssertThrowsError(try architecture.makeModel()) {
                XCTAssertEqual($0 as? WeightsError, .architecture(path: "", reason: "\(architecture.name): \(reason)"))
            }
        }
    }

    /// A model file naming an unknown activation: the error names the file, the value and the choices.
    func testAModelFileWithAnUnknownActivationNamesTheFile() throws {
        let dir = try makeTemporaryDirectory("nn")
        let url = dir.appendingPathComponent("mlp.safetensors")
        var architecture = Architecture(name: .mlp, inChannels: 2, classes: 2, widths: [4], activation: "tanh")
        let model = try architecture.makeModel(seed: 1)
        architecture.activation = "swish"
        try ModelFile(model: model, architecture: architecture).write(to: url)
        XCTAssertThrowsError(try ModelFile(contentsOf: url)) {
            XCTAssertEqual($0 as? WeightsError, .unknownChoice(path: url.path, option: "activation", value: "swish",
                                                               choices: ActivationName.allCases.map(\.rawValue)))
            XCTAssertTrue($0.localizedDescription.hasPrefix("'\(url.path)': unknown activation 'swish'; valid: relu, gelu"),
                          $0.localizedDescription)
        }
    }
}
