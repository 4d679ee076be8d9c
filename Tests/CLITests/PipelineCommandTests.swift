import Autograd
import FITS
import Foundation
import TestSupport
import XCTest

/// End-to-end: `astrolabe simulate`, `train` and `run` on real files, as a user would.
final class PipelineCommandTests: XCTestCase {
    static var folder: URL!
    static var trained = false

    /// Runs the tool in the test folder, with extra environment variables.
    func tool(_ arguments: [String], environment: [String: String] = [:]) throws -> ToolRun {
        try runTool(arguments, in: Self.folder, environment: environment)
    }

    func write(_ name: String, _ text: String) throws {
        try text.write(to: Self.folder.appendingPathComponent(name), atomically: true, encoding: .utf8)
    }

    func read(_ name: String) throws -> String {
        try String(contentsOf: Self.folder.appendingPathComponent(name), encoding: .utf8)
    }

    /// Simulates a small data set and trains a small model once for all tests.
    override func setUpWithError() throws {
        if Self.folder == nil { Self.folder = try makeTemporaryDirectory("pipeline-e2e") }
        guard !Self.trained else { return }
        for (count, seed, out) in [(40, 5, "train"), (10, 6, "test")] {
            let r = try tool(["simulate", "--task", "morphology", "--count", "\(count)", "--seed", "\(seed)", "--out", out])
            XCTAssertEqual(r.status, 0, r.stderr)
        }
        try write("train.yaml", morphologyTrainingPipeline(train: [
            "data: train/catalog.csv", "epochs: 2", "batch_size: 8", "validation_split: 0.2", "save: model.safetensors"]))
        let r = try tool(["train", "train.yaml", "--quiet"])
        XCTAssertEqual(r.status, 0, r.stderr)
        try write("infer.yaml", """
        name: infer
        task: classify
        input: {path: test}
        model: {weights: model.safetensors}
        outputs: {csv: out.csv}
        run: {batch_size: 3}
        """)
        Self.trained = true
    }

