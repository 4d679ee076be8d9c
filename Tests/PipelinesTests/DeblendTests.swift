import Autograd
import FITS
import Foundation
import NN
import Preprocessing
import TestSupport
import Training
import XCTest
@testable import Pipelines

/// The deblend task through the one inference path: blends in, the central galaxy's image
/// in counts out, one float32 FITS file per input with the input's header.
final class DeblendTests: XCTestCase {
    static let size = 32

    /// A tiny U-Net (1 in, 1 out) in a model file whose recipe scales by `SKYSIG`.
    func writeModel(_ url: URL, stages: [Stage] = [.scaleByNoise(.header(keyword: "SKYSIG", bandKeywords: []))]) throws -> UNet {
        let net = UNet(inputChannels: 1, classCount: 1, widths: [4, 8], seed: 7)
        let input = try PipelineLoader.parse("task: deblend\nmodel: {weights: x.safetensors}", file: "d.yaml").input
        let recipe = ModelRecipe(task: .deblend, stages: stages, input: input, inputShape: [1, Self.size, Self.size])
        try ModelFile(model: net, architecture: Architecture(name: .unet, inChannels: 1, classes: 1, widths: [4, 8]),
                      preprocessing: recipe.json).write(to: url)
        return net
    }

    /// A blend with WCS and `SKYSIG` in the primary HDU and a `TRUTH` extension.
    func writeBlend(_ url: URL, seed: UInt64, sigma: Double, size: Int = size, truth: Bool = true) throws -> [Float] {
        var rng = SeededGenerator(seed: seed)
        let pixels = (0..<(size * size)).map { _ in Float(sigma * rng.normal()) + 50 }
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let writer = try FITSWriter(path: url.path)
        try writer.appendImage(pixels, shape: [size, size], header: FITSHeader([
            HeaderRecord("SKYSIG", .float(sigma)), HeaderRecord("CTYPE1", .string("RA---TAN")),
            HeaderRecord("CTYPE2", .string("DEC--TAN")), HeaderRecord("CRVAL1", .float(150.25)),
            HeaderRecord("CRVAL2", .float(2.5)), HeaderRecord("CRPIX1", .float(16.5)), HeaderRecord("CRPIX2", .float(16.5)),
            HeaderRecord("CDELT1", .float(-5.6e-5)), HeaderRecord("CDELT2", .float(5.6e-5)), HeaderRecord("NNEIGH", .integer(2)),
        ]))
        if truth { try writer.appendImage(pixels.map { $0 / 2 }, shape: [size, size], extensionName: "TRUTH") }
        try writer.commit()
        return pixels
    }

    func runner(_ folder: URL, model: URL, input: String, output: String, extra: String = "") throws -> PipelineRunner {
        let pipeline = folder.appendingPathComponent("deblend.yaml")
        try """
        task: deblend
        model: {weights: \(model.path)}
        \(extra)
        """.write(to: pipeline, atomically: true, encoding: .utf8)
        return try PipelineRunner(pipelinePath: pipeline.path, options: RunOptions(input: input, output: output, quiet: true))
    }

