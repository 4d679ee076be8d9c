import AstroBase
import Autograd
import FITS
import Foundation
import Preprocessing
import Training

/// How pipelines read one sample: the FITS image per the input settings and,
/// for segmentation with truth, the `TRUTH` extension as a label map.
public func sampleLoader(_ input: FITSInput, withTruth: Bool) -> BatchLoader.Load {
    return { entry in
        var sample = try Sample.load(entry, input: input)
        if withTruth {
            let file = try FITSFile(path: entry.url.path)
            let truth = try file.readImage("TRUTH", as: Float.self)
            let labels = try PlanarImage(fits: truth, file: entry.name)
            guard labels.height == sample.image.height, labels.width == sample.image.width else {
                throw InputError.bandShapeMismatch(file: entry.name, band: "TRUTH", shape: labels.shape,
                                                   expected: sample.image.shape)
            }
            sample.labels = labels
        }
        return sample
    }
}

/// Reads a blend and its `TRUTH` extension as one sample of twice the bands (the blend's,
/// then the truth's), so the stages scale and move both alike; `CatalogBatchSource` with
/// `.pixelValues` splits them into input and target.
public func imagePairLoader(_ input: FITSInput) -> BatchLoader.Load {
    return { entry in
        var sample = try Sample.load(entry, input: input)
        let truth: FITSImage<Float>
        do { truth = try FITSFile(path: entry.url.path).readImage("TRUTH", as: Float.self) } catch {
            throw PipelineError.missingTruth(file: entry.name, what: "the TRUTH extension (the central galaxy alone)")
        }
        let target = try PlanarImage(fits: truth, file: entry.name)
        guard target.shape == sample.image.shape else {
            throw InputError.bandShapeMismatch(file: entry.name, band: "TRUTH", shape: target.shape, expected: sample.image.shape)
        }
        sample.image = PlanarImage(channels: 2 * target.channels, height: target.height, width: target.width,
                                   pixels: sample.image.pixels + target.pixels)
        return sample
    }
}

/// Feeds `fit` from FITS files: each epoch a fresh `BatchLoader` (background
/// prefetch, seeded shuffle by epoch) turned into tensors and targets.
public struct CatalogBatchSource: BatchSource {
    public enum TargetKind: Sendable {
        case classes
        /// Regression targets, standardised by the scaling (`TargetScaling.standardized`).
        case values(TargetScaling)
        case pixelClasses
        /// Image-to-image: each sample holds the input bands then as many target bands
        /// (`imagePairLoader`); the targets are the second half, as values.
        case pixelValues
        /// Images alone (an unconditional generator's real samples): no targets.
        case none
    }

    public let catalog: Catalog
    public let batchSize: Int
    public let preparation: Preparation
    public let training: Bool
    public let seed: UInt64
    public let targets: TargetKind
    public let load: BatchLoader.Load
    public let threads: Int

    public init(catalog: Catalog, batchSize: Int, preparation: Preparation, training: Bool, seed: UInt64,
                targets: TargetKind, threads: Int = 2, load: @escaping BatchLoader.Load) {
        self.catalog = catalog
        self.batchSize = batchSize
        self.preparation = preparation
        self.training = training
        self.seed = seed
        self.targets = targets
        self.load = load
        self.threads = threads
    }

    public var sampleCount: Int { catalog.count }

    public func batches(epoch: Int) throws -> AnyIterator<Result<TrainingBatch, Error>> {
        try batches(epoch: epoch, part: .whole)
    }

    /// Reads only this process's part of each batch.
    public func batches(epoch: Int, part: Shard) throws -> AnyIterator<Result<TrainingBatch, Error>> {
        let loader = BatchLoader(catalog: catalog, batchSize: batchSize, preparation: preparation, training: training,
                                 seed: seed, epoch: epoch, threads: threads, part: part, load: load)
        let kind = targets
        return AnyIterator {
            do {
                guard let batch = try loader.next() else { return nil }
                return .success(try Self.convert(batch, kind))
            } catch {
                return .failure(error)
            }
        }
    }

    static func convert(_ batch: Batch, _ kind: TargetKind) throws -> TrainingBatch {
        let global = Swift.max(batch.globalCount, batch.count)
        if case .pixelValues = kind {
            let half = batch.shape[1] / 2, plane = batch.shape[2] * batch.shape[3]
            var inputs = [Float](), targets = [Float]()
            inputs.reserveCapacity(batch.count * half * plane)
            targets.reserveCapacity(batch.count * half * plane)
            for i in 0..<batch.count {
                let start = i * 2 * half * plane
                inputs += batch.inputs[start..<(start + half * plane)]
                targets += batch.inputs[(start + half * plane)..<(start + 2 * half * plane)]
            }
            let shape = [batch.count, half, batch.shape[2], batch.shape[3]]
            return TrainingBatch(inputs: Tensor(shape: shape, data: inputs), targets: .values(Tensor(shape: shape, data: targets)),
                                 globalCount: global)
        }
        let inputs = Tensor(shape: batch.shape, data: batch.inputs)
        switch kind {
        case .none:
            return TrainingBatch(inputs: inputs, targets: .classes([]), globalCount: global)
        case .classes:
            guard batch.labels.count == batch.count else {
                throw PipelineError.missingTruth(file: batch.names.first ?? "?", what: "the catalog's label column")
            }
            return TrainingBatch(inputs: inputs, targets: .classes(batch.labels), globalCount: global)
        case .pixelClasses:
            guard batch.pixelLabels.count == batch.count * batch.shape[2] * batch.shape[3] else {
                throw PipelineError.missingTruth(file: batch.names.first ?? "?", what: "the TRUTH extension")
            }
            return TrainingBatch(inputs: inputs, targets: .classes(batch.pixelLabels), globalCount: global)
        case let .values(scaling):
            let k = scaling.names.count
            guard batch.targets.count == batch.count * k else {
                throw PipelineError.missingTruth(file: batch.names.first ?? "?", what: "the catalog's target columns")
            }
            let scaled = try (0..<batch.count).flatMap { i in
                try scaling.standardized(Array(batch.targets[(i * k)..<((i + 1) * k)]), file: batch.names[i]).map(Float.init)
            }
            return TrainingBatch(inputs: inputs, targets: .values(Tensor(shape: [batch.count, k], data: scaled)),
                                 globalCount: global)
        case .pixelValues:
            preconditionFailure("image pairs are split above")
        }
    }
}
