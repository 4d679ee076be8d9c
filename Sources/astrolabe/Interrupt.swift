// Ctrl-C during training: the tool, not the library, owns SIGINT.
import Dispatch
import Foundation
import Training

/// Runs `body` with a `CancellationFlag` that the first Ctrl-C (SIGINT) sets: training then
/// finishes its batch, saves its checkpoint and stops (run the command again to resume). A
/// second Ctrl-C quits at once with status 130. The signal is delivered through a dispatch
/// source, so nothing runs inside a signal handler; the default action is restored afterwards.
func withCtrlCCancellation<T>(_ body: (CancellationFlag) throws -> T) rethrows -> T {
    let flag = CancellationFlag()
    signal(SIGINT, SIG_IGN)
    let source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
    source.setEventHandler {
        if flag.isCancelled { exit(130) }
        flag.cancel()
        FileHandle.standardError.write(Data("\nastrolabe: stopping after this batch to save a checkpoint (Ctrl-C again to quit now)\n".utf8))
    }
    source.resume()
    defer {
        source.cancel()
        signal(SIGINT, SIG_DFL)
    }
    return try body(flag)
}
