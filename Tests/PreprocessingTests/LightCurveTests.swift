import AstroBase
import FITS
import Foundation
@testable import Preprocessing
import TestSupport
import XCTest
import Yams

/// The light-curve readers (CSV and FITS layouts of TASKS.md), their errors, and the sequence stages.
final class LightCurveReadingTests: XCTestCase {
    let header = "object_id,mjd,band,flux,flux_err\n"

    func write(_ text: String, _ name: String = "lightcurves.csv") throws -> URL {
        let url = try makeTemporaryDirectory("lc-read").appendingPathComponent(name)
        try Data(text.utf8).write(to: url)
        return url
    }

    /// Writes a FITS table with the layout's columns; `band` and `flux` may be replaced.
    func writeFITS(ids: [Int64], mjd: [Double], bands: [String], flux: [Double], errors: [Double],
                   dropping column: String? = nil) throws -> URL {
        let url = try makeTemporaryDirectory("lc-fits").appendingPathComponent("lightcurves.fits")
        let writer = try FITSWriter(path: url.path, overwrite: true)
        let columns = [FITSColumn("object_id", .int64(ids)), FITSColumn("mjd", .double(mjd)), FITSColumn("band", .string(bands)),
                       FITSColumn("flux", .double(flux)), FITSColumn("flux_err", .double(errors))]
        try writer.appendTable(FITSTable(columns.filter { $0.name != column }), extensionName: "LIGHTCURVES")
        try writer.commit()
        return url
    }

    func testCSVObjectsAreGroupedWhateverTheRowOrder() throws {
        // Object 7's rows are split by object 3's and out of time order.
        let url = try write(header + "7,10.5,g,1.0,0.5\n3,2.0,r,-2.0,1.0\n7,4.25,i,3.5,0.5\n3,1.0,i,4.0,1.0\n\n7,20,r,5,0.5\n")
        let curves = try LightCurveTable(url: url).readAll()
        XCTAssertEqual(curves.map(\.objectID), [7, 3])
        XCTAssertEqual(curves[0].points.map(\.mjd), [4.25, 10.5, 20])
        XCTAssertEqual(curves[0].points.map(\.band), [.i, .g, .r])
        XCTAssertEqual(curves[1].points, [LightCurvePoint(mjd: 1, band: .i, flux: 4, fluxError: 1),
                                          LightCurvePoint(mjd: 2, band: .r, flux: -2, fluxError: 1)])
    }

    func testCSVStreamsContiguousObjectsInBatches() throws {
        var text = header
        for id in 0..<25 { for t in 0..<3 { text += "\(id),\(t),r,1,1\r\n" } }
        var sizes: [Int] = [], ids: [Int64] = []
        try LightCurveTable(url: try write(text)).forEachBatch(size: 10) { sizes.append($0.count); ids += $0.map(\.objectID) }
        XCTAssertEqual(sizes, [10, 10, 5])
        XCTAssertEqual(ids, (0..<25).map(Int64.init))
    }

    func testCSVErrorsNameTheRow() throws {
        let cases: [(String, LightCurveError)] = [
            (header + "1,1.0,g,2,1\n1,2.0,g,abc,1\n", .badValue(file: "", row: 3, column: "flux", value: "abc", expected: "a number")),
            (header + "1,1.0,z,2,1\n", .unknownBand(file: "", row: 2, band: "z")),
            (header + "1,1.0,g,2,0\n", .badValue(file: "", row: 2, column: "flux_err", value: "0.0", expected: "a positive, finite error")),
            (header + "1,nan,g,2,1\n", .badValue(file: "", row: 2, column: "mjd", value: "nan", expected: "a finite number of days")),
            (header + "x1,1.0,g,2,1\n", .badValue(file: "", row: 2, column: "object_id", value: "x1", expected: "an integer")),
            (header + "1,1.0,g\n", .shortRow(file: "", row: 2, fields: 3, expected: 5)),
            ("object_id,mjd,band,flux\n1,1,g,2\n", .missingColumn(file: "", column: "flux_err", found: ["object_id", "mjd", "band", "flux"])),
        ]
        for (text, expected) in cases {
            let url = try write(text)
            XCTAssertThrowsError(try LightCurveTable(url: url).readAll()) { error in
                XCTAssertEqual(error as? LightCurveError, Self.withFile(expected, url.path))
                XCTAssert(error.localizedDescription.contains(url.path))
            }
        }
    }

