// `astrolabe bench --workload preprocessing`: what input preparation costs next to training.
import Autograd
import FITS
import Foundation
import NN
import Preprocessing
import Training

extension Bench {
    /// Two JSON lines:
    /// - `preprocess_batch_ms`: the training stages (fill blanks, noise scaling, asinh,
    ///   flip, 90° turns) on a batch of 32 64×64 cutouts, next to the `cnn` training
    ///   step on the same batch (BENCH.md's batch 32) and their ratio;
    /// - `loader_img_per_s`: the background `BatchLoader` reading and preparing 5,000
    ///   cutout files (2 worker threads), next to the `cnn` training rate in images/s.
    func runPreprocessingBench(quick: Bool) throws {
        let count = quick ? 500 : 5000
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("astrolabe-bench-prep-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        var rng = SeededGenerator(seed: 1)
        var entries = [CatalogEntry]()
        for i in 0..<count {
            let pixels = (0..<4096).map { _ in Float(10 * rng.normal()) }
            let url = folder.appendingPathComponent(String(format: "cutout_%05d.fits", i))
            let writer = try FITSWriter(path: url.path)
            try writer.appendImage(pixels, shape: [64, 64], header: FITSHeader([HeaderRecord("SKYSIG", .float(10))]))
            try writer.commit()
            entries.append(CatalogEntry(url: url, name: url.lastPathComponent))
        }
        let stages: [Stage] = [.fillBlanks(.zero, appendMask: false), .scaleByNoise(.header(keyword: "SKYSIG", bandKeywords: [])),
                               .asinh(AsinhScaling(softening: 3)), .augment(RandomAugmentation(.flip)),
                               .augment(RandomAugmentation(.rotate90))]
        let preparation = Preparation(stages, seed: 1)
        let samples = try entries.prefix(32).map { try Sample.load($0) }

        // Preprocessing of one batch (in memory), median of repeated runs.
        var prepTimes = [Double]()
        for round in 0..<(quick ? 5 : 20) {
            let start = DispatchTime.now()
            for (i, s) in samples.enumerated() { _ = try preparation.prepare(s, training: true, epoch: round, index: i) }
            prepTimes.append(Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6)
        }

        // The cnn training step at batch 32 (Adam, cross-entropy), median after warm-up.
        let model = Model(SimpleCNN.make(inputChannels: 1, classCount: 5, imageSize: 64, seed: 1))
        model.compile(optimizer: .adam, loss: .sparseCategoricalCrossentropy)
        let batch = TrainingBatch(inputs: Tensor.randomNormal([32, 1, 64, 64], seed: 2),
                                  targets: .classes((0..<32).map { $0 % 5 }))
        var stepTimes = [Double]()
        for step in 0..<(quick ? 6 : 13) {
            let start = DispatchTime.now()
            try model.trainOnBatch(batch)
            if step >= 3 { stepTimes.append(Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6) }
        }
        let prep = PixelStatistics.median(prepTimes), step = PixelStatistics.median(stepTimes)
        print(#"{"workload":"preprocessing","preprocess_batch_ms":\#(Self.round(prep)),"cnn_train_step_ms":\#(Self.round(step)),"fraction_of_step":\#(Self.round(prep / step, 3)),"batch":32,"threads":2}"#)

        // The loader over all files, with the same stages, 2 workers, prefetch 2.
        let loader = BatchLoader(catalog: Catalog(entries: entries), batchSize: 32, preparation: preparation,
                                 training: true, seed: 1, threads: 2) { try Sample.load($0) }
        let start = DispatchTime.now()
        var images = 0
        while let b = try loader.next() { images += b.count }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        let loaderRate = Double(images) / seconds, trainRate = 32 / (step / 1000)
        print(#"{"workload":"loader","loader_img_per_s":\#(Self.round(loaderRate)),"cnn_train_img_per_s":\#(Self.round(trainRate)),"keeps_up":\#(loaderRate > trainRate),"files":\#(count),"threads":2}"#)
    }


    static func round(_ value: Double, _ digits: Int = 1) -> Double {
        let scale = Foundation.pow(10, Double(digits))
        return (value * scale).rounded() / scale
    }
}
