// What every harness shares: libFuzzer's driver, and a scratch file for the input
// (FITSFile reads paths, as the command-line tool does).
import FITS
import Foundation

@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

/// The function libFuzzer calls with each input; set once by `runFuzzer`.
nonisolated(unsafe) private var currentBody: ((UnsafeRawBufferPointer) -> Void)?

/// libFuzzer's entry point (its runtime refers to the symbol even when the driver is
/// started with `LLVMFuzzerRunDriver`).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    currentBody?(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

/// Runs libFuzzer (its command-line options come from `CommandLine`) with `body` as the
/// test function, then exits with libFuzzer's status. A crash, trap, sanitizer report,
/// time-out or memory blow-up inside `body` is a finding.
public func runFuzzer(_ body: @escaping (UnsafeRawBufferPointer) -> Void) -> Never {
    currentBody = body
    var argc = CommandLine.argc
    var argv = CommandLine.unsafeArgv
    let status = LLVMFuzzerRunDriver(&argc, &argv, fuzzerTestOneInput)
    exit(status)
}

/// A per-process scratch file that holds the current input.
public final class ScratchFile {
    public let path: String

    public init(suffix: String) {
        let directory = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        path = "\(directory)/astrolabe-fuzz-\(getpid())\(suffix)"
    }

    /// Replaces the file's contents with `bytes`.
    public func write(_ bytes: UnsafeRawBufferPointer) {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        precondition(descriptor >= 0, "fuzz: cannot write \(path)")
        var done = 0
        while done < bytes.count {
            let count = Foundation.write(descriptor, bytes.baseAddress! + done, bytes.count - done)
            precondition(count > 0, "fuzz: cannot write \(path)")
            done += count
        }
        close(descriptor)
    }
}

/// Runs `body` on the input as a FITS file. Every error must be a `FITSError` whose
/// message names the file: anything else is a bug, reported by trapping.
public func withFITSInput(_ scratch: ScratchFile, _ bytes: UnsafeRawBufferPointer,
                          _ body: (FITSFile) throws -> Void) {
    scratch.write(bytes)
    do {
        let file = try FITSFile(path: scratch.path)
        try body(file)
    } catch let error as FITSError {
        guard let message = error.errorDescription, message.contains(scratch.path) else {
            fatalError("FITSError without the path: \(error)")
        }
    } catch {
        fatalError("not a FITSError: \(error)")
    }
}