    func testFITSTableReadsAndErrorsNameTheRow() throws {
        let url = try writeFITS(ids: [5, 5, 2], mjd: [3, 1, 0], bands: ["r", "g", "i"], flux: [1, 2, 3], errors: [1, 1, 1])
        let curves = try LightCurveTable(url: url).readAll()
        XCTAssertEqual(curves.map(\.objectID), [5, 2])
        XCTAssertEqual(curves[0].points.map(\.band), [.g, .r])

        let badBand = try writeFITS(ids: [1, 1], mjd: [0, 1], bands: ["g", "u"], flux: [1, 1], errors: [1, 1])
        XCTAssertThrowsError(try LightCurveTable(url: badBand).readAll()) {
            XCTAssertEqual($0 as? LightCurveError, .unknownBand(file: badBand.path, row: 2, band: "u"))
        }
        let badValue = try writeFITS(ids: [1, 1, 1], mjd: [0, 1, 2], bands: ["g", "r", "i"], flux: [1, .nan, 1], errors: [1, 1, 1])
        XCTAssertThrowsError(try LightCurveTable(url: badValue).readAll()) {
            XCTAssertEqual($0 as? LightCurveError, .badValue(file: badValue.path, row: 2, column: "flux", value: "nan",
                                                             expected: "a finite flux"))
        }
        let missing = try writeFITS(ids: [1], mjd: [0], bands: ["g"], flux: [1], errors: [1], dropping: "mjd")
        XCTAssertThrowsError(try LightCurveTable(url: missing).readAll()) {
            XCTAssertEqual($0 as? LightCurveError, .missingColumn(file: missing.path, column: "mjd",
                                                                  found: ["object_id", "band", "flux", "flux_err"]))
        }
    }

    /// A FITS table streamed in blocks of rows gives the objects of a whole read, contiguous
    /// or not, and names rows of later blocks in errors.
    func testFITSTableIsReadInBlocks() throws {
        for ids: [Int64] in [[5, 5, 2, 2, 2, 7, 5], [1, 1, 1, 2, 2, 3, 3]] {
            let n = ids.count
            let url = try writeFITS(ids: ids, mjd: (0..<n).map { Double(n - $0) }, bands: (0..<n).map { ["g", "r", "i"][$0 % 3] },
                                    flux: (0..<n).map(Double.init), errors: [Double](repeating: 1, count: n))
            var whole = try LightCurveTable(url: url)
            whole.fitsBlockRows = 1000
            var blocks = whole
            blocks.fitsBlockRows = 2
            let expected = try whole.readAll()
            XCTAssertEqual(expected.map(\.objectID), ids.reduce(into: [Int64]()) { if !$0.contains($1) { $0.append($1) } })
            XCTAssertEqual(try blocks.readAll(), expected, "ids \(ids)")
        }
        var bad = try LightCurveTable(url: try writeFITS(ids: [1, 1, 1, 2, 2, 2], mjd: [0, 1, 2, 0, 1, 2],
                                                          bands: ["g", "r", "i", "g", "r", "i"], flux: [1, 1, 1, 1, 1, 1],
                                                          errors: [1, 1, 1, 1, 1, -1]))
        bad.fitsBlockRows = 4
        XCTAssertThrowsError(try bad.readAll()) {
            XCTAssertEqual($0 as? LightCurveError, .badValue(file: bad.url.path, row: 6, column: "flux_err", value: "-1.0",
                                                             expected: "a positive, finite error"))
        }
    }

    /// Reading on a thread of its own hands over the batches `forEachBatch` gives, in order, and
    /// stops on an error of the reader or of the consumer.
    func testReadingAheadGivesTheSameBatchesAndStopsOnErrors() throws {
        var text = header
        for id in 0..<10 { for t in 0..<3 { text += "\(id),\(t).5,g,\(id + t),1\n" } }
        let table = try LightCurveTable(url: try write(text))
        var plain: [[LightCurve]] = [], ahead: [[LightCurve]] = []
        try table.forEachBatch(size: 3) { plain.append($0) }
        try table.forEachBatchReadingAhead(size: 3) { ahead.append($0) }
        XCTAssertEqual(plain.map(\.count), [3, 3, 3, 1])
        XCTAssertEqual(ahead, plain)

        let bad = try LightCurveTable(url: try write(text + "11,1.0,u,1,1\n"))
        var seen = 0
        XCTAssertThrowsError(try bad.forEachBatchReadingAhead(size: 3) { seen += $0.count }) {
            XCTAssertEqual($0 as? LightCurveError, .unknownBand(file: bad.url.path, row: 32, band: "u"))
        }
        XCTAssertLessThanOrEqual(seen, 10)
        struct Stop: Error {}
        var calls = 0
        XCTAssertThrowsError(try table.forEachBatchReadingAhead(size: 1) { _ in calls += 1; if calls == 2 { throw Stop() } }) {
            XCTAssert($0 is Stop)
        }
        XCTAssertEqual(calls, 2)
    }

