import AstroBase
import FITS
import Foundation
import TestSupport
import XCTest
@testable import SkySim

/// `--neighbours` and `--truncate`: what real cutouts have around the object.
final class SurroundingsTests: XCTestCase {
    private func settings(neighbours: Double = 0, truncation: Double = 0, psf: PSFChoice = .gaussian) -> ObservationSettings {
        var settings = ObservationSettings()
        settings.surroundings = CutoutSurroundings(neighbours: neighbours, truncation: truncation)
        settings.psf = psf
        return settings
    }

    private func float(_ image: SimulatedImage, _ key: String) -> Double? {
        if case .float(let v)? = image.headerValue(key) { return v }
        return nil
    }

    /// Neighbours only add light (through the same PSF), leave the object, its class and the
    /// observation as in the plain set, and lie 2-8" from the object.
    func testNeighboursAddLightAroundTheSameObject() {
        for psf in [PSFChoice.gaussian, .varied] {
            let withNeighbours = Simulator(task: .morphology, seed: 3, settings: settings(neighbours: 1, psf: psf))
            let plain = Simulator(task: .morphology, seed: 3, settings: settings(psf: psf))
            for index in 0..<20 {
                let a = withNeighbours.image(at: index, keepNoiseless: true), b = plain.image(at: index, keepNoiseless: true)
                XCTAssertEqual(a.label, b.label)
                for key in ["MAG", "PSF_FWHM", "SKYSIG", "OBJ_X", "OBJ_Y"] { XCTAssertEqual(float(a, key), float(b, key), key) }
                guard case .integer(let count)? = a.headerValue("NNEIGH"), let na = a.noiseless, let nb = b.noiseless,
                      let ox = float(a, "OBJ_X"), let oy = float(a, "OBJ_Y")
                else { return XCTFail("image \(index): NNEIGH or noiseless pixels missing") }
                XCTAssertTrue((1...3).contains(count))
                for (x, y) in zip(na, nb) { XCTAssertGreaterThanOrEqual(x, y - 1e-9 * max(1, y)) }
                XCTAssertGreaterThan(zip(na, nb).reduce(0) { $0 + $1.0 - $1.1 }, 0, "image \(index): no neighbour light")
                for k in 1...count {
                    guard let x = float(a, "NB\(k)_X"), let y = float(a, "NB\(k)_Y"), let m = float(a, "NB\(k)_MAG"),
                          case .string(let kind)? = a.headerValue("NB\(k)_TYP")
                    else { return XCTFail("image \(index): neighbour \(k) cards missing") }
                    let distance = ((x - ox) * (x - ox) + (y - oy) * (y - oy)).squareRoot() * 0.2
                    XCTAssertTrue((2...8).contains(distance), "neighbour at \(distance)\"")
                    XCTAssertTrue(kind == "star" ? (16...22).contains(m) : (17...23).contains(m), "\(kind) m \(m)")
                }
            }
            XCTAssertNil(plain.image(at: 0).headerValue("NNEIGH"))
        }
    }

    /// A truncation zeroes the object's light beyond TRUNC_R and keeps TRUNC_F of it.
    func testTruncationKeepsTheDrawnFractionInsideItsRadius() {
        let cut = Simulator(task: .morphology, seed: 4, settings: settings(truncation: 1))
        let plain = Simulator(task: .morphology, seed: 4)
        for index in 0..<20 {
            let a = cut.image(at: index, keepNoiseless: true), b = plain.image(at: index, keepNoiseless: true)
            guard let na = a.noiseless, let nb = b.noiseless, let radius = float(a, "TRUNC_R"), let kept = float(a, "TRUNC_F"),
                  let ox = float(a, "OBJ_X"), let oy = float(a, "OBJ_Y")
            else { return XCTFail("image \(index): TRUNC_R / TRUNC_F or noiseless pixels missing") }
            XCTAssertTrue((0.85...0.99).contains(kept))
            let r = radius / 0.2
            var inside = 0.0, total = 0.0, largest = 0.0
            for i in nb.indices {
                let dx = Double(i % 64) - (ox - 1), dy = Double(i / 64) - (oy - 1)
                let d = (dx * dx + dy * dy).squareRoot()
                total += max(nb[i], 0)
                if d <= r + 1e-9 {
                    XCTAssertEqual(na[i], nb[i])
                    inside += max(nb[i], 0)
                    largest = max(largest, nb[i])
                } else {
                    XCTAssertEqual(na[i], 0, "image \(index): light beyond the cut")
                }
            }
            // The radius is the first pixel at which the enclosed light reaches the fraction.
            XCTAssertGreaterThanOrEqual(inside / total, kept - 1e-9)
            XCTAssertLessThanOrEqual(inside / total, kept + largest / total + 1e-9)
        }
    }

