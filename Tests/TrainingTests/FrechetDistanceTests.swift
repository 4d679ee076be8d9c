// The Fréchet distance against numpy/scipy (scripts/make_frechet_fixture.py) and its properties.
import Foundation
import XCTest
@testable import Training

final class FrechetDistanceTests: XCTestCase {
    struct Fixture: Decodable {
        struct Case: Decodable { var name: String; var a: [[Double]]; var b: [[Double]]; var frechet: Double }
        var cases: [Case]
    }

    func testMatchesScipyReference() throws {
        let url = Bundle.module.url(forResource: "frechet", withExtension: "json", subdirectory: "Fixtures")!
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
        XCTAssertEqual(fixture.cases.count, 3)
        for c in fixture.cases {
            let d = try FrechetDistance.distance(c.a, c.b)
            XCTAssertEqual(d, c.frechet, accuracy: 1e-6 * max(1, c.frechet), c.name)
        }
    }

    func testIdenticalSetsAreAtZeroAndDistanceIsSymmetric() throws {
        let a = (0..<50).map { i in (0..<4).map { j in sin(Double(i * 7 + j * 3)) + Double(j) } }
        let b = (0..<40).map { i in (0..<4).map { j in cos(Double(i * 5 + j)) * 2 } }
        // The square roots of small eigenvalues carry round-off: agreement to ~1e-8 of the scale.
        XCTAssertEqual(try FrechetDistance.distance(a, a), 0, accuracy: 1e-6)
        XCTAssertEqual(try FrechetDistance.distance(a, b), try FrechetDistance.distance(b, a), accuracy: 1e-6)
        // A pure shift of the means adds |Δμ|² alone.
        let shifted = a.map { row in row.map { $0 + 0.5 } }
        XCTAssertEqual(try FrechetDistance.distance(a, shifted), 4 * 0.25, accuracy: 1e-6)
    }

    func testBadInputsGiveTypedErrors() {
        XCTAssertThrowsError(try FrechetDistance.distance([[1, 2]], [[1, 2], [3, 4]])) {
            XCTAssertEqual($0 as? FrechetDistance.FrechetError, .tooFewSamples(count: 1))
        }
        XCTAssertThrowsError(try FrechetDistance.distance([[1, 2], [3, 4]], [[1, 2, 3], [3, 4, 5]])) {
            XCTAssertEqual($0 as? FrechetDistance.FrechetError, .dimensionMismatch(2, 3))
        }
        XCTAssertThrowsError(try FrechetDistance.distance([[1, .nan], [3, 4]], [[1, 2], [3, 4]])) {
            XCTAssertEqual($0 as? FrechetDistance.FrechetError, .nonFinite)
        }
    }
}
