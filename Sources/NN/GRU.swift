// Gated recurrent unit layer.
import Autograd

/// GRU layers over batch-first sequences, as PyTorch's `nn.GRU(batch_first=True)`.
///
/// Gates in PyTorch's order (reset, update, new):
/// `r = σ(x_t W_irᵀ + b_ir + h_{t-1} W_hrᵀ + b_hr)`, `z = σ(x_t W_izᵀ + b_iz + h_{t-1} W_hzᵀ + b_hz)`,
/// `n = tanh(x_t W_inᵀ + b_in + r ⊙ (h_{t-1} W_hnᵀ + b_hn))`, `h_t = (1 − z) ⊙ n + z ⊙ h_{t-1}`;
/// the initial `h` is zero. Stacking, both directions and per-row lengths as
/// `RecurrentStack` describes.
///
/// - `input`: `[N, T, inputFeatures]`, any `T ≥ 1`; `layer(x)` returns every output
///   `[N, T, H · directions]`; `run(_:lengths:)` also returns the final `h`,
///   `[layers · directions, N, H]`.
/// - Keys (PyTorch's): `weight_ih_l0` `[3H, inputFeatures]`, `weight_hh_l0` `[3H, H]`,
///   `bias_ih_l0`, `bias_hh_l0` `[3H]`; `_reverse` for the backward direction, `_l1`, ...
///   for the layers above (whose input is `H · directions` wide).
///
/// Reference: Cho et al., "Learning Phrase Representations using RNN Encoder-Decoder for
/// Statistical Machine Translation" (2014), https://arxiv.org/abs/1406.1078
public final class GRU: RecurrentLayer {
    /// - `layerCount`: stacked layers (PyTorch's `num_layers`); `bidirectional`: a second,
    ///   backward direction per layer; `seed`: the initial weights' seed (nil: random).
    public init(inputFeatures: Int, hiddenSize: Int, layerCount: Int = 1, bidirectional: Bool = false, seed: UInt64? = nil) {
        super.init(cell: .gru, inputFeatures: inputFeatures, hiddenSize: hiddenSize,
                   layerCount: layerCount, bidirectional: bidirectional, seed: seed)
    }

    /// Every output of the last layer `[N, T, H · directions]` (zero past a row's length) and
    /// the final hidden states `[layers · directions, N, H]`, PyTorch's `h_n`.
    /// - `lengths`: valid steps of each row, in `1...T` (nil: all `T`).
    public func run(_ input: Tensor, lengths: [Int]? = nil) -> (outputs: Tensor, hidden: Tensor) {
        let result = stack.run(input, lengths: lengths)
        return (result.outputs, result.hidden)
    }

    /// The last layer's final hidden state in its last direction `[N, H]` (`h_n[-1]`).
    public func finalState(_ input: Tensor, lengths: [Int]? = nil) -> Tensor {
        stack.finalState(input, lengths: lengths).hidden
    }
}