    /// Regression cutouts take them too; tasks with scenes of their own refuse them.
    /// `outside`: galaxies of none of the five classes, labelled `outside` (LABEL -1), S0s and
    /// clumpy spirals both drawn, their light the magnitude's; a probability above 1 is refused.
    func testOutsideGalaxiesAreLabelledAndKeepTheirFlux() throws {
        var all = ObservationSettings(), some = ObservationSettings()
        all.outside = 1
        some.outside = 0.3
        var kinds = Set<String>()
        for index in 0..<30 {
            let image = Simulator(task: .morphology, seed: 6, settings: all).image(at: index, keepNoiseless: true)
            XCTAssertEqual(image.label, -1)
            XCTAssertEqual(image.catalogFields, ["outside"])
            guard case .string(let kind)? = image.headerValue("OUTKIND"), case .string(let name)? = image.headerValue("CLASS"),
                  let mag = float(image, "MAG"), let noiseless = image.noiseless, let bt = float(image, "BT")
            else { return XCTFail("image \(index): OUTKIND, CLASS, MAG, BT or noiseless pixels missing") }
            XCTAssertEqual(name, "outside")
            kinds.insert(kind)
            XCTAssertTrue(kind == "s0" ? (0.2...0.7).contains(bt) : (0...0.3).contains(bt), "\(kind) B/T \(bt)")
            let fraction = noiseless.reduce(0, +) / ObservationSettings().flux(magnitude: mag)
            XCTAssertTrue((0.85...1.0001).contains(fraction), "image \(index) (\(kind)): \(fraction) of the light in the cutout")
        }
        XCTAssertEqual(kinds, ["s0", "clumpy_spiral"])
        let labels = (0..<200).map { Simulator(task: .morphology, seed: 7, settings: some).image(at: $0).label! }
        XCTAssertTrue((40...80).contains(labels.filter { $0 == -1 }.count), "\(labels.filter { $0 == -1 }.count) of 200 outside at p 0.3")
        XCTAssertTrue(labels.allSatisfy { (-1...4).contains($0) })
        all.outside = 1.5
        XCTAssertThrowsError(try all.validate()) { XCTAssert($0.localizedDescription.contains("1.5"), $0.localizedDescription) }
    }

