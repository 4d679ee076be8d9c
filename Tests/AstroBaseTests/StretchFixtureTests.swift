import AstroBase
import Foundation
import XCTest

/// Every interval and stretch against astropy.visualization (fixtures made by
/// `Fixtures/make_stretch_fixtures.py`), to 1e-5.
final class StretchFixtureTests: XCTestCase {
    struct Case {
        var name: String
        var data: [Float]
        var raw: [String: Any]
    }

    static let cases: [Case] = {
        let url = Bundle.module.url(forResource: "stretch_fixtures", withExtension: "json",
                                    subdirectory: "Fixtures")!
        let root = try! JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        return (root["cases"] as! [[String: Any]]).map { c in
            Case(name: c["name"] as! String, data: floats(c["data"]), raw: c)
        }
    }()

    static func floats(_ any: Any?) -> [Float] {
        (any as! [Any]).map { ($0 as? NSNumber).map { Float(truncating: $0) } ?? .nan }
    }

    static func interval(_ spec: [String: Any]) -> Interval {
        switch spec["kind"] as! String {
        case "minMax": return .minMax
        case "percentile": return .percentile(spec["percent"] as! Double)
        case "asymmetric": return .asymmetricPercentile(lower: spec["lower"] as! Double,
                                                        upper: spec["upper"] as! Double)
        case "zscale": return .zscale(.init())
        case let other: fatalError("unknown interval \(other)")
        }
    }

    static func stretch(_ spec: [String: Any]) -> Stretch {
        switch spec["kind"] as! String {
        case "linear": return .linear()
        case "sqrt": return .sqrt
        case "power": return .power(spec["a"] as! Double)
        case "log": return .log(a: spec["a"] as! Double)
        case "asinh": return .asinh(a: spec["a"] as! Double)
        case "sinh": return .sinh(a: spec["a"] as! Double)
        case "histeq": return .histogramEqualization
        case let other: fatalError("unknown stretch \(other)")
        }
    }

    func assertClose(_ a: Double, _ b: Double, tolerance: Double = 1e-5, _ message: String,
                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssert(abs(a - b) <= tolerance * max(1, abs(b)), "\(message): \(a) vs astropy \(b)",
                  file: file, line: line)
    }

    func testFixturesLoad() {
        XCTAssertEqual(Self.cases.count, 4)
        XCTAssert(Self.cases[0].data.contains { $0.isNaN }, "the galaxy case carries NaN blanks")
    }

    func testIntervalLimitsMatchAstropy() {
        for c in Self.cases {
            let limits = c.raw["limits"] as! [String: [String: Any]]
            XCTAssertEqual(limits.count, 5)
            for (name, entry) in limits {
                let interval = Self.interval(entry["spec"] as! [String: Any])
                let (lo, hi) = c.data.withUnsafeBufferPointer { interval.limits(of: $0)! }
                assertClose(lo, entry["vmin"] as! Double, "\(c.name) \(name) vmin")
                assertClose(hi, entry["vmax"] as! Double, "\(c.name) \(name) vmax")
            }
        }
    }

    func testNormalizationMatchesAstropy() {
        var checked = 0
        for c in Self.cases {
            for entry in c.raw["normalized"] as! [[String: Any]] {
                let normalization = ImageNormalization(
                    interval: Self.interval(entry["interval"] as! [String: Any]),
                    stretch: Self.stretch(entry["stretch"] as! [String: Any]))
                var values = c.data
                values.withUnsafeMutableBufferPointer { normalization.apply(to: $0) }
                let expected = Self.floats(entry["values"])
                XCTAssertEqual(values.count, expected.count)
                for i in values.indices {
                    if expected[i].isNaN {
                        XCTAssert(values[i].isNaN, "\(c.name) \(normalization) pixel \(i) should stay NaN")
                    } else {
                        assertClose(Double(values[i]), Double(expected[i]),
                                    "\(c.name) \(normalization) pixel \(i)")
                    }
                }
                checked += 1
            }
        }
        XCTAssertEqual(checked, 3 * (3 * 7 + 1) + 1)
    }

    func testSigmaClippedStatisticsMatchAstropy() {
        for c in Self.cases {
            let expected = c.raw["sigma_clipped"] as! [Double]
            let stats = c.data.withUnsafeBufferPointer { PixelStatistics.sigmaClipped($0) }
            assertClose(stats.mean, expected[0], "\(c.name) clipped mean")
            assertClose(stats.median, expected[1], "\(c.name) clipped median")
            assertClose(stats.std, expected[2], "\(c.name) clipped std")
            let mad = c.data.withUnsafeBufferPointer { PixelStatistics.madStd($0) }
            assertClose(mad, c.raw["mad_std"] as! Double, "\(c.name) mad_std")
        }
    }
}
