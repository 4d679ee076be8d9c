import AstroBase
import Autograd
import Foundation
import NN
import Plotting
import Preprocessing
import Training

// MARK: - Inputs

extension PipelineRunner {
    /// The light-curve table of a run: `--input`, else `model.train.data` (training), else
    /// `input.path`; a folder means its `lightcurves.csv` (or `lightcurves.fits`).
    func lightCurveTable(training: Bool) throws -> LightCurveTable {
        let argument = options.input.map { resolveArgument($0) }
        let configured = (training ? config.model.train?.data : nil) ?? config.input.path
        guard let url = argument ?? configured.map(resolve) else { throw PipelineError.noInput(pipeline: pipelinePath) }
        return try Self.table(at: url)
    }

    static func table(at url: URL) throws -> LightCurveTable {
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder), isFolder.boolValue {
            let csv = url.appendingPathComponent("lightcurves.csv"), fits = url.appendingPathComponent("lightcurves.fits")
            return try LightCurveTable(url: FileManager.default.fileExists(atPath: csv.path) ? csv : fits)
        }
        return try LightCurveTable(url: url)
    }

    /// The classes of `table`'s objects from `catalog.csv` beside it (`object_id,label`).
    static func labels(for table: LightCurveTable, curves: [LightCurve]) throws -> [Int] {
        let url = table.url.deletingLastPathComponent().appendingPathComponent("catalog.csv")
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw PipelineError.missingTruth(file: url.path, what: "catalog.csv (object_id,label) beside the light-curve table")
        }
        let catalog = try LightCurveCatalog.read(url)
        return try curves.map { curve in
            guard let kind = catalog[curve.objectID] else {
                throw PipelineError.missingTruth(file: url.path, what: "a label for object_id \(curve.objectID)")
            }
            return kind.label
        }
    }
}

// MARK: - Training

/// Batches of light curves prepared per epoch (random truncation differs between epochs),
/// bucketed by length so that padding stays small.
struct LightCurveBatchSource: BatchSource {
    let curves: [LightCurve]
    let labels: [Int]
    let preparation: SequencePreparation
    let batchSize: Int
    let training: Bool
    let seed: UInt64

    var sampleCount: Int { curves.count }

    func batches(epoch: Int) throws -> AnyIterator<Result<TrainingBatch, Error>> {
        let epochSeed = seed &+ 0x9E37_79B9_7F4A_7C15 &* UInt64(epoch + 1)
        let sequences: [PreparedSequence] = curves.indices.map { k in
            var rng = SeededGenerator(seed: epochSeed, stream: UInt64(k))
            return preparation.prepare(curves[k], training: training, rng: &rng)
        }
        var rng: SeededGenerator? = training ? SeededGenerator(seed: epochSeed) : nil
        let batches = SequenceBatcher(batchSize: batchSize).batches(lengths: sequences.map(\.steps), rng: &rng)
        var next = 0
        return AnyIterator {
            guard next < batches.count else { return nil }
            let batch = batches[next]
            next += 1
            let (shape, data) = SequenceBatcher.tensorData(batch.map { sequences[$0] })
            return .success(TrainingBatch(inputs: Tensor(shape: shape, data: data), targets: .classes(batch.map { labels[$0] })))
        }
    }
}

