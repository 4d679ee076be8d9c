// Amortised posteriors: an image encoder whose output conditions a normalizing flow over the
// targets (neural posterior estimation).
import Autograd

/// A model trained by the negative log-likelihood of its targets rather than a loss of its
/// output: its forward pass gives a context, and `Model` calls `negativeLogLikelihood` with it
/// when compiled with `LossFunction.negativeLogLikelihood`.
public protocol DensityModel: Layer {
    /// The mean negative log-likelihood (a scalar) of `targets` (`[N, features]`) given the
    /// contexts `forward` returned for their inputs.
    func negativeLogLikelihood(context: Tensor, targets: Tensor) -> Tensor
}

/// How the flow of a posterior model is built (`Architecture.flow`, JSON with snake_case keys):
/// `{"features":4,"layers":6,"hidden":[64,64],"transform":"spline","bins":8,"tail_bound":5}`.
public struct FlowSettings: Codable, Equatable, Sendable {
    /// The elementwise transform of each coupling layer.
    public enum TransformName: String, Codable, CaseIterable, Sendable { case spline, affine }

    /// The dimension of the variable (the number of targets).
    public var features: Int
    /// Coupling layers.
    public var layers: Int
    /// The conditioner MLPs' hidden widths.
    public var hidden: [Int]
    public var transform: TransformName
    /// Spline bins and the half-width of the spline's interval (identity outside).
    public var bins: Int?
    public var tailBound: Double?
    /// A last layer (on the base's side) that shifts and scales each feature by amounts the
    /// context alone sets (an affine map whose conditioner sees no feature): a per-context
    /// normal that the coupling layers then shape. It starts as the identity (absent: false;
    /// ignored by a flow without context).
    public var locationScale: Bool?

    enum CodingKeys: String, CodingKey {
        case features, layers, hidden, transform, bins, tailBound = "tail_bound", locationScale = "location_scale"
    }

    public init(features: Int, layers: Int = 6, hidden: [Int] = [64, 64], transform: TransformName = .spline,
                bins: Int? = 8, tailBound: Double? = 5, locationScale: Bool? = nil) {
        self.features = features; self.layers = layers; self.hidden = hidden; self.transform = transform
        self.bins = bins; self.tailBound = tailBound; self.locationScale = locationScale
    }

    public var elementwise: ElementwiseTransform {
        switch transform {
        case .spline: return .rationalQuadraticSpline(bins: bins ?? 8, tailBound: Float(tailBound ?? 5))
        case .affine: return .affine()
        }
    }

    /// Checks the numbers; `reason` says what is wrong.
    public func validate() throws {
        func invalid(_ reason: String) -> WeightsError { .architecture(path: "", reason: "flow: \(reason)") }
        guard features >= 2 else { throw invalid("features \(features) must be at least 2 (a coupling layer splits them)") }
        guard layers > 0 else { throw invalid("layers \(layers) must be positive") }
        guard !hidden.isEmpty, hidden.allSatisfy({ $0 > 0 }) else { throw invalid("hidden \(hidden) must list positive widths") }
        if transform == .spline {
            guard (bins ?? 8) >= 2, (tailBound ?? 5) > 0 else {
                throw invalid("spline bins \(bins ?? 8) must be at least 2 and tail_bound \(tailBound ?? 5) positive")
            }
        }
    }
}

extension Flow {
    /// A conditional coupling flow whose masks cycle through every split of the features, so
    /// each pair of features is transformed apart in some layer and their dependence is
    /// learned: for 4 features the transformed sets are {0,2}, {1,3}, {0,1}, {2,3}, {0,3}, {1,2}.
    /// Layer `l` uses split `l / 2` (by bit `b` of the feature index, then the XOR of bits 0
    /// and 1) and transforms one half (even `l`) or the other (odd `l`). With
    /// `settings.locationScale` (and a context) an affine layer conditioned on the context
    /// alone follows, its last conditioner layer zero so that it starts as the identity.
    public static func posterior(_ settings: FlowSettings, contextFeatures: Int, seed: UInt64? = nil) -> Flow {
        var seeds = LayerSeeds(seed)
        let masks = couplingMasks(features: settings.features, layers: settings.layers)
        var transforms: [any Bijection] = masks.map {
            CouplingTransform(features: settings.features, contextFeatures: contextFeatures, mask: $0,
                              transform: settings.elementwise, hiddenFeatures: settings.hidden, seed: seeds.next())
        }
        if settings.locationScale == true && contextFeatures > 0 {
            let shift = CouplingTransform(features: settings.features, contextFeatures: contextFeatures,
                                          mask: [Bool](repeating: true, count: settings.features), transform: .affine(),
                                          hiddenFeatures: settings.hidden, seed: seeds.next())
            if let last = shift.conditioner.layers.last as? Dense {
                withNoGrad {
                    last.weight.assign(Tensor.zeros(last.weight.shape))
                    last.bias?.assign(Tensor.zeros(last.bias!.shape))
                }
            }
            transforms.append(shift)
        }
        return Flow(features: settings.features, contextFeatures: contextFeatures, transforms: transforms)
    }

