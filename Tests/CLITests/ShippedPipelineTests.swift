import FITS
import Foundation
import TestSupport
import XCTest

/// Each shipped pipeline, on the shipped samples with the shipped weights, writes
/// the outputs TASKS.md documents ("Shipped pipelines and what they write").
final class ShippedPipelineTests: XCTestCase {
    func runPipeline(_ name: String, output: URL, input: String? = nil) throws {
        var arguments = ["run", "pipelines/\(name).yaml", "--output", output.path, "--quiet", "--fresh"]
        if let input { arguments += ["--input", input] }
        let r = try runTool(arguments)
        XCTAssertEqual(r.status, 0, "\(name): \(r.stderr)")
    }

    func rows(_ url: URL) throws -> [[String]] {
        try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
    }

    func sampleNames(_ task: String) throws -> [String] {
        try String(contentsOf: repositoryRoot.appendingPathComponent("samples/\(task)/catalog.csv"), encoding: .utf8)
            .split(separator: "\n").dropFirst().map { String($0.split(separator: ",")[0]) }
    }

    func testClassifyGalaxies() throws {
        let out = try makeTemporaryDirectory("shipped").appendingPathComponent("morphology.csv")
        try runPipeline("classify-galaxies", output: out)
        let table = try rows(out)
        // TASKS.md's columns, then the quality columns (docs/real-data.md).
        XCTAssertEqual(table[0], ["file", "predicted", "p_elliptical", "p_spiral", "p_edge_on", "p_irregular", "p_star",
                                  "in_domain", "outside_domain", "ood_energy", "ood_features"])
        // The samples follow the model's observation: no row is outside it (pixel scale, PSF,
        // depth). The flags `atypical` (energy) and `unfamiliar` (feature distance) each mark by
        // construction 5 % of held-out simulated images (their thresholds are 95th percentiles):
        // a few of the 30 may carry them.
        for row in table.dropFirst() {
            let flags = row[8].split(separator: ";").map(String.init)
            XCTAssert(flags.allSatisfy { ["atypical", "unfamiliar"].contains($0) }, "\(row[0]): outside the observation: \(row[8])")
            XCTAssertEqual(row[7], row[8].isEmpty ? "yes" : "no", row[0])
            XCTAssertGreaterThan(Double(row[10])!, 0, "a squared distance")
        }
        XCTAssertLessThanOrEqual(table.dropFirst().filter { !$0[8].isEmpty }.count, 6, "about 5 % atypical, 5 % unfamiliar")
        XCTAssertEqual(table.dropFirst().map { $0[0] }, try sampleNames("morphology"))
        // The shipped model is right on most of the samples (their labels are in the catalog).
        let names = ["elliptical", "spiral", "edge_on", "irregular", "star"]
        let truth = try String(contentsOf: repositoryRoot.appendingPathComponent("samples/morphology/catalog.csv"), encoding: .utf8)
            .split(separator: "\n").dropFirst().map { Int($0.split(separator: ",")[1])! }
        let correct = zip(table.dropFirst(), truth).filter { names.firstIndex(of: $0.0[1]) == $0.1 }.count
        XCTAssertGreaterThanOrEqual(Double(correct) / Double(truth.count), 0.8)
    }

