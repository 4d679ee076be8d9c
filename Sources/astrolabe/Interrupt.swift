// Ctrl-C during training: the tool, not the library, owns SIGINT.
import Cluster
import Dispatch
import Foundation
import Training

/// Runs `body` with a `CancellationFlag` that the first Ctrl-C (SIGINT) sets: training then
/// finishes its batch, saves its checkpoint and stops (run the command again to resume). A
/// second Ctrl-C quits at once with status 130. The signal is delivered through a dispatch
/// source, so nothing runs inside a signal handler; the default action is restored afterwards.
///
/// In an MPI job, SIGTERM does the same (mpirun turns Ctrl-C into SIGTERM to every process, and
/// Slurm's scancel sends it): every process stops after the same batch and rank 0 saves the
/// checkpoint. mpirun sends SIGKILL one second later unless told to wait
/// (`--mca odls_base_sigkill_timeout 30`); the checkpoint of the last finished epoch is then the
/// one that resumes, which is the same state.
func withCtrlCCancellation<T>(_ body: (CancellationFlag) throws -> T) rethrows -> T {
    let flag = CancellationFlag()
    let signals = Communicator.world.isLaunched ? [SIGINT, SIGTERM] : [SIGINT]
    let sources = signals.map { number -> DispatchSourceSignal in
        signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        source.setEventHandler {
            if flag.isCancelled { exit(130) }
            flag.cancel()
            if Communicator.world.rank == 0 {
                FileHandle.standardError.write(Data("\nastrolabe: stopping after this batch to save a checkpoint (Ctrl-C again to quit now)\n".utf8))
            }
        }
        source.resume()
        return source
    }
    defer {
        for (source, number) in zip(sources, signals) {
            source.cancel()
            signal(number, SIG_DFL)
        }
    }
    return try body(flag)
}
