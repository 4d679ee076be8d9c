import AstroBase
import Foundation
@testable import SkySim
import TestSupport
import XCTest

/// The light-curve simulator follows TASKS.md task 5 and is reproducible.
final class LightCurveSimulationTests: XCTestCase {
    let settings = LightCurveSettings()

    func testSameSeedGivesIdenticalFilesAndAnotherSeedDoesNot() throws {
        let a = try makeTemporaryDirectory("lc-a"), b = try makeTemporaryDirectory("lc-b"), c = try makeTemporaryDirectory("lc-c")
        _ = try LightCurveSimulator(seed: 5).writeDataset(count: 30, to: a, fits: true)
        _ = try LightCurveSimulator(seed: 5).writeDataset(count: 30, to: b, fits: true)
        _ = try LightCurveSimulator(seed: 6).writeDataset(count: 30, to: c)
        for name in ["lightcurves.csv", "catalog.csv", "lightcurves.fits"] {
            XCTAssertEqual(try Data(contentsOf: a.appendingPathComponent(name)), try Data(contentsOf: b.appendingPathComponent(name)), name)
        }
        XCTAssertNotEqual(try Data(contentsOf: a.appendingPathComponent("lightcurves.csv")),
                          try Data(contentsOf: c.appendingPathComponent("lightcurves.csv")))
        let catalog = try String(contentsOf: a.appendingPathComponent("catalog.csv"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(catalog[0], "object_id,label")
        XCTAssertEqual(catalog[1], "0,sn_ia")
        XCTAssertEqual(catalog[7], "6,eclipsing_binary")
        let rows = try String(contentsOf: a.appendingPathComponent("lightcurves.csv"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(rows[0], "object_id,mjd,band,flux,flux_err")
    }

    /// Sampling, bands and the noise model of every object.
    func testSamplingAndNoiseFollowTheSpec() {
        let simulator = LightCurveSimulator(seed: 11)
        var counts = Set<Int>()
        var pulls: [Double] = []
        for index in 0..<350 {
            let object = simulator.curve(at: index)
            XCTAssertEqual(object.kind, LightCurveClass.allCases[index % 7])
            let points = object.curve.points
            counts.insert(points.count)
            XCTAssert((20...60).contains(points.count))
            XCTAssert((3...15).contains(object.skySigma))
            XCTAssert(zip(points, points.dropFirst()).allSatisfy { $0.mjd <= $1.mjd })
            for (p, f) in zip(points, object.noiseless) {
                XCTAssert((0...200).contains(p.mjd))
                XCTAssertEqual(p.fluxError, (object.skySigma * object.skySigma + 0.0001 * f * f).squareRoot(), accuracy: 1e-9)
                pulls.append((p.flux - f) / p.fluxError)
            }
        }
        XCTAssertGreaterThan(counts.count, 25, "N varies over [20, 60]")
        let mean = pulls.reduce(0, +) / Double(pulls.count)
        let variance = pulls.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(pulls.count)
        XCTAssertEqual(mean, 0, accuracy: 0.03)
        XCTAssertEqual(variance, 1, accuracy: 0.05, "measured = noiseless + N(0, flux_err)")
    }

    /// The r-band maximum of each supernova is its drawn peak, inside the class's range;
    /// before the explosion the difference flux vanishes.
    func testSupernovaPeaksAndColours() {
        var random = SeededGenerator(seed: 3)
        for kind in [LightCurveClass.snIa, .snII, .snIbc, .slsn] {
            let faintest = kind == .slsn ? 23.5 : 23.5, brightest = kind == .slsn ? 20.0 : 19.0
            for _ in 0..<40 {
                let model = Supernova.draw(kind, random: &random, settings: settings)
                let grid = stride(from: model.t0 - 50, through: model.t0 + 200, by: 0.01)
                let peak = grid.map { model.flux(at: $0, band: .r) }.max()!
                let magnitude = 27.5 - 2.5 * log10(peak)
                XCTAssert((brightest - 1e-3)...(faintest + 1e-3) ~= magnitude, "\(kind) peak r mag \(magnitude)")
                // A dense grid can only fall short of the maximum (by the curve's slope times the
                // 0.005-day half step at a cusp at t1).
                let maximum = model.amplitude[1] * model.unitPeak(band: 1)
                XCTAssertLessThanOrEqual(peak, maximum * (1 + 1e-12))
                XCTAssertEqual(peak, maximum, accuracy: maximum * 2e-3)
                XCTAssertLessThan(abs(model.flux(at: model.t0 - 40 * model.tauRise, band: .g)), peak * 1e-6)
                if kind == .snIa {
                    // Colours applied to A: g − r in [−0.2, 0.1], r − i in [−0.4, −0.1].
                    let gr = -2.5 * log10(model.amplitude[0] / model.amplitude[1])
                    let ri = -2.5 * log10(model.amplitude[1] / model.amplitude[2])
                    XCTAssert((-0.2...0.1) ~= gr && (-0.4 ... -0.1) ~= ri, "Ia colours \(gr), \(ri)")
                    XCTAssertNotNil(model.secondMaximum)
                }
                if kind == .snII {
                    // g − r grows by [0.5, 1.0] mag over the plateau, then stays.
                    let before = -2.5 * log10(model.flux(at: model.t0, band: .g) / model.flux(at: model.t0, band: .r))
                    let after = -2.5 * log10(model.flux(at: model.t0 + model.gamma + 5, band: .g)
                                             / model.flux(at: model.t0 + model.gamma + 5, band: .r))
                    XCTAssert((0.5...1.0) ~= after - before, "SN II reddening \(after - before)")
                }
            }
        }
    }

    /// Variables have no constant offset: the difference flux averages to zero over [0, 200].
    func testVariablesAverageToZeroOverTheSpan() {
        let dense = stride(from: 0.0, to: 200, by: 0.003).map { (mjd: $0, band: PhotometricBand.g) }
        for (n, kind) in [LightCurveClass.rrLyrae, .eclipsingBinary, .agn].enumerated() {
            for trial in 0..<3 {
                var random = SeededGenerator(seed: UInt64(100 + 10 * n + trial))
                let model = LightCurveModel.draw(kind, random: &random, settings: settings)
                let flux = model.differenceFlux(at: dense, random: &random, settings: settings)
                let mean = flux.reduce(0, +) / Double(flux.count)
                let spread = (flux.max()! - flux.min()!)
                XCTAssertGreaterThan(spread, 0, "\(kind) varies")
                XCTAssertLessThan(abs(mean), 0.02 * spread, "\(kind): mean difference flux \(mean), peak-to-peak \(spread)")
            }
        }
    }

    /// RR Lyrae and eclipsing binaries: the phase-averaged magnitude is the drawn mean;
    /// RR Lyrae amplitudes scale 1 : 0.8 : 0.65 in g, r, i.
    func testPeriodicShapes() {
        var random = SeededGenerator(seed: 9)
        for kind in [LightCurveClass.rrLyrae, .eclipsingBinary] {
            for _ in 0..<10 {
                let model = Periodic.draw(kind, random: &random)
                for band in PhotometricBand.allCases {
                    let samples = (0..<20000).map { model.magnitude(at: (Double($0) + 0.5) / 20000 * model.period, band: band) }
                    XCTAssertEqual(samples.reduce(0, +) / 20000, model.meanMagnitude[band.index], accuracy: 2e-3)
                    if kind == .rrLyrae {
                        XCTAssertEqual(samples.max()! - samples.min()!, model.amplitude[band.index], accuracy: 1e-3)
                    } else {
                        XCTAssertEqual(samples.max()! - samples.min()!, model.primaryDepth, accuracy: 1e-3, "same depth in every band")
                    }
                }
                if kind == .rrLyrae {
                    XCTAssertEqual(model.amplitude[1] / model.amplitude[0], 0.8, accuracy: 1e-12)
                    XCTAssertEqual(model.amplitude[2] / model.amplitude[0], 0.65, accuracy: 1e-12)
                    XCTAssert((0.4...0.8) ~= model.period)
                }
            }
        }
    }

    func testContactSheetIsAPNG() throws {
        let simulator = LightCurveSimulator(seed: 2)
        let sheet = LightCurveSimulator.contactSheet((0..<7).map { simulator.curve(at: $0) }, columns: 7, cellWidth: 200, cellHeight: 140)
        let url = try makeTemporaryDirectory("lc-sheet").appendingPathComponent("sheet.png")
        try sheet.write(to: url)
        XCTAssertEqual(Array(try Data(contentsOf: url).prefix(4)), [0x89, 0x50, 0x4E, 0x47])
        XCTAssertEqual(sheet.tiles.count, 7)
    }
}
