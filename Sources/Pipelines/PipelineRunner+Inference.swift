import Autograd
import FITS
import Foundation
import NN
import Preprocessing
import Training

/// What an inference run produced: the summary and the typed results, in the input's order.
public struct InferenceRun {
    public var summary: RunSummary
    public var results: [(entry: CatalogEntry, prediction: Prediction)]
    public var predictor: Predictor
    /// The CSV file, or the folder of maps for segmentation.
    public var output: URL
}

extension PipelineRunner {
    /// Runs the pipeline's model over its inputs: checks every output location
    /// and takes the output's lock before any work, then predicts (resuming an
    /// interrupted run), writes the outputs atomically and returns the typed results.
    public func predictAll() throws -> InferenceRun {
        let start = Date()
        let predictor = try makePredictor()
        guard predictor.task == config.task else {
            throw PipelineError.modelFile(path: predictor.path, reason: "it was trained for the task '\(predictor.task.rawValue)', "
                                          + "but the pipeline's task is '\(config.task.rawValue)'")
        }
        let catalog = try inputCatalog()
        let segmenting = config.task == .segment

        // Every output location, checked against the inputs before any work.
        let outputURL: URL
        if let output = options.output { outputURL = resolveArgument(output) } else if segmenting {
            outputURL = resolve(config.outputs.fitsImages ?? "segmentation")
        } else {
            outputURL = resolve(config.outputs.csv ?? "predictions.csv")
        }
        let journalURL = outputURL.deletingLastPathComponent().appendingPathComponent(".\(outputURL.lastPathComponent).journal")
        let errorsURL = config.run.errorsFile.map(resolve) ?? outputURL.deletingLastPathComponent()
            .appendingPathComponent(outputURL.deletingPathExtension().lastPathComponent + ".errors.csv")
        let tableURL = segmenting ? nil : config.outputs.fitsTable.map(resolve)
        let maps = segmenting ? try OutputSafety.perInputOutputs(catalog, in: outputURL, input: predictor.input) : [:]
        let pictures = [config.outputs.previews.map { resolve($0).appendingPathComponent("previews.png") },
                        config.outputs.report.map { resolve($0).appendingPathComponent("report.md") }].compactMap { $0 }
        try OutputSafety.checkOutputs((segmenting ? [] : [outputURL]) + [journalURL, errorsURL] + (tableURL.map { [$0] } ?? [])
                                      + pictures, catalog: catalog, input: predictor.input)

        let journal = try RunJournal(url: journalURL, resume: config.run.resume && !options.fresh, output: outputURL.path)
        if journal.resumedCount > 0 { log("resuming: \(journal.resumedCount) of \(catalog.count) files already done") }
        for file in journal.died.sorted() { log("\(file): \(RunJournal.diedWhileReading); recorded as failed") }
        // Files in flight together at a crash go first, one at a time, so a second crash names its culprit.
        let todo = catalog.entries.filter { journal.suspects.contains($0.name) }
            + catalog.entries.filter { !journal.isSettled($0.name) && !journal.suspects.contains($0.name) }
        if !journal.suspects.isEmpty {
            log("\(journal.suspects.count) files were being read when the process died: reading them one at a time first")
        }

        let progress = options.quiet ? nil : ProgressBar(total: todo.count, label: config.name.isEmpty ? "run" : config.name,
                                                          unit: "file")
        do {
            if segmenting {
                try checkFirstMap(todo, predictor)
                try segment(todo, predictor: predictor, outputs: maps, folder: outputURL, journal: journal, progress: progress)
            } else {
                let suspects = todo.prefix { journal.suspects.contains($0.name) }
                try predictOneByOne(Array(suspects), predictor, journal: journal, progress: progress, untilFirstResult: false)
                let rest = try predictOneByOne(Array(todo.dropFirst(suspects.count)), predictor, journal: journal,
                                               progress: progress, untilFirstResult: true)
                try tabulate(rest, predictor: predictor, journal: journal, progress: progress)
            }
        } catch {
            // A run refused before it recorded anything leaves no journal behind.
            if journal.resumedCount == 0 && journal.finished.isEmpty && journal.failed.isEmpty { try? journal.finish() }
            throw error
        }

        // Outputs in the input's order, written atomically, from everything the journal holds.
        let results = catalog.entries.compactMap { entry in journal.finished[entry.name].map { (entry: entry, prediction: $0) } }
        let named = results.map { (file: $0.entry.name, prediction: $0.prediction) }
        let table = ResultTable(predictor: predictor, probabilities: config.outputs.probabilities)
        var outputs = [outputURL.path]
        if !segmenting {
            try writeAtomically(Data(try table.csv(named).utf8), to: outputURL)
            if let tableURL {
                try table.writeFITS(named, to: tableURL)
                outputs.append(tableURL.path)
            }
        }
        // The errors file belongs to this run: written when something failed, removed otherwise.
        let failures = catalog.entries.compactMap { entry in journal.failed[entry.name].map { [entry.name, $0] } }
        var errorsFile: String?
        if !failures.isEmpty {
            try writeAtomically(Data(try CSVText.table(header: ["file", "error"], rows: failures).utf8), to: errorsURL)
            errorsFile = errorsURL.path
        } else if FileManager.default.fileExists(atPath: errorsURL.path) {
            try FileManager.default.removeItem(at: errorsURL)
        }
        var summary = RunSummary(done: catalog.count - failures.count, failed: failures.count, resumed: journal.resumedCount,
                                 seconds: Date().timeIntervalSince(start), outputs: outputs, errorsFile: errorsFile)
        if config.outputs.previews != nil || config.outputs.report != nil {
            summary.outputs += try writePictures(catalog: catalog, results: journal.finished, table: table,
                                                 predictor: predictor, summary: summary, maps: maps)
        }
        if let explain = config.outputs.explain {
            summary.outputs += try writeExplanations(results.map(\.entry), config: explain)
        }
        try journal.finish()
        log("\(config.name.isEmpty ? "run" : config.name): \(summary.line)")
        return InferenceRun(summary: summary, results: results, predictor: predictor, output: outputURL)
    }

