// Default weight initialisation (PyTorch's defaults) and reproducible seeds.
import Autograd

/// Seeds for layer initialisation. Every layer created without an explicit seed takes the
/// next one from here, so a model built twice after `reset(seed:)` has identical weights.
public enum WeightInitialization {
    nonisolated(unsafe) private static var counter: UInt64 = 0x5eed

    /// Restarts the sequence of seeds (call before building a model for reproducible weights).
    public static func reset(seed: UInt64) { counter = seed }

    static func nextSeed() -> UInt64 {
        counter &+= 0x9E37_79B9_7F4A_7C15
        return counter
    }

    /// PyTorch's default for `Linear`/`Conv2d` (Kaiming uniform with `a = sqrt(5)`), which
    /// reduces to `U(-1/sqrt(fanIn), 1/sqrt(fanIn))` for weights and biases alike.
    static func uniform(_ shape: [Int], fanIn: Int, seed: UInt64?) -> Tensor {
        let bound = 1 / Float(max(fanIn, 1)).squareRoot()
        let t = Tensor.randomUniform(shape, lower: -bound, upper: bound, seed: seed ?? nextSeed())
        t.requiresGrad = true
        return t
    }
}
