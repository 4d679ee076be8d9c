// The training memory plan's recomputed activations: what a pullback saves of a tensor it
// reads in the backward pass.
//
// A convolution's backward reads its input (for the weight gradient). In a
// `conv → batch norm → ReLU → conv` network that input is `relu(x * scale[c] + shift[c])`,
// with `x` the batch norm's input, which batch norm's own backward keeps anyway. Keeping the
// ReLU's output as well doubles the activations a training step holds; recomputing it costs
// one pass over `x` per use in the backward. So:
// - batch norm records `ChannelAffine` (its input and per-channel scale and shift) on its node;
// - a ReLU of such a tensor records a `Rematerialized` recipe instead of keeping its output,
//   and masks its gradient with the recomputed sign;
// - convolutions save their input through `savedForBackward`: the recipe when there is one,
//   else the tensor.
// The ReLU's output then lives only as long as the forward code holds it (a U-Net's skip, the
// next layer's input). The engine's graph itself holds no activations (`Edge`).
// `ASTROLABE_REMATERIALIZE=0` keeps every activation instead (for comparisons).
import Foundation

/// `input * scale[c] + shift[c]` over axis 1 of an `[N, C, ...]` tensor (what batch norm computes).
struct ChannelAffine {
    let input: Tensor
    let scale: [Float], shift: [Float]
}

/// An activation recomputed in the backward pass: `relu(input * scale[c] + shift[c])`.
final class Rematerialized {
    /// Whether ReLUs after batch norm are recomputed (default) or kept.
    static let isEnabled = ProcessInfo.processInfo.environment["ASTROLABE_REMATERIALIZE"] != "0"

    let affine: ChannelAffine

    init(reluOf affine: ChannelAffine) { self.affine = affine }

    private var layout: (outer: Int, channels: Int, inner: Int) {
        let shape = affine.input.shape
        let channels = shape[1], outer = shape[0]
        return (outer, channels, outer * channels == 0 ? 0 : affine.input.count / (outer * channels))
    }

    /// Runs `body(plane, channel)` for every `[n, c]` plane, in parallel.
    private func forEachPlane(_ body: (Int, Int) -> Void) {
        let (outer, channels, inner) = layout
        Threading.parallelChunks(outer * channels, costPerItem: inner) { _, r in
            for plane in r { body(plane, plane % channels) }
        }
    }

    /// The activation's values, recomputed into a new tensor (bit for bit the forward's).
    func materialize() -> Tensor {
        let out = Tensor(uninitializedShape: affine.input.shape)
        let x = affine.input.storage.pointer, y = out.storage.pointer, inner = layout.inner
        affine.scale.withUnsafeBufferPointer { s in affine.shift.withUnsafeBufferPointer { b in
            let s = s.baseAddress!, b = b.baseAddress!
            forEachPlane { plane, c in
                let p = x + plane * inner, q = y + plane * inner, scale = s[c], shift = b[c]
                for j in 0..<inner { let v = p[j] * scale + shift; q[j] = v > 0 ? v : 0 }
            }
        } }
        return out
    }

    /// The ReLU's backward: `g` where the activation is positive, else 0.
    func maskedGradient(_ g: Tensor) -> Tensor {
        let dx = Tensor(uninitializedShape: g.shape)
        let x = affine.input.storage.pointer, gp = g.storage.pointer, d = dx.storage.pointer, inner = layout.inner
        affine.scale.withUnsafeBufferPointer { s in affine.shift.withUnsafeBufferPointer { b in
            let s = s.baseAddress!, b = b.baseAddress!
            forEachPlane { plane, c in
                let p = x + plane * inner, q = gp + plane * inner, o = d + plane * inner, scale = s[c], shift = b[c]
                // 16 lanes at a time: the scalar select's conditional load does not vectorise.
                let zero = SIMD16<Float>(), sv = SIMD16<Float>(repeating: scale), bv = SIMD16<Float>(repeating: shift)
                var j = 0
                while j + 16 <= inner {
                    let v = UnsafeRawPointer(p + j).loadUnaligned(as: SIMD16<Float>.self) * sv + bv
                    let gv = UnsafeRawPointer(q + j).loadUnaligned(as: SIMD16<Float>.self)
                    UnsafeMutableRawPointer(o + j).storeBytes(of: zero.replacing(with: gv, where: v .> zero), as: SIMD16<Float>.self)
                    j += 16
                }
                while j < inner { o[j] = p[j] * scale + shift > 0 ? q[j] : 0; j += 1 }
            }
        } }
        return dx
    }
}

/// A tensor as a pullback keeps it for the backward pass: itself, or its recipe.
enum SavedTensor {
    case tensor(Tensor)
    case recomputed(Rematerialized)

    /// The values (recomputed when needed). Keep the result alive while using its storage.
    func values() -> Tensor {
        switch self {
        case .tensor(let t): return t
        case .recomputed(let r): return r.materialize()
        }
    }
}

extension Tensor {
    /// What a pullback should capture to read this tensor's values in the backward pass.
    var savedForBackward: SavedTensor {
        if let recipe = node?.rematerialized { return .recomputed(recipe) }
        return .tensor(self)
    }
}
