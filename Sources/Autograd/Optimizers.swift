// Gradient-descent optimisers updating parameter tensors in place.
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

/// Stochastic gradient descent with optional momentum (PyTorch's convention:
/// `v = mu v + g; p -= lr v`, Nesterov `p -= lr (g + mu v)`) and L2 weight decay.
public final class SGD: Optimizer {
    public let parameters: [Tensor]
    public var learningRate: Float
    public var momentum: Float
    public var weightDecay: Float
    public var nesterov: Bool
    private var velocities: [Tensor?]

    public init(parameters: [Tensor], learningRate: Float, momentum: Float = 0, weightDecay: Float = 0,
                nesterov: Bool = false) {
        self.parameters = parameters
        self.learningRate = learningRate
        self.momentum = momentum
        self.weightDecay = weightDecay
        self.nesterov = nesterov
        velocities = Array(repeating: nil, count: parameters.count)
    }

    public func step() {
        for (i, p) in parameters.enumerated() {
            guard let grad = p.grad else { continue }
            let w = p.storage.pointer, g = grad.storage.pointer
            let (lr, mu, wd) = (learningRate, momentum, weightDecay)
            if mu == 0 {
                for j in 0..<p.count { w[j] -= lr * (g[j] + wd * w[j]) }
                continue
            }
            let first = velocities[i] == nil
            if first { velocities[i] = Tensor(repeating: 0, shape: p.shape) }
            let v = velocities[i]!.storage.pointer
            for j in 0..<p.count {
                let d = g[j] + wd * w[j]
                v[j] = first ? d : mu * v[j] + d
                w[j] -= lr * (nesterov ? d + mu * v[j] : v[j])
            }
        }
    }
}

/// Adam (Kingma & Ba, "Adam: A Method for Stochastic Optimization", arXiv:1412.6980), with
/// PyTorch's bias correction and epsilon placement; `weightDecay` is L2 added to the gradient
/// (PyTorch's `Adam`; `decoupled: true` gives AdamW).
public final class Adam: Optimizer {
    public let parameters: [Tensor]
    public var learningRate: Float
    public var beta1: Float, beta2: Float, epsilon: Float, weightDecay: Float
    public var decoupled: Bool
    public private(set) var stepCount = 0
    private var m: [Tensor], v: [Tensor]

    public init(parameters: [Tensor], learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999,
                epsilon: Float = 1e-8, weightDecay: Float = 0, decoupled: Bool = false) {
        self.parameters = parameters
        self.learningRate = learningRate
        self.beta1 = beta1; self.beta2 = beta2; self.epsilon = epsilon
        self.weightDecay = weightDecay; self.decoupled = decoupled
        m = parameters.map { Tensor(repeating: 0, shape: $0.shape) }
        v = parameters.map { Tensor(repeating: 0, shape: $0.shape) }
    }

    public func step() {
        stepCount += 1
        let c1 = 1 - Foundation.pow(beta1, Float(stepCount)), c2 = 1 - Foundation.pow(beta2, Float(stepCount))
        let stepSize = learningRate / c1, c2Root = c2.squareRoot()
        for (i, p) in parameters.enumerated() {
            guard let grad = p.grad else { continue }
            let w = p.storage.pointer, g = grad.storage.pointer, mp = m[i].storage.pointer, vp = v[i].storage.pointer
            let (b1, b2, eps, wd, lr) = (beta1, beta2, epsilon, weightDecay, learningRate)
            for j in 0..<p.count {
                var d = g[j]
                if wd != 0 { if decoupled { w[j] -= lr * wd * w[j] } else { d += wd * w[j] } }
                mp[j] = b1 * mp[j] + (1 - b1) * d
                vp[j] = b2 * vp[j] + (1 - b2) * d * d
                w[j] -= stepSize * mp[j] / (vp[j].squareRoot() / c2Root + eps)
            }
        }
    }
}
