// What LSTM and GRU layers share: stacked layers, both directions, sequences of different
// lengths in one batch, PyTorch's parameter names, initialisation and final states.
import Autograd

/// The cell a recurrent layer runs at every step.
public enum RecurrentCell: String, CaseIterable, Sendable {
    /// Long short-term memory, gates (i, f, g, o): `Tensor.lstm`.
    case lstm
    /// Gated recurrent unit, gates (r, z, n): `Tensor.gru`.
    case gru

    /// Gate blocks in the weight matrices: `[gates · H, ...]`.
    public var gateCount: Int { self == .lstm ? 4 : 3 }
}

/// The four tensors of one layer in one direction, under PyTorch's keys
/// (`weight_ih_l1_reverse`: layer 1, backward direction).
public struct RecurrentWeights {
    /// `[gates · H, input]`, input = the features for layer 0, `H · directions` above.
    public let weightIH: Tensor
    /// `[gates · H, H]`.
    public let weightHH: Tensor
    /// `[gates · H]` each.
    public let biasIH: Tensor
    public let biasHH: Tensor
    /// `l0`, `l0_reverse`, `l1`, ...: the key suffix.
    public let suffix: String

    var namedTensors: [NamedTensor] {
        [NamedTensor("weight_ih_\(suffix)", weightIH), NamedTensor("weight_hh_\(suffix)", weightHH),
         NamedTensor("bias_ih_\(suffix)", biasIH), NamedTensor("bias_hh_\(suffix)", biasHH)]
    }
}

/// A stack of recurrent layers as PyTorch's `nn.LSTM` / `nn.GRU` (`batch_first=True`) runs
/// them: layer `l + 1` reads the per-step outputs of layer `l` (both directions
/// concatenated); the backward direction reads each sequence reversed within its length.
///
/// Variable lengths (`lengths[i]` valid steps of row `i`) give what PyTorch's packed
/// sequences give: the outputs past a row's end are zero and its final state is the one at
/// its last valid step (the reverse direction: after reading step 0). The cells run over the
/// padded tensor; because they are causal, the steps before a row's end never see its
/// padding, and the steps after it are masked out.
final class RecurrentStack {
    let cell: RecurrentCell
    let inputFeatures: Int
    let hiddenSize: Int
    let layerCount: Int
    let bidirectional: Bool
    /// Layer `l`, direction `d` at `l · directions + d`.
    let weights: [RecurrentWeights]

    var directions: Int { bidirectional ? 2 : 1 }

    init(cell: RecurrentCell, inputFeatures: Int, hiddenSize: Int, layerCount: Int, bidirectional: Bool, seed: UInt64?) {
        precondition(inputFeatures > 0 && hiddenSize > 0 && layerCount > 0,
                     "\(cell.rawValue.uppercased()): input features \(inputFeatures), hidden size \(hiddenSize) and layer count \(layerCount) must be positive")
        self.cell = cell
        self.inputFeatures = inputFeatures
        self.hiddenSize = hiddenSize
        self.layerCount = layerCount
        self.bidirectional = bidirectional
        let s = WeightInitialization.seed(seed)
        let (g, h, directions) = (cell.gateCount * hiddenSize, hiddenSize, bidirectional ? 2 : 1)
        var weights: [RecurrentWeights] = []
        for layer in 0..<layerCount {
            for direction in 0..<directions {
                // PyTorch: every weight and bias is U(-1/sqrt(H), 1/sqrt(H)).
                let k = UInt64(weights.count) &* 4
                let input = layer == 0 ? inputFeatures : h * directions
                weights.append(RecurrentWeights(
                    weightIH: WeightInitialization.uniform([g, input], fanIn: h, seed: s &+ k),
                    weightHH: WeightInitialization.uniform([g, h], fanIn: h, seed: s &+ k &+ 1),
                    biasIH: WeightInitialization.uniform([g], fanIn: h, seed: s &+ k &+ 2),
                    biasHH: WeightInitialization.uniform([g], fanIn: h, seed: s &+ k &+ 3),
                    suffix: "l\(layer)" + (direction == 1 ? "_reverse" : "")))
            }
        }
        self.weights = weights
    }

    var ownTensors: [NamedTensor] { weights.flatMap(\.namedTensors) }

    /// `LSTM(2 → hidden 64, batch first)`, with `, 2 layers` and `, bidirectional` when set.
    var description: String {
        "\(cell.rawValue.uppercased())(\(inputFeatures) → hidden \(hiddenSize)"
            + (layerCount > 1 ? ", \(layerCount) layers" : "") + (bidirectional ? ", bidirectional" : "") + ", batch first)"
    }

    private func checkInput(_ input: Tensor, lengths: [Int]?) {
        precondition(input.rank == 3 && input.shape[2] == inputFeatures && input.shape[1] >= 1,
                     "\(description): input \(input.shape) must be [N, T ≥ 1, \(inputFeatures)]")
        if let lengths {
            precondition(lengths.count == input.shape[0] && lengths.allSatisfy { $0 >= 1 && $0 <= input.shape[1] },
                         "\(description): lengths \(lengths) must give one length in 1...\(input.shape[1]) per sequence of \(input.shape)")
        }
    }

