// Shared helpers for NNTests: fixture access and tolerance checks.
import Autograd
import Foundation
import NN
import XCTest

enum Fixtures {
    static let directory: URL = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
    static func url(_ name: String) -> URL { directory.appendingPathComponent(name) }
    static func file(_ name: String) -> Safetensors { try! Safetensors(contentsOf: url(name)) }
}

/// `|a - e| <= relative * max(|e|, floor)` elementwise, where `floor` is `scaleFloor` times the
/// largest `|e|` of the tensor: relative agreement, except for elements far below the
/// tensor's scale (a gradient of 1e-9 next to ones of 1e0 is noise in float32 for both sides).
func assertMatches(_ actual: Tensor, _ expected: Tensor, relative: Float, scaleFloor: Float = 1e-2,
                   _ message: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.shape, expected.shape, "\(message): shape", file: file, line: line)
    guard actual.shape == expected.shape else { return }
    let a = actual.scalars, e = expected.scalars
    let scale = e.map(abs).max() ?? 0
    var worst: (Int, Float)?
    for i in a.indices {
        let tolerance = relative * max(abs(e[i]), scaleFloor * scale, 1e-30)
        let excess = abs(a[i] - e[i]) / tolerance
        if !(excess <= 1), worst == nil || excess > worst!.1 || excess.isNaN { worst = (i, excess) }
    }
    if let (i, x) = worst {
        XCTFail("\(message): element \(i) is \(a[i]), expected \(e[i]) (\(x)× the tolerance, shape \(actual.shape))",
                file: file, line: line)
    }
}
