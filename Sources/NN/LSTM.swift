// Long short-term memory layer.
import Autograd

/// One LSTM layer over batch-first sequences, as PyTorch's `nn.LSTM(batch_first=True)`.
///
/// Gates in PyTorch's order (input, forget, cell, output):
/// `[i, f, g, o] = x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh`,
/// `c_t = σ(f) c_{t-1} + σ(i) tanh(g)`, `h_t = σ(o) tanh(c_t)`; initial `h`, `c` are zero.
///
/// - `input`: `[N, T, inputFeatures]`, any `T ≥ 1`; `layer(x)` returns every hidden state
///   `[N, T, hiddenSize]`; `run(_:)` also returns the final `h` and `c`, `[N, hiddenSize]`.
/// - Keys (PyTorch's): `weight_ih_l0` `[4H, inputFeatures]`, `weight_hh_l0` `[4H, H]`,
///   `bias_ih_l0`, `bias_hh_l0` `[4H]`.
public final class LSTM: Layer {
    public let inputFeatures: Int
    public let hiddenSize: Int
    public let weightIH: Tensor
    public let weightHH: Tensor
    public let biasIH: Tensor
    public let biasHH: Tensor
    public var isTraining = true

    public init(inputFeatures: Int, hiddenSize: Int, seed: UInt64? = nil) {
        precondition(inputFeatures > 0 && hiddenSize > 0, "LSTM: sizes must be positive")
        self.inputFeatures = inputFeatures
        self.hiddenSize = hiddenSize
        let s = WeightInitialization.seed(seed)
        // PyTorch: every LSTM weight and bias is U(-1/sqrt(H), 1/sqrt(H)).
        weightIH = WeightInitialization.uniform([4 * hiddenSize, inputFeatures], fanIn: hiddenSize, seed: s)
        weightHH = WeightInitialization.uniform([4 * hiddenSize, hiddenSize], fanIn: hiddenSize, seed: s &+ 1)
        biasIH = WeightInitialization.uniform([4 * hiddenSize], fanIn: hiddenSize, seed: s &+ 2)
        biasHH = WeightInitialization.uniform([4 * hiddenSize], fanIn: hiddenSize, seed: s &+ 3)
    }

    /// Every hidden state `[N, T, H]`, the last hidden state and the last cell state `[N, H]`.
    public func run(_ input: Tensor) -> (outputs: Tensor, hidden: Tensor, cell: Tensor) {
        precondition(input.rank == 3 && input.shape[2] == inputFeatures && input.shape[1] >= 1,
                     "\(layerDescription): input \(input.shape) must be [N, T ≥ 1, \(inputFeatures)]")
        let (n, steps, h) = (input.shape[0], input.shape[1], hiddenSize)
        // One fused op (`Tensor.lstm`: input projection and recurrence) returning every h_t and c_t.
        let states = input.lstm(weightIH: weightIH, biasIH: biasIH, biasHH: biasHH, weightHH: weightHH)
        let last = states.sliced(axis: 1, (steps - 1)..<steps).reshaped(to: [n, 2 * h])
        return (states.sliced(axis: 2, 0..<h), last.sliced(axis: 1, 0..<h), last.sliced(axis: 1, h..<(2 * h)))
    }

    /// The last hidden state and the last cell state `[N, hiddenSize]`, as `run(_:)` returns
    /// them, without assembling every step's output (in inference only two steps of state
    /// are kept per sequence).
    public func finalState(_ input: Tensor) -> (hidden: Tensor, cell: Tensor) {
        precondition(input.rank == 3 && input.shape[2] == inputFeatures && input.shape[1] >= 1,
                     "\(layerDescription): input \(input.shape) must be [N, T ≥ 1, \(inputFeatures)]")
        let (n, h) = (input.shape[0], hiddenSize)
        let last = input.lstm(weightIH: weightIH, biasIH: biasIH, biasHH: biasHH, weightHH: weightHH, lastStepOnly: true)
            .reshaped(to: [n, 2 * h])
        return (last.sliced(axis: 1, 0..<h), last.sliced(axis: 1, h..<(2 * h)))
    }

    public func forward(_ input: Tensor) -> Tensor { run(input).outputs }

    public var ownTensors: [NamedTensor] {
        [NamedTensor("weight_ih_l0", weightIH), NamedTensor("weight_hh_l0", weightHH),
         NamedTensor("bias_ih_l0", biasIH), NamedTensor("bias_hh_l0", biasHH)]
    }

    public var layerDescription: String { "LSTM(\(inputFeatures) → hidden \(hiddenSize), batch first)" }
}
