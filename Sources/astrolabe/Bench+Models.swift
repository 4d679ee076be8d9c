// `astrolabe bench --model cnn|resnet18|unet|lstm|gru|pix2pix|dcgan|posterior|all`: training step,
// inference and peak memory of BENCH.md's networks and of the posterior model's architecture;
// `--workload tiles`: tiled U-Net segmentation of a
// 2048 x 2048 map. `bench/compare.py` runs the same protocol in PyTorch.
import ArgumentParser
import Autograd
import Dispatch
import FITS
import Foundation
import NN
import Pipelines
import Preprocessing
import Training

/// One network of BENCH.md with its input shape (without batch) and batch sizes.
///
/// `posterior` is not in BENCH.md: the `resnet18_flow` of `pipelines/train-posterior.yaml`
/// (ResNet-18 width 16 without stem pool, its context averaged over the image's four 90°
/// rotations as the shipped model runs it, plus the PSF's header channel, 6 spline coupling
/// layers 64–64 over 4 targets), trained by negative log-likelihood; its
/// inference is galaxies/s with `posteriorDraws` flow draws each (encoder and sampler, as
/// `Predictor` runs them).
enum BenchModel: String, CaseIterable {
    case cnn, resnet18, unet, lstm, gru
    /// pix2pix: the `unet` generator (1 → 1 channel) and the PatchGAN discriminator, one
    /// adversarial step (`GAN.trainOnBatch`) per training step.
    case pix2pix
    /// dcgan: PyTorch's DCGAN example for one band (generator from 100-d noise to 64 × 64,
    /// widths 512-64; discriminator 64-512), one adversarial step (`GAN.trainOnBatch`,
    /// unconditional) per training step; inference is the generator alone from noise.
    case dcgan
    /// dcgan_resize: the same pair with the generator's doublings as resize-convolutions
    /// (nearest ×2 and a 3×3 convolution, `upsampling: .nearest`; the shipped generator's kind).
    case dcganResize = "dcgan_resize"
    case posterior

    static let posteriorDraws = 1_000
    /// BENCH.md's models: what `--model all` and a plain `bench` run (`posterior` on request).
    static let benchmarkModels = allCases.filter { $0 != .posterior }

    var inputShape: [Int] {
        switch self {
        case .cnn: return [1, 64, 64]
        case .posterior: return [2, 64, 64]
        case .resnet18: return [3, 64, 64]
        case .unet: return [1, 256, 256]
        case .pix2pix: return [1, 64, 64]
        case .dcgan, .dcganResize: return [100]
        case .lstm: return [128, 2]
        case .gru: return [128, 8]
        }
    }
    /// The two DCGAN rows (one adversarial step per training step, `dcganStep`).
    var isDCGAN: Bool { self == .dcgan || self == .dcganResize }
    var trainBatch: Int { self == .unet ? 8 : self == .pix2pix ? 16 : isDCGAN ? 64 : 32 }
    var inferenceBatch: Int { self == .unet ? 8 : 64 }
    var classCount: Int {
        switch self {
        case .cnn, .resnet18: return 5
        case .unet: return 3
        case .posterior: return 4
        case .pix2pix, .dcgan, .dcganResize: return 1
        case .lstm: return 4
        case .gru: return 7
        }
    }

    func make(seed: UInt64) -> any Layer {
        switch self {
        case .cnn: return SimpleCNN.make(inputChannels: 1, classCount: 5, imageSize: 64, seed: seed)
        case .resnet18: return ResNet.resnet18(inputChannels: 3, classCount: 5, seed: seed)
        case .unet: return UNet.bench(seed: seed)
        case .pix2pix: return UNet.bench(inputChannels: 1, classCount: 1, seed: seed)
        case .dcgan: return DCGANGenerator(latentDimension: 100, outputChannels: 1, seed: seed)
        case .dcganResize: return DCGANGenerator(latentDimension: 100, outputChannels: 1, upsampling: .nearest, seed: seed)
        case .lstm: return LightCurveLSTM(features: 2, hiddenSize: 64, classCount: 4, seed: seed)
        case .gru: return LightCurveGRU(features: 8, hiddenSize: 64, classCount: 7, seed: seed)
        case .posterior:
            let architecture = Architecture(name: .resnet18Flow, inChannels: 2, classes: 32, widths: [16, 32, 64, 128],
                                            smallImageStem: false, stemPool: false,
                                            flow: FlowSettings(features: 4, layers: 6, hidden: [64, 64], transform: .spline,
                                                               bins: 8, tailBound: 5), contextChannels: 1, views: 4)
            return try! architecture.makeModel(seed: seed)
        }
    }
}

