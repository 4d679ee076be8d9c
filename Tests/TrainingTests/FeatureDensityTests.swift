// The Mahalanobis feature density against numpy (scripts/make_feature_density_fixture.py) and its errors.
import Foundation
import XCTest
@testable import Training

final class FeatureDensityTests: XCTestCase {
    struct Fixture: Decodable {
        struct Case: Decodable {
            var name: String; var features: [[Double]]; var labels: [Int]; var queries: [[Double]]
            var shrinkage: Double; var distances: [Double]
        }
        var cases: [Case]
    }

    func testMatchesNumpyReference() throws {
        let url = Bundle.module.url(forResource: "feature_density", withExtension: "json", subdirectory: "Fixtures")!
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
        XCTAssertEqual(fixture.cases.count, 3)
        for c in fixture.cases {
            let density = try FeatureDensity.fit(features: c.features, labels: c.labels, shrinkage: c.shrinkage)
            XCTAssertEqual(density.count, c.features.count)
            XCTAssertEqual(density.means.count, Set(c.labels).count)
            for (query, expected) in zip(c.queries, c.distances) {
                // The whitening is stored in Float: agreement to ~1e-4 of the distance.
                XCTAssertEqual(try density.distance(query.map(Float.init)), expected, accuracy: 2e-4 * max(1, expected), c.name)
            }
        }
    }

    func testRecipeRoundTripKeepsDistances() throws {
        func value(_ i: Int, _ j: Int) -> Double { sin(Double(i * 7 + j * 3)) + Double(i % 2) * 4 }
        let features: [[Double]] = (0..<40).map { i in (0..<3).map { j in value(i, j) } }
        var density = try FeatureDensity.fit(features: features, labels: (0..<40).map { $0 % 2 })
        density.threshold = 7.5
        let decoded = try JSONDecoder().decode(FeatureDensity.self, from: JSONEncoder().encode(density))
        XCTAssertEqual(decoded, density)
        // A class mean is at distance zero; a far point is far.
        let mean0: [Float] = (0..<3).map { j in Float((0..<20).map { i in value(2 * i, j) }.reduce(0, +) / 20) }
        XCTAssertEqual(try decoded.distance(mean0), 0, accuracy: 1e-4)
        XCTAssertGreaterThan(try decoded.distance([100, -100, 100]), 1000)
    }

    func testBadInputsGiveTypedErrors() throws {
        XCTAssertThrowsError(try FeatureDensity.fit(features: [[1, 2], [3, 4]], labels: [0, 1])) {
            XCTAssertEqual($0 as? FeatureDensity.DensityError, .tooFewSamples(count: 2, classes: 2))
        }
        XCTAssertThrowsError(try FeatureDensity.fit(features: [[1, 2], [3, 4], [5]], labels: [0, 0, 1])) {
            XCTAssertEqual($0 as? FeatureDensity.DensityError, .dimensionMismatch(expected: 2, got: 1))
        }
        XCTAssertThrowsError(try FeatureDensity.fit(features: [[1, 2], [3, .nan], [5, 6]], labels: [0, 0, 1])) {
            XCTAssertEqual($0 as? FeatureDensity.DensityError, .nonFinite)
        }
        let density = try FeatureDensity.fit(features: [[1, 2], [3, 5], [5, 6], [2, 2]], labels: [0, 0, 1, 1])
        XCTAssertThrowsError(try density.distance([1, 2, 3])) {
            XCTAssertEqual($0 as? FeatureDensity.DensityError, .dimensionMismatch(expected: 2, got: 3))
        }
        XCTAssertTrue(FeatureDensity.DensityError.tooFewSamples(count: 2, classes: 2).localizedDescription.contains("2 feature vectors"))
        // A damaged recipe (whitening of the wrong size) fails to decode, naming the sizes.
        var json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(density)) as! [String: Any]
        json["whitening"] = [1.0, 0.0, 0.0]
        XCTAssertThrowsError(try JSONDecoder().decode(FeatureDensity.self, from: JSONSerialization.data(withJSONObject: json))) {
            XCTAssert("\($0)".contains("needs 2x2 finite whitening values (got 3)"), "\($0)")
        }
    }
}
