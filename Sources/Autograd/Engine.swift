// The reverse-mode engine: graph recording, gradient mode, backward().
import Foundation

/// Where one input of a recorded operation sends its gradient, without the input's values.
///
/// The graph holds only what the backward pass needs: a parameter (a tensor with
/// `requiresGrad`, whose `grad` receives the gradient), or the operation that produced a
/// computed input. It does not hold a computed input itself: its storage stays alive only as
/// long as the code that made it, or a pullback that saved it, keeps it. So an activation that
/// no backward formula needs (a batch norm's output, read by the ReLU after it, which saves
/// its own output instead) is freed as soon as the forward pass has moved on.
struct Edge {
    enum Target {
        /// A tensor with `requiresGrad`: the gradient accumulates into its `grad`, then flows
        /// on through its own node, if it has one.
        case tensor(Tensor)
        /// A computed tensor (by its node): the gradient flows on through the node.
        case node(Node)
        /// A constant: no gradient.
        case none
    }
    let target: Target
    /// The input's shape, for the backward pass's shape check.
    let shape: [Int]

    init(_ input: Tensor) {
        shape = input.shape
        if input.requiresGrad { target = .tensor(input) } else if let node = input.node { target = .node(node) } else { target = .none }
    }
}

/// One recorded operation: where its inputs' gradients go (`Edge`) and the function that maps
/// the output gradient to input gradients. The engine, not the op, accumulates them, after
/// checking shapes.
final class Node {
    let op: String
    var edges: [Edge]
    /// Returns one gradient per input (nil where that input needs none).
    var pullback: ((Tensor) -> [Tensor?])?
    /// Set by batch norm: the output is this per-channel affine map of the input.
    var channelAffine: ChannelAffine?
    /// Set by a ReLU after batch norm: how the backward pass recomputes the output.
    var rematerialized: Rematerialized?

    /// Drops what the backward pass would have needed (and so the activations it holds).
    func release() {
        pullback = nil
        channelAffine = nil
        rematerialized = nil
    }

    init(op: String, inputs: [Tensor], pullback: @escaping (Tensor) -> [Tensor?]) {
        self.op = op
        self.edges = inputs.map(Edge.init)
        self.pullback = pullback
    }

    /// Releases a graph that was never backpropagated without recursion: freeing a
    /// 100,000-op chain one nested deinit at a time would overflow the stack. Nodes (and
    /// parameters' nodes) that only this graph holds are unlinked here, iteratively.
    deinit {
        var nodes: [Node] = [], tensors: [Tensor] = []
        func collect(_ edges: [Edge]) {
            for edge in edges {
                switch edge.target {
                case .node(let node): nodes.append(node)
                case .tensor(let tensor): tensors.append(tensor)
                case .none: break
                }
            }
        }
        collect(edges)
        edges = []
        // After `collect`: the inputs' nodes are held here, so that the saved tensors that
        // `release()` frees do not free their nodes recursively.
        release()
        while !nodes.isEmpty || !tensors.isEmpty {
            if var node = nodes.popLast() {
                guard isKnownUniquelyReferenced(&node) else { continue }
                node.release()
                let next = node.edges
                node.edges = []
                collect(next)
            } else if var t = tensors.popLast() {
                guard isKnownUniquelyReferenced(&t), t.node != nil, isKnownUniquelyReferenced(&t.node) else { continue }
                let node = t.node!
                node.release()
                let next = node.edges
                node.edges = []
                collect(next)
            }
        }
    }
}

/// A vertex of the backward pass: a tensor that receives a gradient, or a node.
private enum Vertex {
    case tensor(Tensor)
    case node(Node)

    init?(_ edge: Edge) {
        switch edge.target {
        case .tensor(let t): guard t.tracksGradient else { return nil }; self = .tensor(t)
        case .node(let n): self = .node(n)
        case .none: return nil
        }
    }

    var node: Node? {
        switch self {
        case .tensor(let t): return t.node
        case .node(let n): return n
        }
    }

    /// The node's identity when there is one (a computed tensor is reached through its node
    /// or, when it has `requiresGrad`, as itself: one vertex either way).
    var id: ObjectIdentifier {
        switch self {
        case .tensor(let t): return t.node.map(ObjectIdentifier.init) ?? ObjectIdentifier(t)
        case .node(let n): return ObjectIdentifier(n)
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
        let root: Vertex = requiresGrad ? .tensor(self) : .node(node!)
        // Iterative post-order DFS: `order` ends up with every vertex after all of its inputs.
        var order: [Vertex] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(Vertex, Bool)] = [(root, false)]
        while let (v, expanded) = stack.popLast() {
            if expanded { order.append(v); continue }
            guard visited.insert(v.id).inserted else { continue }
            stack.append((v, true))
            if let node = v.node {
                precondition(node.pullback != nil, "\(AutogradError.graphFreed(op: node.op))")
                for edge in node.edges {
                    if let input = Vertex(edge), !visited.contains(input.id) { stack.append((input, false)) }
                }
            }
        }
        // Gradients of intermediate tensors live here, not in `grad`; leaves get `grad`.
        var grads: [ObjectIdentifier: Tensor] = [root.id: seed]
        var adopted = Set<ObjectIdentifier>()
        for v in order.reversed() {
            guard let g = grads.removeValue(forKey: v.id) else { continue }
            if case .tensor(let t) = v, t.requiresGrad {
                // Take the engine's gradient tensor as `grad` without copying when nobody else can
                // see it: not the caller's seed, not already someone's grad, sole owner of its storage.
                let canAdopt = g !== seed && !adopted.contains(ObjectIdentifier(g)) && isKnownUniquelyReferenced(&g.storage)
                if t.accumulateGrad(g, adopting: canAdopt) { adopted.insert(ObjectIdentifier(g)) }
                // Every consumer of `t` came earlier in this order: its gradient is final.
                if t.node == nil { gradientReady?(t) }
            }
            guard let node = v.node, let pullback = node.pullback else { continue }
            let inputGrads = pullback(g)
            precondition(inputGrads.count == node.edges.count,
                         "backward: '\(node.op)' returned \(inputGrads.count) gradients for \(node.edges.count) inputs")
            for (edge, ig) in zip(node.edges, inputGrads) {
                guard let ig, let input = Vertex(edge) else { continue }
                // The single shape check for every op: catches broadcasting mistakes anywhere.
                precondition(ig.shape == edge.shape,
                             "backward: '\(node.op)' produced a gradient of shape \(ig.shape) for an input of shape \(edge.shape)")
                let key = input.id
                if let existing = grads[key] { grads[key] = existing.summed(with: ig) } else { grads[key] = ig }
            }
            // Free the graph as we go: closures hold the saved activations.
            node.release()
            node.edges = []
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