    func testDeblendWritesOneImageInCountsPerInputWithTheInputsHeader() throws {
        let root = try makeTemporaryDirectory("deblend")
        let modelURL = root.appendingPathComponent("deblend.safetensors")
        let net = try writeModel(modelURL)
        net.eval()
        let sigmas = [4.0, 9.0]
        var blends = [[Float]]()
        for (i, sigma) in sigmas.enumerated() {
            blends.append(try writeBlend(root.appendingPathComponent("blends/b\(i).fits"), seed: UInt64(i + 1), sigma: sigma))
        }
        // A file of another size is that file's failure; the others are written.
        _ = try writeBlend(root.appendingPathComponent("blends/small.fits"), seed: 9, sigma: 3, size: 16)
        let out = root.appendingPathComponent("out")
        let run = try runner(root, model: modelURL, input: root.appendingPathComponent("blends").path, output: out.path)
            .predictAll()
        XCTAssertEqual(run.summary.done, 2)
        XCTAssertEqual(run.summary.failed, 1)
        XCTAssertEqual(run.results.map(\.prediction), [.deblended(DeblendedImage(output: "b0.fits")),
                                                       .deblended(DeblendedImage(output: "b1.fits"))])
        let errors = try String(contentsOfFile: try XCTUnwrap(run.summary.errorsFile), encoding: .utf8)
        XCTAssert(errors.contains("small.fits") && errors.contains("[1, 32, 32]"), errors)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("small.fits").path))

        for (i, sigma) in sigmas.enumerated() {
            let file = try FITSFile(path: out.appendingPathComponent("b\(i).fits").path)
            let image = try file.readImage(0, as: Float.self)
            XCTAssertEqual(image.shape, [Self.size, Self.size])
            let header = try file.header()
            XCTAssertEqual(header["CTYPE1"], .string("RA---TAN"))
            XCTAssertEqual(header["CRVAL1"]?.doubleValue ?? 0, 150.25, accuracy: 1e-9)
            XCTAssertEqual(header["CRPIX2"]?.doubleValue ?? 0, 16.5, accuracy: 1e-9)
            XCTAssertEqual(header["BUNIT"], .string("count"))
            XCTAssertEqual(header["BITPIX"]?.doubleValue, -32)
            // The generator's output on x / σ, carried back to counts: × σ.
            let expected = withNoGrad {
                net(Tensor(shape: [1, 1, Self.size, Self.size], data: blends[i].map { $0 / Float(sigma) }))
            }.scalars.map { $0 * Float(sigma) }
            let worst = zip(image.pixels, expected).map { abs($0 - $1) / (1 + abs($1)) }.max() ?? .infinity
            XCTAssertLessThan(worst, 1e-3, "b\(i).fits: the output is the network's in counts")
            XCTAssert(image.pixels.allSatisfy(\.isFinite))
        }
        // The two outputs differ by more than the scale: the scaling is undone per file.
        let csv = try FITSFile(path: out.appendingPathComponent("b1.fits").path).readImage(0, as: Float.self)
        XCTAssertNotEqual(csv.pixels, try FITSFile(path: out.appendingPathComponent("b0.fits").path).readImage(0, as: Float.self).pixels)
    }

    func testStagesThatCannotBeUndoneAndMissingHDUsAreClearErrors() throws {
        let root = try makeTemporaryDirectory("deblend-bad")
        _ = try writeBlend(root.appendingPathComponent("blends/a.fits"), seed: 1, sigma: 5)
        let input = root.appendingPathComponent("blends").path
        let asinhModel = root.appendingPathComponent("asinh.safetensors")
        _ = try writeModel(asinhModel, stages: [.asinh(AsinhScaling(softening: 1))])
        XCTAssertThrowsError(try runner(root, model: asinhModel, input: input, output: root.appendingPathComponent("o1").path,
                                        extra: "run: {on_error: stop}").predictAll()) {
            XCTAssert($0.localizedDescription.contains("'asinh' is not such a stage"), $0.localizedDescription)
        }
        let model = root.appendingPathComponent("deblend.safetensors")
        _ = try writeModel(model)
        XCTAssertThrowsError(try runner(root, model: model, input: input, output: root.appendingPathComponent("o2").path,
                                        extra: "input: {hdu: BLEND}\nrun: {on_error: stop}").predictAll()) {
            XCTAssert($0.localizedDescription.contains("BLEND"), $0.localizedDescription)
        }
        // A file without SKYSIG cannot be scaled: the message names the keyword.
        let writer = try FITSWriter(path: root.appendingPathComponent("blends/nosig.fits").path)
        try writer.appendImage([Float](repeating: 1, count: Self.size * Self.size), shape: [Self.size, Self.size])
        try writer.commit()
        let run = try runner(root, model: model, input: input, output: root.appendingPathComponent("o3").path).predictAll()
        XCTAssertEqual(run.summary.done, 1)
        let errors = try String(contentsOfFile: try XCTUnwrap(run.summary.errorsFile), encoding: .utf8)
        XCTAssert(errors.contains("nosig.fits") && errors.contains("SKYSIG"), errors)
    }

    func trainingPipeline(_ root: URL, data: URL, extra: String = "", loss: String = "mae",
                          architecture: String = "unet", adversarial: String? = nil, epochs: Int = 1) throws -> PipelineRunner {
        let pipeline = root.appendingPathComponent("train.yaml")
        try """
        task: deblend
        stages:
          - scale_by_noise: {keyword: SKYSIG}
          - flip
        model:
          architecture: {name: \(architecture), classes: 1, widths: [4, 8]}
          train: {data: \(data.path), epochs: \(epochs), batch_size: 4, loss: \(loss), learning_rate: 0.003, seed: 3,
                  \(adversarial.map { "adversarial: \($0)," } ?? "") save: \(root.appendingPathComponent("m.safetensors").path)}
        \(extra)
        """.write(to: pipeline, atomically: true, encoding: .utf8)
        return try PipelineRunner(pipelinePath: pipeline.path, options: RunOptions(quiet: true))
    }

    func testTrainThenRunADeblender() throws {
        let root = try makeTemporaryDirectory("deblend-train")
        let data = root.appendingPathComponent("blends")
        for i in 0..<8 { _ = try writeBlend(data.appendingPathComponent("b\(i).fits"), seed: UInt64(10 + i), sigma: 5) }
        let summary = try trainingPipeline(root, data: data).train()
        XCTAssertEqual(summary.done, 7, "validation_split 0.1 holds 1 of 8 blends out")
        let model = try TrainedModel(contentsOf: root.appendingPathComponent("m.safetensors"))
        XCTAssertEqual(model.recipe.task, .deblend)
        XCTAssertEqual(model.recipe.inputShape, [1, Self.size, Self.size])
        XCTAssertEqual(model.architecture.name, .unet)
        XCTAssertEqual([model.architecture.inChannels, model.architecture.classes], [1, 1])
        let history = try String(contentsOf: root.appendingPathComponent("m.history.csv"), encoding: .utf8)
        let lines = history.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false) }
        let column = try XCTUnwrap(lines.first?.firstIndex(of: "loss"), history)
        let loss = try XCTUnwrap(Double(lines.last![column]), history)
        XCTAssert(loss.isFinite && loss > 0, history)

        // The trained model through the inference path: one image per input, in counts.
        let out = root.appendingPathComponent("out")
        let run = try runner(root, model: root.appendingPathComponent("m.safetensors"), input: data.path, output: out.path)
            .predictAll()
        XCTAssertEqual(run.summary.done, 8)
        let image = try FITSFile(path: out.appendingPathComponent("b0.fits").path).readImage(0, as: Float.self)
        XCTAssertEqual(image.shape, [Self.size, Self.size])
        XCTAssert(image.pixels.allSatisfy(\.isFinite))

        // A blend without its TRUTH, another architecture or a loss on classes: clear errors.
        let bare = root.appendingPathComponent("bare")
        _ = try writeBlend(bare.appendingPathComponent("x.fits"), seed: 1, sigma: 5, truth: false)
        XCTAssertThrowsError(try trainingPipeline(root, data: bare).train()) {
            XCTAssert($0.localizedDescription.contains("TRUTH extension"), $0.localizedDescription)
        }
        XCTAssertThrowsError(try trainingPipeline(root, data: data, architecture: "resnet18").train()) {
            XCTAssert($0.localizedDescription.contains("a deblend model is a U-Net"), $0.localizedDescription)
        }
        XCTAssertThrowsError(try trainingPipeline(root, data: data, loss: "cross_entropy").train()) {
            XCTAssert($0.localizedDescription.contains("mae (L1), mse or huber"), $0.localizedDescription)
        }

        // evaluate: the model and the classical deblender against TRUTH, and the picture grid.
        let evaluation = root.appendingPathComponent("eval")
        let report = try runner(root, model: root.appendingPathComponent("m.safetensors"), input: data.path,
                                output: root.appendingPathComponent("unused").path).evaluate(into: evaluation)
        XCTAssertEqual(report.metrics["count"], 8)
        for name in ["model", "classical"] {
            let undefined = try XCTUnwrap(report.metrics["\(name)_flux_undefined"])
            XCTAssert((0...8).contains(undefined))
            for metric in ["psnr_median", "ssim_median"] + (undefined < 8 ? ["flux_error_median", "flux_error_nmad"] : []) {
                let value = try XCTUnwrap(report.metrics["\(name)_\(metric)"], "\(name)_\(metric)")
                XCTAssert(value.isFinite, "\(name)_\(metric) = \(value)")
            }
        }
        // The model's PSNR, recomputed here from the written images: 10 log10(max(TRUTH)² / MSE), median of 8.
        var psnrs = [Double]()
        for i in 0..<8 {
            let blend = try FITSFile(path: data.appendingPathComponent("b\(i).fits").path)
            let truth = try blend.readImage("TRUTH", as: Float.self).pixels
            let output = try FITSFile(path: evaluation.appendingPathComponent("deblended/b\(i).fits").path)
                .readImage(0, as: Float.self).pixels
            let mse = zip(output, truth).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +) / Double(truth.count)
            psnrs.append(10 * log10(Double(truth.max()!) * Double(truth.max()!) / mse))
        }
        psnrs.sort()
        XCTAssertEqual(report.metrics["model_psnr_median"]!, (psnrs[3] + psnrs[4]) / 2, accuracy: 1e-6)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: evaluation.appendingPathComponent("metrics.json")))
        XCTAssertNotNil((json as? [String: Double])?["model_ssim_median"])
        XCTAssert(try String(contentsOf: evaluation.appendingPathComponent("report.md"), encoding: .utf8).contains("grid.png"))
        XCTAssert(FileManager.default.fileExists(atPath: evaluation.appendingPathComponent("grid.png").path))
        XCTAssert(FileManager.default.fileExists(atPath: evaluation.appendingPathComponent("deblended/b3.fits").path))
        // --compare and --sersic: a second pipeline with the same model measures the same, and a regression
        // model measures each method's image against the galaxy observed alone.
        let sersicModel = root.appendingPathComponent("sersic.safetensors")
        let sersicArchitecture = Architecture(name: .cnn, inChannels: 1, classes: 2, imageSize: Self.size)
        let regressionInput = try PipelineLoader.parse("task: regress\nmodel: {weights: x.safetensors}", file: "r.yaml").input
        try ModelFile(model: try sersicArchitecture.makeModel(seed: 5), architecture: sersicArchitecture,
                      preprocessing: ModelRecipe(task: .regress, stages: [.scaleByNoise(.header(keyword: "SKYSIG", bandKeywords: []))],
                                                 input: regressionInput, inputShape: [1, Self.size, Self.size],
                                                 targetScaling: TargetScaling(names: ["sersic_n", "r_e"], mean: [2, 1], std: [1, 0.5],
                                                                              logTargets: [])).json).write(to: sersicModel)
        let second = root.appendingPathComponent("second")
        try FileManager.default.createDirectory(at: second, withIntermediateDirectories: true)
        _ = try runner(second, model: root.appendingPathComponent("m.safetensors"), input: data.path, output: "unused")
        let compared = try runner(root, model: root.appendingPathComponent("m.safetensors"), input: data.path,
                                  output: root.appendingPathComponent("unused3").path)
            .evaluate(into: root.appendingPathComponent("eval-compare"), compare: [second.appendingPathComponent("deblend.yaml")],
                      sersicModel: sersicModel)
        for metric in ["psnr_median", "ssim_median", "flux_undefined", "sersic_sersic_n_median", "sersic_r_e_nmad"] {
            let value = try XCTUnwrap(compared.metrics["model_\(metric)"], metric)
            XCTAssertEqual(compared.metrics["deblend_\(metric)"], value, "the same model through --compare: \(metric)")
            XCTAssertNotNil(compared.metrics["classical_\(metric)"], metric)
        }
        XCTAssertEqual(compared.metrics["model_psnr_median"]!, report.metrics["model_psnr_median"]!, accuracy: 1e-9)
        XCTAssert(["sersic_n", "r_e"].allSatisfy { compared.metrics["classical_sersic_\($0)_nmad"]?.isFinite == true })
        XCTAssert(FileManager.default.fileExists(atPath: root.appendingPathComponent("eval-compare/deblended-deblend/b0.fits").path))
        XCTAssertThrowsError(try runner(root, model: root.appendingPathComponent("m.safetensors"), input: data.path, output: "x")
                                .evaluate(into: root.appendingPathComponent("eval-bad"), sersicModel: root.appendingPathComponent("m.safetensors"))) {
            XCTAssert($0.localizedDescription.contains("regression model"), $0.localizedDescription)
        }
        XCTAssertThrowsError(try runner(root, model: root.appendingPathComponent("m.safetensors"), input: bare.path,
                                        output: root.appendingPathComponent("unused2").path)
                                .evaluate(into: root.appendingPathComponent("eval-bare"))) {
            XCTAssert($0.localizedDescription.contains("TRUTH extension") && $0.localizedDescription.contains("x.fits"),
                      $0.localizedDescription)
        }
    }

    /// pix2pix through the pipeline: `model.train.adversarial` trains the U-Net against a
    /// PatchGAN with the GAN API; both networks move, the checkpoint (kept) resumes, and
    /// typos or settings it does not use are clear errors.
    func testAdversarialTrainingChangesBothNetworksAndResumes() throws {
        let root = try makeTemporaryDirectory("deblend-gan")
        let data = root.appendingPathComponent("blends")
        for i in 0..<8 { _ = try writeBlend(data.appendingPathComponent("b\(i).fits"), seed: UInt64(30 + i), sigma: 5) }
        let adversarial = "{l1_weight: 100, discriminator_width: 4, ema_decay: 0.5, label_smoothing: 0.1}"
        let gan = { (epochs: Int) in
            try self.trainingPipeline(root, data: data, extra: "", adversarial: adversarial, epochs: epochs)
        }
        let summary = try gan(1).train()
        XCTAssertEqual(summary.done, 7)
        let save = root.appendingPathComponent("m.safetensors")
        let checkpoint = try GANCheckpoint(contentsOf: root.appendingPathComponent("m.checkpoint.safetensors"))
        XCTAssertEqual(checkpoint.completedEpochs, 1)
        // Both networks left their initial weights (the runner's seeds: train seed 3 + 0x5EED and + 0xD15C).
        let arch = Architecture(name: .unet, inChannels: 1, classes: 1, widths: [4, 8])
        let initialGenerator = try arch.makeModel(seed: 3 &+ 0x5EED).stateDict()
        let initialDiscriminator = PatchDiscriminator(inputChannels: 2, width: 4, seed: 3 &+ 0xD15C).stateDict()
        func moved(_ now: [String: Tensor], _ before: [String: Tensor], _ what: String) {
            XCTAssertEqual(Set(now.keys), Set(before.keys), what)
            let changed = before.keys.filter { now[$0]!.scalars != before[$0]!.scalars }
            XCTAssertFalse(changed.isEmpty, "\(what) did not change")
            XCTAssert(now.values.allSatisfy { $0.scalars.allSatisfy(\.isFinite) }, what)
        }
        moved(checkpoint.generator, initialGenerator, "generator")
        moved(checkpoint.discriminator, initialDiscriminator, "discriminator")
        // The model file holds the averaged generator (ema_decay), a plain U-Net for inference.
        let model = try TrainedModel(contentsOf: save)
        XCTAssertEqual(model.recipe.task, .deblend)
        XCTAssert(model.recipe.provenance?["adversarial"]?.contains("pix2pix") == true)
        let saved = try Safetensors(contentsOf: save).tensors
        for (key, averaged) in checkpoint.averaged {
            XCTAssertEqual(saved[key]?.scalars, averaged.scalars, key)
        }
        let history = try String(contentsOf: root.appendingPathComponent("m.history.csv"), encoding: .utf8)
        let header = history.split(separator: "\n").first.map { $0.split(separator: ",").map(String.init) } ?? []
        XCTAssert(["d_loss", "g_loss", "l1_loss", "d_real", "d_fake", "val_l1_loss"].allSatisfy(header.contains), history)
        XCTAssert(FileManager.default.fileExists(atPath: root.appendingPathComponent("m-curves.png").path))

        // Started again with more epochs: it continues from the checkpoint.
        _ = try gan(2).train()
        XCTAssertEqual(try GANCheckpoint(contentsOf: root.appendingPathComponent("m.checkpoint.safetensors")).completedEpochs, 2)
        let rows = try String(contentsOf: root.appendingPathComponent("m.history.csv"), encoding: .utf8)
            .split(separator: "\n").count
        XCTAssertEqual(rows, 3, "a header and two epochs")

        // A typo in the new keys, an unknown adversarial loss, a loss other than L1: typed errors.
        XCTAssertThrowsError(try trainingPipeline(root, data: data, adversarial: "{l1_wieght: 100}")) {
            XCTAssert($0.localizedDescription.contains("l1_wieght") && $0.localizedDescription.contains("l1_weight"),
                      $0.localizedDescription)
        }
        XCTAssertThrowsError(try trainingPipeline(root, data: data, adversarial: "{loss: wasserstein}")) {
            XCTAssert($0.localizedDescription.contains("wasserstein") && $0.localizedDescription.contains("non_saturating"),
                      $0.localizedDescription)
        }
        XCTAssertThrowsError(try trainingPipeline(root, data: data, adversarial: "{ema_decay: 1.5}")) {
            XCTAssert($0.localizedDescription.contains("ema_decay"), $0.localizedDescription)
        }
        XCTAssertThrowsError(try trainingPipeline(root, data: data, adversarial: "{sample_count: 8}").train()) {
            XCTAssert($0.localizedDescription.contains("sample_count"), $0.localizedDescription)
        }
        XCTAssertThrowsError(try trainingPipeline(root, data: data, adversarial: "{observe_noise: true}").train()) {
            XCTAssert($0.localizedDescription.contains("observe_noise"), $0.localizedDescription)
        }
        XCTAssertThrowsError(try trainingPipeline(root, data: data, adversarial: "{minibatch_stddev: 4}").train()) {
            XCTAssert($0.localizedDescription.contains("minibatch_stddev"), $0.localizedDescription)
        }
        XCTAssertThrowsError(try trainingPipeline(root, data: data, adversarial: "{discriminator_scales: 2}").train()) {
            XCTAssert($0.localizedDescription.contains("discriminator_scales"), $0.localizedDescription)
        }
        XCTAssertThrowsError(try trainingPipeline(root, data: data, loss: "mse", adversarial: "{}").train()) {
            XCTAssert($0.localizedDescription.contains("loss: mae"), $0.localizedDescription)
        }
    }
}
