// Spectral normalisation (Miyato et al. 2018, https://arxiv.org/abs/1802.05957) as a layer.
import AstroBase
import Autograd

/// A convolution or dense layer whose weight is divided by its largest singular value,
/// estimated by power iteration, as PyTorch's `torch.nn.utils.parametrizations.spectral_norm`:
/// the weight is viewed as a matrix `W` of `[outputs, rest]`; in training mode every forward
/// pass first runs `powerIterations` steps `u = W v / |W v|`, `v = Wᵀ u / |Wᵀ u|` (u and v are
/// buffers, updated in place, not differentiated), then uses `W / σ` with `σ = uᵀ W v`, whose
/// gradient flows into `W` through both the numerator and `σ`. In inference mode u and v stay
/// as they are. Registration runs 15 iterations from random unit vectors, as PyTorch does.
///
/// - `input`: what the wrapped layer takes; returns what it returns.
/// - Keys (PyTorch's): `parametrizations.weight.original`, `parametrizations.weight.0._u`,
///   `parametrizations.weight.0._v` (buffers), and the wrapped layer's `bias`.
public final class SpectralNorm: Layer {
    /// The wrapped layer; its `weight` tensor is the unnormalised weight (`original`).
    public let wrapped: any Layer
    public let weight: Tensor
    public let bias: Tensor?
    /// Left and right singular-vector estimates (`[outputs]`, `[rest]`).
    public let u: Tensor
    public let v: Tensor
    public let powerIterations: Int
    public let epsilon: Float
    public var isTraining = true
    let rows: Int, columns: Int

    /// Wraps a `Conv2D` or `Dense`; `seed` fixes the initial u and v (nil: random).
    public init(_ layer: any Layer, powerIterations: Int = 1, epsilon: Float = 1e-12, seed: UInt64? = nil) {
        precondition(powerIterations >= 1, "SpectralNorm: powerIterations must be at least 1, got \(powerIterations)")
        switch layer {
        case let conv as Conv2D: weight = conv.weight; bias = conv.bias
        case let dense as Dense: weight = dense.weight; bias = dense.bias
        default: preconditionFailure("SpectralNorm: wraps Conv2D or Dense, not \(layer.layerDescription)")
        }
        wrapped = layer
        self.powerIterations = powerIterations
        self.epsilon = epsilon
        rows = weight.shape[0]
        columns = weight.count / rows
        var rng = SeededGenerator(seed: seed ?? UInt64.random(in: 0...UInt64.max))
        u = Tensor.randomNormal([rows], generator: &rng)
        v = Tensor.randomNormal([columns], generator: &rng)
        normalize(u.storage.pointer, rows)
        normalize(v.storage.pointer, columns)
        powerIterate(15)
    }

    private func normalize(_ p: UnsafeMutablePointer<Float>, _ n: Int) {
        var s: Float = 0
        for i in 0..<n { s += p[i] * p[i] }
        let scale = 1 / Swift.max(s.squareRoot(), epsilon)
        for i in 0..<n { p[i] *= scale }
    }

    /// `count` power-iteration steps on the current weight, updating u and v in place.
    public func powerIterate(_ count: Int) {
        let w = weight.storage.pointer, up = u.storage.pointer, vp = v.storage.pointer
        for _ in 0..<count {
            for r in 0..<rows {
                var s: Float = 0
                let row = w + r * columns
                for c in 0..<columns { s += row[c] * vp[c] }
                up[r] = s
            }
            normalize(up, rows)
            for c in 0..<columns { vp[c] = 0 }
            for r in 0..<rows {
                let row = w + r * columns, ur = up[r]
                for c in 0..<columns { vp[c] += row[c] * ur }
            }
            normalize(vp, columns)
        }
    }

    /// The current estimate of the largest singular value, `uᵀ W v` (differentiable in W).
    public func sigma() -> Tensor {
        let wv = weight.reshaped(to: [rows, columns]).matmul(v.detached().reshaped(to: [columns, 1]))
        return (wv * u.detached().reshaped(to: [rows, 1])).sum()
    }

    /// `W / σ`, the weight the forward pass uses.
    public func normalizedWeight() -> Tensor {
        if isTraining { withNoGrad { powerIterate(powerIterations) } }
        let s = sigma().reshaped(to: Array(repeating: 1, count: weight.rank))
        return weight / s
    }

    public func forward(_ input: Tensor) -> Tensor {
        let w = normalizedWeight()
        switch wrapped {
        case let conv as Conv2D:
            precondition(input.rank == 4 && input.shape[1] == conv.inputChannels,
                         "\(layerDescription): input \(input.shape) must be [N, \(conv.inputChannels), H, W]")
            return input.conv2d(weight: w, bias: bias, stride: conv.stride, padding: conv.padding, dilation: conv.dilation)
        default:
            precondition(input.shape.last == columns, "\(layerDescription): input \(input.shape) must end in \(columns)")
            let y = input.matmul(transposed: w)
            return bias.map { y + $0 } ?? y
        }
    }

    public var ownTensors: [NamedTensor] {
        (bias.map { [NamedTensor("bias", $0)] } ?? []) + [
            NamedTensor("parametrizations.weight.original", weight),
            NamedTensor("parametrizations.weight.0._u", u, .buffer),
            NamedTensor("parametrizations.weight.0._v", v, .buffer),
        ]
    }

    public var layerDescription: String { "SpectralNorm(\(wrapped.layerDescription))" }
}
