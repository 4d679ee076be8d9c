// Access to the committed fixture files and to expected.json (see Fixtures/make_fixtures.py).
import FITS
import Foundation
import XCTest

/// The fixture folder, copied into the test bundle.
let fixtureDirectory: URL = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!

/// The path of fixture `name`.
func fixture(_ name: String) -> String {
    fixtureDirectory.appendingPathComponent(name).path
}

/// What astropy read from one HDU of a fixture.
struct ExpectedHDU {
    var index: Int
    var extensionName: String
    var type: String
    var bitpix: Int?
    var naxis: [Int]
    var compression: String?
    var data: [Double?]?
    var stats: [String: Double]
    var header: [String: Any]
    var comments: [String]
    var history: [String]
    var columns: [String: [Any]]
}

/// expected.json, decoded once.
let expectedFixtures: [String: [ExpectedHDU]] = {
    let url = fixtureDirectory.appendingPathComponent("expected.json")
    let json = try! JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    let files = json["files"] as! [String: [[String: Any]]]
    return files.mapValues { hdus in
        hdus.map { entry in
            ExpectedHDU(
                index: entry["index"] as! Int,
                extensionName: entry["extname"] as! String,
                type: entry["type"] as! String,
                bitpix: entry["bitpix"] as? Int,
                naxis: entry["naxis"] as? [Int] ?? [],
                compression: entry["compression"] as? String,
                data: (entry["data"] as? [Any])?.map { ($0 as? NSNumber)?.doubleValue },
                stats: (entry["stats"] as? [String: NSNumber] ?? [:]).mapValues(\.doubleValue),
                header: entry["header"] as? [String: Any] ?? [:],
                comments: entry["comments"] as? [String] ?? [],
                history: entry["history"] as? [String] ?? [],
                columns: entry["columns"] as? [String: [Any]] ?? [:])
        }
    }
}()

