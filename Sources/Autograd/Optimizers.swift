// Gradient-descent optimisers updating parameter tensors in place: the one
// implementation used by the engine's tests, the layer library and `Model.fit`.
import Foundation

/// Updates a fixed list of parameters from their accumulated `grad`.
public protocol Optimizer: AnyObject {
    var parameters: [Tensor] { get }
    var learningRate: Float { get set }
    /// One update from the current gradients (parameters without `grad` are skipped).
    func step()
}

extension Optimizer {
    /// Clears every parameter's gradient (gradients accumulate across `backward` calls).
    public func zeroGrad() { for p in parameters { p.zeroGrad() } }
}

/// Which algorithm updates the weights. Each matches its `torch.optim`
/// counterpart step for step (same defaults, same float32 arithmetic order).
public enum OptimizerKind: Equatable, Sendable {
    case sgd(momentum: Float = 0, nesterov: Bool = false, weightDecay: Float = 0)
    case adam(beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float = 0)
    /// Adam with decoupled weight decay (Loshchilov & Hutter, "Decoupled Weight
    /// Decay Regularization", https://arxiv.org/abs/1711.05101); torch's default decay is 0.01.
    case adamW(beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float = 0.01)
    case rmsprop(alpha: Float = 0.99, epsilon: Float = 1e-8, momentum: Float = 0, weightDecay: Float = 0)

    public static let adam = OptimizerKind.adam()
    public static let adamW = OptimizerKind.adamW()
    public static let sgd = OptimizerKind.sgd()
    public static let rmsprop = OptimizerKind.rmsprop()
}

/// One trainable tensor with its checkpoint name and its own rate multiplier
/// (for layer-wise learning-rate decay when fine-tuning).
public struct TrainableParameter {
    public var name: String
    public var tensor: Tensor
    public var rateMultiplier: Float
    public init(name: String, tensor: Tensor, rateMultiplier: Float = 1) {
        self.name = name
        self.tensor = tensor
        self.rateMultiplier = rateMultiplier
    }
}

/// One Adam(W) update of `range`: `mode` 0 no weight decay, 1 L2 decay added to the gradient
/// (Adam), 2 decoupled decay of the weights (AdamW).
@inline(__always)
func adamUpdate(w: UnsafeMutablePointer<Float>, g: UnsafeMutablePointer<Float>, m: UnsafeMutablePointer<Float>,
                v: UnsafeMutablePointer<Float>, _ range: Range<Int>, mode: Int, lr: Float, weightDecay: Float,
                beta1: Float, beta2: Float, stepSize: Float, c2Root: Float, epsilon: Float) {
    typealias V = SIMD16<Float>
    @inline(__always) func load(_ p: UnsafeMutablePointer<Float>, _ j: Int) -> V {
        UnsafeRawPointer(p + j).loadUnaligned(as: V.self)
    }
    @inline(__always) func store(_ x: V, _ p: UnsafeMutablePointer<Float>, _ j: Int) {
        UnsafeMutableRawPointer(p + j).storeBytes(of: x, as: V.self)
    }
    @inline(__always) func vector(_ j: Int, _ mode: Int) {
        var d = load(g, j), wj = load(w, j)
        if mode == 1 { d += weightDecay * wj } else if mode == 2 { wj *= 1 - lr * weightDecay }
        let mj = beta1 * load(m, j) + (1 - beta1) * d
        let vj = beta2 * load(v, j) + (1 - beta2) * d * d
        wj -= stepSize * mj / (vj.squareRoot() / c2Root + epsilon)
        store(mj, m, j); store(vj, v, j); store(wj, w, j)
    }
    var j = range.lowerBound
    switch mode {
    case 0: while j + 16 <= range.upperBound { vector(j, 0); j += 16 }
    case 1: while j + 16 <= range.upperBound { vector(j, 1); j += 16 }
    default: while j + 16 <= range.upperBound { vector(j, 2); j += 16 }
    }
    while j < range.upperBound {
        var d = g[j]
        if mode == 1 { d += weightDecay * w[j] } else if mode == 2 { w[j] *= 1 - lr * weightDecay }
        m[j] = beta1 * m[j] + (1 - beta1) * d
        v[j] = beta2 * v[j] + (1 - beta2) * d * d
        w[j] -= stepSize * m[j] / (v[j].squareRoot() / c2Root + epsilon)
        j += 1
    }
}

/// Updates parameters from their gradients, keeping its state (moments,
/// momentum buffers, step count) so that a checkpoint can restore it exactly.
public final class ModelOptimizer: Optimizer {
    public let kind: OptimizerKind
    /// The parameters with their checkpoint names and rate multipliers.
    public private(set) var trainable: [TrainableParameter]
    public var parameters: [Tensor] { trainable.map(\.tensor) }
    /// The base rate; each parameter uses `learningRate × rateMultiplier`.
    public var learningRate: Float
    public private(set) var stepCount = 0
    /// Per parameter: named state buffers ("momentum", "exp_avg", "exp_avg_sq", "square_avg").
    private var state: [[String: [Float]]]

    public init(_ kind: OptimizerKind, parameters: [TrainableParameter], learningRate: Float) {
        precondition(learningRate > 0, "ModelOptimizer: learning rate must be positive, got \(learningRate)")
        self.kind = kind
        trainable = parameters
        self.learningRate = learningRate
        state = Array(repeating: [:], count: parameters.count)
    }

    /// An optimiser over unnamed tensors (named `0`, `1`, ... in its state).
    public convenience init(_ kind: OptimizerKind, tensors: [Tensor], learningRate: Float) {
        self.init(kind, parameters: tensors.enumerated().map { TrainableParameter(name: String($0.offset), tensor: $0.element) },
                  learningRate: learningRate)
    }