    func testTrainingWritesAModelFileHistoryAndCurves() throws {
        for name in ["model.safetensors", "model.history.csv", "model-curves.png"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: Self.folder.appendingPathComponent(name).path), name)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: Self.folder.appendingPathComponent("model.checkpoint.safetensors").path),
                       "the checkpoint is removed once training ends")
        let history = try read("model.history.csv").split(separator: "\n")
        XCTAssertEqual(history.first, "epoch,loss,accuracy,macro_f1,val_loss,val_accuracy,val_macro_f1,lr")
        XCTAssertEqual(history.count, 3)
    }

    /// Outlier exposure end to end: `simulate --outside` writes rows labelled `outside`; a plain
    /// training run refuses them by file, line and what to set; with `outside_weight` it trains,
    /// and its epoch accuracy counts only the labelled classes. Other tasks refuse `--outside`.
    func testOutsideRowsTrainOnlyWithOutlierExposure() throws {
        var r = try tool(["simulate", "--task", "morphology", "--count", "24", "--seed", "8", "--outside", "0.5", "--out", "oe"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let catalog = try read("oe/catalog.csv").split(separator: "\n").dropFirst()
        let outside = catalog.filter { $0.hasSuffix(",outside") }.count
        XCTAssertTrue((4...20).contains(outside), "\(outside) of 24 outside at p 0.5")
        let arguments = ["train", "train.yaml", "--quiet", "--input", "oe/catalog.csv", "--set", "model.train.save=oe.safetensors"]
        r = try tool(arguments)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("oe/catalog.csv") && r.stderr.contains("holds 'outside'")
                      && r.stderr.contains("outside_weight"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: Self.folder.appendingPathComponent("oe.safetensors").path))
        r = try tool(arguments + ["--set", "model.train.loss={cross_entropy: {outside_weight: 0.5}}"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let history = try read("oe.history.csv").split(separator: "\n")
        XCTAssertEqual(history.count, 3)
        // Without class names the labels are bare indices: one beyond the model's classes is named.
        try write("oe/nine.csv", "file,label\n\(catalog.first!.split(separator: ",")[0]),9\n")
        r = try tool(["train", "train.yaml", "--quiet", "--input", "oe/nine.csv", "--set", "input.class_names=[]",
                      "--set", "model.train.validation_split=0", "--set", "model.train.save=nine.safetensors"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("nine.csv labels morphology_") && r.stderr.contains("the model has 5 classes"), r.stderr)
        r = try tool(["simulate", "--task", "lens", "--count", "2", "--outside", "0.5", "--out", "oe-lens"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("--outside") && r.stderr.contains("--task morphology"), r.stderr)
        r = try tool(["simulate", "--task", "regression", "--count", "2", "--irregulars", "varied", "--out", "oe-reg"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("--irregulars") && r.stderr.contains("--task morphology"), r.stderr)
    }

    /// Ctrl-C during `astrolabe train`: the tool's SIGINT handler sets the cancellation flag,
    /// training finishes its batch, saves the checkpoint and stops; the same command resumes.
    func testCtrlCSavesACheckpointAndTheNextRunResumes() throws {
        try write("long.yaml", try read("train.yaml")
            .replacingOccurrences(of: "epochs: 2", with: "epochs: 500")
            .replacingOccurrences(of: "save: model.safetensors", with: "save: long.safetensors"))
        let process = Process()
        process.executableURL = try toolURL()
        process.arguments = ["train", "long.yaml"]
        process.currentDirectoryURL = Self.folder
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        var text = ""
        while !text.contains("epoch 1/500:") {
            let chunk = err.fileHandleForReading.availableData
            guard !chunk.isEmpty else { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        process.interrupt()
        text += String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 1, text)
        XCTAssertTrue(text.contains("training interrupted during epoch"), text)
        let checkpoint = Self.folder.appendingPathComponent("long.checkpoint.safetensors")
        XCTAssertTrue(text.contains("state saved to ") && text.contains("long.checkpoint.safetensors"), text)
        XCTAssertTrue(FileManager.default.fileExists(atPath: checkpoint.path))
        let resumed = try tool(["train", "long.yaml", "--set", "model.train.epochs=2"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stderr.contains("resuming from ") && resumed.stderr.contains("long.checkpoint.safetensors"),
                      resumed.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: checkpoint.path), "removed once training ends")
    }

    func testRunWritesTheDocumentedCSV() throws {
        let r = try tool(["run", "infer.yaml", "--output", "a.csv", "--quiet"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = try read("a.csv").split(separator: "\n").map(String.init)
        XCTAssertEqual(lines[0], "file,predicted,p_elliptical,p_spiral,p_edge_on,p_irregular,p_star")
        XCTAssertEqual(lines.count, 11)
        for line in lines.dropFirst() {
            let fields = line.split(separator: ",")
            XCTAssert(fields[0].hasPrefix("morphology_") && fields[0].hasSuffix(".fits"))
            XCTAssert(["elliptical", "spiral", "edge_on", "irregular", "star"].contains(String(fields[1])))
            let total = fields.dropFirst(2).compactMap { Double($0) }.reduce(0, +)
            XCTAssertEqual(total, 1, accuracy: 1e-4)
        }
    }

    func testPreviewsAndReport() throws {
        let r = try tool(["run", "infer.yaml", "--output", "p.csv", "--quiet",
                          "--set", "outputs.previews=previews", "--set", "outputs.report=report", "--set", "outputs.preview_count=4"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let png = try Data(contentsOf: Self.folder.appendingPathComponent("previews/previews.png"))
        XCTAssertEqual(Array(png.prefix(4)), [0x89, 0x50, 0x4E, 0x47])
        let report = try read("report/report.md")
        XCTAssert(report.contains("done 10, failed 0"), report)
        let counts = report.split(separator: "\n").filter { $0.hasPrefix("| ") && !$0.hasPrefix("| predicted") }
            .compactMap { Int($0.split(separator: "|").last!.trimmingCharacters(in: .whitespaces)) }
        XCTAssertEqual(counts.reduce(0, +), 10, report)
        XCTAssert(report.contains("![previews](previews.png)"))
    }

    func testAKilledRunResumesToTheSameOutput() throws {
        XCTAssertEqual(try tool(["run", "infer.yaml", "--output", "whole.csv", "--quiet"]).status, 0)
        let crashed = try tool(["run", "infer.yaml", "--output", "resumed.csv", "--quiet"],
                               environment: ["ASTROLABE_CRASH_AFTER_BATCHES": "2"])
        XCTAssertEqual(crashed.status, 137, "the first run dies after two batches")
        XCTAssertFalse(FileManager.default.fileExists(atPath: Self.folder.appendingPathComponent("resumed.csv").path),
                       "no half-written output")
        let resumed = try tool(["run", "infer.yaml", "--output", "resumed.csv"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        // The first file (checked against the model before the batch run) and two batches of 3.
        XCTAssert(resumed.stderr.contains("resuming: 7 of 10 files already done"), resumed.stderr)
        XCTAssertEqual(try read("resumed.csv"), try read("whole.csv"))
    }

    /// Names of the errors files beside `stem` (one per run with failures, stamped with its start).
    func errorsFiles(_ stem: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: Self.folder.path)
            .filter { $0.hasPrefix("\(stem).errors-") && $0.hasSuffix(".csv") }.sorted()
    }

    func testFailuresAreShownWithReasonsNeverStopTheRunAndEachRunKeepsItsErrorsFile() throws {
        let mixed = Self.folder.appendingPathComponent("mixed")
        try? FileManager.default.removeItem(at: mixed)
        try FileManager.default.copyItem(at: Self.folder.appendingPathComponent("test"), to: mixed)
        try FileManager.default.removeItem(at: mixed.appendingPathComponent("catalog.csv"))
        try Data("SIMPLE  = this is not a FITS file".utf8).write(to: mixed.appendingPathComponent("broken.fits"))
        // A 100 × 100 image (the model takes 64 × 64, and records no observation to match) and one without SKYSIG.
        // And one whose every pixel is blank (a cutout off its survey's footprint).
        for (name, size, header, value) in [("big.fits", 100, FITSHeader([HeaderRecord("SKYSIG", .float(10))]), Float(1)),
                                            ("nokeys.fits", 64, FITSHeader(), 1),
                                            ("blank.fits", 64, FITSHeader([HeaderRecord("SKYSIG", .float(10))]), .nan)] {
            let writer = try FITSWriter(path: mixed.appendingPathComponent(name).path)
            try writer.appendImage([Float](repeating: value, count: size * size), shape: [size, size], header: header)
            try writer.commit()
        }
        let r = try tool(["run", "infer.yaml", "--input", "mixed", "--output", "mixed.csv"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try read("mixed.csv").split(separator: "\n").count, 11)
        XCTAssert(r.stderr.contains("4 of 14 files failed; reasons:"), r.stderr)
        XCTAssert(r.stderr.contains("  blank.fits: every pixel of the 1 x 64 x 64 image is blank (NaN) or infinite"), r.stderr)
        XCTAssert(r.stderr.contains("  big.fits: after preprocessing the image has shape [1, 100, 100]"), r.stderr)
        XCTAssert(r.stderr.contains("  nokeys.fits: stage 'scale_by_noise' needs the header keyword SKYSIG"), r.stderr)
        XCTAssert(r.stderr.contains("  broken.fits: "), r.stderr)
        XCTAssertFalse(r.stderr.contains("nokeys.fits: nokeys.fits"), r.stderr)
        XCTAssert(r.stderr.contains("done 10, failed 4"), r.stderr)
        let first = try errorsFiles("mixed")
        XCTAssertEqual(first.count, 1)
        let errors = try read(first[0])
        XCTAssert(errors.hasPrefix("file,error\n") && errors.contains("\nbroken.fits,") && errors.contains("\nbig.fits,"), errors)

        // The next run keeps the first run's errors file and writes its own; a clean run writes none.
        XCTAssertEqual(try tool(["run", "infer.yaml", "--input", "mixed", "--output", "mixed.csv", "--quiet"]).status, 0)
        let second = try errorsFiles("mixed")
        XCTAssertEqual(second.count, 2, "\(second)")
        XCTAssert(second.contains(first[0]))
        for name in ["broken.fits", "big.fits", "nokeys.fits", "blank.fits"] { try FileManager.default.removeItem(at: mixed.appendingPathComponent(name)) }
        let clean = try tool(["run", "infer.yaml", "--input", "mixed", "--output", "mixed.csv"])
        XCTAssert(clean.stderr.contains("done 10, failed 0"), clean.stderr)
        XCTAssertEqual(try errorsFiles("mixed"), second)
        // Every run is recorded beside the output, with its errors file.
        let runs = try read("mixed.runs.jsonl").split(separator: "\n").map { try jsonObject(String($0)) }
        XCTAssertEqual(runs.count, 3)
        // (Two runs in the same second are stamped X and X-2, which sort the other way round.)
        let recorded = runs.compactMap { ($0["errors_file"] as? String).map { URL(fileURLWithPath: $0).lastPathComponent } }
        XCTAssertEqual(recorded.count, 2)
        XCTAssertEqual(Set(recorded), Set(second))
        XCTAssertEqual(recorded.first, first[0])
        XCTAssertEqual(runs.map { $0["failed"] as? Int }, [4, 4, 0])
        XCTAssertEqual(runs.map { $0["inference_precision"] as? String }, ["float32", "float32", "float32"])
        // A run asking for bfloat16 convolutions gets them where this machine runs them, and says which.
        let bfloat16 = try tool(["run", "infer.yaml", "--input", "mixed", "--output", "mixed.csv",
                                 "--set", "model.inference_precision=bfloat16"])
        let native = InferencePrecision.bfloat16.runsHere
        XCTAssert(bfloat16.stderr.contains(native ? "convolutions in bfloat16" : "convolutions in float32: "),
                  bfloat16.stderr)
        let last = try read("mixed.runs.jsonl").split(separator: "\n").map { try jsonObject(String($0)) }.last
        XCTAssertEqual(last?["inference_precision"] as? String, native ? "bfloat16" : "float32")
    }

    /// A crash inside the reader of one file (cfitsio's SIGFPE, say): the restart
    /// records that file as failed and finishes the others instead of crashing again.
    func testARestartAfterACrashWhileReadingSkipsThatFile() throws {
        let names = try String(contentsOf: Self.folder.appendingPathComponent("test/catalog.csv"), encoding: .utf8)
            .split(separator: "\n").dropFirst().map { String($0.split(separator: ",")[0]) }
        for (threads, culprit) in [(1, names[4]), (2, names[7])] {
            let output = "crash\(threads).csv"
            let arguments = ["run", "infer.yaml", "--output", output, "--set", "run.threads=\(threads)"]
            // Every run would crash on the culprit if it read it.
            let environment = ["ASTROLABE_CRASH_READING": culprit]
            let crashed = try tool(arguments + ["--quiet"], environment: environment)
            XCTAssertEqual(crashed.status, 136, "the first run dies while reading \(culprit)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: Self.folder.appendingPathComponent(output).path))
            var resumed = try tool(arguments, environment: environment)
            if threads > 1 && resumed.status == 136 {
                // Another file was being read at the crash too: the restart read the two alone, and died on the culprit.
                resumed = try tool(arguments, environment: environment)
            }
            XCTAssertEqual(resumed.status, 0, resumed.stderr)
            XCTAssert(resumed.stderr.contains("\(culprit): the process died while reading it"), resumed.stderr)
            XCTAssert(resumed.stderr.contains("infer: done 9 (") && resumed.stderr.contains("failed 1"), resumed.stderr)
            let rows = try read(output).split(separator: "\n").dropFirst().map { String($0.split(separator: ",")[0]) }
            XCTAssertEqual(rows, names.filter { $0 != culprit })
            let errors = try errorsFiles("crash\(threads)")
            XCTAssertEqual(errors.count, 1, "\(errors)")
            XCTAssertEqual(try read(errors[0]), "file,error\n\(culprit),the process died while reading it\n")
        }
    }

    /// A run on an output that another process is writing stops at once and names it.
    func testASecondRunOnABusyOutputNamesTheHolder() throws {
        let journal = Self.folder.appendingPathComponent(".busy.csv.journal")
        try Data(#"{"pid":\#(getpid())}"#.utf8 + [10]).write(to: journal)
        let fd = open(journal.path, O_RDWR)
        XCTAssertGreaterThanOrEqual(fd, 0)
        XCTAssertEqual(flock(fd, LOCK_EX | LOCK_NB), 0)
        let r = try tool(["run", "infer.yaml", "--output", "busy.csv", "--quiet"])
        close(fd)
        XCTAssertEqual(r.status, 1)
        XCTAssert(r.stderr.contains("another astrolabe process (PID \(getpid())) is writing this output"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: Self.folder.appendingPathComponent("busy.csv").path))
        try FileManager.default.removeItem(at: journal)
    }

    /// `evaluate --calibrate` fits a temperature, writes it (and the images' energy threshold)
    /// into a copy of the model file (never over an existing file), and runs with that copy give
    /// softmax(log p / T) of the original's.
    func testEvaluateCalibrateWritesTheTemperatureAndRunsUseIt() throws {
        let e = try tool(["evaluate", "infer.yaml", "--input", "test/catalog.csv", "--report", "calib-eval",
                          "--calibrate", "calibrated.safetensors"])
        XCTAssertEqual(e.status, 0, e.stderr)
        let metrics = try JSONSerialization.jsonObject(with: Data(try read("calib-eval/metrics.json").utf8)) as! [String: Any]
        let fitted = try XCTUnwrap(metrics["temperature_fitted"] as? Double)
        XCTAssertNotNil(metrics["ece"] as? Double)
        XCTAssertLessThanOrEqual(try XCTUnwrap(metrics["nll_after_temperature"] as? Double),
                                 try XCTUnwrap(metrics["nll"] as? Double) + 1e-12)
        XCTAssert(FileManager.default.fileExists(atPath: Self.folder.appendingPathComponent("calib-eval/reliability.png").path))
        let inspect = try tool(["inspect", "calibrated.safetensors"])
        XCTAssert(inspect.stdout.contains(String(format: "temperature   %.4f", fitted)), inspect.stdout)
        // The copy also records the energy threshold of these images (their 95th percentile).
        let threshold = try XCTUnwrap(metrics["ood_energy_p95"] as? Double)
        XCTAssert(inspect.stdout.contains(String(format: "ood energy    above %.3f", threshold)), inspect.stdout)

        let again = try tool(["evaluate", "infer.yaml", "--input", "test/catalog.csv", "--report", "calib-eval2",
                              "--calibrate", "calibrated.safetensors"])
        XCTAssertEqual(again.status, 1)
        XCTAssert(again.stderr.contains("the file exists"), again.stderr)

        XCTAssertEqual(try tool(["run", "infer.yaml", "--output", "calib-before.csv", "--quiet"]).status, 0)
        XCTAssertEqual(try tool(["run", "infer.yaml", "--output", "calib-after.csv", "--quiet",
                                 "--set", "model.weights=calibrated.safetensors"]).status, 0)
        func rows(_ name: String) throws -> [String: [Double]] {
            var out = [String: [Double]]()
            for line in try read(name).split(separator: "\n").dropFirst() {
                let fields = line.split(separator: ",").map(String.init)
                out[fields[0]] = fields.dropFirst(2).prefix(5).map { Double($0)! }
            }
            return out
        }
        let before = try rows("calib-before.csv"), after = try rows("calib-after.csv")
        XCTAssertEqual(before.count, 10)
        for (file, p) in before {
            let scaled = p.map { log($0) / fitted }, top = scaled.max()!
            let total = scaled.reduce(0) { $0 + exp($1 - top) }
            let expected = scaled.map { exp($0 - top) / total }
            for (a, b) in zip(try XCTUnwrap(after[file]), expected) { XCTAssertEqual(a, b, accuracy: 1e-4, file) }
        }
    }

    /// `run`, `predict` and `evaluate` give the same numbers for the same files.
    func testRunPredictAndEvaluateAgree() throws {
        XCTAssertEqual(try tool(["run", "infer.yaml", "--output", "same-run.csv", "--quiet"]).status, 0)
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.folder.appendingPathComponent("test").path)
            .filter { $0.hasSuffix(".fits") }.sorted().map { "test/" + $0 }
        let p = try tool(["predict", "--weights", "model.safetensors", "--output", "same-predict.csv"] + files)
        XCTAssertEqual(p.status, 0, p.stderr)
        let e = try tool(["evaluate", "infer.yaml", "--input", "test/catalog.csv", "--report", "same-eval"])
        XCTAssertEqual(e.status, 0, e.stderr)
        func table(_ name: String) throws -> [String: [String]] {
            var rows = [String: [String]]()
            for line in try read(name).split(separator: "\n").dropFirst() {
                let fields = line.split(separator: ",").map(String.init)
                rows[URL(fileURLWithPath: fields[0]).lastPathComponent] = fields
            }
            return rows
        }
        let run = try table("same-run.csv"), predict = try table("same-predict.csv"), evaluate = try table("same-eval/predictions.csv")
        XCTAssertEqual(run.count, 10)
        XCTAssertEqual(Set(predict.keys), Set(run.keys))
        for (file, row) in run {
            let numbers = row.dropFirst(2).map { Double($0)! }
            XCTAssertEqual(numbers.count, 5)
            for (a, b) in zip(numbers, try XCTUnwrap(predict[file]).dropFirst().map { Double($0)! }) {
                XCTAssertEqual(a, b, accuracy: 1e-5, "predict: \(file)")
            }
            XCTAssertEqual(row[1], evaluate[file]?[1], "evaluate: \(file)")
            for (a, b) in zip(numbers, try XCTUnwrap(evaluate[file]).dropFirst(2).map { Double($0)! }) {
                XCTAssertEqual(a, b, accuracy: 1e-5, "evaluate: \(file)")
            }
        }
    }

    func testModelAndDataMismatchIsOneClearMessage() throws {
        XCTAssertEqual(try tool(["simulate", "--task", "lens", "--count", "2", "--seed", "1", "--out", "cubes"]).status, 0)
        let r = try tool(["run", "infer.yaml", "--input", "cubes", "--output", "x.csv"])
        XCTAssertEqual(r.status, 1)
        XCTAssert(r.stderr.contains("after preprocessing the image has shape [3, 64, 64]"), r.stderr)
        XCTAssert(r.stderr.contains("takes [1, 64, 64]"), r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1)
    }

    func testPipelineTyposAreRejectedBeforeAnyWork() throws {
        try write("typo.yaml", "task: classify\nmodel: {weights: model.safetensors}\nrun: {batch_sise: 3}\n")
        let r = try tool(["run", "typo.yaml", "--input", "test", "--output", "never.csv"])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderr, "astrolabe: typo.yaml:3:7: run.batch_sise: Unknown key 'batch_sise' in run. "
                       + "Did you mean 'batch_size'? Known keys: batch_size, threads, on_error, errors_file, resume.\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: Self.folder.appendingPathComponent("never.csv").path))
    }
}
