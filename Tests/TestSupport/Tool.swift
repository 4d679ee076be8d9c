// Running the built `astrolabe` binary from end-to-end tests.
import Foundation
import XCTest

/// The result of one run of the tool.
public struct ToolRun {
    public var status: Int32
    public var stdout: String
    public var stderr: String

    public var stdoutLines: [String] { stdout.split(separator: "\n").map(String.init) }
    public var stderrLines: [String] { stderr.split(separator: "\n").map(String.init) }
}

/// The `astrolabe` executable built beside the test bundle (.build/<config>/astrolabe);
/// skips the test when it was not built.
public func toolURL() throws -> URL {
    let candidates = [
        Bundle.main.bundleURL.appendingPathComponent("astrolabe"),
        Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("astrolabe"),
        Bundle(for: ToolLocator.self).bundleURL.deletingLastPathComponent().appendingPathComponent("astrolabe"),
        repositoryRoot.appendingPathComponent(".build/release/astrolabe"),
        repositoryRoot.appendingPathComponent(".build/debug/astrolabe"),
    ]
    guard let url = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
        throw XCTSkip("the astrolabe binary was not built (looked in \(candidates.map(\.path)))")
    }
    return url
}

private final class ToolLocator {}

/// An executable on `PATH` (e.g. `mpirun`), or nil.
public func executableOnPath(_ name: String) -> URL? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    return path.split(separator: ":").map { URL(fileURLWithPath: String($0)).appendingPathComponent(name) }
        .first { FileManager.default.isExecutableFile(atPath: $0.path) }
}

/// Runs `astrolabe arguments...` in `directory` (default: the repository root). With a
/// `launcher` (`["mpirun", "-np", "2"]`), runs `launcher... astrolabe arguments...` instead.
public func runTool(_ arguments: [String], in directory: URL = repositoryRoot,
                    environment: [String: String] = [:], launcher: [String] = []) throws -> ToolRun {
    let process = Process()
    if let first = launcher.first {
        guard let url = executableOnPath(first) else {
            throw ToolLauncherMissing(name: first)
        }
        process.executableURL = url
        process.arguments = Array(launcher.dropFirst()) + [try toolURL().path] + arguments
    } else {
        process.executableURL = try toolURL()
        process.arguments = arguments
    }
    process.currentDirectoryURL = directory
    if !environment.isEmpty {
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    }
    // stdout through a pipe, stderr through a file: neither can fill up and block the child.
    let errURL = FileManager.default.temporaryDirectory.appendingPathComponent("astrolabe-stderr-\(UUID().uuidString)")
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    defer { try? FileManager.default.removeItem(at: errURL) }
    let out = Pipe()
    let err = try FileHandle(forWritingTo: errURL)
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    try err.close()
    let errData = try Data(contentsOf: errURL)
    return ToolRun(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                   stderr: String(decoding: errData, as: UTF8.self))
}

/// A launcher (mpirun) that is not installed.
public struct ToolLauncherMissing: Error, CustomStringConvertible {
    public var name: String
    public init(name: String) { self.name = name }
    public var description: String { "\(name) is not on PATH (scripts/setup.sh installs it)" }
}

/// Runs `executable` with `arguments`; returns its exit status and stdout + stderr.
public func runProcess(_ executable: String, _ arguments: [String]) -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    do { try process.run() } catch { return (-1, "\(error)") }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}
