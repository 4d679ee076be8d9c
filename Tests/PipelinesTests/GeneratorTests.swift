// The generate task: a DCGAN trained by a pipeline through the GAN API, sampled back to counts.
import AstroBase
import Autograd
import FITS
import Foundation
import NN
import Preprocessing
import TestSupport
@testable import Training
import XCTest
@testable import Pipelines

final class GeneratorTests: XCTestCase {
    /// Eight 16 × 16 noisy blobs in counts with `SKYSIG`, and a generate pipeline over them
    /// (`extra` added to its adversarial section, then each of `edits` replaced in its text).
    func writeSet(_ folder: URL, extra: String = "", count: Int = 8, edits: [(String, String)] = []) throws -> URL {
        let data = folder.appendingPathComponent("data")
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        var rng = SeededGenerator(seed: 3)
        for i in 0..<count {
            let sigma = 5.0 + Double(i % 8)
            let pixels = (0..<256).map { p -> Float in
                let (x, y) = (Double(p % 16) - 7.5, Double(p / 16) - 7.5)
                return Float(400 * exp(-(x * x + y * y) / 8) + sigma * rng.normal())
            }
            let writer = try FITSWriter(path: data.appendingPathComponent(String(format: "g%02d.fits", i)).path)
            try writer.appendImage(pixels, shape: [16, 16], header: FITSHeader([HeaderRecord("SKYSIG", .float(sigma))]))
            try writer.commit()
        }
        let pipeline = folder.appendingPathComponent("train-generator.yaml")
        var text = """
        task: generate
        stages:
          - scale_by_noise: {keyword: SKYSIG}
          - asinh: {softening: 1.0, scale: 0.2}
          - clip: {min: -1, max: 1}
          - flip
        model:
          architecture: {name: dcgan, classes: 1, widths: [8, 4], latent: 4}
          train:
            data: data
            epochs: 2
            batch_size: 4
            learning_rate: 0.0002
            seed: 1
            save: out/generator.safetensors
            adversarial: {label_smoothing: 0.1, ema_decay: 0.9, discriminator_width: 4, sample_count: 4\(extra)}
        observation: {pixel_scale: 0.2, psf_fwhm: [0.6, 1.0], sky_sigma: [5, 15], zero_point: 30, size: [16, 16]}
        """
        for (old, new) in edits {
            precondition(text.contains(old), "writeSet: no '\(old)' in the pipeline to replace")
            text = text.replacingOccurrences(of: old, with: new)
        }
        try text.write(to: pipeline, atomically: true, encoding: .utf8)
        return pipeline
    }

    func testTrainedGeneratorWritesDeterministicFITSInCounts() throws {
        let folder = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let pipeline = try writeSet(folder)
        _ = try PipelineRunner(pipelinePath: pipeline.path, options: RunOptions(quiet: true, fresh: true)).train()
        let model = folder.appendingPathComponent("out/generator.safetensors")
        for name in ["generator.history.csv", "generator-curves.png", "generator-samples.png"] {
            XCTAssert(FileManager.default.fileExists(atPath: folder.appendingPathComponent("out/\(name)").path), name)
        }
        let history = try String(contentsOf: folder.appendingPathComponent("out/generator.history.csv"), encoding: .utf8)
        XCTAssert(history.hasPrefix("epoch") && history.contains("d_loss"), history)
        XCTAssertEqual(history.split(separator: "\n").count, 3, "header and two epochs")

        let generator = try ImageGenerator(contentsOf: model)
        XCTAssertEqual(generator.recipe.task, .generate)
        XCTAssertEqual(generator.recipe.inputShape, [1, 16, 16])
        XCTAssertEqual(generator.recipe.observation?.pixelScale, 0.2)
        let a = folder.appendingPathComponent("a"), b = folder.appendingPathComponent("b")
        let (files, assumptions) = try generator.write(count: 3, seed: 9, to: a)
        XCTAssertEqual(files.count, 3)
        XCTAssert(assumptions.isEmpty)
        _ = try generator.write(count: 2, seed: 9, to: b)
        for i in 0..<2 {
            let x = try FITSFile(path: files[i].path).readImage(0, as: Float.self)
            let y = try FITSFile(path: b.appendingPathComponent(String(format: "generated_%06d.fits", i)).path).readImage(0, as: Float.self)
            XCTAssertEqual(x.pixels, y.pixels, "image \(i) depends on the seed and its index alone")
            XCTAssertEqual(x.shape, [16, 16])
            XCTAssert(x.pixels.allSatisfy(\.isFinite))
            let header = try FITSFile(path: files[i].path).header(0)
            XCTAssertEqual(header["GENSEED"], .string("9"))
            XCTAssertEqual(header["GENINDEX"], .integer(i))
            let sigma = try XCTUnwrap(header["SKYSIG"]?.doubleValue)
            XCTAssert((5...15).contains(sigma), "sky noise drawn from the observation's range: \(sigma)")
            // In counts: the stages undone, so values reach beyond the [-1, 1] of the network.
            XCTAssertGreaterThan(x.pixels.map(abs).max()!, 1)
        }
        let other = try generator.write(count: 1, seed: 10, to: folder.appendingPathComponent("c")).files[0]
        XCTAssertNotEqual(try FITSFile(path: other.path).readImage(0, as: Float.self).pixels,
                          try FITSFile(path: files[0].path).readImage(0, as: Float.self).pixels, "another seed, other images")
        XCTAssert(FileManager.default.fileExists(atPath: a.appendingPathComponent("contact-sheet.png").path))
    }

