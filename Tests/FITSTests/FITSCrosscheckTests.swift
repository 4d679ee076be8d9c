// Real FITS files read as astropy reads them: HDU kinds, names, shapes, header cards and
// pixels (scripts/fits_crosscheck.py writes what astropy reads).
import FITS
import Foundation
import TestSupport
import XCTest

final class FITSCrosscheckTests: XCTestCase {
    /// Tile-compressed files whose headers cfitsio 4.2's `fits_convert_hdr2str` rejects
    /// (BSCALE/BZERO before ZIMAGE, as older astropy wrote them; two such extensions).
    func testCompressedRegressionFixtures() throws {
        let expected = try loadCrosscheck(fixtureDirectory.appendingPathComponent("crosscheck.json"))
        XCTAssertEqual(Set(expected.files.keys), ["compressed_bzero.fits", "compressed_two_ext.fits"])
        for (name, hdus) in expected.files.sorted(by: { $0.key < $1.key }) {
            let mismatches = crosscheck(fixture(name), hdus)
            XCTAssertEqual(mismatches, [], name)
        }
        // The headers are the image headers, scaling included.
        let header = try FITSFile(path: fixture("compressed_two_ext.fits")).header(2)
        XCTAssertEqual(header.integer("BITPIX"), 16)
        XCTAssertEqual(header.integer("BZERO"), 1000)
        XCTAssertEqual(header.string("BUNIT"), "counts")
        XCTAssertNil(header["ZIMAGE"])
        XCTAssertNil(header["TFORM1"])
    }

    /// Every file of astropy's test data that astropy reads is read the same here. The
    /// folder is $ASTROLABE_FITS_DATA, else that of the installed astropy; the
    /// expectations come from scripts/fits_crosscheck.py, so python3 with astropy is needed.
    func testAstropyTestData() throws {
        guard runProcess("/usr/bin/env", ["python3", "-c", "import astropy"]).status == 0 else {
            throw XCTSkip("python3 with astropy is not installed (pip install astropy): astropy's test data are not compared")
        }
        let directory = try makeTemporaryDirectory("fits-crosscheck")
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("expected.json").path
        var arguments = ["python3", repositoryRoot.appendingPathComponent("scripts/fits_crosscheck.py").path, "--out", output]
        if let folder = ProcessInfo.processInfo.environment["ASTROLABE_FITS_DATA"] { arguments.append(folder) }
        let result = runProcess("/usr/bin/env", arguments)
        guard result.status == 0 else {
            throw XCTSkip("scripts/fits_crosscheck.py found no astropy test data: \(result.output)")
        }
        let expected = try loadCrosscheck(URL(fileURLWithPath: output))
        XCTAssertGreaterThan(expected.files.count, 0, "no FITS files in \(expected.folder)")
        var failing: [String] = []
        for (name, hdus) in expected.files.sorted(by: { $0.key < $1.key }) {
            let mismatches = crosscheck(expected.folder + "/" + name, hdus)
            if !mismatches.isEmpty { failing.append("\(name): " + mismatches.joined(separator: "; ")) }
        }
        XCTAssertEqual(failing, [], "files read differently from astropy")
        print("crosscheck: \(expected.files.count - failing.count) of \(expected.files.count) files read as astropy "
              + "reads them; \(expected.unreadable.count) that astropy rejects not compared: "
              + expected.unreadable.keys.sorted().joined(separator: ", "))
    }

    // MARK: - Comparison

    struct Crosscheck {
        var folder: String
        var files: [String: [[String: Any]]]
        var unreadable: [String: String]
    }

    private func loadCrosscheck(_ url: URL) throws -> Crosscheck {
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        return Crosscheck(folder: json["folder"] as? String ?? fixtureDirectory.path,
                          files: try XCTUnwrap(json["files"] as? [String: [[String: Any]]]),
                          unreadable: json["unreadable"] as? [String: String] ?? [:])
    }