    func testCatalogLabels() throws {
        let url = try write("object_id,label\n4,sn_ia\n9,rr_lyrae\n", "catalog.csv")
        XCTAssertEqual(try LightCurveCatalog.read(url), [4: .snIa, 9: .rrLyrae])
        let bad = try write("object_id,label\n4,sn_iax\n", "catalog.csv")
        XCTAssertThrowsError(try LightCurveCatalog.read(bad)) {
            XCTAssertEqual($0 as? LightCurveError, .unknownClass(file: bad.path, row: 2, name: "sn_iax", known: LightCurveClass.names))
            XCTAssert($0.localizedDescription.contains("sn_ia"))
        }
    }

    static func withFile(_ error: LightCurveError, _ path: String) -> LightCurveError {
        switch error {
        case let .badValue(_, row, column, value, expected): return .badValue(file: path, row: row, column: column, value: value, expected: expected)
        case let .unknownBand(_, row, band): return .unknownBand(file: path, row: row, band: band)
        case let .shortRow(_, row, fields, expected): return .shortRow(file: path, row: row, fields: fields, expected: expected)
        case let .missingColumn(_, column, found): return .missingColumn(file: path, column: column, found: found)
        default: return error
        }
    }
}

final class SequenceStageTests: XCTestCase {
    let curve = LightCurve(objectID: 1, points: [
        LightCurvePoint(mjd: 10, band: .g, flux: 2, fluxError: 1),
        LightCurvePoint(mjd: 13, band: .r, flux: -8, fluxError: 2),
        LightCurvePoint(mjd: 19, band: .i, flux: 40, fluxError: 4),   // flux / err = 10 > 5: first detection
        LightCurvePoint(mjd: 28, band: .g, flux: 20, fluxError: 2),
        LightCurvePoint(mjd: 35, band: .r, flux: 10, fluxError: 2),
    ])

    func testFeaturesOfEachStageAndTheMask() throws {
        let preparation = try SequencePreparation([.normalizeFlux(.maxAbs, scaleFeature: true), .encodeBands, .timeDifferences(scale: 10)])
        XCTAssertEqual(preparation.featureCount, 2 + 1 + 3 + 2 + 1)
        var rng = SeededGenerator(seed: 0)
        let s = preparation.prepare(curve, rng: &rng)
        XCTAssertEqual(s.steps, 5)
        let w = s.featureCount
        let row1 = Array(s.features[w..<(2 * w)])
        // flux / 40, err / 40, log10(40) - 2, one-hot r, (13 - 10) / 10, (13 - 10) / 10, mask
        let expected: [Float] = [-0.2, 0.05, Float(log10(40.0) - 2), 0, 1, 0, 0.3, 0.3, 1]
        for (a, b) in zip(row1, expected) { XCTAssertEqual(a, b, accuracy: 1e-6) }
        XCTAssertEqual(s.features[4 * w + 6], 0.7, accuracy: 1e-6, "Δt of the last step")
        XCTAssertEqual(s.features[4 * w + 7], 2.5, accuracy: 1e-6, "days since the first point")
        let median = try SequencePreparation([.normalizeFlux(.medianError, scaleFeature: false)]).prepare(curve, rng: &rng)
        XCTAssertEqual(median.features[4 * 3], 10.0 / 2, accuracy: 1e-6, "flux / median flux_err")
    }

    func testCutsEarlyTruncateAndRandomTruncate() throws {
        var rng = SeededGenerator(seed: 0)
        // TASKS.md: cut after t5 + 10 = 29 days.
        XCTAssertEqual(curve.earlyCut.points.map(\.mjd), [10, 13, 19, 28])
        XCTAssertEqual(try SequencePreparation([.earlyCut]).prepare(curve, rng: &rng).steps, 4)
        let never = LightCurve(objectID: 2, points: curve.points.map { LightCurvePoint(mjd: $0.mjd, band: $0.band, flux: 1, fluxError: 1) })
        XCTAssertEqual(never.earlyCut.points.count, 5, "curves never above 5 sigma keep every point")
        XCTAssertEqual(try SequencePreparation([.truncate(maxPoints: 2)]).prepare(curve, rng: &rng).steps, 2)
        let random = try SequencePreparation([.randomTruncate(probability: 1, minPoints: 2)])
        var lengths = Set<Int>()
        for _ in 0..<200 { lengths.insert(random.prepare(curve, training: true, rng: &rng).steps) }
        XCTAssertEqual(lengths, [2, 3, 4, 5])
        XCTAssertEqual(random.prepare(curve, training: false, rng: &rng).steps, 5, "augmentations only in training")
        XCTAssertEqual(random.inferenceStages, [])
        XCTAssertThrowsError(try SequencePreparation([.normalizeFlux(.maxAbs, scaleFeature: true), .earlyCut]))
    }