/// `bench --model`'s choices: one network or all of them.
enum BenchModelChoice: String, ExpressibleByArgument, CaseIterable {
    case cnn, resnet18, unet, lstm, gru, pix2pix, dcgan, dcganResize = "dcgan_resize", posterior, all

    var models: [BenchModel] { self == .all ? BenchModel.benchmarkModels : [BenchModel(rawValue: rawValue)!] }
}

extension Bench {
    /// Runs each model's measurements in a child process (this binary with `--child`), so that
    /// each `peak_rss_mb` is that model's own, and prints the child's JSON line.
    func runModelBench(_ models: [BenchModel], quick: Bool) throws {
        for model in models {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/proc/self/exe")
            process.arguments = ["bench", "--model", model.rawValue, "--child"] + (quick ? ["--quick"] : [])
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else {
                throw BenchError.failed("model \(model.rawValue): child exited with status \(process.terminationStatus)")
            }
            FileHandle.standardOutput.write(data)
        }
    }

    /// The child side: `steps` training steps (after 3 warm-up steps), the peak RSS at that
    /// point, then inference with the fused eval model.
    func runModelChild(_ model: BenchModel, quick: Bool) {
        let warmup = quick ? 1 : 3, steps = quick ? 3 : 10
        let (trainStep, net) = model == .pix2pix ? pix2pixStep()
            : model.isDCGAN ? dcganStep(model) : classifierStep(model)
        /// Seconds of each of `steps` calls of `body(repetition)` after `warmup` untimed ones.
        func timed(_ body: (Int) -> Void) -> [Double] {
            (0..<(warmup + steps)).compactMap { rep in
                let t0 = DispatchTime.now().uptimeNanoseconds
                body(rep)
                let t1 = DispatchTime.now().uptimeNanoseconds
                return rep >= warmup ? Double(t1 - t0) * 1e-9 : nil
            }
        }
        let trainTimes = timed { _ in trainStep() }
        let peakMB = peakResidentMegabytes()

        net.eval()
        let fused = net.fusedForInference()
        let ib = model.inferenceBatch
        let input = Tensor.randomNormal([ib] + model.inputShape, seed: 2)
        let inferTimes = withNoGrad {
            timed { rep in
                let output = fused(input)
                if let posterior = fused as? PosteriorRegressor {
                    var generator = SeededGenerator(seed: UInt64(rep))
                    _ = posterior.sample(context: output, count: BenchModel.posteriorDraws, generator: &generator)
                }
            }
        }
        // The convolutions again in bfloat16, where this CPU runs them (InferencePrecision).
        var bfloat16Times: [Double] = []
        if InferencePrecision.bfloat16.runsHere, !(fused is PosteriorRegressor), fused.setInferencePrecision(.bfloat16) > 0 {
            bfloat16Times = withNoGrad { timed { _ in _ = fused(input) } }
        }
        var row: [String: Any] = [
            "model": model.rawValue,
            "train_step_ms": rounded(PixelStatistics.median(trainTimes) * 1e3, 1),
            "train_step_min_ms": rounded(trainTimes.min()! * 1e3, 1),
            "infer_img_per_s": rounded(Double(ib) / PixelStatistics.median(inferTimes), 1),
            "infer_max_img_per_s": rounded(Double(ib) / inferTimes.min()!, 1),
            "peak_rss_mb": Int(peakMB.rounded()),
            "steps": steps, "threads": Threading.workerCount]
        if model == .posterior { row["draws_per_image"] = BenchModel.posteriorDraws }
        if !bfloat16Times.isEmpty {
            row["infer_bf16_img_per_s"] = rounded(Double(ib) / PixelStatistics.median(bfloat16Times), 1)
            row["infer_bf16_max_img_per_s"] = rounded(Double(ib) / bfloat16Times.min()!, 1)
        }
        print(benchJSON(row))
    }

