// Sequential container with a result builder, and the Identity placeholder.
import Autograd

/// Builds the layer list of a `Sequential`.
@resultBuilder
public enum LayerBuilder {
    public static func buildExpression(_ layer: any Layer) -> [any Layer] { [layer] }
    public static func buildExpression(_ layers: [any Layer]) -> [any Layer] { layers }
    public static func buildBlock(_ parts: [any Layer]...) -> [any Layer] { parts.flatMap { $0 } }
    public static func buildOptional(_ part: [any Layer]?) -> [any Layer] { part ?? [] }
    public static func buildEither(first: [any Layer]) -> [any Layer] { first }
    public static func buildEither(second: [any Layer]) -> [any Layer] { second }
    public static func buildArray(_ parts: [[any Layer]]) -> [any Layer] { parts.flatMap { $0 } }
}

/// Layers applied in order, as PyTorch's `nn.Sequential`; children are keyed `"0"`, `"1"`, ...
/// so parameter names match (`0.weight`, `3.bias`).
///
/// ```swift
/// let model = Sequential {
///     Conv2D(inputChannels: 1, outputChannels: 8, kernelSize: 3, padding: 1)
///     Activation.relu()
///     GlobalAvgPool()
///     Dense(inputFeatures: 8, outputFeatures: 2)
/// }
/// ```
public final class Sequential: Layer {
    public let layers: [any Layer]
    public var isTraining = true

    public init(_ layers: [any Layer]) { self.layers = layers }
    public convenience init(@LayerBuilder _ build: () -> [any Layer]) { self.init(build()) }

    public func forward(_ input: Tensor) -> Tensor {
        layers.reduce(input) { x, layer in layer(x) }
    }

    public var children: [(key: String, layer: any Layer)] {
        layers.enumerated().map { (String($0.offset), $0.element) }
    }

    public var layerDescription: String { "Sequential(\(layers.count) layer\(layers.count == 1 ? "" : "s"))" }
}

/// Passes its input through (the placeholder the fusion pass leaves for a folded layer).
public final class Identity: Layer {
    public var isTraining = false
    public init() {}
    public func forward(_ input: Tensor) -> Tensor { input }
    public var layerDescription: String { "Identity()" }
}
