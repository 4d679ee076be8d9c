// Fully connected layer.
import Autograd

/// A fully connected layer, as PyTorch's `nn.Linear`: `y = x Wᵀ + b`.
///
/// - `input`: `[..., inputFeatures]`; returns `[..., outputFeatures]`.
/// - Keys: `weight` `[outputFeatures, inputFeatures]`, `bias` `[outputFeatures]`.
public final class Dense: Layer {
    public let inputFeatures: Int
    public let outputFeatures: Int
    public let weight: Tensor
    public let bias: Tensor?
    public var isTraining = true

    public init(inputFeatures: Int, outputFeatures: Int, useBias: Bool = true, seed: UInt64? = nil) {
        precondition(inputFeatures > 0 && outputFeatures > 0, "Dense: features must be positive, got \(inputFeatures) → \(outputFeatures)")
        self.inputFeatures = inputFeatures
        self.outputFeatures = outputFeatures
        let s = WeightInitialization.seed(seed)
        weight = WeightInitialization.uniform([outputFeatures, inputFeatures], fanIn: inputFeatures, seed: s)
        bias = useBias ? WeightInitialization.uniform([outputFeatures], fanIn: inputFeatures, seed: s &+ 1) : nil
    }

    public func forward(_ input: Tensor) -> Tensor {
        precondition(input.shape.last == inputFeatures,
                     "Dense(\(inputFeatures) → \(outputFeatures)): input \(input.shape) must end in \(inputFeatures)")
        let y = input.matmul(transposed: weight)
        guard let bias else { return y }
        return y + bias
    }

    public var ownTensors: [NamedTensor] {
        [NamedTensor("weight", weight)] + (bias.map { [NamedTensor("bias", $0)] } ?? [])
    }

    public var layerDescription: String {
        "Dense(\(inputFeatures) → \(outputFeatures)\(bias == nil ? ", no bias" : ""))"
    }
}
