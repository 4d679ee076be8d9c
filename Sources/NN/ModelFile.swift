// Self-describing model files: safetensors + architecture + preprocessing metadata.
import Autograd
import Foundation

/// The architecture recorded in a model file (`astrolabe.architecture`), enough to rebuild it.
///
/// Stored as JSON with snake_case keys, e.g.
/// `{"name":"resnet18","in_channels":3,"classes":5,"widths":[64,128,256,512],"small_image_stem":false}`.
public struct Architecture: Codable, Equatable, Sendable {
    public var name: ArchitectureName
    public var inChannels: Int
    public var classes: Int
    /// ResNet stage widths, U-Net encoder widths, MLP layer widths, DCGAN generator widths.
    public var widths: [Int]?
    public var smallImageStem: Bool?
    /// ResNet: false drops the max-pool after the standard stem; absent means true (torchvision).
    public var stemPool: Bool?
    /// cnn: the square input size (64 in BENCH.md).
    public var imageSize: Int?
    /// U-Net bottleneck channels; LSTM hidden size.
    public var bottleneck: Int?
    public var hidden: Int?
    /// gru: stacked recurrent layers (absent: 1).
    public var layers: Int?
    /// MLP: one of `ActivationName`'s raw values (absent: relu).
    public var activation: String?
    /// `resnet18_flow`: the conditional flow over the targets (`classes` is then the
    /// encoder's context width).
    public var flow: FlowSettings?
    /// `resnet18_flow`: the last `context_channels` of the `in_channels` are constant planes of
    /// header values (the `header_channel` stage) that join the flow's context beside the
    /// encoder's `classes` outputs instead of entering the encoder (absent: 0).
    public var contextChannels: Int?
    /// `resnet18_flow`: the encoder's output averaged over the image's 90° rotations (4) and
    /// their mirror images (8) (`PosteriorRegressor.views`); a `resnet18` / `resnet34` class or
    /// regression model: its outputs and pooled features averaged so at inference (`Predictor`); absent: 1.
    public var views: Int?
    /// dcgan: the generator makes noiseless images, observed with the recorded observation's
    /// noise by `generate` (trained with `adversarial.observe_noise`; absent: false).
    public var noiseless: Bool?
    /// dcgan: how the generator doubles its images' size: `transposed` (4×4/2 transposed
    /// convolutions, DCGAN's) or `nearest` (nearest-neighbour ×2, then a 3×3 convolution: no
    /// checkerboard; Odena et al. 2016) (absent: transposed).
    public var upsample: String?
    /// dcgan: a class-conditional generator over this many classes (the recipe's class names),
    /// a one-hot code after the noise (absent: unconditional).
    public var labels: Int?
    /// The arithmetic of the fused model's convolutions at inference: one of
    /// `InferencePrecision`'s raw values, `float32` or `bfloat16` (absent: float32). Set after
    /// training by `scripts/record_observation.py --precision`; training always runs in float32.
    public var inferencePrecision: String?

    enum CodingKeys: String, CodingKey {
        case name, inChannels = "in_channels", classes, widths, smallImageStem = "small_image_stem",
             stemPool = "stem_pool", imageSize = "image_size", bottleneck, hidden, layers, activation, flow,
             contextChannels = "context_channels", views, noiseless, upsample, labels, inferencePrecision = "inference_precision"
    }

    public init(name: ArchitectureName, inChannels: Int, classes: Int, widths: [Int]? = nil, smallImageStem: Bool? = nil,
                stemPool: Bool? = nil, imageSize: Int? = nil, bottleneck: Int? = nil, hidden: Int? = nil,
                activation: String? = nil, layers: Int? = nil, flow: FlowSettings? = nil, contextChannels: Int? = nil,
                views: Int? = nil, noiseless: Bool? = nil, upsample: String? = nil, labels: Int? = nil) {
        self.flow = flow; self.contextChannels = contextChannels; self.views = views
        self.noiseless = noiseless; self.upsample = upsample; self.labels = labels
        self.name = name; self.inChannels = inChannels; self.classes = classes; self.widths = widths
        self.smallImageStem = smallImageStem; self.stemPool = stemPool; self.imageSize = imageSize; self.bottleneck = bottleneck
        self.hidden = hidden; self.activation = activation; self.layers = layers
    }

