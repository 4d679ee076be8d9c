import AstroBase
import FITS
import Foundation
import NN
import Preprocessing
import SkySim
import TestSupport
import XCTest
@testable import Pipelines

/// `input.fit_profiles`: the central galaxy of a blend fitted as a Sérsic profile from a deblender's
/// image, and the posterior of a bright galaxy from a profile fit's likelihood (regression).
final class ProfileFitTests: XCTestCase {
    let psfSigma = 0.8 / 0.2 / 2.3548

    /// A blend of a galaxy, a neighbour galaxy 6 px away and a star; the "network's" image is
    /// the central galaxy 25 % too faint, 1.5 px off and too round. The fit finds all three
    /// sources and gives the central galaxy back within a few per cent of its flux, its
    /// image within a fraction of the noise.
    func testFitsTheCentralGalaxyFromAnImperfectNetworkImage() {
        let fitter = SceneFit(width: 64, height: 64, psfSigma: psfSigma, skySigma: 8, gain: 1)
        let central = FitComponent.sersic(x: 31.8, y: 32.4, flux: 8_000, halfLightRadius: 3.5, n: 3, q: 0.55, angle: 0.4)
        let neighbour = FitComponent.sersic(x: 37.5, y: 34.5, flux: 12_000, halfLightRadius: 4, n: 1.2, q: 0.7, angle: 2.2)
        let star = FitComponent.point(x: 20, y: 42, flux: 20_000)
        var random = SeededGenerator(seed: 11)
        let blend = NoiseModel.noisy(fitter.image([central, neighbour, star]), skySigma: 8, gain: 1, random: &random)
        var wrong = central
        wrong.x += 1.5; wrong.flux *= 0.75; wrong.q = 0.9
        let guess = fitter.image([wrong]).map { Float($0) }
        let result = ProfileFitting().fit(blend: blend, central: guess, width: 64, height: 64, skySigma: 8,
                                          psfSigma: psfSigma, gain: 1)
        let fitted = try? XCTUnwrap(result)
        XCTAssertEqual(fitted?.components.count, 3, "\(fitted?.components ?? [])")
        let galaxy = try? XCTUnwrap(fitted?.components.first)
        XCTAssertEqual(galaxy?.flux ?? 0, 8_000, accuracy: 400)
        XCTAssertEqual(galaxy?.x ?? 0, 31.8, accuracy: 0.2)
        XCTAssertEqual(galaxy?.q ?? 0, 0.55, accuracy: 0.08)
        let truth = fitter.image([central]), image = fitter.image(galaxy.map { [$0] } ?? [])
        let rms = (zip(truth, image).map { ($0 - $1) * ($0 - $1) }.reduce(0, +) / Double(truth.count)).squareRoot()
        XCTAssertLessThan(rms, 0.1 * 8, "rms \(rms) counts against a sky σ of 8")
        XCTAssertEqual(fitted?.reducedChiSquare ?? 0, 1, accuracy: 0.1)
    }

    /// An image without light gives no fit (the pipeline then writes the network's image).
    func testNoLightNoFit() {
        let blend = [Float](repeating: 0, count: 32 * 32)
        XCTAssertNil(ProfileFitting().fit(blend: blend, central: blend, width: 32, height: 32, skySigma: 5, psfSigma: 1.7, gain: 1))
    }

