// Batch-first sequences of different lengths in one [N, T, F] tensor: per-row time reversal,
// masking past each row's end, and picking one step per row. The recurrent layers build
// bidirectional and variable-length runs from these and the fused cell ops.
import Foundation

extension Tensor {
    /// Checks that `lengths` gives one length in `1...T` per row of this `[N, T, ...]` tensor.
    private func checkLengths(_ lengths: [Int], op: String) {
        precondition(rank >= 2, "\(op): input \(shape) must be [N, T, ...]")
        precondition(lengths.count == shape[0], "\(op): \(lengths.count) lengths for a batch of \(shape[0])")
        precondition(lengths.allSatisfy { $0 >= 1 && $0 <= shape[1] },
                     "\(op): lengths \(lengths) must lie in 1...\(shape[1])")
    }

    /// Each row's first `lengths[i]` steps in reverse order; the steps after them unchanged:
    /// `out[i, t] = x[i, lengths[i] - 1 - t]` for `t < lengths[i]`, else `x[i, t]`.
    /// Its own inverse (and so its own backward); the reverse direction of a recurrent layer
    /// runs on it, as PyTorch's packed sequences reverse each sequence within its length.
    public func reversedSteps(lengths: [Int]) -> Tensor {
        checkLengths(lengths, op: "reversedSteps")
        let (n, steps) = (shape[0], shape[1])
        let inner = count / Swift.max(n * steps, 1)
        let out = Tensor(uninitializedShape: shape)
        let x = storage.pointer, y = out.storage.pointer
        for i in 0..<n {
            let row = i * steps * inner, length = lengths[i]
            for t in 0..<steps {
                let source = t < length ? length - 1 - t : t
                (y + row + t * inner).update(from: x + row + source * inner, count: inner)
            }
        }
        return Tensor.record("reversedSteps", [self], out) { g in [g.reversedSteps(lengths: lengths)] }
    }

    /// Zero at every step `t ≥ lengths[i]` of row `i`, unchanged before.
    public func maskedSteps(lengths: [Int]) -> Tensor {
        checkLengths(lengths, op: "maskedSteps")
        let (n, steps) = (shape[0], shape[1])
        let inner = count / Swift.max(n * steps, 1)
        let out = copy()
        let y = out.storage.pointer
        for i in 0..<n where lengths[i] < steps {
            (y + (i * steps + lengths[i]) * inner).update(repeating: 0, count: (steps - lengths[i]) * inner)
        }
        return Tensor.record("maskedSteps", [self], out) { g in [g.maskedSteps(lengths: lengths)] }
    }

    /// Step `steps[i]` of row `i`: `[N, T, F]` → `[N, F]` (a row's last valid step with
    /// `steps = lengths - 1`). The backward puts each row's gradient back at its step.
    public func selectedSteps(_ steps: [Int]) -> Tensor {
        precondition(rank == 3, "selectedSteps: input \(shape) must be [N, T, F]")
        let (n, length, f) = (shape[0], shape[1], shape[2])
        precondition(steps.count == n && steps.allSatisfy { $0 >= 0 && $0 < length },
                     "selectedSteps: steps \(steps) must be one index in 0..<\(length) per row of \(shape)")
        let out = Tensor(uninitializedShape: [n, f])
        let x = storage.pointer, y = out.storage.pointer
        for i in 0..<n { (y + i * f).update(from: x + (i * length + steps[i]) * f, count: f) }
        return Tensor.record("selectedSteps", [self], out) { g in
            let d = Tensor(repeating: 0, shape: [n, length, f])
            let gp = g.storage.pointer, dp = d.storage.pointer
            for i in 0..<n { (dp + (i * length + steps[i]) * f).update(from: gp + i * f, count: f) }
            return [d]
        }
    }
}