    /// One update of every parameter that has a gradient.
    public func step() {
        stepCount += 1
        for i in trainable.indices {
            let p = trainable[i]
            guard let grad = p.tensor.grad else { continue }
            let lr = learningRate * p.rateMultiplier
            let n = p.tensor.count
            let w = p.tensor.storage.pointer, g = grad.storage.pointer
            switch kind {
            case let .sgd(momentum, nesterov, weightDecay):
                var buffer = state[i].removeValue(forKey: "momentum")
                let first = buffer == nil
                if momentum != 0 && first { buffer = [Float](repeating: 0, count: n) }
                for j in 0..<n {
                    var d = g[j]
                    if weightDecay != 0 { d += weightDecay * w[j] }
                    if momentum != 0 {
                        buffer![j] = first ? d : momentum * buffer![j] + d
                        d = nesterov ? d + momentum * buffer![j] : buffer![j]
                    }
                    w[j] -= lr * d
                }
                if momentum != 0 { state[i]["momentum"] = buffer }
            case let .adam(beta1, beta2, epsilon, weightDecay), let .adamW(beta1, beta2, epsilon, weightDecay):
                let decoupled: Bool = { if case .adamW = kind { return true }; return false }()
                // Taken out of the dictionary so that the updates below mutate the buffers in
                // place; a copy left in `state` would make each step copy both moments.
                var m = state[i].removeValue(forKey: "exp_avg") ?? [Float](repeating: 0, count: n)
                var v = state[i].removeValue(forKey: "exp_avg_sq") ?? [Float](repeating: 0, count: n)
                let c1 = 1 - Foundation.pow(beta1, Float(stepCount))
                let c2Root = (1 - Foundation.pow(beta2, Float(stepCount))).squareRoot()
                let stepSize = lr / c1
                // Through raw pointers, 16 lanes at a time, the decay variant chosen outside the
                // loop (the scalar loop with the decay test inside did not vectorise), split over
                // the workers. Lane-wise the same float operations as the scalar tail.
                let mode = weightDecay == 0 ? 0 : (decoupled ? 2 : 1)
                m.withUnsafeMutableBufferPointer { mb in v.withUnsafeMutableBufferPointer { vb in
                    let m = mb.baseAddress!, v = vb.baseAddress!
                    Threading.parallelChunks(n, costPerItem: 4) { _, range in
                        adamUpdate(w: w, g: g, m: m, v: v, range, mode: mode, lr: lr, weightDecay: weightDecay,
                                   beta1: beta1, beta2: beta2, stepSize: stepSize, c2Root: c2Root, epsilon: epsilon)
                    }
                } }
                state[i]["exp_avg"] = m
                state[i]["exp_avg_sq"] = v
            case let .rmsprop(alpha, epsilon, momentum, weightDecay):
                var square = state[i].removeValue(forKey: "square_avg") ?? [Float](repeating: 0, count: n)
                var buffer = state[i].removeValue(forKey: "momentum") ?? (momentum != 0 ? [Float](repeating: 0, count: n) : [])
                for j in 0..<n {
                    var d = g[j]
                    if weightDecay != 0 { d += weightDecay * w[j] }
                    square[j] = alpha * square[j] + (1 - alpha) * d * d
                    let average = square[j].squareRoot() + epsilon
                    if momentum != 0 {
                        buffer[j] = momentum * buffer[j] + d / average
                        w[j] -= lr * buffer[j]
                    } else {
                        w[j] -= lr * d / average
                    }
                }
                state[i]["square_avg"] = square
                if momentum != 0 { state[i]["momentum"] = buffer }
            }
        }
    }

    // MARK: - Checkpoint state

    /// The state as named tensors (`optimizer.<parameter>.<buffer>`) plus the step count.
    public func stateTensors() -> [String: Tensor] {
        var out = [String: Tensor]()
        for (i, p) in trainable.enumerated() {
            for (slot, values) in state[i] {
                out["optimizer.\(p.name).\(slot)"] = Tensor(shape: p.tensor.shape, data: values)
            }
        }
        out["optimizer.step"] = Tensor(scalar: Float(stepCount))
        return out
    }

    /// Restores what `stateTensors()` saved; parameters are matched by name.
    public func loadState(_ tensors: [String: Tensor]) {
        stepCount = Int(tensors["optimizer.step"]?.scalars.first ?? 0)
        for (i, p) in trainable.enumerated() {
            state[i] = [:]
            for slot in ["momentum", "exp_avg", "exp_avg_sq", "square_avg"] {
                if let t = tensors["optimizer.\(p.name).\(slot)"], t.count == p.tensor.count { state[i][slot] = t.scalars }
            }
        }
    }
}

/// Rescales all gradients together so that their joint L2 norm is at most
/// `maxNorm` (torch's `clip_grad_norm_`); returns the norm before clipping.
@discardableResult
public func clipGradientNorm(_ parameters: [Tensor], maxNorm: Float) -> Float {
    var total: Double = 0
    for p in parameters {
        guard let g = p.grad else { continue }
        let pointer = g.storage.pointer
        for j in 0..<g.count { total += Double(pointer[j]) * Double(pointer[j]) }
    }
    let norm = Float(total.squareRoot())
    let factor = maxNorm / (norm + 1e-6)
    if factor < 1 {
        for p in parameters {
            guard let g = p.grad else { continue }
            let pointer = g.storage.pointer
            for j in 0..<g.count { pointer[j] *= factor }
        }
    }
    return norm
}