    /// The cell's states over every step: `[N, T, H]` (GRU: `h_t`) or `[N, T, 2H]` (LSTM:
    /// `h_t`, `c_t`).
    private func states(_ x: Tensor, _ w: RecurrentWeights) -> Tensor {
        switch cell {
        case .lstm: return x.lstm(weightIH: w.weightIH, biasIH: w.biasIH, biasHH: w.biasHH, weightHH: w.weightHH)
        case .gru: return x.gru(weightIH: w.weightIH, biasIH: w.biasIH, biasHH: w.biasHH, weightHH: w.weightHH)
        }
    }

    /// Per-step outputs of the last layer `[N, T, H · directions]` (zero past each row's
    /// length), the final hidden states `[layers · directions, N, H]` (PyTorch's `h_n`) and,
    /// for the LSTM, the final cell states (`c_n`, same shape).
    ///
    /// Only the last layer's outputs are masked: the cells are causal, and the reverse
    /// direction reverses each row within its length, so a valid step never reads a padded
    /// one. `maskOutputs: false` (the caller wants the final states only) skips that too.
    func run(_ input: Tensor, lengths requested: [Int]?, maskOutputs: Bool = true) -> (outputs: Tensor, hidden: Tensor, cell: Tensor?) {
        checkInput(input, lengths: requested)
        let (n, steps, h) = (input.shape[0], input.shape[1], hiddenSize)
        // Full-length rows need no masking.
        let lengths = requested?.allSatisfy({ $0 == steps }) == true ? nil : requested
        let rowLengths = lengths ?? [Int](repeating: steps, count: n)
        let lastSteps = rowLengths.map { $0 - 1 }
        var x = input
        var finalHidden: [Tensor] = [], finalCell: [Tensor] = []
        for layer in 0..<layerCount {
            var outputs: [Tensor] = []
            for direction in 0..<directions {
                let reverse = direction == 1
                let states = self.states(reverse ? x.reversedSteps(lengths: rowLengths) : x,
                                         weights[layer * directions + direction])
                let final = states.selectedSteps(lastSteps)
                var hidden = states
                if cell == .lstm {
                    hidden = states.sliced(axis: 2, 0..<h)
                    finalHidden.append(final.sliced(axis: 1, 0..<h))
                    finalCell.append(final.sliced(axis: 1, h..<(2 * h)))
                } else {
                    finalHidden.append(final)
                }
                if let lengths, maskOutputs, layer == layerCount - 1 { hidden = hidden.maskedSteps(lengths: lengths) }
                outputs.append(reverse ? hidden.reversedSteps(lengths: rowLengths) : hidden)
            }
            x = outputs.count == 1 ? outputs[0] : Tensor.concatenate(outputs, axis: 2)
        }
        return (x, Tensor.stack(finalHidden, axis: 0), cell == .lstm ? Tensor.stack(finalCell, axis: 0) : nil)
    }

    /// The last layer's final hidden state in its last direction `[N, H]` (PyTorch's
    /// `h_n[-1]`) and, for the LSTM, its cell state. One unidirectional layer over full-length
    /// rows takes the cell op's last-step path (the LSTM kernels then keep two steps of state
    /// per sequence in inference) instead of assembling every step's output.
    func finalState(_ input: Tensor, lengths: [Int]?) -> (hidden: Tensor, cell: Tensor?) {
        checkInput(input, lengths: lengths)
        let (n, steps, h) = (input.shape[0], input.shape[1], hiddenSize)
        if layerCount == 1 && !bidirectional && (lengths ?? []).allSatisfy({ $0 == steps }) {
            let w = weights[0]
            switch cell {
            case .lstm:
                let last = input.lstm(weightIH: w.weightIH, biasIH: w.biasIH, biasHH: w.biasHH, weightHH: w.weightHH,
                                      lastStepOnly: true).reshaped(to: [n, 2 * h])
                return (last.sliced(axis: 1, 0..<h), last.sliced(axis: 1, h..<(2 * h)))
            case .gru:
                let all = states(input, w)
                return (all.sliced(axis: 1, (steps - 1)..<steps).reshaped(to: [n, h]), nil)
            }
        }
        let result = run(input, lengths: lengths, maskOutputs: false)
        let top = layerCount * directions - 1
        return (result.hidden[top], result.cell.map { $0[top] })
    }
}

/// What `LSTM` and `GRU` share as layers: their options, weights and keys, description and
/// `forward` (the last layer's outputs at every step, `[N, T, H · directions]`).
public class RecurrentLayer: Layer {
    let stack: RecurrentStack
    public var isTraining = true

    init(cell: RecurrentCell, inputFeatures: Int, hiddenSize: Int, layerCount: Int, bidirectional: Bool, seed: UInt64?) {
        stack = RecurrentStack(cell: cell, inputFeatures: inputFeatures, hiddenSize: hiddenSize,
                               layerCount: layerCount, bidirectional: bidirectional, seed: seed)
    }

    public var cell: RecurrentCell { stack.cell }
    public var inputFeatures: Int { stack.inputFeatures }
    public var hiddenSize: Int { stack.hiddenSize }
    public var layerCount: Int { stack.layerCount }
    public var bidirectional: Bool { stack.bidirectional }
    /// Layer `l`, direction `d` at `l · directions + d`.
    public var weights: [RecurrentWeights] { stack.weights }

    public func forward(_ input: Tensor) -> Tensor { stack.run(input, lengths: nil).outputs }

    public var ownTensors: [NamedTensor] { stack.ownTensors }

    public var layerDescription: String { stack.description }
}