    /// Through the pipeline: simulated blends, a tiny U-Net, `fit_profiles: true`. Each output
    /// says what was fitted (`FIT_*` cards, or `FIT_NSRC = 0`); a blend without `PSF_FWHM` or
    /// `PIXSCALE` is that file's error, naming the keyword and how to give it; a model of another task is refused.
    func testPipelineWritesTheFittedGalaxyWithItsCardsAndNamesMissingKeywords() throws {
        let root = try makeTemporaryDirectory("profile-fit")
        defer { try? FileManager.default.removeItem(at: root) }
        let data = root.appendingPathComponent("blends")
        _ = try Simulator(task: .deblend, seed: 5).writeDataset(count: 2, to: data)
        let net = UNet(inputChannels: 1, classCount: 1, widths: [4, 8], seed: 3)
        let input = try PipelineLoader.parse("task: deblend\nmodel: {weights: x.safetensors}", file: "d.yaml").input
        let recipe = ModelRecipe(task: .deblend, stages: [.scaleByNoise(.header(keyword: "SKYSIG", bandKeywords: []))],
                                 input: input, inputShape: [1, 64, 64])
        let model = root.appendingPathComponent("deblend.safetensors")
        try ModelFile(model: net, architecture: Architecture(name: .unet, inChannels: 1, classes: 1, widths: [4, 8]),
                      preprocessing: recipe.json).write(to: model)
        // Copies of the first blend without PSF_FWHM, and without PIXSCALE.
        let first = try FITSFile(path: data.appendingPathComponent("deblend_000000.fits").path)
        let image = try first.readImage(0, as: Float.self)
        for (keyword, name) in [("PSF_FWHM", "nopsf.fits"), ("PIXSCALE", "noscale.fits")] {
            var header = try first.header()
            header.records.removeAll { $0.keyword == keyword }
            let writer = try FITSWriter(path: data.appendingPathComponent(name).path)
            try writer.appendImage(image.pixels, shape: [64, 64], header: FITSHeader(header.derivedImageRecords))
            try writer.commit()
        }

        let pipeline = root.appendingPathComponent("fit.yaml")
        try "task: deblend\ninput: {fit_profiles: true}\nmodel: {weights: \(model.path)}\n".write(to: pipeline, atomically: true, encoding: .utf8)
        let out = root.appendingPathComponent("out")
        let run = try PipelineRunner(pipelinePath: pipeline.path, options: RunOptions(input: data.path, output: out.path, quiet: true))
            .predictAll()
        XCTAssertEqual(run.summary.done, 2)
        XCTAssertEqual(run.summary.failed, 2)
        let errors = try String(contentsOfFile: try XCTUnwrap(run.summary.errorsFile), encoding: .utf8)
        for (name, keyword) in [("nopsf.fits", "PSF_FWHM"), ("noscale.fits", "PIXSCALE")] {
            let line = errors.split(separator: "\n").first { $0.contains(name) }.map(String.init) ?? ""
            XCTAssert(line.contains(keyword) && line.contains("input.header_values"), errors)
        }
        var fitted = 0
        for name in ["deblend_000000.fits", "deblend_000001.fits"] {
            let file = try FITSFile(path: out.appendingPathComponent(name).path)
            let cards = try file.header()
            let sources = try XCTUnwrap(cards["FIT_NSRC"]?.doubleValue, name)
            guard sources > 0 else { continue }
            fitted += 1
            // The image is the fitted profile: no negative pixel, and no more light than its total flux.
            let pixels = try file.readImage(0, as: Float.self).pixels
            XCTAssert(pixels.allSatisfy { $0 >= 0 }, name)
            let flux = try XCTUnwrap(cards["FIT_FLUX"]?.doubleValue)
            XCTAssertLessThanOrEqual(pixels.reduce(0, +), Float(flux) * 1.001, name)
            XCTAssertNotNil(cards["FIT_MAG"]?.doubleValue, "MAGZERO is in the simulated header")
            XCTAssertNotNil(cards["FIT_CHI2"]?.doubleValue)
            XCTAssertGreaterThan(cards["FIT_MAGE"]?.doubleValue ?? 0, 0, "the magnitude's Fisher error")
        }
        XCTAssertGreaterThan(fitted, 0, "the untrained network's image holds some light to start from")
        // fit_profiles belongs to deblenders.
        let classifier = root.appendingPathComponent("classify.safetensors")
        try ModelFile(model: UNet(inputChannels: 1, classCount: 1, widths: [4, 8], seed: 3),
                      architecture: Architecture(name: .unet, inChannels: 1, classes: 1, widths: [4, 8]),
                      preprocessing: ModelRecipe(task: .segment, stages: [], input: input, inputShape: [1, 64, 64]).json)
            .write(to: classifier)
        let other = root.appendingPathComponent("other.yaml")
        try "task: segment\ninput: {fit_profiles: true}\nmodel: {weights: \(classifier.path)}\n".write(to: other, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try PipelineRunner(pipelinePath: other.path, options: RunOptions(input: data.path, output: root.appendingPathComponent("o2").path,
                                                                                           quiet: true)).predictAll()) {
            XCTAssert($0.localizedDescription.contains("fit_profiles"), $0.localizedDescription)
        }
    }

