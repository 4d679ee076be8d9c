// End-to-end tests of `astrolabe inspect` on real files.
import FITS
import Foundation
import TestSupport
import XCTest

final class InspectCommandTests: XCTestCase {
    func testTextListsHDUsAndHeader() throws {
        let run = try runTool(["inspect", fixturePath("mef.fits")])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(run.stderr, "")
        for text in ["PRIMARY", "SCI", "ERR", "CAT", "bintable", "20 x 12", "OBSERVER= 'Astrolabe'",
                     "EXTNAME = 'SCI'"] {
            XCTAssertTrue(run.stdout.contains(text), "missing \(text) in\n\(run.stdout)")
        }
    }

    func testKeywordSelection() throws {
        let run = try runTool(["inspect", "--keyword", "OBJECT", "-k", "exptime", fixturePath("header.fits")])
        XCTAssertEqual(run.status, 0, run.stderr)
        let cards = run.stdoutLines.filter { $0.contains("= ") }
        XCTAssertEqual(cards.count, 2, run.stdout)
        XCTAssertTrue(cards[0].hasPrefix("OBJECT  = 'M13'"))
        XCTAssertTrue(cards[1].hasPrefix("EXPTIME ="))
    }

    /// The JSON shape scripts depend on, in its documented key order.
    func testJSONShapeWithStats() throws {
        let run = try runTool(["inspect", "--json", "--stats", fixturePath("rice.fits"), fixturePath("scaled_int16.fits")])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(run.stdoutLines.count, 2)
        XCTAssertTrue(run.stdoutLines[0].hasPrefix(
            "{\"file\": \"\(fixturePath("rice.fits"))\", \"hdus\": [{\"index\": 0, \"extname\": \"PRIMARY\", "
            + "\"type\": \"image\", \"bitpix\": 8, \"naxis\": [], \"compression\": null, \"stats\": null}, "
            + "{\"index\": 1, \"extname\": \"RICEIMG\", \"type\": \"image\", \"bitpix\": 16, \"naxis\": [30, 40], "
            + "\"compression\": \"RICE_1\", \"stats\": {\"min\": "), run.stdoutLines[0])
        let scaled = try jsonObject(run.stdoutLines[1])
        let hdu = try XCTUnwrap((scaled["hdus"] as? [[String: Any]])?.first)
        XCTAssertEqual(hdu["naxis"] as? [Int], [20, 12])
        let stats = try XCTUnwrap(hdu["stats"] as? [String: Any])
        XCTAssertEqual(stats["blank"] as? Int, 2)
        // The values astropy computes (Tests/FITSTests/Fixtures/expected.json).
        XCTAssertEqual(stats["min"] as? Double, -196.5)
        XCTAssertEqual(stats["max"] as? Double, 457.25)
        XCTAssertEqual(try XCTUnwrap(stats["mean"] as? Double), 130.68487394957984, accuracy: 1e-9)
        XCTAssertEqual(try XCTUnwrap(stats["std"] as? Double), 190.12691736883917, accuracy: 1e-9)
    }

    func testJSONWithoutStatsHasNoStatsKeyAndSelectsHDU() throws {
        let run = try runTool(["inspect", "--json", "--hdu", "SCI", "-k", "EXTNAME", fixturePath("mef.fits")])
        XCTAssertEqual(run.status, 0, run.stderr)
        let object = try jsonObject(run.stdout)
        let hdus = try XCTUnwrap(object["hdus"] as? [[String: Any]])
        XCTAssertEqual(hdus.count, 1)
        XCTAssertEqual(hdus[0]["index"] as? Int, 1)
        XCTAssertNil(hdus[0]["stats"])
        XCTAssertEqual((hdus[0]["header"] as? [String: Any])?["EXTNAME"] as? String, "SCI")
    }

    /// An all-NaN image: statistics are null, never NaN (which JSON cannot carry).
    func testNoNaNInJSON() throws {
        let directory = try makeTemporaryDirectory("cli-nan")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("nan.fits").path
        let writer = try FITSWriter(path: path)
        try writer.appendImage([Float](repeating: .nan, count: 16), shape: [4, 4])
        try writer.commit()
        let run = try runTool(["inspect", "--json", "--stats", path])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertFalse(run.stdout.lowercased().contains("nan\""))
        XCTAssertTrue(run.stdout.contains("\"stats\": {\"min\": null, \"max\": null, \"mean\": null, \"std\": null, \"blank\": 16}"),
                      run.stdout)
        XCTAssertNoThrow(try jsonObject(run.stdout))
    }