    /// One training step of a classifier or segmenter (Adam, rate 1e-3, cross-entropy; per pixel
    /// for `unet`) and the network for inference.
    func classifierStep(_ model: BenchModel) -> (() -> Void, any Layer) {
        let net = model.make(seed: 7)
        net.train()
        var rng = SystemRandomNumberGenerator()
        let tb = model.trainBatch
        let x = Tensor.randomNormal([tb] + model.inputShape, seed: 1)
        let labelCount = model == .unet ? tb * 256 * 256 : tb
        let labels = (0..<labelCount).map { _ in Int.random(in: 0..<model.classCount, using: &rng) }
        let optimizer = ModelOptimizer(.adam, parameters: net.namedParameters().map {
            TrainableParameter(name: $0.key, tensor: $0.tensor)
        }, learningRate: 1e-3)
        let profile = MemoryProfile()
        return ({
            optimizer.zeroGrad()
            profile?.begin()
            let loss = (net as? PosteriorRegressor).map {
                $0.negativeLogLikelihood(context: net(x), targets: Tensor.randomNormal([tb, model.classCount], seed: 3))
            } ?? Loss.crossEntropy(logits: net(x), labels: labels)
            profile?.report("forward")
            loss.backward()
            profile?.report("backward")
            optimizer.step()
            profile?.report("optimizer step")
        }, net)
    }

    /// BENCH.md's `pix2pix`: one adversarial step at batch 16 (a discriminator update with BCE
    /// on real and generated pairs, then a generator update with BCE + 100 × L1, each with
    /// Adam, rate 2e-4, betas 0.5 and 0.999) through `GAN.trainOnBatch`; inference is the
    /// generator alone.
    func pix2pixStep() -> (() -> Void, any Layer) {
        let model = BenchModel.pix2pix
        let gan = GAN(generator: model.make(seed: 7), discriminator: PatchDiscriminator(seed: 8), conditioning: .conditional)
        gan.compile(loss: .nonSaturating, reconstructionWeight: 100)
        let batch = TrainingBatch(inputs: Tensor.randomNormal([model.trainBatch] + model.inputShape, seed: 1),
                                  targets: .values(Tensor.randomNormal([model.trainBatch] + model.inputShape, seed: 3)))
        return ({ _ = try! gan.trainOnBatch(batch) }, gan.generator)
    }

    /// `dcgan` and `dcgan_resize`: one adversarial step at batch 64 on 1 × 64 × 64 images (a
    /// discriminator update with BCE on real and generated images, then a non-saturating
    /// generator update, each with Adam, rate 2e-4, betas 0.5 and 0.999) through
    /// `GAN.trainOnBatch`; inference is the generator alone from noise `[64, 100]`.
    func dcganStep(_ model: BenchModel) -> (() -> Void, any Layer) {
        let gan = GAN(generator: model.make(seed: 7), discriminator: DCGANDiscriminator(inputChannels: 1, seed: 8),
                      conditioning: .unconditional(latentDimension: 100))
        gan.compile(loss: .nonSaturating)
        let batch = TrainingBatch(inputs: Tensor.randomNormal([model.trainBatch, 1, 64, 64], seed: 1), targets: .classes([]))
        var step: UInt64 = 0
        return ({ step += 1; _ = try! gan.trainOnBatch(batch, seed: step) }, gan.generator)
    }