    /// `input.label_column` trains a class-conditional generator: the model file records the
    /// classes and how often the training data hold them, `generate` draws the classes that often
    /// and writes each image's class in GENCLASS, and the class code changes the image. Without
    /// `input.class_names` the pipeline is refused by name.
    func testLabelledGeneratorDrawsTheTrainingClassFrequencies() throws {
        let folder = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let labelled = ("task: generate\n", "task: generate\ninput: {label_column: label, class_names: [round, other]}\n")
        let pipeline = try writeSet(folder, edits: [labelled, ("data: data\n", "data: data/catalog.csv\n")])
        let rows = (0..<8).map { String(format: "g%02d.fits,%d", $0, $0 % 4 == 3 ? 1 : 0) }
        try (["file,label"] + rows).joined(separator: "\n").write(to: folder.appendingPathComponent("data/catalog.csv"),
                                                                  atomically: true, encoding: .utf8)
        _ = try PipelineRunner(pipelinePath: pipeline.path, options: RunOptions(quiet: true, fresh: true)).train()
        let url = folder.appendingPathComponent("out/generator.safetensors")
        let generator = try ImageGenerator(contentsOf: url)
        XCTAssertEqual(generator.architecture.labels, 2)
        XCTAssertEqual(generator.network.classCount, 2)
        XCTAssertEqual(generator.recipe.classNames, ["round", "other"])
        XCTAssertEqual(generator.recipe.classFrequencies, [0.75, 0.25])
        XCTAssert(generator.recipe.descriptionLines.joined(separator: "\n").contains("1=other (drawn 0.250)"), "\(generator.recipe.descriptionLines)")
        let drawn = (0..<4000).compactMap { generator.classIndex(seed: 5, index: $0) }
        XCTAssertEqual(drawn.count, 4000)
        XCTAssertEqual(Double(drawn.filter { $0 == 0 }.count) / 4000, 0.75, accuracy: 0.03)
        XCTAssertEqual(generator.classIndex(seed: 5, index: 7), generator.classIndex(seed: 5, index: 7))
        let files = try generator.write(count: 6, seed: 5, to: folder.appendingPathComponent("o")).files
        for (index, file) in files.enumerated() {
            XCTAssertEqual(try FITSFile(path: file.path).header(0)["GENCLASS"],
                           .string(["round", "other"][generator.classIndex(seed: 5, index: index)!]))
        }
        var others = generator
        try others.only(className: "other")
        XCTAssert((0..<50).allSatisfy { others.classIndex(seed: 5, index: $0) == 1 })
        XCTAssertThrowsError(try others.only(className: "spiral")) { XCTAssert("\($0)".contains("round, other"), "\($0)") }
        let z = Tensor.randomNormal([1, 4], seed: 1)
        generator.network.eval()
        let round = generator.network(Tensor.concatenate([z, Tensor(shape: [1, 2], data: [1, 0])], axis: 1)).scalars
        let other = generator.network(Tensor.concatenate([z, Tensor(shape: [1, 2], data: [0, 1])], axis: 1)).scalars
        XCTAssertGreaterThan(zip(round, other).map { abs($0 - $1) }.max()!, 1e-4, "the class code changes the image")

        try "file\ng00.fits\n".write(to: folder.appendingPathComponent("data/catalog.csv"), atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try PipelineRunner(pipelinePath: pipeline.path, options: RunOptions(quiet: true, fresh: true)).train()) {
            XCTAssert($0.localizedDescription.contains("no column 'label'"), "a catalog without the class column: \($0.localizedDescription)")
        }
        try "file,label\ng00.fits,galaxy\n".write(to: folder.appendingPathComponent("data/catalog.csv"), atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try PipelineRunner(pipelinePath: pipeline.path, options: RunOptions(quiet: true, fresh: true)).train()) {
            XCTAssert($0.localizedDescription.contains("'galaxy'") && $0.localizedDescription.contains("round, other"),
                      "a class outside class_names: \($0.localizedDescription)")
        }
        let bad = try writeSet(folder.appendingPathComponent("bad"), edits: [("task: generate\n", "task: generate\ninput: {label_column: label}\n")])
        XCTAssertThrowsError(try PipelineRunner(pipelinePath: bad.path, options: RunOptions(quiet: true, fresh: true)).train()) {
            XCTAssert("\($0)".contains("input.class_names"), "\($0)")
        }
    }

