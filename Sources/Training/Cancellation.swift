// Stopping a running `fit` from outside, without process-wide state in the library.
import Foundation

/// A request to stop training, passed to `fit` and checked between batches.
///
/// Whoever owns the process's signals sets it: the command-line tool turns Ctrl-C (SIGINT)
/// into `cancel()`; a GUI or a test calls it from any thread. `fit` then finishes the
/// current batch, writes the state *as of the start of the interrupted epoch* to its
/// checkpoint and throws `TrainingError.interrupted`. A flag stays set once cancelled: use a
/// new one for the next run.
///
/// `cancel()` takes a lock, so it must not be called from a signal handler itself; deliver
/// the signal through `DispatchSource.makeSignalSource` (as the tool does) instead.
public final class CancellationFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var cancelled = false

    public init() {}

    /// Asks the training that checks this flag to stop after its current batch.
    public func cancel() {
        lock.lock(); defer { lock.unlock() }
        cancelled = true
    }

    /// Whether `cancel()` was called.
    public var isCancelled: Bool {
        lock.lock(); defer { lock.unlock() }
        return cancelled
    }
}
