import AstroBase
import Autograd
import Cluster
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
    ///
    /// In parts: with `--shard I/N`, or launched by mpirun with N processes (part = rank),
    /// this process predicts part I of the inputs (a contiguous block in the input order) into
    /// its own journal, `.<output>.part-I-of-N.journal` (resumable like the whole run's).
    /// Under MPI, rank 0 then joins the parts into the one output; with `--shard`,
    /// `merge(parts:)` (`astrolabe merge`) does it once every part has finished.
    public func predictAll() throws -> InferenceRun {
        let start = Date()
        let comm = communicator
        let part = options.shard ?? (comm.size > 1 ? Shard(index: comm.rank, count: comm.size) : .whole)
        let predictor = try makePredictor()
        guard predictor.task == config.task else {
            throw PipelineError.modelFile(path: predictor.path, reason: "it was trained for the task '\(predictor.task.rawValue)', "
                                          + "but the pipeline's task is '\(config.task.rawValue)'")
        }
        let catalog = try inputCatalog()
        let segmenting = config.task.writesImages

        // Every output location, checked against the inputs before any work.
        let locations = try outputLocations(catalog, predictor, start: start)
        let (outputURL, samplesURL) = (locations.output, locations.samples)
        let journalURL = Self.journalURL(outputURL, part: part)
        if samplesURL != nil && !predictor.isPosterior {
            throw PipelineError.unsupported("\(pipelinePath): outputs.posterior_samples needs a posterior model; "
                                            + "\(predictor.path) gives point estimates.")
        }
        if samplesURL != nil && part.count > 1 {
            throw PipelineError.unsupported("\(pipelinePath): outputs.posterior_samples is written by one process; "
                                            + "a run split into \(part.count) parts keeps no draws (leave the key out, or run in one process).")
        }
        if predictor.isPosterior {
            predictor.keptPosteriorSamples = Swift.min(predictor.posteriorDraws, Swift.max(
                options.keptPosteriorSamples, samplesURL == nil ? 0 : config.outputs.posteriorSampleCount))
        }
        let pictures = [config.outputs.previews.map { resolve($0).appendingPathComponent("previews.png") },
                        config.outputs.report.map { resolve($0).appendingPathComponent("report.md") }].compactMap { $0 }
        try OutputSafety.checkOutputs((segmenting ? [] : [outputURL]) + [journalURL, locations.errors, locations.runsLog]
                                      + [locations.table, samplesURL].compactMap { $0 } + pictures,
                                      catalog: catalog, input: predictor.input)

        let journal = try RunJournal(url: journalURL, resume: config.run.resume && !options.fresh, output: outputURL.path)
        // In an MPI job, mpirun ends the other processes with SIGTERM when one dies: their
        // files in flight are then retried on resume, not recorded as the cause of a crash.
        let termination = comm.isLaunched ? Self.onTermination { try? journal.markInterrupted() } : nil
        defer { termination?.cancel() }
        let mine = Array(catalog.entries[part.range(of: catalog.count)])
        if journal.resumedCount > 0 {
            let text = "resuming: \(journal.resumedCount) of \(mine.count) files already done"
            if part.count == 1 { log(text) } else if !options.quiet {
                FileHandle.standardError.write(Data("part \(part): \(text)\n".utf8))
            }
        }
        for file in journal.died.sorted() { log("\(file): \(RunJournal.diedWhileReading); recorded as failed") }
        // Files in flight together at a crash go first, one at a time, so a second crash names its culprit.
        let todo = mine.filter { journal.suspects.contains($0.name) }
            + mine.filter { !journal.isSettled($0.name) && !journal.suspects.contains($0.name) }
        if !journal.suspects.isEmpty {
            log("\(journal.suspects.count) files were being read when the process died: reading them one at a time first")
        }

        let progress = options.quiet || comm.rank != 0 ? nil : ProgressBar(total: todo.count, label: config.name.isEmpty ? "run" : config.name,
                                                          unit: "file")
        do {
            if config.task == .deblend {
                try deblend(todo, predictor: predictor, outputs: locations.maps, folder: outputURL, journal: journal, progress: progress)
            } else if segmenting {
                try checkFirstMap(todo, predictor)
                try segment(todo, predictor: predictor, outputs: locations.maps, folder: outputURL, journal: journal, progress: progress)
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

        if part.count > 1 {
            // The part's results stay in its journal until the parts are joined.
            try journal.close()
            let summary = RunSummary(done: mine.count - mine.filter { journal.failed[$0.name] != nil }.count,
                                     failed: mine.filter { journal.failed[$0.name] != nil }.count,
                                     resumed: journal.resumedCount, seconds: Date().timeIntervalSince(start),
                                     outputs: [journalURL.path], errorsFile: nil)
            if options.shard != nil {
                log("part \(part): \(summary.line); join the \(part.count) parts with `astrolabe merge` once all are done")
                return InferenceRun(summary: summary, results: [], predictor: predictor, output: outputURL)
            }
            // Waits for every part (and sums what earlier runs had done).
            let resumed = Int(try comm.allreduceSum([Double(journal.resumedCount)])[0])
            guard comm.rank == 0 else {
                var quiet = summary
                quiet.outputs = []
                return InferenceRun(summary: quiet, results: [], predictor: predictor, output: outputURL)
            }
            return try merge(parts: part.count, start: start, resumed: resumed)
        }
        return try writeOutputs(journals: [journal], predictor: predictor, catalog: catalog, locations: locations,
                                resumed: journal.resumedCount, start: start)
    }

    /// Where a run writes: the output (the CSV, or the folder of maps), the errors file
    /// stamped with the run's start, the runs log, the FITS table, the posterior draws and,
    /// for segmentation, each input's map.
    struct OutputLocations {
        var output: URL
        var errors: URL
        var runsLog: URL
        var table: URL?
        var samples: URL?
        var maps: [String: URL]
    }

    func outputLocations(_ catalog: Catalog, _ predictor: Predictor, start: Date) throws -> OutputLocations {
        let segmenting = config.task.writesImages
        let outputURL: URL
        if let output = options.output { outputURL = resolveArgument(output) } else if segmenting {
            outputURL = resolve(config.outputs.fitsImages ?? (config.task == .deblend ? "deblended" : "segmentation"))
        } else {
            outputURL = resolve(config.outputs.csv ?? "predictions.csv")
        }
        let errorsURL = Self.stampedForThisRun(config.run.errorsFile.map(resolve) ?? outputURL.deletingLastPathComponent()
            .appendingPathComponent(outputURL.deletingPathExtension().lastPathComponent + ".errors.csv"), start: start)
        let runsLogURL = outputURL.deletingLastPathComponent()
            .appendingPathComponent(outputURL.deletingPathExtension().lastPathComponent + ".runs.jsonl")
        let tableURL = segmenting ? nil : config.outputs.fitsTable.map(resolve)
        let maps = segmenting ? try OutputSafety.perInputOutputs(catalog, in: outputURL, input: predictor.input) : [:]
        return OutputLocations(output: outputURL, errors: errorsURL, runsLog: runsLogURL, table: tableURL,
                               samples: config.outputs.posteriorSamples.map(resolve), maps: maps)
    }

    /// Runs `body` and ends the process (status 143) on SIGTERM, until the source is cancelled.
    static func onTermination(_ body: @escaping () -> Void) -> DispatchSourceSignal {
        signal(SIGTERM, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGTERM, queue: .global())
        source.setEventHandler {
            body()
            _exit(143)
        }
        source.setCancelHandler { signal(SIGTERM, SIG_DFL) }
        source.resume()
        return source
    }

    /// Where the journal of `part` of a run into `output` lives (beside the output).
    static func journalURL(_ output: URL, part: Shard) -> URL {
        let suffix = part.count > 1 ? ".part-\(part.index)-of-\(part.count).journal" : ".journal"
        return output.deletingLastPathComponent().appendingPathComponent(".\(output.lastPathComponent)\(suffix)")
    }

    /// Joins the `parts` part journals of a run split with `--shard I/N` (or by mpirun) into the
    /// run's outputs, in the input order: the same files a one-process run writes. Every part must
    /// have finished (each of its inputs done or failed); the part journals are removed afterwards.
    public func merge(parts: Int, start: Date = Date(), resumed: Int = 0) throws -> InferenceRun {
        guard parts > 0 else { throw PipelineError.unsupported("merge: the number of parts must be positive") }
        let predictor = try makePredictor()
        let catalog = try inputCatalog()
        let locations = try outputLocations(catalog, predictor, start: start)
        let outputURL = locations.output
        var journals: [RunJournal] = []
        for index in 0..<parts {
            let part = Shard(index: index, count: parts)
            let url = Self.journalURL(outputURL, part: part)
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw PipelineError.incompletePart(part: part.description, journal: url.path, missing: part.range(of: catalog.count).count)
            }
            let journal = try RunJournal(url: url, resume: true, output: outputURL.path)
            let missing = catalog.entries[part.range(of: catalog.count)].filter {
                journal.finished[$0.name] == nil && journal.failed[$0.name] == nil
            }
            guard missing.isEmpty else {
                throw PipelineError.incompletePart(part: part.description, journal: url.path, missing: missing.count)
            }
            journals.append(journal)
        }
        return try writeOutputs(journals: journals, predictor: predictor, catalog: catalog, locations: locations,
                                resumed: resumed, start: start)
    }

    /// Writes a run's outputs from the results its journals hold, in the input's order
    /// (atomically), then removes the journals.
    func writeOutputs(journals: [RunJournal], predictor: Predictor, catalog: Catalog, locations: OutputLocations,
                      resumed: Int, start: Date) throws -> InferenceRun {
        let segmenting = config.task.writesImages
        let (outputURL, errorsURL, runsLogURL) = (locations.output, locations.errors, locations.runsLog)
        let (tableURL, samplesURL, maps) = (locations.table, locations.samples, locations.maps)
        var finished: [String: Prediction] = [:], failed: [String: String] = [:]
        for journal in journals {
            finished.merge(journal.finished) { a, _ in a }
            failed.merge(journal.failed) { a, _ in a }
        }
        // Outputs in the input's order, written atomically, from everything the journals hold.
        let results = catalog.entries.compactMap { entry in finished[entry.name].map { (entry: entry, prediction: $0) } }
        let named = results.map { (file: $0.entry.name, prediction: $0.prediction) }
        var table = ResultTable(predictor: predictor, probabilities: config.outputs.probabilities)
        // Quality columns when the model records the observation it was trained for.
        if !predictor.matchingStages.isEmpty {
            table.domains = journals.reduce(into: [:]) { all, journal in all.merge(journal.domains) { a, _ in a } }
        }
        var outputs = [outputURL.path]
        if !segmenting {
            try writeAtomically(Data(try table.csv(named).utf8), to: outputURL)
            if let tableURL {
                try table.writeFITS(named, to: tableURL)
                outputs.append(tableURL.path)
            }
            if let samplesURL {
                let withoutDraws = try ResultTable.writePosteriorSamples(
                    named, targets: predictor.recipe?.targetNames ?? [], count: config.outputs.posteriorSampleCount,
                    to: samplesURL)
                if withoutDraws > 0 {
                    log("\(samplesURL.lastPathComponent): \(withoutDraws) files predicted by the earlier, interrupted run have "
                        + "no draws in it (the journal keeps percentiles only); run with --fresh for all of them")
                }
                outputs.append(samplesURL.path)
            }
        }
        // Each run with failures writes its own errors file (stamped with the run's start), so
        // earlier runs' files stay; the console shows the first failures with their reasons.
        let failures = catalog.entries.compactMap { entry in failed[entry.name].map { [entry.name, $0] } }
        var errorsFile: String?
        if !failures.isEmpty {
            try writeAtomically(Data(try CSVText.table(header: ["file", "error"], rows: failures).utf8), to: errorsURL)
            errorsFile = errorsURL.path
            let shown = failures.prefix(Self.failuresShown)
            log("\(failures.count) of \(catalog.count) files failed; " + (failures.count > shown.count ? "the first \(shown.count):" : "reasons:"))
            for failure in shown { log("  \(failure[0]): \(Self.reason(failure[1], file: failure[0]))") }
        }
        var summary = RunSummary(done: catalog.count - failures.count, failed: failures.count, resumed: resumed,
                                 seconds: Date().timeIntervalSince(start), outputs: outputs, errorsFile: errorsFile)
        if config.outputs.previews != nil || config.outputs.report != nil {
            summary.outputs += try writePictures(catalog: catalog, results: finished, table: table,
                                                 predictor: predictor, summary: summary, maps: maps)
        }
        if let explain = config.outputs.explain {
            summary.outputs += try writeExplanations(results.map(\.entry), config: explain)
        }
        try appendRunRecord(to: runsLogURL, start: start, summary: summary, precision: predictor.inferencePrecision)
        for journal in journals { try journal.finish() }
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
        if recipe.task == .generate {
            throw PipelineError.modelFile(path: model.path, reason: "it is an image generator (task generate): it takes no "
                                          + "input images; sample it with `astrolabe generate --weights \(weights)`")
        }
        let names = config.input.classNames
        if !names.isEmpty && recipe.task != .regress && names.count != model.architecture.classes {
            throw PipelineError.modelFile(path: model.path, reason: "it has \(model.architecture.classes) classes, but "
                                          + "input.class_names in \(pipelinePath) names \(names.count) (\(names.joined(separator: ", ")))")
        }
        let input = FITSInput(hdu: config.input.hdu ?? recipe.hdu,
                              bands: config.input.bands.isEmpty ? recipe.bands : config.input.bands,
                              bandFiles: config.input.bandFiles.isEmpty ? recipe.bandFiles : config.input.bandFiles)
        // Classes made of several components (irregulars, lensed arcs) would lose them: regression only
        // (the stage itself can still be listed in `stages`).
        if config.input.maskNeighbours && recipe.task != .regress {
            throw PipelineError.unsupported("\(pipelinePath): input.mask_neighbours is for single-profile measurements "
                                            + "(regress models); this model's task is \(recipe.task.rawValue), whose objects may "
                                            + "have several components (irregulars, lensed arcs) that masking would remove")
        }
        if config.input.fitSky {
            let missing = SkyFitting.targets.filter { !recipe.targetNames.contains($0) }
            guard recipe.task == .regress, missing.isEmpty, recipe.observation != nil else {
                throw PipelineError.unsupported("\(pipelinePath): input.fit_sky fits a sky under a predicted Sérsic galaxy: it needs "
                                                + "a regress model with the targets \(SkyFitting.targets.joined(separator: ", ")) and a "
                                                + "recorded observation; \(model.path) is task \(recipe.task.rawValue)"
                                                + (recipe.task == .regress ? (missing.isEmpty ? " without an observation"
                                                    : " without \(missing.joined(separator: ", "))") : ""))
            }
        }
        let refines = recipe.task == .regress && model.network is PosteriorRegressor
            && Set(recipe.targetNames) == Set(SkyFitting.targets) && recipe.observation != nil
        if config.input.fitProfiles && (recipe.task == .deblend ? model.architecture.inChannels != 1 : !refines) {
            throw PipelineError.unsupported("\(pipelinePath): input.fit_profiles fits Sérsic profiles to single-band images: the "
                                            + "central galaxy of a blend from a deblender's image, or the galaxy of a regression "
                                            + "posterior model (targets \(SkyFitting.targets.joined(separator: ", ")) and a recorded "
                                            + "observation); \(model.path) is task \(recipe.task.rawValue) with "
                                            + "\(model.architecture.inChannels) input channel(s)")
        }
        let predictor = Predictor(network: model.network, architecture: model.architecture, recipe: recipe, path: model.path,
                                  stages: config.stages.isEmpty ? nil : config.stages, input: input,
                                  classNames: config.input.classNames.isEmpty ? nil : config.input.classNames,
                                  matchObservation: config.input.matchObservation, headerValues: config.input.headerValues,
                                  maskNeighbours: config.input.maskNeighbours, precision: config.model.inferencePrecision)
        if predictor.inferencePrecision != .float32 {
            log("\(model.path): convolutions in \(predictor.inferencePrecision.rawValue) (model.inference_precision: float32 for exact float32)")
        } else if predictor.requestedPrecision != .float32 {
            let asked = predictor.requestedPrecision.rawValue
            log("\(model.path): convolutions in float32: " + (InferencePrecision.bfloat16SwitchedOff
                ? "ASTROLABE_BFLOAT16=off is set" : "\(asked) needs oneDNN and a CPU with \(asked) instructions"))
        }
        if config.input.fitSky { predictor.skyFitting = SkyFitting() }
        if config.input.fitProfiles {
            if recipe.task == .deblend { predictor.profileFitting = ProfileFitting() } else { predictor.profileRefinement = ProfileRefinement() }
        }
        return predictor
    }

    /// How many failures the console lists (all are in the errors file).
    static let failuresShown = 5

    /// A failure's message without the file name it starts with (the console line names it).
    static func reason(_ message: String, file: String) -> String {
        message.hasPrefix("\(file): ") ? String(message.dropFirst(file.count + 2)) : message
    }

    /// `X.errors.csv` → `X.errors-20261203T130102Z.csv` (the run's start, UTC), with
    /// `-2`, `-3`... when a run in the same second wrote one already.
    static func stampedForThisRun(_ url: URL, start: Date) -> URL {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        let stem = url.deletingPathExtension().lastPathComponent, ext = url.pathExtension
        let folder = url.deletingLastPathComponent()
        var candidate = folder.appendingPathComponent("\(stem)-\(formatter.string(from: start))" + (ext.isEmpty ? "" : ".\(ext)"))
        var number = 2
        while FileManager.default.fileExists(atPath: candidate.path) {
            candidate = folder.appendingPathComponent("\(stem)-\(formatter.string(from: start))-\(number)" + (ext.isEmpty ? "" : ".\(ext)"))
            number += 1
        }
        return candidate
    }

    /// One JSON line per finished run beside the output (`<output stem>.runs.jsonl`): when it
    /// started, its counts, its errors file, the assumptions it made and the arithmetic its
    /// convolutions ran in (`inference_precision`), so every run's record stays after the next one.
    func appendRunRecord(to url: URL, start: Date, summary: RunSummary, precision: InferencePrecision) throws {
        struct Record: Encodable {
            var started: String, pipeline: String, done: Int, failed: Int, resumed: Int
            var errorsFile: String?
            var assumptions: [String: [String]]
            var inferencePrecision: String
            enum CodingKeys: String, CodingKey {
                case started, pipeline, done, failed, resumed, errorsFile = "errors_file", assumptions
                case inferencePrecision = "inference_precision"
            }
        }
        let formatter = ISO8601DateFormatter()
        let record = Record(started: formatter.string(from: start), pipeline: pipelinePath, done: summary.done,
                            failed: summary.failed, resumed: summary.resumed, errorsFile: summary.errorsFile,
                            assumptions: assumptions.byFile, inferencePrecision: precision.rawValue)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var line = try encoder.encode(record)
        line.append(UInt8(ascii: "\n"))
        if !FileManager.default.fileExists(atPath: url.path) { _ = FileManager.default.createFile(atPath: url.path, contents: nil) }
        let handle = try FileHandle(forWritingTo: url)
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: line)
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

    /// Reads and prepares a file for the batch run and checks its shape: a file the
    /// model cannot take is that file's failure (recorded under `on_error: skip`).
    func journaledPrepare(_ predictor: Predictor, _ journal: RunJournal) -> BatchLoader.Load {
        let read = journaledRead(predictor, journal)
        let assumptions = self.assumptions
        let matchedImages = self.matchedImages
        return { entry in
            let sample: Sample, matched: Sample?
            if predictor.keepsMatchedImages {
                (matched, sample) = try predictor.prepareInSteps(read(entry), file: entry.name)
            } else {
                (matched, sample) = (nil, try predictor.prepare(read(entry), file: entry.name))
            }
            assumptions.record(sample, observation: predictor.matchingStages.isEmpty ? nil : predictor.recipe?.observation)
            try predictor.checkShape(sample.image.shape, file: entry.name)
            // Kept for the sky and profile fits only once the file is sure to reach the network (and be taken back).
            if let matched { matchedImages.put(entry.name, matched) }
            return sample
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
        let prepare = journaledPrepare(predictor, journal)
        for (index, entry) in todo.enumerated() {
            let sample: Sample
            do {
                sample = try prepare(entry)
            } catch {
                // Bands the model cannot take stop the run with one message; a file of another size is its own failure.
                if case let PipelineError.inputMismatch(_, received, expected, _) = error, received.first != expected.first {
                    throw error
                }
                guard config.run.onError == .skip else { throw error }
                try journal.record([.init(file: entry.name, error: error.localizedDescription)])
                progress?.advance()
                continue
            }
            try journal.record(try entries([entry.name], predictor.predict([sample.image]), predictor))
            progress?.advance()
            if untilFirstResult { return Array(todo[(index + 1)...]) }
        }
        return []
    }

    /// `predictions` of `files` after the predictor's sky fit (`Predictor.fittingSky`), each
    /// subtracted plane said in the file's assumptions and its row flagged `sky`; a frame whose
    /// noise is correlated beyond `SkyFitting.correlationLimit` flags the row `correlated_noise`.
    func fittingSky(_ files: [String], _ predictions: [Prediction], _ predictor: Predictor, matched: [Sample?]) throws
        -> [Prediction] {
        guard let fitting = predictor.skyFitting else { return predictions }
        let fitted = try predictor.fittingSky(predictions, matched: matched)
        for (file, result) in zip(files, fitted) {
            guard let sky = result.plane else { continue }
            if let correlation = sky.noiseCorrelation, correlation > fitting.correlationLimit {
                assumptions.flag(file, outside: SkyFitting.correlatedName)
                assumptions.record(file: file, [Assumption(subject: "correlated noise", note: String(format:
                    "the noise is correlated: 4x4-pixel means of the outer %d pixels scatter %.2f times as much as white noise "
                    + "would; the model was trained on white noise", fitting.border, correlation))])
            }
            guard result.subtracted else { continue }
            assumptions.flag(file, outside: SkyFitting.outsideName)
            assumptions.record(file: file, [Assumption(subject: "residual sky", note: String(format:
                "a residual sky under the galaxy (chi-square %.0f on the outer %d pixels against the predicted galaxy) was "
                + "subtracted: %.4g counts at the centre, gradient %.3g, %.3g counts/px in x, y", sky.chiSquare, fitting.border,
                sky.level, sky.slopeX, sky.slopeY))])
        }
        return fitted.map(\.prediction)
    }

    /// The journal entries of a batch's network results: the sky fit first (`fittingSky`), then
    /// the profile fit of the bright unflagged rows (`refiningProfiles`), then each file's domain
    /// and reported prediction (`journalEntry`).
    func entries(_ files: [String], _ predictions: [Prediction], _ predictor: Predictor) throws -> [RunJournal.Entry] {
        let matched = files.map { matchedImages.take($0) }
        let fitted = try fittingSky(files, predictions, predictor, matched: matched)
        let refined = refiningProfiles(files, fitted, matched: matched, predictor)
        return zip(files, refined).map { journalEntry($0, $1, predictor) }
    }

    /// `predictions` of `files` with the posteriors of bright rows outside every domain flag
    /// replaced by a profile fit's (`Predictor.refined`, in parallel over those rows), each said
    /// in its file's assumptions.
    func refiningProfiles(_ files: [String], _ predictions: [Prediction], matched: [Sample?], _ predictor: Predictor) -> [Prediction] {
        guard let refinement = predictor.profileRefinement else { return predictions }
        // The rows a fit may change, so the workers share only those.
        let candidates = predictions.indices.filter { i in
            guard case let .posterior(estimate) = predictions[i], matched[i] != nil,
                  assumptions.domain(files[i])?.outside.isEmpty ?? true else { return false }
            return refinement.accepts(estimate, names: predictor.recipe?.targetNames ?? [])
        }
        let refined = Threading.parallelMap(candidates.count, costPerItem: 1 << 20) { c -> (PosteriorEstimate, [Assumption])? in
            let i = candidates[c]
            guard case let .posterior(estimate) = predictions[i] else { return nil }
            return predictor.refined(estimate, matched: matched[i]!, refinement: refinement,
                                     seed: predictor.posteriorSeed ^ SeededGenerator.nameHash(files[i]))
        }
        var out = predictions
        for (c, result) in refined.enumerated() {
            guard let (estimate, notes) = result else { continue }
            out[candidates[c]] = .posterior(estimate)
            assumptions.record(file: files[candidates[c]], notes)
        }
        return out
    }

    /// A file's result as the run records it: with the domain its preparation was judged to
    /// be in, and the prediction as reported for that domain (`Predictor.reported`).
    func journalEntry(_ file: String, _ prediction: Prediction, _ predictor: Predictor) -> RunJournal.Entry {
        let domain = assumptions.domain(file)
        return RunJournal.Entry(file: file, prediction: predictor.reported(prediction, domain: domain), domain: domain)
    }

    /// Classification, lens finding and regression: batches through the network, one result per file.
    func tabulate(_ todo: [CatalogEntry], predictor: Predictor, journal: RunJournal, progress: ProgressBar?) throws {
        let policy: SampleFailurePolicy = config.run.onError == .skip ? .skip : .fail
        let loader = BatchLoader(catalog: Catalog(entries: todo), batchSize: config.run.batchSize,
                                 training: false, threads: config.run.threads,
                                 onFailure: policy, load: journaledPrepare(predictor, journal))
        var reportedFailures = 0
        var batchesDone = 0
        while let batch = try loader.next() {
            var entries = try entries(batch.names, predictor.predict(batch: Tensor(shape: batch.shape, data: batch.inputs)), predictor)
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
        let tiling = config.tiling ?? TilingConfig(tile: 256, overlap: 32, weighting: .smooth)
        // The first map was checked against the model before the loop: any later failure, bands included, is that file's own.
        try writeImages(todo, outputs: outputs, folder: folder, journal: journal, progress: progress, stops: { _, _ in false },
                        write: { try predictor.segment($0, to: $1, tiling: tiling, batchSize: self.config.run.batchSize,
                                                       probabilities: self.config.outputs.probabilities) },
                        result: { .segmentation(SegmentationMap(output: $0)) })
    }

    /// Deblending, one input at a time, each into its checked output. A file the model cannot
    /// take (shape, stages) is that file's failure under `on_error: skip`, except on the
    /// first file, where a mismatch of bands stops the run.
    func deblend(_ todo: [CatalogEntry], predictor: Predictor, outputs: [String: URL], folder: URL,
                 journal: RunJournal, progress: ProgressBar?) throws {
        try writeImages(todo, outputs: outputs, folder: folder, journal: journal, progress: progress,
                        stops: { error, done in
                            guard done == 0, case let PipelineError.inputMismatch(_, received, expected, _) = error else { return false }
                            return received.first != expected.first
                        },
                        write: { try predictor.deblend($0, to: $1) },
                        result: { .deblended(DeblendedImage(output: $0)) })
    }

    /// One image file per input (segmentation maps, deblended images), one input at a time:
    /// `write` makes the input's file at its checked output and returns the assumptions it
    /// made, `result` is the journal's record of the output's relative name. A failure is the
    /// file's own under `on_error: skip` unless `stops` (the error, the files done) says so.
    func writeImages(_ todo: [CatalogEntry], outputs: [String: URL], folder: URL, journal: RunJournal,
                     progress: ProgressBar?, stops: (Error, Int) -> Bool,
                     write: (CatalogEntry, URL) throws -> [Assumption], result: (String) -> Prediction) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for (done, entry) in todo.enumerated() {
            let url = outputs[entry.name]!
            do {
                try journal.markReading(entry.name, true)
                Self.simulateCrashIfAsked(reading: entry.name)
                try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                assumptions.record(file: entry.name, try write(entry, url))
                try journal.record([.init(file: entry.name, prediction: result(OutputSafety.relativeOutputName(entry.name)))])
            } catch {
                guard config.run.onError == .skip, !stops(error, done) else { throw error }
                try journal.record([.init(file: entry.name, error: error.localizedDescription)])
            }
            progress?.advance()
            Self.simulateCrashIfAsked(done + 1)
        }
    }

    /// For tests of resumption: `ASTROLABE_CRASH_AFTER_BATCHES=N` ends the process
    /// abruptly after N batches (maps, for segmentation), as a kill would.
    /// With `ASTROLABE_CRASH_RANK=R` only rank R of an MPI job does so, by `kill -9` of itself.
    static func simulateCrashIfAsked(_ batches: Int) {
        let environment = ProcessInfo.processInfo.environment
        guard let text = environment["ASTROLABE_CRASH_AFTER_BATCHES"], Int(text) == batches else { return }
        if let rank = environment["ASTROLABE_CRASH_RANK"] {
            guard rank == environment["OMPI_COMM_WORLD_RANK"] else { return }
            kill(getpid(), SIGKILL)
        }
        _exit(137)
    }

    /// For tests of crashes inside the FITS reader: `ASTROLABE_CRASH_READING=NAME`
    /// ends the process abruptly when it starts reading the catalog entry NAME.
    static func simulateCrashIfAsked(reading name: String) {
        if let text = ProcessInfo.processInfo.environment["ASTROLABE_CRASH_READING"], text == name {
            _exit(136)
        }
    }
}
