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

/// A morphology-classification training pipeline over `astrolabe simulate` data (noise
/// scaling, asinh, flips) with the given architecture and `model.train` lines (indented by the caller's 4 spaces).
func morphologyTrainingPipeline(architecture: String = "{name: cnn, classes: 5}", train: [String]) -> String {
    """
    name: tiny
    task: classify
    input:
      label_column: label
      class_names: [elliptical, spiral, edge_on, irregular, star]
    stages:
      - scale_by_noise: {keyword: SKYSIG}
      - asinh: {softening: 3}
      - flip
    model:
      architecture: \(architecture)
      train:

    """ + train.map { "    " + $0 }.joined(separator: "\n") + "\n"
}