    /// `evaluate --calibrate` on a ResNet classifier fits its feature density (class means and
    /// covariance on the even-numbered files, the threshold on the odd-numbered ones) into the
    /// copy; runs with the copy say `unfamiliar` for images whose features are far from every
    /// class's: cutouts of sky noise alone, which the network still puts in a class.
    func testFeatureDensityFlagsImagesWithoutAGalaxy() throws {
        let dir = try makeTemporaryDirectory("density")
        let sim = dir.appendingPathComponent("sim"), noise = dir.appendingPathComponent("noise")
        var r = try runTool(["simulate", "--task", "morphology", "--count", "400", "--seed", "77", "--out", sim.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let model = dir.appendingPathComponent("calibrated.safetensors"), report = dir.appendingPathComponent("report")
        r = try runTool(["evaluate", "pipelines/classify-galaxies.yaml", "--input", sim.appendingPathComponent("catalog.csv").path,
                         "--report", report.path, "--calibrate", model.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let metrics = try JSONSerialization.jsonObject(with: Data(contentsOf: report.appendingPathComponent("metrics.json"))) as! [String: Any]
        let threshold = try XCTUnwrap(metrics["ood_features_threshold"] as? Double)
        let inspect = try runTool(["inspect", model.path])
        XCTAssert(inspect.stdout.contains("(200 held-out images); above " + String(format: "%.1f", threshold)
                                          + " the row says 'unfamiliar'"), inspect.stdout)
        // Sky noise alone, with a simulated file's header (SKYSIG, PSF, pixel scale).
        try FileManager.default.createDirectory(at: noise, withIntermediateDirectories: true)
        var image = try FITSFile(path: sim.appendingPathComponent("morphology_000000.fits").path).readImage(0, as: Float.self)
        let sigma = try XCTUnwrap(image.header["SKYSIG"]?.doubleValue)
        var state: UInt64 = 12345
        func uniform() -> Double {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return (Double(state >> 11) + 0.5) / Double(1 << 53)
        }
        for k in 0..<10 {
            for i in image.pixels.indices { image.pixels[i] = Float(sigma * (-2 * log(uniform())).squareRoot() * cos(2 * .pi * uniform())) }
            try FITSWriter.write(image, to: noise.appendingPathComponent("noise\(k).fits").path)
        }
        func run(_ input: URL, _ name: String) throws -> [[String]] {
            let out = dir.appendingPathComponent(name)
            let r = try runTool(["run", "pipelines/classify-galaxies.yaml", "--input", input.path, "--output", out.path, "--quiet",
                                 "--set", "model.weights=\(model.path)"])
            XCTAssertEqual(r.status, 0, r.stderr)
            return Array(try rows(out).dropFirst())
        }
        let noiseRows = try run(noise, "noise.csv"), simRows = try run(sim, "sim.csv")
        XCTAssertEqual(noiseRows.count, 10)
        for row in noiseRows {
            XCTAssert(row[8].split(separator: ";").contains("unfamiliar"), "\(row)")
            XCTAssertGreaterThan(Double(row[10])!, threshold)
        }
        // The simulated files themselves: by construction about 5 % of the odd-numbered ones.
        let flagged = simRows.filter { $0[8].split(separator: ";").contains("unfamiliar") }.count
        XCTAssertLessThanOrEqual(flagged, 40, "\(flagged) of 400 simulated files unfamiliar")
        // evaluate with the copy reports what the flags say about labelled rows, as the run's rows show.
        let again = dir.appendingPathComponent("again")
        r = try runTool(["evaluate", "pipelines/classify-galaxies.yaml", "--input", sim.appendingPathComponent("catalog.csv").path,
                         "--report", again.path, "--set", "model.weights=\(model.path)"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let flags = try JSONSerialization.jsonObject(with: Data(contentsOf: again.appendingPathComponent("metrics.json"))) as! [String: Any]
        XCTAssertEqual(try XCTUnwrap(flags["flagged_unfamiliar"] as? Double), Double(flagged) / 400, accuracy: 1e-9)
        let atypical = simRows.filter { $0[8].split(separator: ";").contains("atypical") }.count
        XCTAssertEqual(try XCTUnwrap(flags["flagged_atypical"] as? Double), Double(atypical) / 400, accuracy: 1e-9)
        // The energy ranks the network's mistakes well above chance.
        XCTAssertGreaterThan(try XCTUnwrap(flags["error_auroc_energy"] as? Double), 0.7)
        XCTAssertNotNil(flags["error_auroc_features"] as? Double)
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(flags["accuracy_unflagged"] as? Double), try XCTUnwrap(flags["accuracy_flagged"] as? Double))
    }

    func testFindLenses() throws {
        let out = try makeTemporaryDirectory("shipped").appendingPathComponent("lenses.csv")
        try runPipeline("find-lenses", output: out)
        let table = try rows(out)
        XCTAssertEqual(table[0], ["file", "predicted", "p_non_lens", "p_lens", "in_domain", "outside_domain", "ood_energy", "ood_features"])
        XCTAssertEqual(table.dropFirst().map { $0[0] }, try sampleNames("lens"))
        for row in table.dropFirst() {
            XCTAssert(["lens", "non_lens"].contains(row[1]))
            XCTAssertEqual(Double(row[2])! + Double(row[3])!, 1, accuracy: 1e-4)
        }
    }

    func testRegressSersic() throws {
        let out = try makeTemporaryDirectory("shipped").appendingPathComponent("sersic.csv")
        try runPipeline("regress-sersic", output: out)
        let table = try rows(out)
        let targets = ["sersic_n", "r_e", "q", "mag"]
        XCTAssertEqual(table[0], ["file"] + targets + targets.flatMap { t in ["_p16", "_p84", "_p025", "_p975"].map { t + $0 } }
                                 + ["in_domain", "outside_domain", "ood_features", "posterior_from"])
        XCTAssertEqual(table.count, 31)
        // The bright half of the samples gets the profile fit's posterior (fit_profiles).
        XCTAssert(table.dropFirst().allSatisfy { ["network", "profile_fit"].contains($0.last!) })
        XCTAssertGreaterThanOrEqual(table.dropFirst().filter { $0.last == "profile_fit" }.count, 12)
        for row in table.dropFirst() {
            XCTAssertGreaterThan(Double(row[23])!, 0, "a squared distance")
            let v = row[1...20].map { Double($0)! }
            XCTAssert((0.05...30).contains(v[1]) && (15...25).contains(v[3]), "r_e in arcsec (not log10), mag in range: \(row)")
            for t in 0..<4 {
                let p = Array(v[(4 + 4 * t)..<(8 + 4 * t)])
                XCTAssert(p[2] < p[0] && p[0] < v[t] && v[t] < p[1] && p[1] < p[3], "ordered percentiles of \(targets[t]): \(row)")
            }
        }
    }

    /// The shipped posterior model's feature density (fitted on held-out TASKS.md cutouts)
    /// says `unfamiliar` for stars, which are no Sérsic galaxy (measured: 191 of 194 of
    /// `simulate --task morphology --seed 11`), and seldom for Sérsic ellipticals (1 of 214).
    func testRegressSersicSaysUnfamiliarForStars() throws {
        let dir = try makeTemporaryDirectory("sersic-stars")
        let data = dir.appendingPathComponent("morphology"), out = dir.appendingPathComponent("sersic.csv")
        let r = try runTool(["simulate", "--task", "morphology", "--count", "120", "--seed", "78", "--out", data.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        try runPipeline("regress-sersic", output: out, input: data.path)
        let labels = Dictionary(uniqueKeysWithValues: try rows(data.appendingPathComponent("catalog.csv")).dropFirst()
            .filter { $0.count == 2 }.map { ($0[0], Int($0[1])!) })
        var counts = [Int: (all: Int, unfamiliar: Int)]()
        let table = try rows(out)
        XCTAssertEqual(table[0].suffix(2), ["ood_features", "posterior_from"])
        for row in table.dropFirst() {
            let label = try XCTUnwrap(labels[row[0]], row[0])
            let says = row[row.count - 3].split(separator: ";").contains("unfamiliar")
            counts[label, default: (0, 0)].all += 1
            if says { counts[label]!.unfamiliar += 1 }
        }
        let stars = try XCTUnwrap(counts[4]), ellipticals = try XCTUnwrap(counts[0])
        XCTAssertGreaterThanOrEqual(stars.all, 10)
        XCTAssertGreaterThanOrEqual(Double(stars.unfamiliar), 0.85 * Double(stars.all), "stars: \(stars)")
        XCTAssertLessThanOrEqual(Double(ellipticals.unfamiliar), 0.15 * Double(ellipticals.all), "ellipticals: \(ellipticals)")
    }

    /// `input.mask_neighbours` on cutouts with neighbours: rows say so and the magnitudes move
    /// towards the truth; galaxies alone keep their values; maps and class models refuse the key.
    func testRegressSersicWithNeighboursMasked() throws {
        let dir = try makeTemporaryDirectory("masked")
        let data = dir.appendingPathComponent("nb")
        var r = try runTool(["simulate", "--task", "regression", "--count", "12", "--seed", "9", "--neighbours", "1", "--out", data.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        func run(_ input: String, masked: Bool, _ name: String) throws -> [[String]] {
            let out = dir.appendingPathComponent(name)
            let r = try runTool(["run", "pipelines/regress-sersic.yaml", "--input", input, "--output", out.path, "--quiet", "--fresh",
                                 "--set", "input.mask_neighbours=\(masked)"])
            XCTAssertEqual(r.status, 0, r.stderr)
            return try rows(out)
        }
        let plain = try run(data.path, masked: false, "plain.csv"), masked = try run(data.path, masked: true, "masked.csv")
        let truth = try String(contentsOf: data.appendingPathComponent("catalog.csv"), encoding: .utf8).split(separator: "\n").dropFirst()
            .map { Double($0.split(separator: ",")[4])! }
        XCTAssertEqual(masked[0].suffix(3), ["outside_domain", "ood_features", "posterior_from"])
        let flagged = masked.dropFirst().filter { $0[$0.count - 3].split(separator: ";").contains("neighbours") }.count
        XCTAssertGreaterThanOrEqual(flagged, 8, "rows whose neighbours were masked say so")
        XCTAssert(plain.dropFirst().allSatisfy { !$0[$0.count - 3].contains("neighbours") })
        // A flagged row keeps the network's posterior: the profile fit assumes a galaxy alone.
        XCTAssert(masked.dropFirst().allSatisfy { !$0[$0.count - 3].contains("neighbours") || $0.last == "network" })
        func error(_ table: [[String]]) -> Double {
            zip(table.dropFirst(), truth).map { abs(Double($0.0[4])! - $0.1) }.sorted()[truth.count / 2]
        }
        XCTAssertLessThan(error(masked), error(plain) / 2, "median |mag error| masked \(error(masked)), plain \(error(plain))")
        // The shipped samples have no neighbours: the same values with the key as without.
        let samples = repositoryRoot.appendingPathComponent("samples/regression").path
        XCTAssertEqual(try run(samples, masked: true, "s1.csv"), try run(samples, masked: false, "s2.csv"))
        for (pipeline, output) in [("segment-sky", "maps"), ("classify-galaxies", "classes.csv")] {
            r = try runTool(["run", "pipelines/\(pipeline).yaml", "--output", dir.appendingPathComponent(output).path, "--quiet",
                             "--set", "input.mask_neighbours=true"])
            XCTAssertNotEqual(r.status, 0, pipeline)
            XCTAssert(r.stderr.contains("input.mask_neighbours is for single-profile measurements"), r.stderr)
        }
    }

    func testRegressSersicFitsAResidualSkyAgainstThePredictedGalaxy() throws {
        let dir = try makeTemporaryDirectory("sky")
        let clean = dir.appendingPathComponent("clean"), pedestal = dir.appendingPathComponent("pedestal")
        var r = try runTool(["simulate", "--task", "regression", "--count", "12", "--seed", "9", "--out", clean.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        // The same galaxies on a sky left in: 0.6 σ at the centre rising by 1 σ across the cutout (the
        // frame's level stays under 1 σ, so observation matching's pedestal check leaves most of it).
        try FileManager.default.createDirectory(at: pedestal, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: clean.appendingPathComponent("catalog.csv"), to: pedestal.appendingPathComponent("catalog.csv"))
        let names = try String(contentsOf: clean.appendingPathComponent("catalog.csv"), encoding: .utf8).split(separator: "\n").dropFirst()
            .map { String($0.split(separator: ",")[0]) }
        for (k, name) in names.enumerated() {
            var image = try FITSFile(path: clean.appendingPathComponent(name).path).readImage(0, as: Float.self)
            let sigma = try XCTUnwrap(image.header["SKYSIG"]?.doubleValue)
            let sign = k % 2 == 0 ? 1.0 : -1.0
            for y in 0..<64 { for x in 0..<64 {
                image.pixels[y * 64 + x] += Float(sigma * (sign * 0.6 + Double(x - 32) / 64))
            } }
            try FITSWriter.write(image, to: pedestal.appendingPathComponent(name).path)
        }
        func run(_ input: URL, fit: Bool, _ name: String) throws -> [[String]] {
            let out = dir.appendingPathComponent(name)
            let r = try runTool(["run", "pipelines/regress-sersic.yaml", "--input", input.path, "--output", out.path, "--quiet", "--fresh",
                                 "--set", "input.fit_sky=\(fit)"])
            XCTAssertEqual(r.status, 0, r.stderr)
            return try rows(out)
        }
        let plain = try run(pedestal, fit: false, "plain.csv"), fitted = try run(pedestal, fit: true, "fitted.csv")
        let truth = try String(contentsOf: clean.appendingPathComponent("catalog.csv"), encoding: .utf8).split(separator: "\n").dropFirst()
            .map { Double($0.split(separator: ",")[4])! }
        let flagged = fitted.dropFirst().filter { $0[$0.count - 3].split(separator: ";").contains("sky") }.count
        XCTAssertGreaterThanOrEqual(flagged, 10, "rows whose sky was fitted say so")
        XCTAssert(plain.dropFirst().allSatisfy { !$0[$0.count - 3].contains("sky") })
        func error(_ table: [[String]]) -> Double {
            zip(table.dropFirst(), truth).map { abs(Double($0.0[4])! - $0.1) }.sorted()[truth.count / 2]
        }
        XCTAssertLessThan(error(fitted), error(plain) / 2, "median |mag error| fitted \(error(fitted)), plain \(error(plain))")
        // Cutouts whose sky was subtracted (TASKS.md) are left exactly as they are.
        XCTAssertEqual(try run(clean, fit: true, "c1.csv"), try run(clean, fit: false, "c2.csv"))
        r = try runTool(["run", "pipelines/classify-galaxies.yaml", "--output", dir.appendingPathComponent("classes.csv").path,
                         "--quiet", "--set", "input.fit_sky=true"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssert(r.stderr.contains("input.fit_sky fits a sky under a predicted Sérsic galaxy"), r.stderr)
    }

    func testSegmentSkyWritesClassMapsWithTheInputWCS() throws {
        let folder = try makeTemporaryDirectory("shipped").appendingPathComponent("segmented")
        try runPipeline("segment-sky", output: folder, input: "samples/skymap/skymap_1024.fits")
        let file = try FITSFile(path: folder.appendingPathComponent("skymap_1024.fits").path)
        let map = try file.readImage(0, as: Float.self)
        XCTAssertEqual(try file.hduInfo(0).bitpix, 8)
        XCTAssertEqual(map.shape, [1024, 1024])
        XCTAssert(map.pixels.allSatisfy { [0, 1, 2].contains($0) })
        let input = try FITSFile(path: repositoryRoot.appendingPathComponent("samples/skymap/skymap_1024.fits").path).header()
        for key in ["CTYPE1", "CRVAL1", "CRPIX1", "CRPIX2"] { XCTAssertEqual(map.header[key], input[key], key) }
        XCTAssertEqual(try file.readImage("PROB", as: Float.self).shape, [1024, 1024, 3])
        XCTAssertGreaterThan(map.pixels.filter { $0 == 2 }.count, 100, "galaxies are found")
    }
}