    /// The pipeline's model as a `Predictor`: the pipeline's stages, bands, band
    /// files, HDU and class names where it gives them, the model's recipe otherwise.
    func makePredictor() throws -> Predictor {
        guard let weights = config.model.weights else {
            throw PipelineError.unsupported("\(pipelinePath): model.weights is needed to predict.")
        }
        let model = try TrainedModel(contentsOf: resolve(weights))
        let recipe = model.recipe
        let names = config.input.classNames
        if !names.isEmpty && recipe.task != .regress && names.count != model.architecture.classes {
            throw PipelineError.modelFile(path: model.path, reason: "it has \(model.architecture.classes) classes, but "
                                          + "input.class_names in \(pipelinePath) names \(names.count) (\(names.joined(separator: ", ")))")
        }
        let input = FITSInput(hdu: config.input.hdu ?? recipe.hdu,
                              bands: config.input.bands.isEmpty ? recipe.bands : config.input.bands,
                              bandFiles: config.input.bandFiles.isEmpty ? recipe.bandFiles : config.input.bandFiles)
        return Predictor(network: model.network, architecture: model.architecture, recipe: recipe, path: model.path,
                         stages: config.stages.isEmpty ? nil : config.stages, input: input,
                         classNames: config.input.classNames.isEmpty ? nil : config.input.classNames)
    }

    /// The loader of a run: marks each file in the journal while it is read, so a
    /// crash inside the FITS reader is pinned on that file when the run resumes.
    func journaledRead(_ predictor: Predictor, _ journal: RunJournal) -> BatchLoader.Load {
        return { entry in
            try journal.markReading(entry.name, true)
            Self.simulateCrashIfAsked(reading: entry.name)
            defer { try? journal.markReading(entry.name, false) }
            return try predictor.read(entry)
        }
    }

    /// Files one at a time, in this thread: checks the model against the data on
    /// the first file before the batch run (a mismatch is one clear message) and
    /// records its result, so that file is read once; with `untilFirstResult`, stops
    /// after the first file that gives a result. Files that cannot be read are recorded
    /// as failures (or stop the run under `on_error: stop`). Returns the entries not done.
    @discardableResult
    func predictOneByOne(_ todo: [CatalogEntry], _ predictor: Predictor, journal: RunJournal,
                         progress: ProgressBar?, untilFirstResult: Bool) throws -> [CatalogEntry] {
        let read = journaledRead(predictor, journal)
        for (index, entry) in todo.enumerated() {
            let sample: Sample
            do {
                sample = try predictor.preparation.prepare(read(entry), training: false)
            } catch {
                guard config.run.onError == .skip else { throw error }
                try journal.record([.init(file: entry.name, error: error.localizedDescription)])
                progress?.advance()
                continue
            }
            try predictor.checkShape(sample.image.shape, file: entry.name)
            let prediction = predictor.predict([sample.image])[0]
            try journal.record([.init(file: entry.name, prediction: prediction)])
            progress?.advance()
            if untilFirstResult { return Array(todo[(index + 1)...]) }
        }
        return []
    }

