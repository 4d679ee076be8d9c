import AstroBase
import Foundation
import XCTest

/// `LuptonRGB` against astropy's `make_lupton_rgb` (fixtures made by `Fixtures/make_stretch_fixtures.py`).
final class LuptonRGBTests: XCTestCase {
    func testCompositeMatchesAstropyMakeLuptonRGB() throws {
        let url = Bundle.module.url(forResource: "lupton_fixtures", withExtension: "json", subdirectory: "Fixtures")!
        let root = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        XCTAssertEqual((root["shape"] as! [Int]).reduce(1, *), 120)
        let bands = (root["bands"] as! [Any]).map {
            StretchFixtureTests.floats($0)
        }
        let cases = root["cases"] as! [[String: Any]]
        XCTAssertEqual(cases.count, 3)
        for c in cases {
            let m = c["minimum"] as! Double
            let lupton = LuptonRGB(stretch: c["stretch"] as! Double, q: c["Q"] as! Double, minimum: [m, m, m])
            let rgb = lupton.composite(red: bands[0], green: bands[1], blue: bands[2])
            let expected = StretchFixtureTests.floats(c["rgb"])
            XCTAssertEqual(rgb.count, expected.count)
            for (a, b) in zip(rgb, expected) { XCTAssertEqual(a, Double(b), accuracy: 1e-5, "\(c)") }
            let rgb8 = lupton.composite8(red: bands[0], green: bands[1], blue: bands[2])
            let expected8 = (c["rgb8"] as! [Int]).map(UInt8.init)
            // Truncation of values computed in float32 (astropy) vs double (here) may differ by one level.
            for (a, b) in zip(rgb8, expected8) { XCTAssertLessThanOrEqual(abs(Int(a) - Int(b)), 1) }
            XCTAssertGreaterThan(zip(rgb8, expected8).filter { $0 == $1 }.count, rgb8.count * 9 / 10)
        }
    }
}
