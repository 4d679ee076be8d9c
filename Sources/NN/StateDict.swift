// Loading named tensors into a model: strict and partial, with one clear report.
import Autograd
import Foundation

/// How `load(stateDict:mode:)` treats keys and shapes that do not fit.
public enum LoadMode: Sendable {
    /// Every model tensor must be in the file with its shape, and nothing else (PyTorch's
    /// `strict=True`); otherwise nothing is loaded and `WeightsError.stateDictMismatch` lists
    /// every problem.
    case strict
    /// Loads every tensor whose key and shape fit and keeps the model's own values for the
    /// rest (a new classification head for fine-tuning); the report lists what was skipped.
    case partial
}

/// What a load did: the keys loaded and those that did not fit.
public struct LoadReport: Equatable, Sendable {
    public var loaded: [String]
    /// In the model, not in the file (kept at the model's values).
    public var missing: [String]
    /// In the file, not in the model (ignored).
    public var unexpected: [String]
    /// In both with different shapes (kept at the model's values).
    public var shapeMismatches: [WeightsError.ShapeMismatch]
    public var isComplete: Bool { missing.isEmpty && unexpected.isEmpty && shapeMismatches.isEmpty }
}

extension Layer {
    /// Copies `stateDict`'s values into this model's parameters and buffers (in place, so an
    /// optimiser holding the parameters keeps working).
    ///
    /// Keys are PyTorch `state_dict()` names. BatchNorm's `num_batches_tracked` entries are
    /// accepted and ignored (Astrolabe uses a fixed momentum, as PyTorch does by default).
    @discardableResult
    public func load(stateDict: [String: Tensor], mode: LoadMode = .strict) throws -> LoadReport {
        let own = namedTensors()
        let ownKeys = Set(own.map(\.key))
        var report = LoadReport(loaded: [], missing: [], unexpected: [], shapeMismatches: [])
        var toCopy: [(Tensor, Tensor)] = []
        for (key, tensor, _) in own {
            guard let source = stateDict[key] else { report.missing.append(key); continue }
            guard source.shape == tensor.shape else {
                report.shapeMismatches.append(.init(key: key, expected: tensor.shape, found: source.shape))
                continue
            }
            toCopy.append((tensor, source))
            report.loaded.append(key)
        }
        report.unexpected = stateDict.keys.filter { key in
            !ownKeys.contains(key) && !key.hasSuffix("num_batches_tracked")
        }.sorted()
        if mode == .strict && !report.isComplete {
            throw WeightsError.stateDictMismatch(missing: report.missing, unexpected: report.unexpected,
                                                 shapeMismatches: report.shapeMismatches)
        }
        for (target, source) in toCopy { target.assign(source) }
        return report
    }

    /// Loads the tensors of a safetensors file (metadata ignored): see `load(stateDict:mode:)`.
    @discardableResult
    public func load(contentsOf url: URL, mode: LoadMode = .strict) throws -> LoadReport {
        try load(stateDict: Safetensors(contentsOf: url).tensors, mode: mode)
    }

    /// Saves the state dict as a plain safetensors file (F32) with optional metadata.
    public func save(to url: URL, metadata: [String: String] = [:]) throws {
        try Safetensors(tensors: stateDict(), metadata: metadata).write(to: url)
    }
}

/// How `adaptingInputChannels` maps a pretrained first-convolution kernel to another number
/// of input bands.
public enum InputChannelAdaptation: Sendable {
    /// Sum over the pretrained bands (timm's rule for one band: a grey image that equals each
    /// of R, G, B gives the same response as before).
    case sum
    /// Average over the pretrained bands (the response to a band equal to the mean image).
    case mean
    /// timm's rule for other counts: repeat the bands cyclically, then scale by
    /// `pretrained / new` so that the total response is kept.
    case repeatAndScale
}

extension Dictionary where Key == String, Value == Tensor {
    /// A copy of this state dict whose `key` (a first convolution `[F, C, kh, kw]`) takes
    /// `inputChannels` bands instead of `C`, as timm's `adapt_input_conv`.
    public func adaptingInputChannels(key: String = "conv1.weight", to inputChannels: Int,
                                      method: InputChannelAdaptation = .sum) throws -> [String: Tensor] {
        guard let w = self[key] else {
            throw WeightsError.stateDictMismatch(missing: [key], unexpected: [], shapeMismatches: [])
        }
        precondition(w.rank == 4, "adaptingInputChannels: '\(key)' has shape \(w.shape), not [F, C, kh, kw]")
        let (f, c, kk) = (w.shape[0], w.shape[1], w.shape[2] * w.shape[3])
        let src = w.scalars
        var out = [Float](repeating: 0, count: f * inputChannels * kk)
        for o in 0..<f {
            for n in 0..<inputChannels {
                for j in 0..<kk {
                    let value: Float
                    switch method {
                    case .sum, .mean:
                        var s: Float = 0
                        for i in 0..<c { s += src[(o * c + i) * kk + j] }
                        value = method == .sum ? s : s / Float(c)
                    case .repeatAndScale:
                        value = src[(o * c + n % c) * kk + j] * Float(c) / Float(inputChannels)
                    }
                    out[(o * inputChannels + n) * kk + j] = value
                }
            }
        }
        var copy = self
        copy[key] = Tensor(shape: [f, inputChannels, w.shape[2], w.shape[3]], data: out)
        return copy
    }
}
