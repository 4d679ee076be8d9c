import XCTest
@testable import SkySim
final class SkySimSmokeTests: XCTestCase {
    func testBuilds() { XCTAssertEqual(SpecialFunctions.sersicB(n: 1), 1.678346990016661, accuracy: 1e-9) }
}
