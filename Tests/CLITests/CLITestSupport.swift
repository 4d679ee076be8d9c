// Helpers of the end-to-end tests (the tool runner itself is in TestSupport).
import Foundation
import TestSupport
import XCTest

/// The FITS test fixtures, by path relative to the repository root.
func fixturePath(_ name: String) -> String { "Tests/FITSTests/Fixtures/\(name)" }

/// Parses one JSON line into a dictionary.
func jsonObject(_ line: String, file: StaticString = #filePath, line number: UInt = #line) throws -> [String: Any] {
    let object = try JSONSerialization.jsonObject(with: Data(line.utf8))
    return try XCTUnwrap(object as? [String: Any], file: file, line: number)
}