    /// Classification, lens finding and regression: batches through the network, one result per file.
    func tabulate(_ todo: [CatalogEntry], predictor: Predictor, journal: RunJournal, progress: ProgressBar?) throws {
        let policy: SampleFailurePolicy = config.run.onError == .skip ? .skip : .fail
        let loader = BatchLoader(catalog: Catalog(entries: todo), batchSize: config.run.batchSize,
                                 preparation: predictor.preparation, training: false, threads: config.run.threads,
                                 onFailure: policy, load: journaledRead(predictor, journal))
        var reportedFailures = 0
        var batchesDone = 0
        while let batch = try loader.next() {
            try predictor.checkShape(Array(batch.shape.dropFirst()), file: batch.names[0])
            let predictions = predictor.predict(batch: Tensor(shape: batch.shape, data: batch.inputs))
            var entries = zip(batch.names, predictions).map { RunJournal.Entry(file: $0, prediction: $1) }
            let failures = loader.failures
            for (file, error) in failures[reportedFailures...] {
                entries.append(.init(file: file, error: error.localizedDescription))
            }
            reportedFailures = failures.count
            try journal.record(entries)
            progress?.advance(by: entries.count)
            batchesDone += 1
            Self.simulateCrashIfAsked(batchesDone)
        }
        let failures = loader.failures
        if failures.count > reportedFailures {
            try journal.record(failures[reportedFailures...].map { .init(file: $0.file, error: $0.error.localizedDescription) })
            progress?.advance(by: failures.count - reportedFailures)
        }
    }

    /// Segmentation: the first map's bands are checked against the model (from its
    /// header, without reading the pixels), so a mismatch stops the run before any work.
    func checkFirstMap(_ todo: [CatalogEntry], _ predictor: Predictor) throws {
        for entry in todo {
            guard let source = try? SectionSource(entry, input: predictor.input) else { continue }
            try predictor.checkShape([source.channels, source.height, source.width], file: entry.name)
            return
        }
    }

    /// Segmentation of maps of any size, one map at a time, each into its checked output.
    func segment(_ todo: [CatalogEntry], predictor: Predictor, outputs: [String: URL], folder: URL,
                 journal: RunJournal, progress: ProgressBar?) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let tiling = config.tiling ?? TilingConfig(tile: 256, overlap: 32, weighting: .smooth)
        for (done, entry) in todo.enumerated() {
            let url = outputs[entry.name]!
            do {
                try journal.markReading(entry.name, true)
                Self.simulateCrashIfAsked(reading: entry.name)
                try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                try predictor.segment(entry, to: url, tiling: tiling, batchSize: config.run.batchSize,
                                      probabilities: config.outputs.probabilities)
                let relative = OutputSafety.relativeOutputName(entry.name)
                try journal.record([.init(file: entry.name, prediction: .segmentation(SegmentationMap(output: relative)))])
            } catch {
                // A model that cannot take the data stops the run; a bad file is recorded and skipped.
                if case PipelineError.inputMismatch = error { throw error }
                guard config.run.onError == .skip else { throw error }
                try journal.record([.init(file: entry.name, error: error.localizedDescription)])
            }
            progress?.advance()
            Self.simulateCrashIfAsked(done + 1)
        }
    }

    /// For tests of resumption: `ASTROLABE_CRASH_AFTER_BATCHES=N` ends the process
    /// abruptly after N batches (maps, for segmentation), as a kill would.
    static func simulateCrashIfAsked(_ batches: Int) {
        if let text = ProcessInfo.processInfo.environment["ASTROLABE_CRASH_AFTER_BATCHES"], Int(text) == batches {
            _exit(137)
        }
    }

    /// For tests of crashes inside the FITS reader: `ASTROLABE_CRASH_READING=NAME`
    /// ends the process abruptly when it starts reading the catalog entry NAME.
    static func simulateCrashIfAsked(reading name: String) {
        if let text = ProcessInfo.processInfo.environment["ASTROLABE_CRASH_READING"], text == name {
            _exit(136)
        }
    }
}