    /// `regress-sersic.yaml` (the shipped posterior model, `fit_profiles: true`) on the 30 shipped
    /// regression samples and copies of the brightest without `PSF_FWHM` and without `GAIN`: the
    /// galaxies the network puts at mag ≤ 19.5 get the fit's posterior (`posterior_from` profile_fit), with
    /// ordered percentiles inside the prior ranges and the truth within 4 half-intervals of every
    /// median; fainter ones and the copy without a PSF keep the network's; the copy without a gain
    /// is fitted at 1 e-/count and its record says so. The same run with
    /// `fit_profiles: false` has no profile_fit rows, and the Gaussian regressor is refused by name.
    func testBrightGalaxiesGetTheProfileFitsPosterior() throws {
        let root = try makeTemporaryDirectory("refine")
        defer { try? FileManager.default.removeItem(at: root) }
        let samples = repositoryRoot.appendingPathComponent("samples/regression")
        let data = root.appendingPathComponent("data")
        try FileManager.default.copyItem(at: samples, to: data)
        let truth = try Catalog.resolve(samples.appendingPathComponent("catalog.csv").path,
                                        targetColumns: ["sersic_n", "r_e", "q", "mag"]).entries
        let brightest = try XCTUnwrap(truth.min { $0.targets[3] < $1.targets[3] })
        let source = try FITSFile(path: brightest.url.path)
        for (keyword, name) in [("PSF_FWHM", "nopsf.fits"), ("GAIN", "nogain.fits")] {
            var header = try source.header()
            header.records.removeAll { $0.keyword == keyword }
            let writer = try FITSWriter(path: data.appendingPathComponent(name).path)
            try writer.appendImage(try source.readImage(0, as: Float.self).pixels, shape: [64, 64],
                                   header: FITSHeader(header.derivedImageRecords))
            try writer.commit()
        }

        let pipeline = repositoryRoot.appendingPathComponent("pipelines/regress-sersic.yaml").path
        func run(_ name: String, _ settings: [String] = []) throws -> InferenceRun {
            try PipelineRunner(pipelinePath: pipeline, options: RunOptions(input: data.path, output: root.appendingPathComponent(name).path,
                                                                           overrides: settings, quiet: true)).predictAll()
        }
        let refined = try run("fit.csv")
        let bounds: [ClosedRange<Double>] = [0.5...6, 0.3...3, 0.2...1, 17...22]
        var fitted = 0
        for (entry, prediction) in refined.results {
            guard case let .posterior(p) = prediction else { return XCTFail("\(entry.name): \(prediction)") }
            guard let row = truth.first(where: { $0.url.lastPathComponent == entry.url.lastPathComponent }) else {
                if entry.url.lastPathComponent == "nogain.fits" {
                    XCTAssertEqual(p.source, ProfileRefinement.source, "without GAIN the fit assumes 1 e-/count")
                } else {
                    XCTAssertEqual(entry.url.lastPathComponent, "nopsf.fits")
                    XCTAssertNil(p.source, "no PSF in the header: the network's posterior")
                }
                continue
            }
            guard p.source == ProfileRefinement.source else {
                XCTAssertGreaterThan(p.medians[3], 19.5 - 0.5, "\(entry.name): a bright galaxy kept the network's posterior")
                continue
            }
            fitted += 1
            XCTAssertLessThan(row.targets[3], 20, entry.name)
            for k in 0..<4 {
                XCTAssert(p.p025[k] <= p.p16[k] && p.p16[k] <= p.medians[k] && p.medians[k] <= p.p84[k] && p.p84[k] <= p.p975[k],
                          "\(entry.name) target \(k)")
                XCTAssert(bounds[k].contains(p.p025[k]) && bounds[k].contains(p.p975[k]), "\(entry.name) target \(k)")
                let half = (row.targets[k] < p.medians[k] ? p.medians[k] - p.p16[k] : p.p84[k] - p.medians[k])
                XCTAssertLessThan(abs(row.targets[k] - p.medians[k]), 4 * half, "\(entry.name) target \(k): \(row.targets[k]) vs \(p)")
            }
        }
        XCTAssertGreaterThanOrEqual(fitted, 12, "16 of the 30 samples are brighter than 19.5")
        let csv = try String(contentsOf: root.appendingPathComponent("fit.csv"), encoding: .utf8).split(separator: "\n")
        XCTAssert(csv[0].hasSuffix(",posterior_from"), String(csv[0]))
        XCTAssertEqual(csv.dropFirst().filter { $0.hasSuffix(",profile_fit") }.count, fitted + 1, "and nogain.fits")
        // The run record says which files the fit gave, and the gain it assumed where GAIN is missing.
        let record = try String(contentsOf: root.appendingPathComponent("fit.runs.jsonl"), encoding: .utf8)
        let first = try XCTUnwrap(record.split(separator: "\n").first)
        let notes = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(first.utf8)) as? [String: Any])["assumptions"]
            as? [String: [String]]
        let gainNotes = try XCTUnwrap(notes?.first { $0.key.hasSuffix("nogain.fits") }?.value)
        XCTAssert(gainNotes.contains { $0.contains("no GAIN") } && gainNotes.contains { $0.contains("profile fit") }, "\(gainNotes)")
        XCTAssertEqual(notes?.filter { $0.value.contains { $0.contains("no GAIN") } }.count, 1, "only the file without GAIN")

        let plain = try run("plain.csv", ["input.fit_profiles=false"])
        XCTAssert(plain.results.allSatisfy { if case let .posterior(p) = $0.1 { return p.source == nil } else { return false } })
        XCTAssertThrowsError(try run("gauss.csv", ["model.weights=\(repositoryRoot.path)/samples/models/regression.safetensors"])) {
            XCTAssert($0.localizedDescription.contains("fit_profiles") && $0.localizedDescription.contains("posterior"),
                      $0.localizedDescription)
        }
    }
}