    /// The README's quick start: the shipped samples (scripts/make_sample_fits.py).
    func testShippedSamples() throws {
        let samples = ["samples/fits/field.fits", "samples/fits/galaxy.fits", "samples/fits/mask.fits"]
        let run = try runTool(["inspect", "--stats", "--json"] + samples)
        XCTAssertEqual(run.status, 0, run.stderr)
        let objects = try run.stdoutLines.map { try jsonObject($0) }
        XCTAssertEqual(objects.map { $0["file"] as? String }, samples)
        let field = try XCTUnwrap((objects[0]["hdus"] as? [[String: Any]])?.last)
        XCTAssertEqual(field["compression"] as? String, "RICE_1")
        XCTAssertEqual(field["naxis"] as? [Int], [128, 128])
        XCTAssertEqual((field["stats"] as? [String: Any])?["blank"] as? Int, 3)
        let text = try runTool(["inspect", "--stats"] + samples)
        XCTAssertEqual(text.status, 0, text.stderr)
        XCTAssertTrue(text.stdout.contains("CTYPE1  = 'RA---TAN'"), text.stdout)
    }

    // MARK: - Errors: exit 1, one line naming the file, the other files still shown

    func testUnreadableFilesGiveOneLineEachAndExitOne() throws {
        let directory = try makeTemporaryDirectory("cli-errors")
        defer { try? FileManager.default.removeItem(at: directory) }
        let cases = [fixturePath("truncated.fits"), fixturePath("garbage.fits"), fixturePath("empty.fits"),
                     directory.path, "no/such/file.fits"]
        for bad in cases {
            let run = try runTool(["inspect", "--json", bad, fixturePath("bitpix8.fits")])
            XCTAssertEqual(run.status, 1, bad)
            XCTAssertEqual(run.stderrLines.count, 1, run.stderr)
            XCTAssertTrue(run.stderr.hasPrefix("astrolabe: \(bad): "), run.stderr)
            XCTAssertEqual(run.stdoutLines.count, 1, "the good file is still listed")
            XCTAssertTrue(run.stdout.contains("bitpix8.fits"))
        }
    }

    func testMissingHDU() throws {
        let run = try runTool(["inspect", "--hdu", "NOPE", fixturePath("mef.fits")])
        XCTAssertEqual(run.status, 1)
        XCTAssertEqual(run.stderrLines.count, 1)
        XCTAssertTrue(run.stderr.contains("has no HDU 'NOPE'"), run.stderr)
    }

    func testAModelFileShowsItsRecipeObservationAndProvenance() throws {
        let r = try runTool(["inspect", "samples/models/regression.safetensors"], in: repositoryRoot)
        XCTAssertEqual(r.status, 0, r.stderr)
        for text in ["task          regress", "targets       sersic_n, r_e, q, mag (log10: r_e), with uncertainties",
                     "{\"scale_by_noise\":{\"sigma\":10}}", "{\"flip\":{\"p\":1}}   (training only)",
                     "pixel scale   0.2 arcsec/px", "PSF FWHM      0.6-1 arcsec", "sky noise     5-15 counts",
                     "zero point    30 (MAGZERO)", "image size    64 x 64", "pipeline: pipelines/train-regression.yaml"] {
            XCTAssert(r.stdout.contains(text), "missing '\(text)' in:\n\(r.stdout)")
        }
        // The posterior's second input channel is the header's PSF, said as such.
        let posterior = try runTool(["inspect", "samples/models/posterior.safetensors"], in: repositoryRoot)
        XCTAssert(posterior.stdout.contains("shape [2, 64, 64] (channels, height, width) after the stages, the last 1 from the header: PSF_FWHM"),
                  posterior.stdout)
        XCTAssert(posterior.stdout.contains("\"context_channels\":1"), posterior.stdout)
        XCTAssert(posterior.stdout.contains("\"views\":4"), "the context averaged over the four rotations: \(posterior.stdout)")
        XCTAssert(posterior.stdout.contains("\"inference_precision\":\"bfloat16\""), "convolutions in bfloat16: \(posterior.stdout)")
        XCTAssert(posterior.stdout.contains("precision     convolutions in bfloat16 at inference"), posterior.stdout)
        let forced = try runTool(["inspect", "samples/models/posterior.safetensors"], in: repositoryRoot,
                                 environment: ["ASTROLABE_BFLOAT16": "off"])
        XCTAssert(forced.stdout.contains("float32 on this machine"), forced.stdout)
        XCTAssert(posterior.stdout.contains("neighbours    intervals of rows flagged 'neighbours' widened sersic_n x2.44/x3.61"),
                  posterior.stdout)
        XCTAssert(posterior.stdout.contains("sky           intervals of rows flagged 'sky' widened sersic_n x1.43/x1.56"), posterior.stdout)
        XCTAssert(posterior.stdout.contains("none          intervals of rows without those flags scaled sersic_n x0.99/x0.99"), posterior.stdout)
        let bad = try runTool(["inspect", "Package.swift.safetensors"], in: repositoryRoot)
        XCTAssertEqual(bad.status, 1)
        XCTAssert(bad.stderr.hasPrefix("astrolabe: Package.swift.safetensors: "), bad.stderr)
    }
}
