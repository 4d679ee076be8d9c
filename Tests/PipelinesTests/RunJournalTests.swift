import Foundation
import XCTest
@testable import Pipelines

final class RunJournalTests: XCTestCase {
    func testResumeSkipsFinishedRetriesFailedAndSurvivesATornLine() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("journal-\(UUID().uuidString)")
        let url = folder.appendingPathComponent(".out.csv.journal")
        do {
            let journal = try RunJournal(url: url, resume: true)
            XCTAssertEqual(journal.resumedCount, 0)
            try journal.record([.init(file: "a.fits", row: ["a.fits", "spiral"]),
                                .init(file: "b.fits", error: "corrupt header")])
        }
        // A process killed mid-write leaves half a line.
        let handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(#"{"file":"c.fits","ro"#.utf8))
        try handle.close()

        let resumed = try RunJournal(url: url, resume: true)
        XCTAssertEqual(resumed.resumedCount, 1)
        XCTAssertTrue(resumed.isFinished("a.fits"))
        XCTAssertFalse(resumed.isFinished("b.fits"), "failures are retried")
        XCTAssertFalse(resumed.isFinished("c.fits"), "a torn line does not count")
        XCTAssertEqual(resumed.failed["b.fits"], "corrupt header")
        try resumed.record([.init(file: "b.fits", row: ["b.fits", "star"])])
        let again = try RunJournal(url: url, resume: true)
        XCTAssertEqual(again.finished, ["a.fits": ["a.fits", "spiral"], "b.fits": ["b.fits", "star"]])
        XCTAssertTrue(again.failed.isEmpty)
        try again.finish()
        XCTAssertFalse(FileManager.default.fileExists(atPath: url.path))

        let fresh = try RunJournal(url: url, resume: false)
        XCTAssertEqual(fresh.resumedCount, 0)
        try FileManager.default.removeItem(at: folder)
    }
}
