// The layer abstraction: parameters with stable names, train/eval mode, tracing for summaries.
import Autograd

/// Whether a named tensor of a layer is trained by the optimiser or is state it keeps.
public enum TensorRole: Equatable, Sendable {
    /// Updated by gradient descent (`weight`, `bias`).
    case parameter
    /// Non-trained state saved with the model (batch norm's `running_mean`, `running_var`),
    /// like a PyTorch buffer or Keras' `trainable=False` weights.
    case buffer
}

/// One named tensor a layer owns directly, with its local key (`"weight"`, `"running_mean"`).
public struct NamedTensor {
    public let key: String
    public let tensor: Tensor
    public let role: TensorRole
    public init(_ key: String, _ tensor: Tensor, _ role: TensorRole = .parameter) {
        self.key = key; self.tensor = tensor; self.role = role
    }
}

/// A network building block: stored parameters, sub-layers, a forward pass.
///
/// Conforming types implement `forward(_:)`, list the tensors they own in `ownTensors` and
/// their sub-layers in `children`, with the keys PyTorch's `state_dict()` uses for the same
/// architecture, so that a key path such as `layer1.0.conv1.weight` names the same tensor in
/// both. Call a layer with `layer(x)`: `callAsFunction` runs `forward` and records output
/// shapes while `summary` traces a model.
///
/// Training vs inference is one flag set on the whole tree by `train()` / `eval()`.
public protocol Layer: AnyObject, CustomStringConvertible {
    /// The forward pass; use `layer(x)` to call it.
    func forward(_ input: Tensor) -> Tensor
    /// Tensors stored directly in this layer (not in children), in state-dict order.
    var ownTensors: [NamedTensor] { get }
    /// Sub-layers with their keys, in state-dict order.
    var children: [(key: String, layer: any Layer)] { get }
    /// This layer alone in one line, e.g. `Conv2D(1 → 32, kernel 3×3, stride 1, padding 1)`.
    /// `description` (what `print(layer)` shows) is this line for a leaf layer and the whole
    /// indented tree for a container, so `print(model)` shows the architecture.
    var layerDescription: String { get }
    /// True in training mode (batch statistics, dropout active); set through `train()`/`eval()`.
    var isTraining: Bool { get set }
    /// The fusion pass (Fusion.swift): an inference-only rewrite of this layer and its
    /// children, with batch norm folded into the preceding convolution, bias / residual / ReLU
    /// epilogues and frozen, pre-packed weights (`FusedConv2D`, `FusedResNet`, `FusedUNet`, ...);
    /// `self` for layers with nothing to fuse. Same outputs as the eval-mode model to float
    /// rounding. Only valid in eval mode; convolution and dense weights are copies, so training
    /// the original afterwards does not change the fused model.
    func fusedForInference() -> any Layer
}

extension Layer {
    public var ownTensors: [NamedTensor] { [] }
    public var children: [(key: String, layer: any Layer)] { [] }
    public func fusedForInference() -> any Layer { self }
    public var description: String { children.isEmpty ? layerDescription : treeDescription }

    /// Runs `forward`, recording the output shape while a summary traces the model.
    public func callAsFunction(_ input: Tensor) -> Tensor {
        var output = forward(input)
        LayerTrace.record(self, output)
        if let tap = LayerTap.current, tap.layer == ObjectIdentifier(self) { output = tap.take(output) }
        return output
    }

    // MARK: - Modes

    /// Training mode for this layer and every sub-layer.
    public func train() { setTraining(true) }
    /// Inference mode for this layer and every sub-layer (running statistics, no dropout).
    public func eval() { setTraining(false) }

    public func setTraining(_ training: Bool) {
        isTraining = training
        for (_, child) in children { child.setTraining(training) }
    }

    // MARK: - Named tensors

    /// Every layer of the tree with its key path (`""` for `self`), parents first.
    public func namedLayers() -> [(path: String, layer: any Layer)] {
        var result: [(path: String, layer: any Layer)] = [("", self)]
        for (key, child) in children {
            for (path, layer) in child.namedLayers() {
                result.append((path.isEmpty ? key : key + "." + path, layer))
            }
        }
        return result
    }

    /// Every tensor with its full key (PyTorch `state_dict()` names), parameters and buffers,
    /// in state-dict order (a layer's own tensors before its children's).
    public func namedTensors() -> [(key: String, tensor: Tensor, role: TensorRole)] {
        var result: [(key: String, tensor: Tensor, role: TensorRole)] = []
        for (path, layer) in namedLayers() {
            for t in layer.ownTensors {
                result.append((path.isEmpty ? t.key : path + "." + t.key, t.tensor, t.role))
            }
        }
        return result
    }

    /// Trainable parameters with their full keys (PyTorch `named_parameters()`).
    public func namedParameters() -> [(key: String, tensor: Tensor)] {
        namedTensors().filter { $0.role == .parameter }.map { ($0.key, $0.tensor) }
    }

    /// Trainable parameters, for an optimiser: `ModelOptimizer(.adam(), tensors: model.parameters, learningRate: 1e-3)`.
    public var parameters: [Tensor] { namedParameters().map(\.tensor) }