    /// What differs between this module's reading of `path` and astropy's (`hdus`).
    private func crosscheck(_ path: String, _ hdus: [[String: Any]]) -> [String] {
        var problems: [String] = []
        do {
            let file = try FITSFile(path: path)
            let infos = try file.hdus()
            if infos.count != hdus.count { problems.append("\(infos.count) HDUs, astropy \(hdus.count)") }
            for (info, hdu) in zip(infos, hdus) {
                problems += try compare(file, info, hdu).map { "HDU \(info.index): \($0)" }
            }
        } catch {
            problems.append("\(error)")
        }
        return problems
    }

    private func compare(_ file: FITSFile, _ info: HDUInfo, _ hdu: [String: Any]) throws -> [String] {
        var problems: [String] = []
        let kind = hdu["kind"] as! String
        let expectedKind: HDUKind = ["image": .image, "groups": .image, "bintable": .binaryTable,
                                     "table": .asciiTable][kind]!
        if info.kind != expectedKind { problems.append("kind \(info.kind), astropy \(kind)") }
        let name = hdu["extname"] as! String
        if info.extensionName.uppercased() != name.uppercased() {
            problems.append("EXTNAME '\(info.extensionName)', astropy '\(name)'")
        }
        let shape = hdu["shape"] as! [Int]
        if info.shape != shape { problems.append("shape \(info.shape), astropy \(shape)") }

        let header = try file.header(.index(info.index))
        let cards = hdu["cards"] as! [String: Any]
        for (keyword, value) in cards.sorted(by: { $0.key < $1.key }) {
            guard let ours = header[keyword] else { problems.append("no \(keyword)"); continue }
            if !same(ours, value) { problems.append("\(keyword) = \(ours), astropy \(value)") }
        }
        let extra = header.records.filter { !["COMMENT", "HISTORY", ""].contains($0.keyword) && $0.value != .none }
            .map(\.keyword).filter { cards[$0] == nil }
        if !extra.isEmpty { problems.append("cards astropy does not show: \(extra)") }
        let trim = { (texts: [String]) in texts.map { $0.trimmingCharacters(in: .whitespaces) } }
        if trim(header.comments) != trim(hdu["comments"] as! [String]) { problems.append("COMMENT cards differ") }
        if trim(header.history) != trim(hdu["history"] as! [String]) { problems.append("HISTORY cards differ") }

        guard let stats = hdu["stats"] as? [String: Double] else { return problems }
        let image = try file.readImage(.index(info.index), as: Double.self)
        let ours = image.statistics
        if Double(image.pixels.count) != stats["count"] { problems.append("\(image.pixels.count) pixels, astropy \(stats["count"]!)") }
        if Double(ours.blankCount) != stats["blank"] { problems.append("\(ours.blankCount) blank, astropy \(stats["blank"]!)") }
        for (label, value) in [("min", ours.minimum), ("max", ours.maximum), ("mean", ours.mean),
                               ("std", ours.standardDeviation)] {
            if let reference = stats[label], !close(value ?? .nan, reference) {
                problems.append("\(label) \(value ?? .nan), astropy \(reference)")
            }
        }
        for sample in hdu["samples"] as! [[Any]] {
            let position = sample[0] as! Int
            let reference = (sample[1] as? NSNumber)?.doubleValue ?? .nan
            guard position < image.pixels.count else { problems.append("no pixel \(position)"); break }
            let value = image.pixels[position]
            if !(value.isNaN && reference.isNaN) && !close(value, reference) {
                problems.append("pixel \(position) = \(value), astropy \(reference)")
            }
        }
        return problems
    }

    /// astropy scales 8- and 16-bit integers to float32: 1e-6 relative covers that.
    private func close(_ a: Double, _ b: Double) -> Bool {
        abs(a - b) <= 1e-6 * max(1, abs(a), abs(b))
    }

    private func same(_ ours: HeaderValue, _ theirs: Any) -> Bool {
        switch (ours, theirs) {
        case let (.string(a), b as String): return a.trimmingCharacters(in: .whitespaces) == b.trimmingCharacters(in: .whitespaces)
        case let (.logical(a), b as Bool): return a == b
        case let (.integer(a), b as NSNumber): return Double(a) == b.doubleValue
        case let (.float(a), b as NSNumber):
            return abs(a - b.doubleValue) <= 1e-12 * max(1, abs(a))
        default: return false
        }
    }
}