extension PipelineRunner {
    /// Trains a `gru` on a light-curve table with its catalog.csv and writes the model file
    /// (weights, architecture, recipe with the sequence stages), its history and curves.
    func trainLightCurves(cancellation: CancellationFlag?) throws -> RunSummary {
        guard communicator.size == 1 else {
            throw PipelineError.unsupported("\(pipelinePath): light-curve training is not data-parallel; "
                                            + "run it as one process (without mpirun).")
        }
        let start = Date()
        let t = config.model.train!
        guard let arch = config.model.architecture, arch.name == .gru else {
            throw PipelineError.unsupported("\(pipelinePath): a lightcurves pipeline trains model.architecture.name: gru.")
        }
        let table = try lightCurveTable(training: true)
        log("reading \(table.url.path)")
        let curves = try table.readAll()
        let labels = try Self.labels(for: table, curves: curves)
        guard !curves.isEmpty else { throw TrainingError.emptyData(what: table.url.path) }
        var trainingIndices = Array(curves.indices), validationIndices: [Int] = []
        var validationCurves: [LightCurve] = [], validationLabels: [Int] = []
        if let v = t.validation {
            let other = try Self.table(at: resolve(v))
            validationCurves = try other.readAll()
            validationLabels = try Self.labels(for: other, curves: validationCurves)
        } else if t.validationSplit > 0 {
            var rng = SeededGenerator(seed: t.seed)
            let order = rng.permutation(curves.count)
            let cut = curves.count - Int((Double(curves.count) * t.validationSplit).rounded())
            trainingIndices = Array(order[..<cut]); validationIndices = Array(order[cut...])
            validationCurves = validationIndices.map { curves[$0] }; validationLabels = validationIndices.map { labels[$0] }
        }
        let preparation = try SequencePreparation(config.sequenceStages)
        let inference = try SequencePreparation(preparation.inferenceStages)
        let names = LightCurveClass.names
        let hidden = arch.width ?? arch.widths.first ?? 64
        guard arch.widths.allSatisfy({ $0 == hidden }) else {
            throw PipelineError.unsupported("\(pipelinePath): gru layers share one hidden size; widths \(arch.widths) differ.")
        }
        let architecture = Architecture(name: .gru, inChannels: preparation.featureCount, classes: names.count,
                                        hidden: hidden, layers: max(arch.widths.count, 1))
        let model = Model(try architecture.makeModel(seed: t.seed &+ 0x5EED))
        model.compile(optimizer: optimizerKind(t), learningRate: Float(t.learningRate), loss: lossFunction(t.loss, task: .classify),
                      metrics: metrics(.lightcurves), schedule: schedule(t), gradientClipNorm: t.gradientClip.map(Float.init))
        let (save, stem, checkpoint, callbacks) = try trainingFiles(model, t, validating: !validationCurves.isEmpty)
        let source = LightCurveBatchSource(curves: trainingIndices.map { curves[$0] }, labels: trainingIndices.map { labels[$0] },
                                           preparation: preparation, batchSize: t.batchSize, training: true, seed: t.seed)
        let validation = validationCurves.isEmpty ? nil
            : LightCurveBatchSource(curves: validationCurves, labels: validationLabels, preparation: inference,
                                    batchSize: t.batchSize, training: false, seed: t.seed)
        let lengths = curves.map { $0.points.count }
        var none: SeededGenerator?
        let padding = SequenceBatcher.paddingFraction(lengths: lengths, batches: SequenceBatcher(batchSize: t.batchSize)
            .batches(lengths: lengths, rng: &none))
        log("training gru (\(model.network.parameterCount) parameters, \(preparation.featureCount) features per step) on "
            + "\(source.sampleCount) curves" + (validation.map { ", validating on \($0.sampleCount)" } ?? "")
            + String(format: "; padding %.1f%% of steps", 100 * padding))
        let history = try model.fit(source, epochs: t.epochs, validation: validation, classWeights: t.classWeights?.map(Float.init),
                                    callbacks: callbacks, seed: t.seed, verbose: !options.quiet, cancellation: cancellation,
                                    interruptCheckpoint: checkpoint)
        var recipe = ModelRecipe(task: .lightcurves, stages: [], input: config.input, inputShape: [preparation.featureCount],
                                 classNames: names, sequenceStages: config.sequenceStages)
        recipe.provenance = ["pipeline": pipelinePath, "data": options.input ?? t.data ?? "", "epochs": String(t.epochs),
                             "seed": String(t.seed), "trained": ISO8601DateFormatter().string(from: Date()),
                             "history": stem.lastPathComponent + ".history.csv"]
        model.network.eval()
        try ModelFile(model: model.network, architecture: architecture, preprocessing: recipe.json).write(to: save)
        let curvesPNG = URL(fileURLWithPath: stem.path + "-curves.png")
        try TrainingPlots.curves(history, title: config.name.isEmpty ? "TRAINING" : config.name.uppercased()).write(to: curvesPNG)
        try? FileManager.default.removeItem(at: checkpoint)
        log("saved \(save.path) and \(curvesPNG.lastPathComponent)")
        return RunSummary(done: source.sampleCount, failed: 0, resumed: 0, seconds: Date().timeIntervalSince(start),
                          outputs: [save.path, curvesPNG.path], errorsFile: nil)
    }
}