    /// The tensors to save, by full key (PyTorch `state_dict()`): the model's own tensors, not
    /// copies, so copy them to keep a snapshot while training goes on.
    public func stateDict() -> [String: Tensor] {
        Dictionary(namedTensors().map { ($0.key, $0.tensor) }, uniquingKeysWith: { a, _ in a })
    }

    /// Number of trainable scalars.
    public var parameterCount: Int { namedTensors().filter { $0.role == .parameter }.reduce(0) { $0 + $1.tensor.count } }
    /// Number of non-trained scalars (running statistics).
    public var bufferCount: Int { namedTensors().filter { $0.role == .buffer }.reduce(0) { $0 + $1.tensor.count } }

    /// Sets `requiresGrad` on every parameter (false freezes the layer, e.g. a backbone).
    public func setRequiresGrad(_ flag: Bool) {
        for (_, t) in namedParameters() { t.requiresGrad = flag }
    }

    /// Clears the gradient of every parameter.
    public func zeroGrad() { for t in parameters { t.zeroGrad() } }

    /// The architecture as an indented tree, one layer per line (PyTorch's `print(model)`).
    public var treeDescription: String {
        namedLayers().map { path, layer in
            let depth = path.isEmpty ? 0 : path.split(separator: ".").count
            let name = path.isEmpty ? "" : "(\(path.split(separator: ".").last!)): "
            return String(repeating: "  ", count: depth) + name + layer.layerDescription
        }.joined(separator: "\n")
    }
}

/// Records output shapes while `summary(inputShape:)` runs a model; off otherwise.
///
/// The recorder is a task-local value (a thread-local one outside Swift concurrency), bound
/// only for the duration of one summary, so concurrent forward passes on other threads never
/// see it and nothing process-wide changes.
final class LayerTrace: @unchecked Sendable {
    @TaskLocal static var current: LayerTrace?

    /// Only touched by the thread running the summary (the task-local binding is not visible
    /// to others), hence `@unchecked Sendable`.
    private(set) var shapes: [ObjectIdentifier: [Int]] = [:]

    static func record(_ layer: AnyObject, _ output: Tensor) { current?.add(layer, shape: output.shape) }

    /// For layers whose output is not computed in full (`LightCurveLSTM`'s LSTM).
    static func record(_ layer: AnyObject, shape: [Int]) { current?.add(layer, shape: shape) }

    private func add(_ layer: AnyObject, shape: [Int]) {
        let id = ObjectIdentifier(layer)
        if shapes[id] == nil { shapes[id] = shape }
    }
}

/// Taps the output of one layer while a forward pass runs inside `run`: records it and may
/// replace it (Grad-CAM continues the forward pass from a detached copy that tracks its own
/// gradient; feature visualisation reads a channel of it). Like `LayerTrace`, the tap is a
/// task-local value bound only for the duration of `run`, so other threads never see it.
///
///     let tap = LayerTap(model.layer4)
///     let logits = tap.run { model(x) }       // tap.output: layer4's output
///
/// A layer called several times in one pass (a shared activation) is tapped at its last call.
public final class LayerTap: @unchecked Sendable {
    let layer: ObjectIdentifier
    let replacement: (Tensor) -> Tensor
    /// The tapped layer's output (after `replacement`) in the last forward pass inside `run`.
    public private(set) var output: Tensor?

    /// - `replacement`: what the rest of the forward pass receives instead of the layer's output.
    public init(_ layer: any Layer, replacement: @escaping (Tensor) -> Tensor = { $0 }) {
        self.layer = ObjectIdentifier(layer)
        self.replacement = replacement
    }

    /// Runs `body` (a forward pass) with this tap bound.
    public func run<R>(_ body: () throws -> R) rethrows -> R {
        output = nil
        return try Self.$current.withValue(self, operation: body)
    }

    func take(_ tensor: Tensor) -> Tensor {
        let replaced = replacement(tensor)
        output = replaced
        return replaced
    }

    /// The tap bound by `run`, if any.
    @TaskLocal static var current: LayerTap?
}

/// Formats a shape the way summaries print it: `[1, 32, 64, 64]`.
func shapeText(_ shape: [Int]) -> String { "[" + shape.map(String.init).joined(separator: ", ") + "]" }

/// A network whose output rests on pooled features of the image, returned with the output
/// from one forward pass. Feature-space scores of a model's inputs (`FeatureDensity`) read them.
public protocol FeatureExtractor: Layer {
    /// The features `[N, D]` and the output (`forward(input)`) of a batch.
    func featuresAndOutput(_ input: Tensor) -> (features: Tensor, output: Tensor)
    /// D, the width of the features; nil when this network has none to give (then
    /// `featuresAndOutput` must not be called).
    var featureCount: Int? { get }
}

/// A classifier whose output is a dense head on pooled penultimate features (ResNets):
/// `forward(x) == fc(features(x))`. Feature-space scores (`FeatureDensity`, the Fréchet
/// distance) read `features`.
public protocol FeatureClassifier: FeatureExtractor {
    /// The pooled features `[N, D]` before `fc`.
    func features(_ input: Tensor) -> Tensor
    /// The head: features `[N, D]` to outputs `[N, K]`.
    var fc: Dense { get }
}

extension FeatureClassifier {
    public var featureCount: Int? { fc.inputFeatures }

    public func featuresAndOutput(_ input: Tensor) -> (features: Tensor, output: Tensor) {
        let features = features(input)
        return (features, fc(features))
    }
}
