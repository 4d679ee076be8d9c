import Foundation
import TestSupport
import XCTest

/// The light-curve pipelines end to end through the tool: the shipped model on the samples,
/// and simulate → train → evaluate on a tiny data set.
final class LightCurvePipelineTests: XCTestCase {
    let classes = ["sn_ia", "sn_ii", "sn_ibc", "slsn", "agn", "rr_lyrae", "eclipsing_binary"]

    func rows(_ url: URL) throws -> [[String]] {
        try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map { $0.split(separator: ",").map(String.init) }
    }

    /// TASKS.md's columns, one row per sample object, and the CSV and FITS layouts agree.
    func testClassifyLightCurvesOnTheSamples() throws {
        let folder = try makeTemporaryDirectory("lc-shipped")
        var tables: [[[String]]] = []
        for input in ["samples/lightcurves/lightcurves.csv", "samples/lightcurves/lightcurves.fits"] {
            let out = folder.appendingPathComponent(URL(fileURLWithPath: input).pathExtension + ".csv")
            let r = try runTool(["run", "pipelines/classify-lightcurves.yaml", "--input", input, "--output", out.path, "--quiet"])
            XCTAssertEqual(r.status, 0, r.stderr)
            tables.append(try rows(out))
        }
        let table = tables[0]
        XCTAssertEqual(table[0], ["object_id", "predicted"] + classes.map { "p_" + $0 })
        XCTAssertEqual(table.dropFirst().map { $0[0] }, (0..<70).map(String.init))
        for row in table.dropFirst() {
            XCTAssert(classes.contains(row[1]))
            XCTAssertEqual(row[2...].map { Double($0)! }.reduce(0, +), 1, accuracy: 1e-4)
        }
        // The CSV rounds to 4 decimals and the FITS table holds the simulator's doubles.
        XCTAssertEqual(tables[0].map { $0.prefix(2) }, tables[1].map { $0.prefix(2) }, "the FITS table gives the same classes")
        for (a, b) in zip(tables[0].dropFirst(), tables[1].dropFirst()) {
            for k in 2..<a.count { XCTAssertEqual(Double(a[k])!, Double(b[k])!, accuracy: 1e-4) }
        }
        // `astrolabe predict` with the model file gives the same table (one inference path).
        let predicted = folder.appendingPathComponent("predict.csv")
        let p = try runTool(["predict", "--weights", "samples/models/lightcurves.safetensors", "--batch-size", "64",
                             "--output", predicted.path, "samples/lightcurves/lightcurves.csv"])
        XCTAssertEqual(p.status, 0, p.stderr)
        XCTAssertEqual(try rows(predicted), table)
        let raw = try runTool(["predict", "--weights", "samples/models/lightcurves.safetensors", "--raw",
                               "--output", predicted.path, "samples/lightcurves/lightcurves.csv"])
        XCTAssertEqual(raw.status, 1)
        XCTAssert(raw.stderr.contains("light-curve model"), raw.stderr)
        // The shipped model is right on most samples (labels in catalog.csv).
        let truth = try rows(repositoryRoot.appendingPathComponent("samples/lightcurves/catalog.csv")).dropFirst().map { $0[1] }
        let correct = zip(table.dropFirst(), truth).filter { $0.0[1] == $0.1 }.count
        XCTAssertGreaterThanOrEqual(Double(correct) / Double(truth.count), 0.7)
    }

    func testSimulateTrainEvaluateAndBadTables() throws {
        let folder = try makeTemporaryDirectory("lc-e2e")
        let data = folder.appendingPathComponent("data")
        var r = try runTool(["simulate", "--task", "lightcurves", "--count", "140", "--seed", "9", "--out", data.path, "--fits"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let model = folder.appendingPathComponent("lc.safetensors")
        r = try runTool(["train", "pipelines/train-lightcurves.yaml", "--input", data.appendingPathComponent("lightcurves.csv").path,
                         "--set", "model.train.epochs=1", "--set", "model.train.save=\(model.path)", "--quiet", "--fresh"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let report = folder.appendingPathComponent("report")
        r = try runTool(["evaluate", "pipelines/classify-lightcurves.yaml", "--input", data.appendingPathComponent("lightcurves.fits").path,
                         "--set", "model.weights=\(model.path)", "--report", report.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let metrics = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: report.appendingPathComponent("metrics.json")))
                                    as? [String: Double])
        for key in ["accuracy", "macro_f1", "roc_auc_sn_ia", "accuracy_sn_ia", "log_loss", "early_roc_auc_sn_ia", "early_macro_f1"] {
            XCTAssertNotNil(metrics[key], key)
        }
        XCTAssertEqual(metrics["curves"], 140)
        for picture in ["confusion_matrix.png", "confusion_matrix_early.png", "roc_sn_ia.png", "lightcurves.png"] {
            XCTAssert(FileManager.default.fileExists(atPath: report.appendingPathComponent(picture).path), picture)
        }

        // A bad row stops the run with the file and row named.
        let bad = folder.appendingPathComponent("bad.csv")
        try Data("object_id,mjd,band,flux,flux_err\n1,2.0,g,3,1\n1,3.0,u,3,1\n".utf8).write(to: bad)
        r = try runTool(["run", "pipelines/classify-lightcurves.yaml", "--input", bad.path, "--output",
                         folder.appendingPathComponent("o.csv").path, "--set", "model.weights=\(model.path)", "--quiet"])
        XCTAssertEqual(r.status, 1)
        XCTAssert(r.stderr.contains("bad.csv, row 3: unknown band 'u'"), r.stderr)
    }
}