    /// The masks of `posterior`: true for the transformed features of each layer.
    public static func couplingMasks(features: Int, layers: Int) -> [[Bool]] {
        var bits = 1
        while (1 << bits) < features { bits += 1 }
        var splits: [[Bool]] = (0..<bits).map { b in (0..<features).map { ($0 >> b) & 1 == 0 } }
        if bits >= 2 { splits.append((0..<features).map { ($0 & 1) ^ (($0 >> 1) & 1) == 0 }) }
        splits = splits.filter { $0.contains(true) && $0.contains(false) }
        return (0..<layers).map { l in
            let split = splits[(l / 2) % splits.count]
            return l % 2 == 0 ? split : split.map { !$0 }
        }
    }
}

/// Neural posterior estimation: an encoder maps an image to a context vector, and a
/// conditional flow over the (transformed) targets gives `p(θ | image)`.
///
/// - `forward(input)`: the context `[N, contextFeatures]`. With `contextChannels` k > 0 the
///   input's last k channels are constant planes of header values (the `header_channel`
///   stage, e.g. the PSF's FWHM): the encoder sees the other channels, and the planes' values
///   follow its outputs in the context, so the flow knows the observation the image says
///   little about.
/// - `negativeLogLikelihood(context:targets:)`: `−mean log p(targets | context)`, what training
///   minimises (targets `[N, features]`, in the flow's unbounded space).
/// - `sample(context:count:generator:)`: `count` draws per context row, `[N · count, features]`,
///   the draws of row `i` at `i·count ..< (i+1)·count`.
/// - With `views` 4 or 8 the encoder's output is the mean over the image's rotations by
///   multiples of 90° (4) and their mirror images (8), so the context, and with it the
///   posterior, is exactly invariant under those symmetries of the observation (TASKS.md:
///   uniform position angle, circular PSF) rather than approximately, as augmentation
///   leaves it; the views go through the encoder as one batch.
/// - Keys: `encoder.…` (the encoder's own, e.g. a ResNet's `conv1.weight`), `flow.0.…`.
public final class PosteriorRegressor: DensityModel, FeatureExtractor {
    public let encoder: any Layer
    public let flow: Flow
    /// Input channels (the last ones) that go to the context, not the encoder.
    public let contextChannels: Int
    /// Symmetric views of the image the encoder's output is averaged over: 1, 4 or 8.
    public let views: Int
    public var isTraining = true

    /// The `dihedralView` indices of `views` 1, 4 (the rotations) and 8.
    public static func viewIndices(_ views: Int) -> [Int]? {
        [1: [0], 4: [0, 3, 5, 6], 8: Array(0..<8)][views]
    }

    public init(encoder: any Layer, flow: Flow, contextChannels: Int = 0, views: Int = 1) {
        precondition(flow.contextFeatures > contextChannels && contextChannels >= 0,
                     "PosteriorRegressor: the flow must take a context wider than the \(contextChannels) context channels")
        precondition(Self.viewIndices(views) != nil, "PosteriorRegressor: views \(views) must be 1, 4 or 8")
        self.encoder = encoder
        self.flow = flow
        self.contextChannels = contextChannels
        self.views = views
    }

    /// The encoder's output for `image` `[N, C, H, W]`, averaged over `views`.
    func encoded(_ image: Tensor) -> Tensor { viewMean(encoder(viewBatch(image))) }

    /// The `views` of `image` `[N, C, H, W]` as one batch `[views · N, C, H, W]` (view-major).
    func viewBatch(_ image: Tensor) -> Tensor {
        guard views > 1, let indices = Self.viewIndices(views) else { return image }
        return Tensor.concatenate(indices.map { image.dihedralView($0) }, axis: 0)
    }

    public var features: Int { flow.features }
    public var contextFeatures: Int { flow.contextFeatures }

    /// The encoder's pooled features averaged over the views (`[N, D]`) and the context
    /// (`forward(input)`, computed as it does), for an encoder that is a `FeatureClassifier`.
    public func featuresAndOutput(_ input: Tensor) -> (features: Tensor, output: Tensor) {
        guard let encoder = encoder as? any FeatureClassifier else {
            preconditionFailure("PosteriorRegressor: its encoder (\(encoder.layerDescription)) has no pooled features")
        }
        let image = contextChannels > 0 ? input.sliced(axis: 1, 0..<(input.shape[1] - contextChannels)) : input
        let all = encoder.features(viewBatch(image))
        return (viewMean(all), withPlanes(viewMean(encoder.fc(all)), of: input))
    }

    /// `[views · N, D]` rows of the views of N images → their mean per image `[N, D]`.
    func viewMean(_ rows: Tensor) -> Tensor {
        views > 1 ? rows.reshaped(to: [views, rows.shape[0] / views, rows.shape[1]]).mean(axes: [0]) : rows
    }

    /// The encoder's output `[N, E]` followed by the header planes' values of `input` (its last
    /// `contextChannels` channels, one pixel each): the flow's context.
    func withPlanes(_ encoded: Tensor, of input: Tensor) -> Tensor {
        guard contextChannels > 0 else { return encoded }
        let n = input.shape[0], c = input.shape[1] - contextChannels
        let planes = input.sliced(axis: 1, c..<input.shape[1]).sliced(axis: 2, 0..<1).sliced(axis: 3, 0..<1)
        return Tensor.concatenate([encoded, planes.reshaped(to: [n, contextChannels])], axis: 1)
    }

