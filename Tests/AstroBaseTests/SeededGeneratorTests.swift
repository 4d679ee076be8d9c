import AstroBase
import Foundation
import XCTest

/// Fixtures of `Fixtures/make_base_fixtures.py` (an independent Python xoshiro256**, numpy, astropy).
enum BaseFixtures {
    static let root: [String: Any] = {
        let url = Bundle.module.url(forResource: "base_fixtures", withExtension: "json", subdirectory: "Fixtures")!
        return try! JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    }()

    static func entries(_ key: String) -> [[String: Any]] { root[key] as! [[String: Any]] }
    static func integer(_ any: Any?) -> UInt64 { UInt64(any as! String)! }
}

final class SeededGeneratorTests: XCTestCase {
    func testOutputsMatchTheReferenceXoshiro256StarStar() {
        let cases = BaseFixtures.entries("generators")
        XCTAssertEqual(cases.count, 4)
        for c in cases {
            var generator = SeededGenerator(seed: BaseFixtures.integer(c["seed"]))
            let expected = (c["outputs"] as! [Any]).map(BaseFixtures.integer)
            XCTAssertEqual((0..<expected.count).map { _ in generator.next() }, expected, "seed \(c["seed"]!)")
        }
    }

    func testStreamsMatchTheReferenceDerivation() {
        let cases = BaseFixtures.entries("streams")
        XCTAssertEqual(cases.count, 3)
        for c in cases {
            var generator = SeededGenerator(seed: BaseFixtures.integer(c["seed"]), stream: BaseFixtures.integer(c["stream"]))
            let expected = (c["outputs"] as! [Any]).map(BaseFixtures.integer)
            XCTAssertEqual((0..<expected.count).map { _ in generator.next() }, expected)
        }
    }

    func testUniformVariatesStayInRangeWithTheRightMoments() {
        var generator = SeededGenerator(seed: 5)
        let n = 100_000
        var sum = 0.0, sumFloat = 0.0
        for _ in 0..<n {
            let u = generator.uniform(), f = generator.nextUnit()
            XCTAssert(u >= 0 && u < 1 && f >= 0 && f < 1)
            sum += u; sumFloat += Double(f)
        }
        // The mean of n uniforms has standard deviation 0.289 / sqrt(n) ≈ 0.0009.
        XCTAssertEqual(sum / Double(n), 0.5, accuracy: 0.004)
        XCTAssertEqual(sumFloat / Double(n), 0.5, accuracy: 0.004)
        var counts = [Int](repeating: 0, count: 6)
        for _ in 0..<60_000 { counts[generator.integer(0...5)] += 1 }
        for c in counts { XCTAssertEqual(Double(c), 10_000, accuracy: 500) }
        XCTAssertEqual(generator.uniform(3...3), 3)
        let x = generator.plusMinus(1, 0.5)
        XCTAssert(x >= 0.5 && x < 1.5)
    }

    func testNormalVariatesHaveUnitVarianceAndUseBothValuesOfEachPair() {
        var generator = SeededGenerator(seed: 9)
        let n = 100_000
        let values = (0..<n).map { _ in generator.normal() }
        let mean = values.reduce(0, +) / Double(n)
        let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(n)
        XCTAssertEqual(mean, 0, accuracy: 0.015)
        XCTAssertEqual(variance, 1, accuracy: 0.02)
        XCTAssertEqual(Double(values.filter { abs($0) < 1 }.count) / Double(n), 0.6827, accuracy: 0.006)
        // Box-Muller draws two uniforms per pair of normals.
        var a = SeededGenerator(seed: 3), b = SeededGenerator(seed: 3)
        _ = a.normal(); _ = a.normal()
        _ = b.next(); _ = b.next()
        XCTAssertEqual(a.next(), b.next())
        var c = SeededGenerator(seed: 3), d = SeededGenerator(seed: 3)
        XCTAssertEqual(c.nextNormal(), Float(d.normal()))
    }

    /// Mean 1, variance 1, P(x > 1) = 1/e, one uniform per draw, never negative or infinite.
    func testExponentialVariatesHaveUnitMeanAndVariance() {
        var generator = SeededGenerator(seed: 11)
        let n = 100_000
        let values = (0..<n).map { _ in generator.exponential() }
        let mean = values.reduce(0, +) / Double(n)
        let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(n)
        XCTAssertEqual(mean, 1, accuracy: 0.015)
        XCTAssertEqual(variance, 1, accuracy: 0.04)
        XCTAssertEqual(Double(values.filter { $0 > 1 }.count) / Double(n), exp(-1), accuracy: 0.005)
        XCTAssert(values.allSatisfy { $0 >= 0 && $0.isFinite })
        var a = SeededGenerator(seed: 3), b = SeededGenerator(seed: 3)
        XCTAssertEqual(a.exponential(), -log(1 - b.uniform()))
        XCTAssertEqual(a.next(), b.next())
    }

    func testPoissonVariatesHaveTheirMeanAndVarianceOnBothSidesOfTheSwitch() {
        var generator = SeededGenerator(seed: 42)
        for lambda in [0.3, 4.0, 9.5, 10.5, 80.0, 2500.0] {
            let n = 40_000
            let samples = (0..<n).map { _ in generator.poisson(lambda) }
            XCTAssert(samples.allSatisfy { $0 >= 0 && $0 == $0.rounded() }, "λ = \(lambda): non-negative integers")
            let mean = samples.reduce(0, +) / Double(n)
            let variance = samples.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(n)
            XCTAssertEqual(mean, lambda, accuracy: 5 * (lambda / Double(n)).squareRoot(), "λ = \(lambda)")
            XCTAssertEqual(variance / lambda, 1, accuracy: 0.04, "λ = \(lambda)")
        }
        XCTAssertEqual(generator.poisson(0), 0)
        XCTAssertEqual(generator.poisson(-1), 0)
        XCTAssertEqual(generator.poisson(.nan), 0)
    }

    func testPermutationsAreReproducibleFisherYates() {
        var a = SeededGenerator(seed: 1), b = SeededGenerator(seed: 1)
        let p = a.permutation(50)
        XCTAssertEqual(p.sorted(), Array(0..<50))
        XCTAssertNotEqual(p, Array(0..<50))
        // Fisher-Yates from the top, each swap partner drawn with `integer`.
        var order = Array(0..<50)
        for i in stride(from: 49, to: 0, by: -1) { order.swapAt(i, b.integer(0...i)) }
        XCTAssertEqual(p, order)
        XCTAssertEqual(a.permutation(1), [0])
        XCTAssertEqual(a.permutation(0), [])
    }

    func testSplitMix64IsAGeneratorOfItsOwn() {
        var mixer = SplitMix64(seed: 0)
        // The first SplitMix64 output of state 0 (Vigna's reference splitmix64.c).
        XCTAssertEqual(mixer.next(), 0xE220_A839_7B1D_CDAF)
        XCTAssertEqual(mixer.state, 0x9E37_79B9_7F4A_7C15, "one golden-ratio increment")
    }
}
