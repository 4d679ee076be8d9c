import Foundation
import TestSupport
import XCTest
@testable import Pipelines

final class RunJournalTests: XCTestCase {
    let spiral = Prediction.classes(ClassProbabilities(probabilities: [0.25, 0.75]))
    let star = Prediction.classes(ClassProbabilities(probabilities: [0.9, 0.1]))

    func testResumeSkipsFinishedRetriesFailedAndSurvivesATornLine() throws {
        let folder = try makeTemporaryDirectory("journal")
        let url = folder.appendingPathComponent(".out.csv.journal")
        do {
            let journal = try RunJournal(url: url, resume: true)
            XCTAssertEqual(journal.resumedCount, 0)
            try journal.record([.init(file: "a.fits", prediction: spiral), .init(file: "b.fits", error: "corrupt header")])
            try journal.close()
        }
        // A process killed mid-write leaves half a line.
        let handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(#"{"file":"c.fits","pre"#.utf8))
        try handle.close()

        let resumed = try RunJournal(url: url, resume: true)
        XCTAssertEqual(resumed.resumedCount, 1)
        XCTAssertTrue(resumed.isFinished("a.fits"))
        XCTAssertFalse(resumed.isFinished("b.fits"), "failures are retried")
        XCTAssertFalse(resumed.isSettled("b.fits"))
        XCTAssertFalse(resumed.isFinished("c.fits"), "a torn line does not count")
        XCTAssertEqual(resumed.failed["b.fits"], "corrupt header")
        try resumed.record([.init(file: "b.fits", prediction: star)])
        try resumed.close()
        let again = try RunJournal(url: url, resume: true)
        XCTAssertEqual(again.finished, ["a.fits": spiral, "b.fits": star])
        XCTAssertTrue(again.failed.isEmpty)
        // Numbers are stored as JSON numbers, not formatted text.
        let text = try String(contentsOf: url, encoding: .utf8)
        XCTAssert(text.contains(#"{"file":"a.fits","prediction":{"classes":{"probabilities":[0.25,0.75]}}}"#), text)
        try again.finish()
        XCTAssertFalse(FileManager.default.fileExists(atPath: url.path))

        let fresh = try RunJournal(url: url, resume: false)
        XCTAssertEqual(fresh.resumedCount, 0)
        try fresh.finish()
    }

    /// A run on the journal at `url` that dies after marking `reading` (file, started?) in order.
    func crashedRun(_ url: URL, reading marks: [(String, Bool)]) throws {
        let journal = try RunJournal(url: url, resume: true)
        for (file, started) in marks { try journal.markReading(file, started) }
        try journal.close()
    }

    /// A file marked as being read when the process died is recorded as failed on
    /// resume and not read again; one whose reading ended is retried as usual.
    func testAFileInFlightAtACrashIsFailedNotRetried() throws {
        let url = try makeTemporaryDirectory("journal").appendingPathComponent(".out.csv.journal")
        try crashedRun(url, reading: [("ok.fits", true), ("ok.fits", false), ("bad.fits", true)])
        let resumed = try RunJournal(url: url, resume: true)
        XCTAssertEqual(resumed.failed, ["bad.fits": RunJournal.diedWhileReading])
        XCTAssertTrue(resumed.isSettled("bad.fits"))
        XCTAssertFalse(resumed.isSettled("ok.fits"))
        try resumed.close()
        // It stays settled even if this run dies too.
        let third = try RunJournal(url: url, resume: true)
        XCTAssertTrue(third.isSettled("bad.fits"))
        XCTAssertEqual(third.died, ["bad.fits"])
        try third.finish()
    }

    /// Several files in flight at a crash are suspects, read one at a time by the next
    /// run; if that run dies too, only the file it was reading is blamed.
    func testFilesInFlightTogetherAreSuspectsUntilOneIsAlone() throws {
        let url = try makeTemporaryDirectory("journal").appendingPathComponent(".out.csv.journal")
        try crashedRun(url, reading: [("a.fits", true), ("b.fits", true)])
        do {
            let second = try RunJournal(url: url, resume: true)
            XCTAssertEqual(second.suspects, ["a.fits", "b.fits"])
            XCTAssertTrue(second.failed.isEmpty)
            XCTAssertFalse(second.isSettled("a.fits"))
            try second.close()
        }
        try crashedRun(url, reading: [("a.fits", true)])
        let third = try RunJournal(url: url, resume: true)
        XCTAssertEqual(third.failed, ["a.fits": RunJournal.diedWhileReading])
        XCTAssertTrue(third.suspects.isEmpty, "b.fits, left over from the first crash, is retried as usual")
        XCTAssertFalse(third.isSettled("b.fits"))
        try third.finish()
    }

    func testTheJournalIsLockedWithTheHoldersPID() throws {
        let url = try makeTemporaryDirectory("journal").appendingPathComponent(".out.csv.journal")
        let holder = try RunJournal(url: url, resume: true)
        XCTAssertThrowsError(try RunJournal(url: url, resume: false, output: "out.csv")) {
            XCTAssertEqual($0 as? PipelineError, .outputBusy(output: "out.csv", journal: url.path, pid: getpid()))
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: url.path), "the refused opener does not truncate it")
        try holder.finish()
        let next = try RunJournal(url: url, resume: false)
        try next.finish()
    }
}
