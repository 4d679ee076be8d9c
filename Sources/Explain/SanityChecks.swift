// Sanity checks of attribution methods (Adebayo et al. 2018): cascading weight randomisation
// and randomised labels (a model trained on permuted labels).
import Autograd
import Foundation
import NN

/// Spearman's rank correlation of two samples (average ranks for ties), as
/// `scipy.stats.spearmanr`.
public enum RankCorrelation {
    /// Ranks 1...n, ties sharing their average rank.
    public static func ranks(_ values: [Float]) -> [Double] {
        let order = values.indices.sorted { values[$0] < values[$1] }
        var ranks = [Double](repeating: 0, count: values.count)
        var start = 0
        while start < order.count {
            var end = start
            while end + 1 < order.count && values[order[end + 1]] == values[order[start]] { end += 1 }
            let rank = Double(start + end) / 2 + 1
            for k in start...end { ranks[order[k]] = rank }
            start = end + 1
        }
        return ranks
    }

    /// ρ between `a` and `b` (0 when either is constant).
    public static func spearman(_ a: [Float], _ b: [Float]) -> Double {
        precondition(a.count == b.count, "spearman: \(a.count) and \(b.count) values")
        let ra = ranks(a), rb = ranks(b)
        let n = Double(a.count)
        let ma = ra.reduce(0, +) / n, mb = rb.reduce(0, +) / n
        var sab = 0.0, saa = 0.0, sbb = 0.0
        for i in 0..<a.count {
            sab += (ra[i] - ma) * (rb[i] - mb)
            saa += (ra[i] - ma) * (ra[i] - ma)
            sbb += (rb[i] - mb) * (rb[i] - mb)
        }
        return saa > 0 && sbb > 0 ? sab / (saa * sbb).squareRoot() : 0
    }

    /// ρ of the absolute values of two batches of maps `[N, ...]`, per image.
    public static func perImage(_ a: Tensor, _ b: Tensor) -> [Double] {
        precondition(a.shape == b.shape, "spearman: maps \(a.shape) and \(b.shape)")
        let n = a.shape[0], size = a.count / Swift.max(n, 1)
        let va = a.scalars, vb = b.scalars
        return (0..<n).map { i in
            spearman(va[(i * size)..<((i + 1) * size)].map(abs), vb[(i * size)..<((i + 1) * size)].map(abs))
        }
    }
}

/// Adebayo et al.'s randomised-labels test: the maps of a model trained on the same kind of
/// data with permuted labels (it memorised noise) against the trained model's, by Spearman's
/// ρ of their absolute values per image. A method that explains what the model learned gives
/// low ρ; one that mostly shows the image stays high.
public struct ModelComparison {
    public var methods: [AttributionMethod]
    public var options: AttributionOptions

    public init(methods: [AttributionMethod], options: AttributionOptions = AttributionOptions()) {
        self.methods = methods; self.options = options
    }

    /// Per method, ρ per image between `model`'s and `other`'s maps of `input` for `targets`
    /// (the same outputs of both), and the two sets of maps.
    public func run(model: any Layer, other: any Layer, input: Tensor, targets: [Int])
        throws -> [(method: AttributionMethod, correlations: [Double], maps: Tensor, otherMaps: Tensor)] {
        let first = Explainer(model: model), second = Explainer(model: other)
        return try methods.map { method in
            let a = try first.attribute(input, targets: targets, method: method, options: options).maps
            let b = try second.attribute(input, targets: targets, method: method, options: options).maps
            return (method, RankCorrelation.perImage(a, b), a, b)
        }
    }
}

/// Adebayo et al.'s cascading randomisation: the model's weights are re-drawn block by
/// block from the output down, and after each block the maps of every method are compared
/// with the trained model's by Spearman's ρ of their absolute values. A method that
/// explains the model (rather than the image) decorrelates as the blocks go.
public struct CascadingRandomisation {
    /// One row: the blocks randomised so far (the last named), ρ per method, averaged over the images.
    public struct Step: Equatable, Sendable {
        public var block: String
        public var correlations: [AttributionMethod: Double]
    }

    public var methods: [AttributionMethod]
    public var options: AttributionOptions
    public var seed: UInt64

    public init(methods: [AttributionMethod], options: AttributionOptions = AttributionOptions(), seed: UInt64 = 0) {
        self.methods = methods; self.options = options; self.seed = seed
    }

    /// The blocks of `model`, output first: each first-level child with parameters, or for a
    /// child whose children are blocks themselves (a ResNet stage) each of those.
    public static func blocks(of model: any Layer) -> [(path: String, layer: any Layer)] {
        var result = [(path: String, layer: any Layer)]()
        for (key, child) in model.children where !child.namedParameters().isEmpty {
            let grandchildren = child.children.filter { !$0.layer.namedParameters().isEmpty }
            if !grandchildren.isEmpty && grandchildren.allSatisfy({ !$0.layer.children.isEmpty }) {
                result += grandchildren.map { (key + "." + $0.key, $0.layer) }
            } else {
                result.append((key, child))
            }
        }
        return result.reversed()
    }

    /// Re-draws every parameter of `layer` from a normal with the tensor's own mean and
    /// standard deviation (a constant tensor, such as a fresh batch norm's scale, keeps its
    /// scale as the deviation).
    public static func randomise(_ layer: any Layer, seed: UInt64) {
        for (index, (_, tensor)) in layer.namedParameters().enumerated() {
            let values = tensor.scalars
            let mean = values.reduce(0, +) / Float(values.count)
            var std = (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(values.count)).squareRoot()
            if std == 0 { std = max(abs(mean), 1e-2) }
            var generator = SeededGenerator(seed: seed, stream: UInt64(index))
            tensor.withUnsafeMutableBufferPointer { buffer in
                for i in 0..<buffer.count { buffer[i] = mean + std * Float(generator.normal()) }
            }
        }
    }

    /// Maps of the trained `model`, then one `Step` per block randomised (cumulatively, top
    /// down). `model` is changed: pass a copy. `targets` stay those of the trained model.
    public func run(model: any Layer, input: Tensor, targets: [Int],
                    progress: ((String) -> Void)? = nil) throws -> [Step] {
        let explainer = Explainer(model: model)
        func maps() throws -> [AttributionMethod: Tensor] {
            var result = [AttributionMethod: Tensor]()
            for method in methods {
                result[method] = try explainer.attribute(input, targets: targets, method: method, options: options).maps
            }
            return result
        }
        let original = try maps()
        var steps = [Step]()
        let n = input.shape[0]
        for (index, block) in Self.blocks(of: model).enumerated() {
            progress?(block.path)
            Self.randomise(block.layer, seed: seed &+ UInt64(index) &* 7919)
            let randomised = try maps()
            var correlations = [AttributionMethod: Double]()
            for method in methods {
                correlations[method] = RankCorrelation.perImage(original[method]!, randomised[method]!).reduce(0, +) / Double(n)
            }
            steps.append(Step(block: block.path, correlations: correlations))
        }
        return steps
    }
}