    /// With `adversarial.monitor` each epoch's generator is scored against reference images in a
    /// classifier's features, and the saved generator is the best epoch's.
    func testMonitorKeepsTheEpochWithTheSmallestFrechetDistance() throws {
        let folder = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        // A tiny ResNet classifier of 16 × 16 cutouts: its penultimate features are the monitor's space.
        let input = try PipelineLoader.parse("task: classify\nmodel: {weights: x.safetensors}", file: "c.yaml").input
        let stages: [Stage] = [.scaleByNoise(.header(keyword: "SKYSIG", bandKeywords: [])), .asinh(AsinhScaling(softening: 3, scale: 1))]
        let classifier = folder.appendingPathComponent("classifier.safetensors")
        let resnet = ResNet(.init(blocks: [2, 2, 2, 2], inputChannels: 1, classCount: 2, widths: [4, 4, 8, 8], smallImageStem: true), seed: 5)
        try ModelFile(model: resnet, architecture: Architecture(name: .resnet18, inChannels: 1, classes: 2, widths: [4, 4, 8, 8],
                                                                smallImageStem: true),
                      preprocessing: ModelRecipe(task: .classify, stages: stages, input: input, inputShape: [1, 16, 16],
                                                 classNames: ["a", "b"]).json).write(to: classifier)
        let pipeline = try writeSet(folder, extra: ", monitor: {reference: data, classifier: classifier.safetensors, count: 24}",
                                    count: 24, edits: [("epochs: 2", "epochs: 3")])
        _ = try PipelineRunner(pipelinePath: pipeline.path, options: RunOptions(quiet: true, fresh: true)).train()
        let table = try String(contentsOf: folder.appendingPathComponent("out/generator-frechet.csv"), encoding: .utf8)
        let rows = table.split(separator: "\n").dropFirst().map { $0.split(separator: ",") }
        XCTAssertEqual(rows.map { Int($0[0])! }, [1, 2, 3], table)
        let distances = rows.map { Double($0[1])! }
        XCTAssert(distances.allSatisfy { $0.isFinite && $0 >= 0 }, table)
        let best = distances.indices.min { distances[$0] < distances[$1] }! + 1
        let model = try TrainedModel(contentsOf: folder.appendingPathComponent("out/generator.safetensors"))
        let selected = try XCTUnwrap(model.recipe.provenance?["selected"])
        XCTAssert(selected.hasPrefix("epoch \(best) of those run here (to 3): Fréchet distance"), selected)
        // The saved weights are that epoch's: the same images score the same distance again.
        let generator = try ImageGenerator(contentsOf: folder.appendingPathComponent("out/generator.safetensors"))
        let features = try ClassifierFeatures(contentsOf: classifier)
        let reference = try features.features(Catalog.resolve(folder.appendingPathComponent("data").path)).features
        let again = try FrechetDistance.distance(features.features(generator.countSamples(count: 24, seed: 1)).features, reference)
        XCTAssertEqual(again, distances[best - 1], accuracy: 1e-6 * max(1, again))
        // A monitor belongs to a generator: a typo in it is named.
        let typo = try writeSet(try makeTemporaryDirectory(), extra: ", monitor: {referense: data, classifier: c.safetensors}")
        XCTAssertThrowsError(try PipelineRunner(pipelinePath: typo.path, options: RunOptions(quiet: true))) { error in
            XCTAssert("\(error)".contains("referense") && "\(error)".contains("monitor"), "\(error)")
        }
    }

