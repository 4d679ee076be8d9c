// Feature visualisation: activation maximisation and first-layer filters.
import Autograd
import Foundation
import NN
import Plotting

/// Activation maximisation (Erhan et al. 2009; Olah et al. 2017): gradient ascent on the
/// input of the mean activation of one channel of a named layer, from faint noise, with
/// the usual regularisers: random jitter (the image is rolled by up to `jitter` pixels
/// before each step and rolled back), a 3×3 Gaussian blur every `blurEvery` steps, and
/// L2 decay (`x ← (1 − decay) x`). Steps are normalised (`x += rate · g / mean |g|`).
public struct ActivationMaximisation: Equatable, Sendable {
    public var steps = 128
    public var learningRate: Float = 0.05
    public var jitter = 2
    public var blurEvery = 4
    public var decay: Float = 1e-3
    public var seed: UInt64 = 0

    public init(steps: Int = 128, learningRate: Float = 0.05, jitter: Int = 2, blurEvery: Int = 4, decay: Float = 1e-3,
                seed: UInt64 = 0) {
        self.steps = steps; self.learningRate = learningRate; self.jitter = jitter; self.blurEvery = blurEvery
        self.decay = decay; self.seed = seed
    }

    /// The image `[C, H, W]` that maximises channel `channel` of layer `name`, and the
    /// channel's mean activation before and after.
    public func visualise(model: any Layer, layer name: String, channel: Int,
                          shape: [Int]) throws -> (image: [Float], start: Float, end: Float) {
        let layer = try Explainer.layer(named: name, in: model)
        let explainer = Explainer(model: model)
        defer { explainer.restore() }
        let (c, h, w) = (shape[0], shape[1], shape[2])
        var generator = SeededGenerator(seed: seed)
        var x = (0..<(c * h * w)).map { _ in Float(0.01 * generator.normal()) }
        func activation(_ pixels: [Float], gradient: Bool) throws -> (value: Float, grad: [Float]) {
            let input = Tensor(shape: [1, c, h, w], data: pixels, requiresGrad: gradient)
            let tap = LayerTap(layer)
            _ = tap.run { model(input) }
            guard let out = tap.output, out.rank >= 2 else { throw ExplainError.layerNotSpatial(layer: name, shape: []) }
            guard channel >= 0 && channel < out.shape[1] else {
                throw ExplainError.invalidOption(option: "channel", reason: "layer '\(name)' has \(out.shape[1]) channels; got \(channel)")
            }
            let objective = out.sliced(axis: 1, channel..<(channel + 1)).mean()
            let value = objective.item
            guard gradient else { return (value, []) }
            objective.backward()
            return (value, input.grad?.scalars ?? [Float](repeating: 0, count: pixels.count))
        }
        let start = try withNoGrad { try activation(x, gradient: false).value }
        for step in 0..<steps {
            let dy = jitter > 0 ? generator.integer(-jitter...jitter) : 0
            let dx = jitter > 0 ? generator.integer(-jitter...jitter) : 0
            let rolled = Self.roll(x, c, h, w, dy, dx)
            let g = Self.roll(try activation(rolled, gradient: true).grad, c, h, w, -dy, -dx)
            let scale = g.map(abs).reduce(0, +) / Float(g.count)
            if scale > 0 { for i in x.indices { x[i] += learningRate * g[i] / scale } }
            for i in x.indices { x[i] *= 1 - decay }
            if blurEvery > 0 && (step + 1) % blurEvery == 0 { x = Self.blur(x, c, h, w) }
        }
        let end = try withNoGrad { try activation(x, gradient: false).value }
        return (x, start, end)
    }

    /// `numpy.roll` of each plane by (dy, dx).
    static func roll(_ x: [Float], _ c: Int, _ h: Int, _ w: Int, _ dy: Int, _ dx: Int) -> [Float] {
        var out = x
        for k in 0..<c {
            for y in 0..<h {
                let sy = ((y - dy) % h + h) % h
                for xx in 0..<w { out[(k * h + y) * w + xx] = x[(k * h + sy) * w + ((xx - dx) % w + w) % w] }
            }
        }
        return out
    }

    /// A 3×3 binomial blur (weights 1-2-1), edges repeated.
    static func blur(_ x: [Float], _ c: Int, _ h: Int, _ w: Int) -> [Float] {
        var out = x
        let k: [Float] = [0.25, 0.5, 0.25]
        for p in 0..<c {
            for y in 0..<h {
                for xx in 0..<w {
                    var s: Float = 0
                    for i in -1...1 {
                        for j in -1...1 {
                            let yy = min(max(y + i, 0), h - 1), xj = min(max(xx + j, 0), w - 1)
                            s += k[i + 1] * k[j + 1] * x[(p * h + yy) * w + xj]
                        }
                    }
                    out[(p * h + y) * w + xx] = s
                }
            }
        }
        return out
    }
}

/// Pictures of what a network's layers respond to.
public enum FeaturePictures {
    /// The first convolution's filters `[O, I, k, k]` as a contact sheet: one tile per output
    /// channel (the mean over input channels), blue negative, red positive, on one scale.
    public static func firstLayerFilters(_ model: any Layer, cellSize: Int = 48, title: String = "FIRST-LAYER FILTERS") -> ContactSheet? {
        guard let weight = model.namedParameters().first(where: { $0.tensor.rank == 4 })?.tensor else { return nil }
        let (o, i, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3])
        let values = weight.scalars
        let scale = values.map(abs).max() ?? 1
        var sheet = ContactSheet(columns: min(o, 8), cellSize: cellSize, title: title)
        for filter in 0..<o {
            var bytes = [UInt8]()
            for y in 0..<kh {
                for x in 0..<kw {
                    var v: Float = 0
                    for c in 0..<i { v += values[((filter * i + c) * kh + y) * kw + x] / Float(i) }
                    let color = Colormap.diverging.color(Double(v / max(scale, 1e-12)))
                    bytes += [color.red, color.green, color.blue]
                }
            }
            sheet.add(rgb: bytes, width: kw, height: kh, label: "\(filter)")
        }
        return sheet
    }

    /// An activation-maximisation image as RGB bytes (the bands' mean, robustly scaled to the diverging map).
    public static func rgb(_ image: [Float], channels: Int, height: Int, width: Int) -> [UInt8] {
        let plane = AttributionPicture.summed(image, channels: channels, plane: height * width)
        let s = AttributionPicture.scale(plane)
        return plane.flatMap { v -> [UInt8] in
            let color = Colormap.diverging.color(Double(v / s))
            return [color.red, color.green, color.blue]
        }
    }
}
