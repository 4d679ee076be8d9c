// `astrolabe bench --workload fits --quick` prints the BENCH.md JSON lines.
import Foundation
import TestSupport
import XCTest

final class BenchFITSTests: XCTestCase {
    func testQuickBenchPrintsBothMetrics() throws {
        let run = try runTool(["bench", "--workload", "fits", "--quick"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let objects = try run.stdoutLines.map { try jsonObject($0) }
        XCTAssertEqual(objects.count, 2, run.stdout)
        for (object, metric) in zip(objects, ["fits_read_cutouts_per_s", "fits_read_big_mb_per_s"]) {
            XCTAssertGreaterThan(try XCTUnwrap(object[metric] as? Double, run.stdout), 0)
        }
    }
}
