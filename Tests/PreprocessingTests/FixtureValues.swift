import Foundation

/// Numbers of the JSON fixtures (`Fixtures/make_fixtures.py`), where null stands for NaN.
enum FixtureValues {
    static func floats(_ any: Any?) -> [Float] {
        (any as! [Any]).map { ($0 as? NSNumber).map { Float(truncating: $0) } ?? .nan }
    }
}
