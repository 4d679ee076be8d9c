// Helpers for the FITS and CLI tests: temporary directories and typed-error assertions.
import FITS
import Foundation
import XCTest

/// A fresh empty directory for one test: the one temporary-directory helper of every test
/// target. All of them live in one folder per test process, removed when the process exits.
public func makeTemporaryDirectory(_ label: String = "astrolabe") throws -> URL {
    let url = temporaryRoot.appendingPathComponent("\(label)-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// `astrolabe-tests-<pid>` under the system temporary directory.
private func processTemporaryFolder() -> URL {
    FileManager.default.temporaryDirectory.appendingPathComponent("astrolabe-tests-\(getpid())")
}

private let temporaryRoot: URL = {
    atexit { try? FileManager.default.removeItem(at: processTemporaryFolder()) }
    return processTemporaryFolder()
}()

/// Asserts that `body` throws a `FITSError` accepted by `matches`, and that its message
/// names `path` (when given). Forwards the caller's source location.
public func assertThrowsFITSError<T>(_ body: @autoclosure () throws -> T, mentioning path: String? = nil,
                                     file: StaticString = #filePath, line: UInt = #line,
                                     _ matches: (FITSError) -> Bool) {
    do {
        _ = try body()
        XCTFail("expected a FITSError, nothing was thrown", file: file, line: line)
    } catch let error as FITSError {
        XCTAssertTrue(matches(error), "unexpected FITSError: \(error)", file: file, line: line)
        let message = error.localizedDescription
        XCTAssertFalse(message.isEmpty, file: file, line: line)
        if let path {
            XCTAssertTrue(message.contains(path), "message does not name \(path): \(message)", file: file, line: line)
        }
    } catch {
        XCTFail("expected a FITSError, got \(type(of: error)): \(error)", file: file, line: line)
    }
}

/// Asserts that two float sequences are equal within `tolerance` (relative to the
/// larger magnitude, absolute below 1), NaN matching NaN.
public func assertClose<A: Sequence, B: Sequence>(_ actual: A, _ expected: B, tolerance: Double = 1e-6,
                                                  _ message: String = "",
                                                  file: StaticString = #filePath, line: UInt = #line)
    where A.Element: BinaryFloatingPoint, B.Element == Double? {
    let a = actual.map { Double($0) }
    let e = Array(expected)
    XCTAssertEqual(a.count, e.count, "\(message): count", file: file, line: line)
    for (index, (x, y)) in zip(a, e).enumerated() {
        let ok: Bool
        if let y { ok = abs(x - y) <= tolerance * max(abs(x), abs(y), 1) } else { ok = x.isNaN }
        if !ok {
            XCTFail("\(message): element \(index): \(x) != \(String(describing: y))", file: file, line: line)
            return
        }
    }
}