    /// The width of the encoder's pooled features (a ResNet encoder's); nil for other encoders.
    public var featureCount: Int? { (encoder as? any FeatureClassifier)?.fc.inputFeatures }

    public func forward(_ input: Tensor) -> Tensor {
        guard contextChannels > 0 else { return encoded(input) }
        precondition(input.rank == 4 && input.shape[1] > contextChannels,
                     "PosteriorRegressor: input \(input.shape) must be [N, C, H, W] with more than \(contextChannels) channels")
        return withPlanes(encoded(input.sliced(axis: 1, 0..<(input.shape[1] - contextChannels))), of: input)
    }

    public func negativeLogLikelihood(context: Tensor, targets: Tensor) -> Tensor {
        precondition(targets.rank == 2 && targets.shape == [context.shape[0], features],
                     "PosteriorRegressor: targets \(targets.shape) must be [\(context.shape[0]), \(features)]")
        return -flow.logProbability(targets, context: context).mean()
    }

    /// `log p(targets | image)` per sample, `[N]`, from contexts computed by `forward`.
    public func logProbability(_ targets: Tensor, context: Tensor) -> Tensor {
        flow.logProbability(targets, context: context)
    }

    /// `count` posterior draws for each context row (`[N, contextFeatures]`), `[N · count, features]`
    /// (`Flow.sample(perContext:context:generator:)`: inside `withNoGrad`, the inference sampler).
    public func sample(context: Tensor, count: Int, generator: inout SeededGenerator) -> Tensor {
        precondition(context.rank == 2 && context.shape[1] == contextFeatures && count > 0,
                     "PosteriorRegressor: context \(context.shape) must be [N, \(contextFeatures)], count \(count) positive")
        return flow.sample(perContext: count, context: context, generator: &generator)
    }

    public var children: [(key: String, layer: any Layer)] { [("encoder", encoder), ("flow", flow)] }

    /// A regressor's state dict (keys without `encoder.`) as this model's encoder weights:
    /// every key prefixed with `encoder.`, and a final dense layer (`fc.weight` `[k, F]`,
    /// `fc.bias` `[k]`) narrower than the context copied into the first `k` context rows (the
    /// other rows keep their initial values), so the context starts out holding the
    /// regressor's outputs.
    public func encoderWeights(from regressor: [String: Tensor]) -> [String: Tensor] {
        let own = Dictionary(uniqueKeysWithValues: namedTensors().map { ($0.key, $0.tensor) })
        var result = [String: Tensor]()
        for (key, tensor) in regressor {
            let name = "encoder." + key
            guard let target = own[name], target.shape != tensor.shape, target.rank == tensor.rank,
                  target.shape[0] > tensor.shape[0], Array(target.shape.dropFirst()) == Array(tensor.shape.dropFirst()) else {
                result[name] = tensor
                continue
            }
            let rows = tensor.shape[0], width = tensor.count / rows
            var values = target.scalars
            let source = tensor.scalars
            for i in 0..<(rows * width) { values[i] = source[i] }
            result[name] = Tensor(shape: target.shape, data: values)
        }
        return result
    }

    /// A posterior model's state dict whose flow took `contextChannels` fewer context features
    /// (trained without header channels) as this model's: each conditioner's first dense weight
    /// `[h, i]` becomes `[h, i + contextChannels]` with zero columns for the new context
    /// features (the conditioner input ends with the context), so the model starts out giving
    /// the same posteriors and learns from there what the header values add.
    public func contextWidened(from pretrained: [String: Tensor]) -> [String: Tensor] {
        guard contextChannels > 0 else { return pretrained }
        var result = pretrained
        for (key, own, _) in namedTensors() where key.hasPrefix("flow.") {
            guard let old = pretrained[key], old.rank == 2, own.rank == 2, old.shape[0] == own.shape[0],
                  own.shape[1] - old.shape[1] == contextChannels else { continue }
            let rows = own.shape[0], from = old.shape[1], to = own.shape[1]
            let source = old.scalars
            var values = [Float](repeating: 0, count: rows * to)
            for r in 0..<rows { for c in 0..<from { values[r * to + c] = source[r * from + c] } }
            result[key] = Tensor(shape: own.shape, data: values)
        }
        return result
    }

    /// The encoder fused for inference; the flow as it is (dense layers and splines only).
    public func fusedForInference() -> any Layer {
        let fused = PosteriorRegressor(encoder: encoder.fusedForInference(), flow: flow, contextChannels: contextChannels, views: views)
        fused.isTraining = false
        return fused
    }

    public var layerDescription: String {
        "PosteriorRegressor(context \(contextFeatures)" + (contextChannels > 0 ? " (\(contextChannels) from header channels)" : "")
            + (views > 1 ? ", encoder averaged over \(views) views" : "") + " → flow over \(features) features)"
    }
}