    /// `irregulars`: both layouts keep TASKS.md's irregular (2-3 components, each centre 0.5-2.5
    /// mean r_e from an earlier one, clumps within 1.5 r_e of a component, the light the
    /// magnitude's); `standard` never gives a component under 13 % of the light and chains the
    /// centres, `varied` lets one component hold nearly all of it and branches.
    func testIrregularLayouts() {
        var varied = ObservationSettings()
        varied.irregulars = .varied
        var smallShares = [IrregularLayout: Int](), branched = [IrregularLayout: Int](), innerClumps = [IrregularLayout: Int]()
        for (layout, settings) in [(IrregularLayout.standard, ObservationSettings()), (.varied, varied)] {
            for draw in 0..<400 {
                var random = SeededGenerator(seed: 5, stream: UInt64(draw))
                var cards: [HeaderRecord] = []
                let components = MorphologyScene.irregular(cx: 31.5, cy: 31.5, flux: 1000, settings: settings, random: &random, cards: &cards)
                let discs = components.compactMap { c -> SersicProfile? in if case .sersic(let p) = c { return p } else { return nil } }
                let clumps = components.compactMap { c -> GaussianBlob? in if case .gaussian(let g) = c { return g } else { return nil } }
                XCTAssertTrue((2...3).contains(discs.count) && clumps.count <= 5 && discs.count + clumps.count == components.count)
                XCTAssertEqual(discs.reduce(0) { $0 + $1.flux } + clumps.reduce(0) { $0 + $1.flux }, 1000, accuracy: 1e-9)
                let discFlux = discs.reduce(0) { $0 + $1.flux }
                let share = discs.map { $0.flux / discFlux }.min()!
                if layout == .standard { XCTAssertGreaterThanOrEqual(share, 0.3 / 2.3 - 1e-12, "draw \(draw)") }
                if share < 0.1 { smallShares[layout, default: 0] += 1 }
                let meanRadius = discs.reduce(0) { $0 + $1.halfLightRadius } / Double(discs.count)
                func distance(_ a: EllipseGeometry, _ b: EllipseGeometry) -> Double {
                    ((a.centerX - b.centerX) * (a.centerX - b.centerX) + (a.centerY - b.centerY) * (a.centerY - b.centerY)).squareRoot()
                }
                for i in 1..<discs.count {
                    let fromEarlier = (0..<i).map { distance(discs[i].geometry, discs[$0].geometry) / meanRadius }
                    XCTAssertTrue(fromEarlier.contains { (0.5 - 1e-9)...(2.5 + 1e-9) ~= $0 }, "draw \(draw): \(fromEarlier)")
                    if !((0.5 - 1e-9)...(2.5 + 1e-9) ~= fromEarlier[i - 1]) { branched[layout, default: 0] += 1 }
                }
                for clump in clumps {
                    let host = discs.map { d -> Double in
                        let dx = clump.centerX - d.geometry.centerX, dy = clump.centerY - d.geometry.centerY
                        return (dx * dx + dy * dy).squareRoot() / d.halfLightRadius
                    }
                    XCTAssertLessThanOrEqual(host.min()!, 1.5 + 1e-9, "draw \(draw)")
                    if host.min()! < 0.2 { innerClumps[layout, default: 0] += 1 }
                }
            }
        }
        XCTAssertEqual(smallShares[.standard, default: 0], 0)
        XCTAssertEqual(branched[.standard, default: 0], 0)
        XCTAssertGreaterThan(smallShares[.varied, default: 0], 40, "varied: \(smallShares) of 400 with a component under 10 %")
        XCTAssertGreaterThan(branched[.varied, default: 0], 5)
        XCTAssertGreaterThan(innerClumps[.varied, default: 0], innerClumps[.standard, default: 0])
    }

    func testRegressionTakesThemAndOtherTasksRefuse() throws {
        let a = Simulator(task: .regression, seed: 2, settings: settings(neighbours: 1, truncation: 1)).image(at: 0)
        let b = Simulator(task: .regression, seed: 2).image(at: 0)
        XCTAssertNotNil(a.headerValue("NNEIGH"))
        XCTAssertNotNil(a.headerValue("TRUNC_F"))
        XCTAssertEqual(a.catalogFields, b.catalogFields)
        let scratch = try makeTemporaryDirectory("skysim-surroundings")
        defer { try? FileManager.default.removeItem(at: scratch) }
        for task in [SimulationTask.lens, .segmentation, .deblend] {
            XCTAssertThrowsError(try Simulator(task: task, seed: 1, settings: settings(neighbours: 0.5))
                .writeDataset(count: 1, to: scratch.appendingPathComponent(task.rawValue))) { error in
                XCTAssertTrue(String(describing: error).contains("neighbours"), "\(error)")
            }
        }
        var bad = settings(truncation: 1.5)
        XCTAssertThrowsError(try bad.validate())
        bad.surroundings.truncation = 0.5
        XCTAssertNoThrow(try bad.validate())
    }
}
