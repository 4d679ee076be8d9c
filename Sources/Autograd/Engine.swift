// The reverse-mode engine: graph recording, gradient mode, backward().
import Foundation

/// One recorded operation: its inputs and the function that maps the output gradient to
/// input gradients. The engine, not the op, accumulates them, after checking shapes.
final class Node {
    let op: String
    var inputs: [Tensor]
    /// Returns one gradient per input (nil where that input needs none).
    var pullback: ((Tensor) -> [Tensor?])?

    init(op: String, inputs: [Tensor], pullback: @escaping (Tensor) -> [Tensor?]) {
        self.op = op
        self.inputs = inputs
        self.pullback = pullback
    }

    /// Releases a graph that was never backpropagated without recursion: freeing a
    /// 100,000-op chain one nested deinit at a time would overflow the stack. Inputs that
    /// only this node holds are unlinked here, iteratively.
    deinit {
        // The pullback captures inputs too: drop it first so that `stack` holds the only references.
        pullback = nil
        var stack = inputs
        inputs = []
        while var t = stack.popLast() {
            guard isKnownUniquelyReferenced(&t), t.node != nil, isKnownUniquelyReferenced(&t.node) else { continue }
            let node = t.node!
            node.pullback = nil
            stack.append(contentsOf: node.inputs)
            node.inputs = []
        }
    }
}

/// Whether operations are recorded for autograd, per thread: a data-loading thread that
/// works inside `withNoGrad` must not switch recording off for the training thread.
public enum GradMode {
    private static let disabled = ThreadFlag()

    /// True unless this thread is inside `withNoGrad` (a thread-specific value).
    public internal(set) static var isEnabled: Bool {
        get { !disabled.isSet }
        set { disabled.isSet = !newValue }
    }
}

/// Runs `body` without recording any graph (inference, optimiser updates).
@discardableResult
public func withNoGrad<R>(_ body: () throws -> R) rethrows -> R {
    let saved = GradMode.isEnabled
    GradMode.isEnabled = false
    defer { GradMode.isEnabled = saved }
    return try body()
}

/// Misuse of `backward`, reported with a sentence that says what to do.
public enum AutogradError: Error, CustomStringConvertible, Equatable {
    case graphFreed(op: String)
    case nonScalarWithoutGradient(shape: [Int])
    case gradientShapeMismatch(shape: [Int], gradient: [Int])
    case noGraph

    public var description: String {
        switch self {
        case .graphFreed(let op):
            return "backward: the graph through '\(op)' was already freed by an earlier backward(); "
                + "recompute the forward pass before calling backward() again"
        case .nonScalarWithoutGradient(let shape):
            return "backward: output has shape \(shape); backward() without a gradient needs a scalar "
                + "(one element) - reduce it first or pass backward(gradient:)"
        case .gradientShapeMismatch(let shape, let gradient):
            return "backward: gradient of shape \(gradient) for an output of shape \(shape)"
        case .noGraph:
            return "backward: the tensor neither requires a gradient nor was computed from one that does"
        }
    }
}

extension Tensor {
    /// True if gradients flow into this tensor (a parameter, or computed from one).
    var tracksGradient: Bool { requiresGrad || node != nil }

    /// Records `output = op(inputs)` when grad mode is on and any input tracks gradients.
    /// The pullback receives the output gradient and returns one gradient per input, each of
    /// that input's shape (checked by `backward`). Returns `output` for chaining.
    @discardableResult
    static func record(_ op: String, _ inputs: [Tensor], _ output: Tensor,
                       _ pullback: @escaping (Tensor) -> [Tensor?]) -> Tensor {
        guard GradMode.isEnabled, inputs.contains(where: { $0.tracksGradient }) else { return output }
        output.node = Node(op: op, inputs: inputs, pullback: pullback)
        return output
    }

    /// Backpropagates from this tensor: a scalar, or any shape with `gradient` given.
    /// Gradients accumulate (`+=`) into `grad` of every tensor with `requiresGrad`; the graph
    /// is freed afterwards. Misuse stops with a message (see `AutogradError`).
    public func backward(gradient: Tensor? = nil) {
        do { try checkedBackward(gradient: gradient) } catch { preconditionFailure("\(error)") }
    }

