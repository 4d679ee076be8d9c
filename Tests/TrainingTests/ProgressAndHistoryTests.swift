import Foundation
import XCTest
import Plotting
import TestSupport
@testable import Training

final class ProgressAndHistoryTests: XCTestCase {
    func testPlainProgressLinesCarryRateETAAndValues() throws {
        let pipe = Pipe()
        let bar = ProgressBar(total: 4, label: "epoch 1/3", unit: "img", output: pipe.fileHandleForWriting,
                              forceTerminal: false, plainInterval: 0)
        bar.advance(values: ["loss": 0.5])
        bar.advance(by: 3, values: ["loss": 0.25, "accuracy": 0.9])
        try pipe.fileHandleForWriting.close()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let lines = text.split(separator: "\n")
        XCTAssertEqual(lines.count, 2)
        XCTAssert(lines[0].hasPrefix("epoch 1/3  1/4  "), String(lines[0]))
        XCTAssert(lines[0].contains("img/s") && lines[0].contains("ETA") && lines[0].contains("loss 0.5000"))
        XCTAssert(lines[1].contains("4/4") && lines[1].contains("accuracy 0.9000"))
        XCTAssertFalse(text.contains("\u{1B}"), "no terminal escapes when not a terminal")
    }

    func testTerminalProgressRedrawsOneLine() throws {
        let pipe = Pipe()
        let bar = ProgressBar(total: 2, label: "files", output: pipe.fileHandleForWriting, forceTerminal: true)
        bar.advance()
        bar.advance()
        try pipe.fileHandleForWriting.close()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssert(text.hasPrefix("\r\u{1B}[K"))
        XCTAssert(text.contains("█"))
        XCTAssert(text.hasSuffix("\n"))
    }

    func testDurations() {
        XCTAssertEqual(ProgressBar.duration(4.25), "4.2s")
        XCTAssertEqual(ProgressBar.duration(123), "2:03")
        XCTAssertEqual(ProgressBar.duration(3723), "1:02:03")
    }

    func testHistoryAlignsLateKeysAndWritesCSV() {
        var history = History()
        history.append([("loss", 1.0), ("accuracy", 0.5)])
        history.append([("loss", 0.5), ("accuracy", 0.75), ("val_loss", 0.6)])
        XCTAssertEqual(history.epochs, 2)
        XCTAssertEqual(history["loss"], [1.0, 0.5])
        XCTAssert(history["val_loss"]![0].isNaN)
        XCTAssertEqual(history.csv, "epoch,loss,accuracy,val_loss\n1,1.0,0.5,\n2,0.5,0.75,0.6\n")
    }

    func testAtomicWriteReplacesWholeAndLeavesNoTemporary() throws {
        let folder = try makeTemporaryDirectory("atomic")
        let url = folder.appendingPathComponent("log.csv")
        try writeAtomically(Data("one".utf8), to: url)
        try writeAtomically(Data("two".utf8), to: url)
        XCTAssertEqual(try String(contentsOf: url, encoding: .utf8), "two")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), ["log.csv"])
        try FileManager.default.removeItem(at: folder)
    }
}

final class PlotTests: XCTestCase {
    func testCurvesAndConfusionMatrixRenderAsPNG() throws {
        var history = History()
        for e in 0..<5 {
            history.append([("loss", 1 / Double(e + 1)), ("accuracy", 0.5 + 0.1 * Double(e)),
                            ("val_loss", 1.2 / Double(e + 1)), ("val_accuracy", 0.45 + 0.1 * Double(e)), ("lr", 0.01)])
        }
        let curves = TrainingPlots.curves(history)
        XCTAssertEqual(curves.height, 720, "loss panel above metrics panel")
        let matrix = TrainingPlots.confusionMatrix([[9, 1], [2, 8]], classNames: ["lens", "non_lens"])
        // The diagonal cell (largest fraction) is drawn greener than the off-diagonal one.
        let folder = try makeTemporaryDirectory("plots")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try curves.write(to: folder.appendingPathComponent("curves.png"))
        try matrix.write(to: folder.appendingPathComponent("confusion.png"))
        for name in ["curves.png", "confusion.png"] {
            let data = try Data(contentsOf: folder.appendingPathComponent(name))
            XCTAssertEqual(Array(data.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], "\(name) is a PNG")
        }
        try FileManager.default.removeItem(at: folder)
    }
}