    /// The observation's noise in the recipe's units: carried back to units of the sky noise,
    /// the added noise has mean 0 and variance 1 + x / SKYSIG (TASKS.md: sky plus the source's
    /// Poisson noise), and gradients reach the noiseless image through it.
    func testObservationNoiseFollowsTheSkyAndPoissonModel() throws {
        let stages: [Stage] = [.scaleByNoise(.header(keyword: "SKYSIG", bandKeywords: [])), .asinh(AsinhScaling(softening: 1, scale: 0.11)),
                               .clip(min: -1, max: 1)]
        let input = try PipelineLoader.parse("task: generate\nmodel: {weights: x.safetensors}", file: "g.yaml").input
        let observation = Observation(pixelScale: 0.2, psfFWHM: [0.6, 1], skySigma: [5, 15], zeroPoint: 30, size: [1, 4], bands: [])
        let noise = try ObservationNoise(recipe: ModelRecipe(task: .generate, stages: stages, input: input, inputShape: [1, 1, 4],
                                                             observation: observation), path: "g.yaml")
        XCTAssertEqual(noise.skySigmaRange, 5...15)
        let truth: [Float] = [0, 5, 50, 500]           // noiseless, in units of the sky noise
        let scaling = AsinhScaling(softening: 1, scale: 0.11)
        let n = 4000, sigma: Float = 10
        let clean = Tensor(shape: [n, 1, 1, 4], data: (0..<n).flatMap { _ in truth.map { Foundation.asinh($0) * 0.11 } })
        let observed = noise.observe(clean, skySigmas: Array(repeating: sigma, count: n),
                                     noise: Tensor.randomNormal(clean.shape, seed: 4)).scalars
        for (k, x) in truth.enumerated() {
            let residuals = (0..<n).map { Double(scaling.inverse(observed[4 * $0 + k]) - x) }
            let mean = residuals.reduce(0, +) / Double(n)
            let variance = residuals.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(n - 1)
            let expected = 1 + Double(x / sigma)
            XCTAssertEqual(mean, 0, accuracy: 4 * (expected / Double(n)).squareRoot(), "pixel at \(x) σ: mean")
            XCTAssertEqual(variance / expected, 1, accuracy: 0.1, "pixel at \(x) σ: variance \(variance), expected \(expected)")
        }
        // A fixed draw makes it a function of the image: its gradient is checked numerically.
        let draws = Tensor.randomNormal([2, 1, 2, 2], seed: 9)
        let image = Tensor(shape: [2, 1, 2, 2], data: [-0.05, 0.03, 0.2, 0.5, 0.1, 0.3, 0.45, -0.2])
        assertGradientsMatch([image], epsilon: 1e-3) { noise.observe($0[0], skySigmas: [5, 12], noise: draws) }
        // Seeded: the same seed, the same observation.
        XCTAssertEqual(noise.measurement(clean, seed: 3).scalars, noise.measurement(clean, seed: 3).scalars)
        XCTAssertNotEqual(noise.measurement(clean, seed: 3).scalars, noise.measurement(clean, seed: 4).scalars)
        // Without a sky_sigma range or a scale_by_noise stage it cannot be built: said, with the file.
        XCTAssertThrowsError(try ObservationNoise(recipe: ModelRecipe(task: .generate, stages: stages, input: input, inputShape: [1, 1, 4]),
                                                  path: "g.yaml")) { XCTAssert("\($0)".contains("sky_sigma") && "\($0)".contains("g.yaml"), "\($0)") }
        XCTAssertThrowsError(try ObservationNoise(recipe: ModelRecipe(task: .generate, stages: [.asinh(scaling)], input: input,
                                                                      inputShape: [1, 1, 4], observation: observation), path: "g.yaml")) {
            XCTAssert("\($0)".contains("scale_by_noise"), "\($0)")
        }
        XCTAssertThrowsError(try ObservationNoise(recipe: ModelRecipe(task: .generate, stages: [.scaleByNoise(.fixed(10)), .asinh(scaling)],
                                                                      input: input, inputShape: [1, 1, 4], observation: observation),
                                                  path: "g.yaml")) { XCTAssert("\($0)".contains("header keyword"), "\($0)") }
    }

