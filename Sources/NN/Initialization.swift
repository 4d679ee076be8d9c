// Default weight initialisation (PyTorch's defaults) from explicit seeds.
import Autograd

/// PyTorch's default initialisation, drawn from a seed the caller passes in.
///
/// Every layer with weights takes `seed: UInt64?` and every model factory takes one seed from
/// which it derives its layers' seeds in construction order (`LayerSeeds`), so a model built
/// twice from the same seed has identical weights. Without a seed the weights are random
/// (fresh system entropy), as in Keras; nothing process-wide is read or advanced.
enum WeightInitialization {
    /// PyTorch's default for `Linear`/`Conv2d` (Kaiming uniform with `a = sqrt(5)`), which
    /// reduces to `U(-1/sqrt(fanIn), 1/sqrt(fanIn))` for weights and biases alike.
    static func uniform(_ shape: [Int], fanIn: Int, seed: UInt64) -> Tensor {
        let bound = 1 / Float(max(fanIn, 1)).squareRoot()
        let t = Tensor.randomUniform(shape, lower: -bound, upper: bound, seed: seed)
        t.requiresGrad = true
        return t
    }

    /// `seed`, or a random one when the caller gave none.
    static func seed(_ seed: UInt64?) -> UInt64 { seed ?? UInt64.random(in: .min ... .max) }
}

/// The seeds of a model's layers, drawn in construction order from the model's seed.
///
/// ```swift
/// var seeds = LayerSeeds(seed)          // seed: UInt64? (nil: random weights)
/// let conv = Conv2D(inputChannels: 1, outputChannels: 8, kernelSize: 3, seed: seeds.next())
/// ```
public struct LayerSeeds {
    private var generator: SeededGenerator

    public init(_ seed: UInt64?) { generator = SeededGenerator(seed: WeightInitialization.seed(seed)) }

    /// The next layer's seed.
    public mutating func next() -> UInt64 { generator.next() }
}