    /// `tile_segment_mpix_per_s`: a 2048 x 2048 map (`--quick`: 1024 x 1024) segmented by the
    /// inference path of `astrolabe run` (`Predictor`: the fused eval `unet` through 256 x 256
    /// tiles overlapping by 32 px, 8 tiles per forward pass, softmax, smooth stitching), reduced
    /// to a class map by argmax and written as a uint8 FITS image. Median of 3 runs (1 with
    /// `--quick`), after one warm-up forward pass.
    func runTileBench(quick: Bool) throws {
        let side = quick ? 1_024 : 2_048, tile = 256, overlap = 32, batch = 8, classes = 3
        let repeats = quick ? 1 : 3
        let predictor = Predictor(network: UNet.bench(seed: 7), architecture: Architecture(name: .unet, inChannels: 1, classes: classes,
                                                                                   widths: [16, 32, 64, 128], bottleneck: 256),
                                  recipe: nil, path: "bench unet")
        let map = Tensor.randomNormal([1, 1, side, side], seed: 3)
        let image = PlanarImage(channels: 1, height: side, width: side, pixels: map.scalars)
        let tiling = TilingConfig(tile: tile, overlap: overlap, weighting: .smooth)
        let grid = TileGrid(height: side, width: side, tile: tile, overlap: overlap)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("astrolabe-bench-tiles-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("segmentation.fits").path
        withNoGrad { _ = predictor.network(Tensor.randomNormal([batch, 1, tile, tile], seed: 4)) }

        var times: [Double] = []
        for _ in 0..<repeats {
            let t0 = DispatchTime.now().uptimeNanoseconds
            let probabilities = try predictor.segmentProbabilities(image, tiling: tiling, batchSize: batch, file: "bench map")
            let writer = try FITSWriter(path: path, overwrite: true)
            try writer.appendImage(mask: Predictor.classMap(probabilities), shape: [side, side])
            try writer.commit()
            let t1 = DispatchTime.now().uptimeNanoseconds
            times.append(Double(t1 - t0) * 1e-9)
        }
        let megapixels = Double(side * side) / 1e6
        print(benchJSON(["workload": "tiles", "tile_segment_mpix_per_s": rounded(megapixels / PixelStatistics.median(times), 3),
                         "tile_segment_max_mpix_per_s": rounded(megapixels / times.min()!, 3),
                         "seconds": rounded(PixelStatistics.median(times), 2), "tiles": grid.count, "side": side,
                         "threads": Threading.workerCount]))
    }
}

/// With `ASTROLABE_MEMORY_PROFILE=1`, one line per phase of each training step on standard
/// error: the large-tensor memory (`TensorMemory`: live now, its high-water mark in the phase,
/// pool cache, kernel scratch), the process's resident set now and at its peak, and the CPU
/// time of the step so far (user + system, all threads).
final class MemoryProfile {
    private var step = 0
    private var stepStart = 0.0

    init?() {
        guard ProcessInfo.processInfo.environment["ASTROLABE_MEMORY_PROFILE"] == "1" else { return nil }
    }

    func begin() {
        step += 1
        stepStart = Self.cpuSeconds()
        TensorMemory.resetPeak()
    }

    func report(_ phase: String) {
        let rss = residentMegabytes(), peak = peakResidentMegabytes()
        let cpu = Int(((Self.cpuSeconds() - stepStart) * 1000).rounded())
        FileHandle.standardError.write(Data(("memory step \(step) after \(phase): \(TensorMemory.current); "
            + "RSS \(Int(rss)) MiB (peak \(Int(peak))); CPU \(cpu) ms\n").utf8))
        TensorMemory.resetPeak()
    }

    private static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) * 1e-6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    /// The resident set now, in MiB (`/proc/self/statm`: pages).
    private func residentMegabytes() -> Double {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
              let pages = text.split(separator: " ").dropFirst().first.flatMap({ Double($0) }) else { return 0 }
        return pages * Double(sysconf(Int32(_SC_PAGESIZE))) / 1_048_576
    }
}

/// Peak resident set of this process, in MiB (Linux reports `ru_maxrss` in KiB).
func peakResidentMegabytes() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
}

func rounded(_ v: Double, _ digits: Int) -> Double {
    let f = Foundation.pow(10, Double(digits))
    return (v * f).rounded() / f
}

/// One JSON object on one line, keys sorted, with the OpenBLAS core that ran (`blas_core`).
func benchJSON(_ object: [String: Any]) -> String {
    var object = object
    object["blas_core"] = BLASKernels.core
    let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    return String(decoding: data, as: UTF8.self)
}
