// Long short-term memory layer.
import Autograd

/// LSTM layers over batch-first sequences, as PyTorch's `nn.LSTM(batch_first=True)`.
///
/// Gates in PyTorch's order (input, forget, cell, output):
/// `[i, f, g, o] = x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh`,
/// `c_t = σ(f) c_{t-1} + σ(i) tanh(g)`, `h_t = σ(o) tanh(c_t)`; initial `h`, `c` are zero.
/// Stacking, both directions and per-row lengths as `RecurrentStack` describes.
///
/// - `input`: `[N, T, inputFeatures]`, any `T ≥ 1`; `layer(x)` returns every output
///   `[N, T, H · directions]`; `run(_:lengths:)` also returns the final `h` and `c`,
///   `[layers · directions, N, H]`.
/// - Keys (PyTorch's): `weight_ih_l0` `[4H, inputFeatures]`, `weight_hh_l0` `[4H, H]`,
///   `bias_ih_l0`, `bias_hh_l0` `[4H]`; `_reverse` for the backward direction, `_l1`, ...
///   for the layers above (whose input is `H · directions` wide).
public final class LSTM: RecurrentLayer {
    /// - `layerCount`: stacked layers (PyTorch's `num_layers`); `bidirectional`: a second,
    ///   backward direction per layer; `seed`: the initial weights' seed (nil: random).
    public init(inputFeatures: Int, hiddenSize: Int, layerCount: Int = 1, bidirectional: Bool = false, seed: UInt64? = nil) {
        super.init(cell: .lstm, inputFeatures: inputFeatures, hiddenSize: hiddenSize,
                   layerCount: layerCount, bidirectional: bidirectional, seed: seed)
    }

    /// Every output of the last layer `[N, T, H · directions]` (zero past a row's length), the
    /// final hidden and cell states `[layers · directions, N, H]`, PyTorch's `(h_n, c_n)`.
    /// - `lengths`: valid steps of each row, in `1...T` (nil: all `T`).
    public func run(_ input: Tensor, lengths: [Int]? = nil) -> (outputs: Tensor, hidden: Tensor, cell: Tensor) {
        let result = stack.run(input, lengths: lengths)
        return (result.outputs, result.hidden, result.cell!)
    }

    /// The last layer's final hidden and cell state in its last direction `[N, H]`
    /// (`h_n[-1]`, `c_n[-1]`), without assembling every step's output where it can (one
    /// unidirectional layer over full-length rows: in inference only two steps of state are
    /// kept per sequence).
    public func finalState(_ input: Tensor, lengths: [Int]? = nil) -> (hidden: Tensor, cell: Tensor) {
        let result = stack.finalState(input, lengths: lengths)
        return (result.hidden, result.cell!)
    }
}