// MARK: - Inference

/// What a light-curve classification run produced.
public struct LightCurveRun {
    public var summary: RunSummary
    public var predictions: [LightCurvePrediction]
    public var predictor: Predictor
    public var output: URL
    /// Curves per second, reading and writing included.
    public var curvesPerSecond: Double
}

extension PipelineRunner {
    /// Classifies every curve of the input table, streamed in blocks, and writes TASKS.md's
    /// CSV `object_id,predicted,p_<class>...` (atomically). `keepPredictions` also returns them.
    public func classifyLightCurves(stages extraStages: [SequenceStage] = [], keepPredictions: Bool = false) throws -> LightCurveRun {
        guard communicator.size == 1 && options.shard == nil else {
            throw PipelineError.unsupported("\(pipelinePath): light-curve runs are not split over processes; "
                                            + "run it as one process (without mpirun or --shard).")
        }
        let start = Date()
        let predictor = try makePredictor()
        guard predictor.task == .lightcurves else {
            throw PipelineError.modelFile(path: predictor.path, reason: "it was trained for the task '\(predictor.task.rawValue)', "
                                          + "not lightcurves")
        }
        let preparation = try SequencePreparation(extraStages + (try predictor.sequencePreparation(
            config.sequenceStages.isEmpty ? nil : config.sequenceStages)).stages)
        let table = try lightCurveTable(training: false)
        let output = options.output.map(resolveArgument) ?? resolve(config.outputs.csv ?? "predictions.csv")
        guard output.standardizedFileURL.path != table.url.standardizedFileURL.path else {
            throw PipelineError.unsupported("\(output.path): the output would overwrite the input table.")
        }
        try FileManager.default.createDirectory(at: output.deletingLastPathComponent(), withIntermediateDirectories: true)
        let partial = output.deletingLastPathComponent().appendingPathComponent(".\(output.lastPathComponent).partial")
        guard FileManager.default.createFile(atPath: partial.path, contents: nil),
              let handle = FileHandle(forWritingAtPath: partial.path) else {
            throw PipelineError.unsupported("\(partial.path): cannot open for writing.")
        }
        handle.write(Data(ResultTable.lightCurveHeader(classNames: predictor.classNames, probabilities: config.outputs.probabilities)))
        var kept: [LightCurvePrediction] = []
        var done = 0
        do {
            try table.forEachBatchReadingAhead(size: 16384) { curves in
                let predictions = try predictor.classify(curves, preparation: preparation, batchSize: config.run.batchSize)
                var bytes: [UInt8] = []
                ResultTable.appendLightCurveRows(predictions, classNames: predictor.classNames,
                                                 probabilities: config.outputs.probabilities, to: &bytes)
                handle.write(Data(bytes))
                if keepPredictions { kept += predictions }
                done += predictions.count
                log(String(format: "%d curves, %.0f curves/s", done, Double(done) / max(Date().timeIntervalSince(start), 1e-9)))
            }
            try handle.close()
            if FileManager.default.fileExists(atPath: output.path) { try FileManager.default.removeItem(at: output) }
            try FileManager.default.moveItem(at: partial, to: output)
        } catch {
            try? handle.close()
            try? FileManager.default.removeItem(at: partial)
            throw error
        }
        let seconds = Date().timeIntervalSince(start)
        log(String(format: "classified %d curves in %.1f s (%.0f curves/s) -> %@", done, seconds,
                   Double(done) / max(seconds, 1e-9), output.path))
        return LightCurveRun(summary: RunSummary(done: done, failed: 0, resumed: 0, seconds: seconds, outputs: [output.path],
                                                 errorsFile: nil),
                             predictions: kept, predictor: predictor, output: output, curvesPerSecond: Double(done) / max(seconds, 1e-9))
    }
}