    /// Builds the model (fresh weights from `seed`, random without one; load the file's
    /// tensors into it next). Throws `WeightsError.unknownChoice` for an unknown `name` or
    /// `activation` (naming it and listing the valid ones) and `WeightsError.architecture` for
    /// options the architecture cannot take.
    public func makeModel(seed: UInt64? = nil) throws -> any Layer {
        let kind = name
        func invalid(_ reason: String) -> WeightsError { .architecture(path: "", reason: "\(name.rawValue): \(reason)") }
        guard inChannels > 0, classes > 0 else {
            throw invalid("in_channels \(inChannels) and classes \(classes) must be positive")
        }
        if let widths, widths.contains(where: { $0 <= 0 }) { throw invalid("widths \(widths) must be positive") }
        _ = try precision()
        switch kind {
        case .resnet18Flow:
            guard let flow else { throw invalid("needs 'flow' (features, layers, hidden, transform)") }
            do { try flow.validate() } catch WeightsError.architecture(_, let reason) { throw invalid(reason) }
            let planes = contextChannels ?? 0
            guard planes >= 0, planes < inChannels else {
                throw invalid("context_channels \(planes) must be at least 0 and fewer than in_channels \(inChannels)")
            }
            guard PosteriorRegressor.viewIndices(views ?? 1) != nil else {
                throw invalid("views \(views ?? 1) must be 1, 4 (the 90° rotations) or 8 (and their mirror images)")
            }
            var encoder = self
            encoder.name = .resnet18
            encoder.flow = nil
            encoder.contextChannels = nil
            encoder.views = nil
            encoder.inChannels = inChannels - planes
            var seeds = LayerSeeds(seed)
            let encoderSeed = seed.map { _ in seeds.next() }, flowSeed = seed.map { _ in seeds.next() }
            return PosteriorRegressor(encoder: try encoder.makeModel(seed: encoderSeed),
                                      flow: .posterior(flow, contextFeatures: classes + planes, seed: flowSeed),
                                      contextChannels: planes, views: views ?? 1)
        case .resnet18, .resnet34:
            guard PosteriorRegressor.viewIndices(views ?? 1) != nil else {
                throw invalid("views \(views ?? 1) must be 1, 4 (the 90° rotations) or 8 (and their mirror images)")
            }
            let w = widths ?? [64, 128, 256, 512]
            guard w.count == 4 else { throw invalid("widths \(w) must list the 4 stage widths") }
            let configuration = ResNet.Configuration(blocks: kind == .resnet18 ? [2, 2, 2, 2] : [3, 4, 6, 3],
                                                     inputChannels: inChannels, classCount: classes, widths: w,
                                                     smallImageStem: smallImageStem ?? false, stemPool: stemPool ?? true)
            return ResNet(configuration, seed: seed)
        case .cnn:
            let size = imageSize ?? 64
            guard size > 0 && size % 8 == 0 else { throw invalid("image_size \(size) must be a positive multiple of 8") }
            return SimpleCNN.make(inputChannels: inChannels, classCount: classes, imageSize: size, seed: seed)
        case .unet:
            let w = widths ?? [16, 32, 64, 128]
            guard !w.isEmpty else { throw invalid("widths must list at least one level") }
            if let bottleneck, bottleneck <= 0 { throw invalid("bottleneck \(bottleneck) must be positive") }
            return UNet(inputChannels: inChannels, classCount: classes, widths: w, bottleneckWidth: bottleneck, seed: seed)
        case .lstm:
            let h = hidden ?? 64
            guard h > 0 else { throw invalid("hidden \(h) must be positive") }
            return LightCurveLSTM(features: inChannels, hiddenSize: h, classCount: classes, seed: seed)
        case .gru:
            let h = hidden ?? 64, count = layers ?? 1
            guard h > 0, count > 0 else { throw invalid("hidden \(h) and layers \(count) must be positive") }
            return SequenceClassifier(features: inChannels, hiddenSize: h, layerCount: count, classCount: classes, seed: seed)
        case .dcgan:
            let w = widths ?? [512, 256, 128, 64]
            guard !w.isEmpty else { throw invalid("widths must list at least one level") }
            guard let upsampling = DCGANGenerator.Upsampling(rawValue: upsample ?? "transposed") else {
                throw invalid("upsample '\(upsample ?? "")' must be one of "
                              + DCGANGenerator.Upsampling.allCases.map(\.rawValue).joined(separator: ", "))
            }
            guard (labels ?? 0) >= 0 else { throw invalid("labels \(labels!) must not be negative") }
            return DCGANGenerator(latentDimension: inChannels, outputChannels: classes, widths: w, upsampling: upsampling,
                                  classCount: labels ?? 0, seed: seed)
        case .mlp:
            let function = try ActivationName(decoding: activation ?? ActivationName.relu.rawValue).function
            return MLP.make(inputFeatures: inChannels, widths: (widths ?? []) + [classes], activation: function, seed: seed)
        }
    }