    func testRandomEarlyCutKeepsPointsUpToARandomWindowAfterDetection() throws {
        var rng = SeededGenerator(seed: 3)
        // First detection at 19 days.
        XCTAssertEqual(curve.detectionMJD, 19)
        XCTAssertEqual(curve.cut(daysAfterDetection: 0).points.map(\.mjd), [10, 13, 19])
        XCTAssertEqual(curve.cut(daysAfterDetection: 10), curve.earlyCut)
        let fixed = try SequencePreparation([.randomEarlyCut(probability: 1, minDays: 9, maxDays: 9)])
        XCTAssertEqual(fixed.prepare(curve, training: true, rng: &rng).mjd, [10, 13, 19, 28])
        let random = try SequencePreparation([.randomEarlyCut(probability: 1, minDays: 0, maxDays: 20)])
        var lengths = Set<Int>()
        for _ in 0..<200 { lengths.insert(random.prepare(curve, training: true, rng: &rng).steps) }
        XCTAssertEqual(lengths, [3, 4, 5], "windows 0-9, 9-16 and 16-20 days")
        XCTAssertEqual(random.prepare(curve, training: false, rng: &rng).steps, 5, "augmentations only in training")
        XCTAssertEqual(random.inferenceStages, [])
        let never = LightCurve(objectID: 2, points: curve.points.map { LightCurvePoint(mjd: $0.mjd, band: $0.band, flux: 1, fluxError: 1) })
        XCTAssertEqual(random.prepare(never, training: true, rng: &rng).steps, 5, "no detection: every point kept")
        XCTAssertThrowsError(try SequencePreparation([.normalizeFlux(.maxAbs, scaleFeature: true),
                                                      .randomEarlyCut(probability: 1, minDays: 0, maxDays: 1)]))
    }

    func testBucketedBatchesCoverEveryCurveOnceWithLittlePadding() {
        var generator = SeededGenerator(seed: 4)
        let lengths = (0..<3000).map { _ in generator.integer(20...60) }
        var rng: SeededGenerator? = SeededGenerator(seed: 1)
        let batcher = SequenceBatcher(batchSize: 64)
        let batches = batcher.batches(lengths: lengths, rng: &rng)
        XCTAssertEqual(batches.flatMap { $0 }.sorted(), Array(0..<3000))
        XCTAssert(batches.allSatisfy { $0.count <= 64 })
        let bucketed = SequenceBatcher.paddingFraction(lengths: lengths, batches: batches)
        let plain = SequenceBatcher.paddingFraction(lengths: lengths, batches: stride(from: 0, to: 3000, by: 64).map {
            Array($0..<min(3000, $0 + 64)) })
        XCTAssertLessThan(bucketed, 0.05)
        XCTAssertGreaterThan(plain, 0.25)
        let sequences = [3, 1].map { PreparedSequence(objectID: 0, steps: $0, featureCount: 2, features: [Float](repeating: 1, count: 2 * $0), mjd: []) }
        let (shape, data) = SequenceBatcher.tensorData(sequences)
        XCTAssertEqual(shape, [2, 3, 2])
        XCTAssertEqual(data, [1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0], "padding is zero, mask included")
    }

    func testYAMLDecodingIsStrict() throws {
        let yaml = """
            - random_truncate: {p: 0.3}
            - random_early_cut: {p: 0.4, days: [0, 20]}
            - normalize_flux: {method: median_error}
            - encode_bands
            - time_differences: {scale: 15}
            """
        let stages = try YAMLDecoder().decode([SequenceStage].self, from: yaml)
        XCTAssertEqual(stages, [.randomTruncate(probability: 0.3, minPoints: 3), .randomEarlyCut(probability: 0.4, minDays: 0, maxDays: 20),
                                .normalizeFlux(.medianError, scaleFeature: true),
                                .encodeBands, .timeDifferences(scale: 15)])
        let json = try JSONEncoder().encode(stages)
        XCTAssertEqual(try JSONDecoder().decode([SequenceStage].self, from: json), stages, "recipes round-trip")
        for (bad, hint) in [("- encode_band", "encode_bands"), ("- normalize_flux: {methd: max_abs}", "method"),
                            ("- normalize_flux: {method: maxabs}", "max_abs"), ("- truncate: {max_points: 0}", "positive"),
                            ("- random_early_cut: {days: [5, 1]}", "days"), ("- random_early_cut: {p: 0.5, day: [0, 1]}", "days")] {
            XCTAssertThrowsError(try YAMLDecoder().decode([SequenceStage].self, from: bad)) {
                XCTAssert("\($0)".contains(hint), "\(bad): \($0)")
            }
        }
    }
}
