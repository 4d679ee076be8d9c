// A recurrent classifier of padded, variable-length sequences whose last feature is the step mask.
import Autograd

/// Stacked GRU layers and a dense head over sequences batched with padding, classified at
/// each row's last valid step (architecture `gru` of model files).
///
/// The input's last feature is the step mask: 1 at a row's valid steps, 0 at the padding
/// after them (the sequence stages of the Preprocessing module write it). Each row's length
/// is read from it, so the recurrence skips the padding (PyTorch's packed sequences), and the
/// mask stays an input feature (constant 1 where the network looks).
///
/// - `input`: `[N, T, features]`, mask last; `forward` returns `[N, classCount]`, the logits
///   after each row's last valid step; `stepLogits` returns `[N, T, classCount]`, the logits
///   after every step (a curve classified after each new point; zero rows past a length).
/// - Keys: `gru.weight_ih_l0` ... (PyTorch's `nn.GRU` names), `fc.weight`, `fc.bias`; with one
///   layer exactly `reference_models.LightCurveGRU`'s.
public final class SequenceClassifier: Layer {
    public let gru: GRU
    public let fc: Dense
    public var isTraining = true

    /// - `features`: input width including the mask; `layerCount`: stacked GRU layers;
    ///   `seed`: the initial weights' seed (nil: random).
    public init(features: Int, hiddenSize: Int = 64, layerCount: Int = 1, classCount: Int, seed: UInt64? = nil) {
        var seeds = LayerSeeds(seed)
        gru = GRU(inputFeatures: features, hiddenSize: hiddenSize, layerCount: layerCount, seed: seeds.next())
        fc = Dense(inputFeatures: hiddenSize, outputFeatures: classCount, seed: seeds.next())
    }

    /// Each row's valid steps, from the mask (the last feature): the count of steps before
    /// the first zero, at least 1.
    public static func lengths(of input: Tensor) -> [Int] {
        precondition(input.rank == 3, "SequenceClassifier: input \(input.shape) must be [N, T, features] with the mask last")
        let n = input.shape[0], steps = input.shape[1], width = input.shape[2]
        let values = input.storage.pointer
        return (0..<n).map { row in
            var length = 0
            while length < steps && values[(row * steps + length) * width + width - 1] > 0.5 { length += 1 }
            return Swift.max(length, 1)
        }
    }

    public func forward(_ input: Tensor) -> Tensor {
        let hidden = gru.finalState(input, lengths: Self.lengths(of: input))
        LayerTrace.record(gru, shape: [input.shape[0], input.shape[1], gru.hiddenSize])
        return fc(hidden)
    }

    /// The logits after every step `[N, T, classCount]` (each step sees only the steps
    /// before it: the network is unidirectional).
    public func stepLogits(_ input: Tensor) -> Tensor {
        let outputs = gru.run(input, lengths: Self.lengths(of: input)).outputs
        return fc(outputs)
    }

    public var children: [(key: String, layer: any Layer)] { [("gru", gru), ("fc", fc)] }

    public var layerDescription: String {
        "SequenceClassifier(\(gru.inputFeatures) features incl. mask, GRU hidden \(gru.hiddenSize) × \(gru.layerCount) "
            + "layers → \(fc.outputFeatures) classes)"
    }
}