    /// `inference_precision` as an `InferencePrecision` (nil when absent); throws
    /// `WeightsError.unknownChoice` naming any other text and listing the valid ones.
    public func precision() throws -> InferencePrecision? {
        guard let text = inferencePrecision else { return nil }
        guard let value = InferencePrecision(rawValue: text) else {
            throw WeightsError.unknownChoice(path: "", option: "inference_precision", value: text,
                                             choices: InferencePrecision.allCases.map(\.rawValue))
        }
        return value
    }

    /// The JSON stored in the file.
    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try! encoder.encode(self), as: UTF8.self)
    }
}

/// The architectures a model file can name (their raw values are the file's and the pipelines' spelling).
public enum ArchitectureName: String, CaseIterable, Codable, Sendable {
    case resnet18, resnet34, cnn, unet, lstm, gru, mlp
    /// A DCGAN generator (`DCGANGenerator`): `in_channels` is its latent dimension, `classes`
    /// its output bands, `widths` its hidden widths (the image side is 4 · 2^widths.count).
    case dcgan
    /// A ResNet-18 encoder whose `classes` outputs condition a flow (`PosteriorRegressor`).
    case resnet18Flow = "resnet18_flow"

    /// The name `value`, or `WeightsError.unknownChoice` naming it and listing the valid names.
    public init(decoding value: String) throws {
        guard let name = ArchitectureName(rawValue: value) else {
            throw WeightsError.unknownChoice(path: "", option: "architecture", value: value,
                                             choices: ArchitectureName.allCases.map(\.rawValue))
        }
        self = name
    }
}

/// A model with what is needed to use it: architecture and preprocessing.
public struct ModelFile {
    public static let architectureKey = "astrolabe.architecture"
    public static let preprocessingKey = "astrolabe.preprocessing"

    public var model: any Layer
    public var architecture: Architecture
    /// The preprocessing module's JSON (opaque here), if the file records one.
    public var preprocessing: String?

    public init(model: any Layer, architecture: Architecture, preprocessing: String? = nil) {
        self.model = model; self.architecture = architecture; self.preprocessing = preprocessing
    }

    /// Writes the weights (F32, PyTorch names) with `astrolabe.architecture` and
    /// `astrolabe.preprocessing` metadata, atomically. PyTorch reads it with
    /// `safetensors.torch.load_file` + `load_state_dict`.
    public func write(to url: URL) throws {
        var metadata = [ModelFile.architectureKey: architecture.json, "format": "pt"]
        if let preprocessing { metadata[ModelFile.preprocessingKey] = preprocessing }
        try model.save(to: url, metadata: metadata)
    }

    /// Rebuilds the model from the file alone (strict load), in eval mode.
    public init(contentsOf url: URL) throws {
        let file = try Safetensors(contentsOf: url)
        guard let json = file.metadata[ModelFile.architectureKey] else {
            throw WeightsError.architecture(path: url.path, reason: "no '\(ModelFile.architectureKey)' metadata: "
                + "this is a plain state dict; give the architecture (e.g. --arch resnet18 --classes N --in-channels C)")
        }
        let architecture: Architecture
        do { architecture = try JSONDecoder().decode(Architecture.self, from: Data(json.utf8)) } catch {
            struct Named: Decodable { var name: String }
            if let name = try? JSONDecoder().decode(Named.self, from: Data(json.utf8)).name,
               ArchitectureName(rawValue: name) == nil {
                throw WeightsError.architecture(path: url.path, reason: "unknown architecture '\(name)'; known: "
                    + ArchitectureName.allCases.map(\.rawValue).joined(separator: ", "))
            }
            throw WeightsError.architecture(path: url.path, reason: "'\(ModelFile.architectureKey)' is not valid: \(json)")
        }
        let model: any Layer
        do { model = try architecture.makeModel() } catch WeightsError.architecture(_, let reason) {
            throw WeightsError.architecture(path: url.path, reason: reason)
        } catch WeightsError.unknownChoice(_, let option, let value, let choices) {
            throw WeightsError.unknownChoice(path: url.path, option: option, value: value, choices: choices)
        }
        try model.load(stateDict: file.tensors, mode: .strict)
        model.eval()
        self.init(model: model, architecture: architecture, preprocessing: file.metadata[ModelFile.preprocessingKey])
    }
}