    /// `observe_noise`: the generator learns noiseless images; the model file says so, and
    /// `generate` adds the sky and Poisson noise of the SKYSIG it writes (or not, `noiseless`).
    func testNoiselessGeneratorIsObservedWithTheSkyNoise() throws {
        let folder = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let pipeline = try writeSet(folder, extra: ", observe_noise: true", edits: [("latent: 4}", "latent: 4, upsample: nearest}")])
        _ = try PipelineRunner(pipelinePath: pipeline.path, options: RunOptions(quiet: true, fresh: true)).train()
        let model = folder.appendingPathComponent("out/generator.safetensors")
        let trained = try TrainedModel(contentsOf: model)
        XCTAssertEqual(trained.architecture.noiseless, true)
        XCTAssertEqual(trained.architecture.upsample, "nearest")
        XCTAssert(trained.recipe.provenance?["adversarial"]?.contains("observed with the observation's noise") == true)
        let generator = try ImageGenerator(contentsOf: model)
        XCTAssertEqual((generator.network as DCGANGenerator).upsampling, .nearest)
        XCTAssertNotNil(generator.observationNoise)
        let noisy = try generator.write(count: 3, seed: 2, to: folder.appendingPathComponent("noisy")).files
        let clean = try generator.write(count: 3, seed: 2, to: folder.appendingPathComponent("clean"), noiseless: true).files
        var normalised = [Double]()
        for (a, b) in zip(noisy, clean) {
            let header = try FITSFile(path: a.path).header(0)
            XCTAssertEqual(header["OBSNOISE"], .logical(true))
            XCTAssertEqual(try FITSFile(path: b.path).header(0)["OBSNOISE"], .logical(false))
            let sigma = try XCTUnwrap(header["SKYSIG"]?.doubleValue)
            XCTAssertEqual(try FITSFile(path: b.path).header(0)["SKYSIG"]?.doubleValue, sigma, "the same sky noise drawn for both")
            let x = try FITSFile(path: a.path).readImage(0, as: Float.self).pixels
            let y = try FITSFile(path: b.path).readImage(0, as: Float.self).pixels
            let limit = Double(AsinhScaling(softening: 1, scale: 0.2).inverse(0.95)) * sigma
            for (u, v) in zip(x, y) where abs(Double(v)) < limit {   // away from the clip
                normalised.append(Double(u - v) / (sigma * sigma + max(Double(v), 0)).squareRoot())
            }
        }
        XCTAssertGreaterThan(normalised.count, 300)
        let spread = (normalised.map { $0 * $0 }.reduce(0, +) / Double(normalised.count)).squareRoot()
        XCTAssertEqual(spread, 1, accuracy: 0.15, "observed − noiseless in units of sqrt(SKYSIG² + counts)")
        // A pipeline whose observation has no sky noise range cannot observe its images: said.
        let other = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: other) }
        let bare = try writeSet(other, extra: ", observe_noise: true", edits: [(" sky_sigma: [5, 15],", "")])
        XCTAssertThrowsError(try PipelineRunner(pipelinePath: bare.path, options: RunOptions(quiet: true, fresh: true)).train()) {
            XCTAssert("\($0)".contains("sky_sigma") && "\($0)".contains("observe_noise"), "\($0)")
        }
    }

    /// `minibatch_stddev: 4`: the discriminator gets ProGAN's minibatch standard deviation
    /// channel; the generator's file is the same kind (the discriminator is not in it), its
    /// provenance says so; a negative group size is refused by name.
    func testMinibatchStdDevDiscriminator() throws {
        let folder = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let pipeline = try writeSet(folder, extra: ", minibatch_stddev: 4")
        _ = try PipelineRunner(pipelinePath: pipeline.path, options: RunOptions(quiet: true, fresh: true)).train()
        let trained = try TrainedModel(contentsOf: folder.appendingPathComponent("out/generator.safetensors"))
        XCTAssert(trained.recipe.provenance?["adversarial"]?.contains("minibatch standard deviation over groups of 4") == true,
                  "\(trained.recipe.provenance ?? [:])")
        XCTAssertNotNil(try ImageGenerator(contentsOf: folder.appendingPathComponent("out/generator.safetensors")))
        let bad = try writeSet(folder.appendingPathComponent("bad"), extra: ", minibatch_stddev: -1")
        XCTAssertThrowsError(try PipelineRunner(pipelinePath: bad.path, options: RunOptions(quiet: true, fresh: true))) {
            XCTAssert("\($0)".contains("minibatch_stddev") && "\($0)".contains("-1"), "\($0)")
        }
    }

    /// `r1_weight`: the discriminator's R1 penalty is on (its value in the history as
    /// `d_penalty`, its γ and step in the provenance); a negative γ or a zero step is refused by name.
    func testR1PenaltyIsRecordedAndBadSettingsAreRefused() throws {
        let folder = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let pipeline = try writeSet(folder, extra: ", r1_weight: 1, r1_step: 0.1")
        _ = try PipelineRunner(pipelinePath: pipeline.path, options: RunOptions(quiet: true, fresh: true)).train()
        let trained = try TrainedModel(contentsOf: folder.appendingPathComponent("out/generator.safetensors"))
        XCTAssert(trained.recipe.provenance?["adversarial"]?.contains("R1 penalty γ 1.0 (step 0.1)") == true,
                  "\(trained.recipe.provenance ?? [:])")
        let history = try String(contentsOf: folder.appendingPathComponent("out/generator.history.csv"), encoding: .utf8)
        let rows = history.split(separator: "\n").map { $0.split(separator: ",").map(String.init) }
        let column = try XCTUnwrap(rows[0].firstIndex(of: "d_penalty"), rows[0].joined(separator: ","))
        for row in rows.dropFirst() { XCTAssertGreaterThan(Double(row[column]) ?? 0, 0, "a penalty of a trained discriminator") }
        for (k, (extra, words)) in [(", r1_weight: -1", ["r1_weight", "-1"]), (", r1_weight: 1, r1_step: 0", ["r1_step", "got 0"])].enumerated() {
            let bad = try writeSet(folder.appendingPathComponent("bad\(k)"), extra: extra)
            XCTAssertThrowsError(try PipelineRunner(pipelinePath: bad.path, options: RunOptions(quiet: true, fresh: true)), extra) {
                for word in words { XCTAssert("\($0)".contains(word), "\($0)") }
            }
        }
    }

    /// `loss: hinge` with `spectral_norm: true` (SNGAN's recipe) trains and says so in the
    /// provenance; the hinge loss with label smoothing is refused by name.
    func testHingeLossWithSpectralNormTrainsAndRefusesLabelSmoothing() throws {
        let folder = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let pipeline = try writeSet(folder, extra: ", loss: hinge, spectral_norm: true",
                                    edits: [("label_smoothing: 0.1, ", "")])
        _ = try PipelineRunner(pipelinePath: pipeline.path, options: RunOptions(quiet: true, fresh: true)).train()
        let trained = try TrainedModel(contentsOf: folder.appendingPathComponent("out/generator.safetensors"))
        let words = trained.recipe.provenance?["adversarial"] ?? ""
        XCTAssert(words.hasPrefix("hinge") && words.contains("spectrally normalised"), words)
        let history = try String(contentsOf: folder.appendingPathComponent("out/generator.history.csv"), encoding: .utf8)
        let rows = history.split(separator: "\n").map { $0.split(separator: ",").map(String.init) }
        let column = try XCTUnwrap(rows[0].firstIndex(of: "d_loss"), rows[0].joined(separator: ","))
        for row in rows.dropFirst() { XCTAssert(Double(row[column])?.isFinite == true, row.joined(separator: ",")) }
        let bad = try writeSet(folder.appendingPathComponent("bad"), extra: ", loss: hinge")
        XCTAssertThrowsError(try PipelineRunner(pipelinePath: bad.path, options: RunOptions(quiet: true, fresh: true))) {
            for word in ["label_smoothing", "hinge", "0.1"] { XCTAssert("\($0)".contains(word), "\($0)") }
        }
    }

    /// `discriminator_scales: 2`: a multi-scale discriminator judges the images and their 2×2
    /// means; the provenance says so; 0 scales, or more than the image's size allows, are refused by name.
    func testMultiScaleDiscriminator() throws {
        let folder = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let pipeline = try writeSet(folder, extra: ", discriminator_scales: 2")
        _ = try PipelineRunner(pipelinePath: pipeline.path, options: RunOptions(quiet: true, fresh: true)).train()
        let trained = try TrainedModel(contentsOf: folder.appendingPathComponent("out/generator.safetensors"))
        XCTAssert(trained.recipe.provenance?["adversarial"]?.contains("at 2 resolutions") == true, "\(trained.recipe.provenance ?? [:])")
        let zero = try writeSet(folder.appendingPathComponent("zero"), extra: ", discriminator_scales: 0")
        XCTAssertThrowsError(try PipelineRunner(pipelinePath: zero.path, options: RunOptions(quiet: true, fresh: true))) {
            XCTAssert("\($0)".contains("discriminator_scales") && "\($0)".contains("got 0"), "\($0)")
        }
        let many = try writeSet(folder.appendingPathComponent("many"), extra: ", discriminator_scales: 9")
        XCTAssertThrowsError(try PipelineRunner(pipelinePath: many.path, options: RunOptions(quiet: true, fresh: true)).train()) {
            XCTAssert("\($0)".contains("discriminator_scales 9") && "\($0)".contains("at most"), "\($0)")
        }
    }

    /// The shipped generator makes noiseless images observed with the sky noise it writes: the
    /// outer pixels of 64 images scatter by about SKYSIG (the simulator's 1.0; a generator that
    /// drew its own noise scattered by 6 SKYSIG), with the sources in the middle (the simulator's
    /// 7 × 7 centre is above 3 SKYSIG in 84 % of its cutouts, the shipped generator's in 90 %).
    func testShippedGeneratorWritesImagesAtTheSkyNoise() throws {
        let folder = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let generator = try ImageGenerator(contentsOf: repositoryRoot.appendingPathComponent("samples/models/generator.safetensors"))
        XCTAssertNotNil(generator.observationNoise, "trained with observe_noise")
        XCTAssertEqual(generator.recipe.inputShape, [1, 64, 64])
        XCTAssertEqual(generator.recipe.classNames, ["elliptical", "spiral", "edge_on", "irregular", "star"], "class-conditional")
        var spreads = [Double](), centreExcess = 0
        for file in try generator.write(count: 64, seed: 5, to: folder).files {
            let image = try FITSFile(path: file.path).readImage(0, as: Float.self).pixels.map(Double.init)
            let sigma = try XCTUnwrap(try FITSFile(path: file.path).header(0)["SKYSIG"]?.doubleValue)
            var edge = [Double](), centre = [Double]()
            for index in 0..<4096 {
                let (x, y) = (index % 64, index / 64)
                if min(min(x, y), min(63 - x, 63 - y)) < 6 { edge.append(image[index]) }
                if abs(x - 32) < 4 && abs(y - 32) < 4 { centre.append(image[index]) }
            }
            let mean = edge.reduce(0, +) / Double(edge.count)
            let variance = edge.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(edge.count)
            spreads.append(variance.squareRoot() / sigma)
            let centreMean = centre.reduce(0, +) / Double(centre.count)
            if centreMean > 3 * sigma { centreExcess += 1 }
        }
        let median = spreads.sorted()[spreads.count / 2]
        XCTAssert((0.9...1.8).contains(median), "edge scatter / SKYSIG: median \(median) of \(spreads)")
        XCTAssertGreaterThan(centreExcess, 44, "a source in the middle of most images (over 70 %)")
    }

    func testCountsUndoTheStages() throws {
        let folder = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let stages: [Stage] = [.scaleByNoise(.header(keyword: "SKYSIG", bandKeywords: [])), .asinh(AsinhScaling(softening: 1, scale: 0.2)),
                               .clip(min: -1, max: 1)]
        let input = try PipelineLoader.parse("task: generate\nmodel: {weights: x.safetensors}", file: "g.yaml").input
        let recipe = ModelRecipe(task: .generate, stages: stages, input: input, inputShape: [1, 16, 16])
        let url = folder.appendingPathComponent("g.safetensors")
        try ModelFile(model: DCGANGenerator(latentDimension: 4, widths: [8, 4], seed: 1),
                      architecture: Architecture(name: .dcgan, inChannels: 4, classes: 1, widths: [8, 4]), preprocessing: recipe.json).write(to: url)
        let generator = try ImageGenerator(contentsOf: url)
        let counts: [Float] = [-30, -7, 0, 3, 50, 300]
        let prepared = try Preparation(stages).prepare(Sample(image: PlanarImage(channels: 1, height: 1, width: 6, pixels: counts),
                                                              header: ["SKYSIG": 7]), training: false).image.pixels
        XCTAssert(prepared.allSatisfy { abs($0) <= 1 })
        let restored = generator.counts(prepared, skySigma: 7)
        for (value, original) in zip(restored, counts) { XCTAssertEqual(value, original, accuracy: 1e-4 * max(1, abs(original))) }
        XCTAssertNil(generator.skySigma(seed: 1, index: 0), "no observation recorded: no sky noise to draw")
        XCTAssertNil(generator.classIndex(seed: 1, index: 0), "an unconditional generator draws no class")
        var unconditional = generator
        XCTAssertThrowsError(try unconditional.only(className: "spiral")) { XCTAssert("\($0)".contains("not class-conditional"), "\($0)") }
        XCTAssertEqual(try generator.write(count: 1, seed: 1, to: folder.appendingPathComponent("o")).assumptions.count, 1)
    }

    /// The truncation trick redraws every noise value beyond ±τ: the noise stays inside, the
    /// values already inside are kept (same seed, same image index), and the images repeat.
    func testTruncationRedrawsNoiseBeyondTheBound() throws {
        let folder = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let input = try PipelineLoader.parse("task: generate\nmodel: {weights: x.safetensors}", file: "g.yaml").input
        let recipe = ModelRecipe(task: .generate, stages: [.clip(min: -1, max: 1)], input: input, inputShape: [1, 16, 16])
        let url = folder.appendingPathComponent("g.safetensors")
        try ModelFile(model: DCGANGenerator(latentDimension: 64, widths: [8, 4], seed: 1),
                      architecture: Architecture(name: .dcgan, inChannels: 64, classes: 1, widths: [8, 4]), preprocessing: recipe.json).write(to: url)
        let generator = try ImageGenerator(contentsOf: url)
        var redrawn = 0
        for index in 0..<20 {
            let free = generator.latent(seed: 3, index: index, truncation: nil)
            let cut = generator.latent(seed: 3, index: index, truncation: 0.5)
            XCTAssert(cut.allSatisfy { abs($0) <= 0.5 }, "image \(index): \(cut.map { abs($0) }.max()!)")
            for (a, b) in zip(free, cut) where abs(a) <= 0.5 { XCTAssertEqual(a, b) }
            redrawn += zip(free, cut).filter { $0 != $1 }.count
        }
        XCTAssertGreaterThan(redrawn, 20 * 64 / 2, "about 62 % of standard-normal values lie beyond ±0.5")
        let once = generator.sample(count: 3, seed: 3, truncation: 0.5).scalars
        XCTAssertEqual(once, generator.sample(count: 3, seed: 3, truncation: 0.5).scalars)
        XCTAssertNotEqual(once, generator.sample(count: 3, seed: 3).scalars)
        let file = try generator.write(count: 1, seed: 3, to: folder.appendingPathComponent("o"), truncation: 0.5).files[0]
        XCTAssertEqual(try FITSFile(path: file.path).header(0)["GENTRUNC"]?.doubleValue, 0.5)
    }

    func testWrongKindOfModelFileIsAClearError() throws {
        let folder = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("unet.safetensors")
        let input = try PipelineLoader.parse("task: deblend\nmodel: {weights: x.safetensors}", file: "d.yaml").input
        try ModelFile(model: UNet(inputChannels: 1, classCount: 1, widths: [4, 8], seed: 7),
                      architecture: Architecture(name: .unet, inChannels: 1, classes: 1, widths: [4, 8]),
                      preprocessing: ModelRecipe(task: .deblend, stages: [], input: input, inputShape: [1, 16, 16]).json).write(to: url)
        XCTAssertThrowsError(try ImageGenerator(contentsOf: url)) { error in
            guard case let PipelineError.modelFile(path, reason) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(path, url.path)
            XCTAssert(reason.contains("'deblend' model") && reason.contains("not an image generator"), reason)
        }
        XCTAssertThrowsError(try ClassifierFeatures(contentsOf: url)) { error in
            guard case let PipelineError.modelFile(_, reason) = error else { return XCTFail("\(error)") }
            XCTAssert(reason.contains("image classifier"), reason)
        }
    }

    /// `model.train.schedule` sets both networks' rates per epoch, each from its own base rate
    /// (a run resumed at epoch k starts at epoch k's rates); a plateau schedule, which follows a
    /// loss that a GAN's game never settles, is refused.
    func testScheduleSetsBothNetworksRatesPerEpoch() throws {
        let folder = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let pipeline = try writeSet(folder, extra: ", discriminator_learning_rate: 0.0001",
                                    edits: [("epochs: 2", "epochs: 4\n    schedule: {cosine: {}}")])
        let runner = try PipelineRunner(pipelinePath: pipeline.path, options: RunOptions(quiet: true, fresh: true))
        let gan = GAN(generator: DCGANGenerator(latentDimension: 4, outputChannels: 1, widths: [8, 4], seed: 1),
                      discriminator: DCGANDiscriminator(inputChannels: 1, widths: [4, 8], seed: 2),
                      conditioning: .unconditional(latentDimension: 4))
        gan.compile(generatorOptimizer: .adam, generatorLearningRate: 1, discriminatorOptimizer: .adam, discriminatorLearningRate: 1)
        let setRates = runner.scheduleRates(gan, runner.config.model.train!, generatorRate: 2e-4, discriminatorRate: 1e-4)
        for epoch in 0..<4 {
            if epoch > 0 { setRates(epoch) }
            let factor = Float((1 + cos(Double.pi * Double(epoch) / 4)) / 2)   // PyTorch CosineAnnealingLR over 4 epochs
            XCTAssertEqual(gan.generatorOptimizer!.learningRate, 2e-4 * factor, accuracy: 1e-9, "epoch \(epoch)")
            XCTAssertEqual(gan.discriminatorOptimizer!.learningRate, 1e-4 * factor, accuracy: 1e-9, "epoch \(epoch)")
        }
        gan.completedEpochs = 2
        _ = runner.scheduleRates(gan, runner.config.model.train!, generatorRate: 2e-4, discriminatorRate: 1e-4)
        XCTAssertEqual(gan.generatorOptimizer!.learningRate, 1e-4, accuracy: 1e-9, "resumed after two epochs: epoch 2's rate")
        _ = try runner.train()
        let history = try String(contentsOf: folder.appendingPathComponent("out/generator.history.csv"), encoding: .utf8)
        XCTAssertEqual(history.split(separator: "\n").count, 5, "header and four epochs")

        let plateauFolder = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: plateauFolder) }
        let plateau = try writeSet(plateauFolder, extra: ", discriminator_learning_rate: 0.0001",
                                   edits: [("epochs: 2", "epochs: 4\n    schedule: {plateau: {patience: 2}}")])
        XCTAssertThrowsError(try PipelineRunner(pipelinePath: plateau.path, options: RunOptions(quiet: true, fresh: true)).train()) { error in
            XCTAssert("\(error)".contains("plateau") && "\(error)".contains("cosine"), "\(error)")
        }
    }

    func testAdversarialTypoAndUnsupportedStagesAreNamed() throws {
        let folder = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let pipeline = try writeSet(folder, extra: ", label_smothing: 0.2")
        XCTAssertThrowsError(try PipelineRunner(pipelinePath: pipeline.path, options: RunOptions(quiet: true))) { error in
            let text = "\(error)"
            XCTAssert(text.contains("label_smothing") && text.contains("model.train.adversarial"), text)
        }
        // A deblender's reconstruction weight has no meaning for a generator: named, not ignored.
        let other = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: other) }
        let l1 = try writeSet(other, extra: ", l1_weight: 10")
        XCTAssertThrowsError(try PipelineRunner(pipelinePath: l1.path, options: RunOptions(quiet: true)).train()) { error in
            XCTAssert("\(error)".contains("l1_weight") && "\(error)".contains("deblend"), "\(error)")
        }
        XCTAssertThrowsError(try ImageGenerator.checkInvertible([.standardize], path: "p.yaml")) { error in
            XCTAssert("\(error)".contains("standardize") && "\(error)".contains("undoable"), "\(error)")
        }
    }
}