    /// `backward` that throws instead of stopping on misuse. `gradientReady` is called with each
    /// tensor that has `requiresGrad` (a parameter) as soon as its gradient of this pass is
    /// complete, while the pass goes on: data-parallel training starts reducing those
    /// gradients across processes during the rest of the backward pass.
    public func checkedBackward(gradient: Tensor? = nil, gradientReady: ((Tensor) -> Void)? = nil) throws {
        if let node, node.pullback == nil { throw AutogradError.graphFreed(op: node.op) }
        guard tracksGradient else { throw AutogradError.noGraph }
        let seed: Tensor
        if let gradient {
            guard gradient.shape == shape else {
                throw AutogradError.gradientShapeMismatch(shape: shape, gradient: gradient.shape)
            }
            seed = gradient
        } else {
            guard count == 1 else { throw AutogradError.nonScalarWithoutGradient(shape: shape) }
            seed = Tensor(repeating: 1, shape: shape)
        }
        withNoGrad { propagate(seed, gradientReady) }
    }

    private func propagate(_ seed: Tensor, _ gradientReady: ((Tensor) -> Void)?) {
        // Iterative post-order DFS: `order` ends up with every node after all of its inputs.
        var order: [Tensor] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(Tensor, Bool)] = [(self, false)]
        while let (t, expanded) = stack.popLast() {
            if expanded { order.append(t); continue }
            guard visited.insert(ObjectIdentifier(t)).inserted else { continue }
            stack.append((t, true))
            if let node = t.node {
                precondition(node.pullback != nil, "\(AutogradError.graphFreed(op: node.op))")
                for input in node.inputs where input.tracksGradient
                    && !visited.contains(ObjectIdentifier(input)) {
                    stack.append((input, false))
                }
            }
        }
        // Gradients of intermediate tensors live here, not in `grad`; leaves get `grad`.
        var grads: [ObjectIdentifier: Tensor] = [ObjectIdentifier(self): seed]
        var adopted = Set<ObjectIdentifier>()
        for t in order.reversed() {
            guard let g = grads.removeValue(forKey: ObjectIdentifier(t)) else { continue }
            if t.requiresGrad {
                // Take the engine's gradient tensor as `grad` without copying when nobody else can
                // see it: not the caller's seed, not already someone's grad, sole owner of its storage.
                let canAdopt = g !== seed && !adopted.contains(ObjectIdentifier(g)) && isKnownUniquelyReferenced(&g.storage)
                if t.accumulateGrad(g, adopting: canAdopt) { adopted.insert(ObjectIdentifier(g)) }
                // Every consumer of `t` came earlier in this order: its gradient is final.
                if t.node == nil { gradientReady?(t) }
            }
            guard let node = t.node, let pullback = node.pullback else { continue }
            let inputGrads = pullback(g)
            precondition(inputGrads.count == node.inputs.count,
                         "backward: '\(node.op)' returned \(inputGrads.count) gradients for \(node.inputs.count) inputs")
            for (input, ig) in zip(node.inputs, inputGrads) {
                guard let ig, input.tracksGradient else { continue }
                // The single shape check for every op: catches broadcasting mistakes anywhere.
                precondition(ig.shape == input.shape,
                             "backward: '\(node.op)' produced a gradient of shape \(ig.shape) for an input of shape \(input.shape)")
                let key = ObjectIdentifier(input)
                if let existing = grads[key] { grads[key] = existing.summed(with: ig) } else { grads[key] = ig }
            }
            // Free the graph as we go: closures hold the saved activations.
            node.pullback = nil
            node.inputs = []
        }
    }

    /// `grad += g`; the first time, `grad = g` itself when `adopting`, else a copy. Returns
    /// whether `g` was adopted.
    func accumulateGrad(_ g: Tensor, adopting: Bool) -> Bool {
        if let grad {
            let p = grad.storage.pointer, q = g.storage.pointer
            Threading.parallelChunks(count) { _, r in for i in r { p[i] += q[i] } }
            return false
        }
        grad = adopting ? g : g.copy()
        return adopting
    }

    /// Sum of two same-shape gradients into new storage (either may be shared).
    func summed(with other: Tensor) -> Tensor {
        let out = Tensor(uninitializedShape: shape)
        let p = out.storage.pointer, a = storage.pointer, b = other.storage.pointer
        Threading.parallelChunks(count) { _, r in for i in r { p[i] = a[i] + b[i] } }
        return out
    }
}
