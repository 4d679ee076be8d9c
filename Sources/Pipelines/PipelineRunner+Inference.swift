import Autograd
import CSV
import FITS
import Foundation
import NN
import Preprocessing
import Training

extension PipelineRunner {
    /// The CSV columns of a task (TASKS.md, "Shipped pipelines and what they write").
    static func header(task: PipelineTask, recipe: ModelRecipe, probabilities: Bool) -> [String] {
        switch task {
        case .classify, .lens:
            return ["file", "predicted"] + (probabilities ? recipe.classNames.map { "p_" + $0 } : [])
        case .regress:
            return ["file"] + recipe.targetNames + (recipe.predictsUncertainty ? recipe.targetNames.map { $0 + "_sigma" } : [])
        case .segment:
            return ["file", "output"]
        }
    }

    func infer() throws -> RunSummary {
        let start = Date()
        let model = try loadModel()
        let recipe = model.recipe
        guard recipe.task == config.task.rawValue else {
            throw PipelineError.modelFile(path: model.path, reason: "it was trained for the task '\(recipe.task)', "
                                          + "but the pipeline's task is '\(config.task.rawValue)'")
        }
        let catalog = try inputCatalog()
        let preparation = Preparation(inferenceStages(recipe))
        let load = sampleLoader(fitsInput(recipe), withTruth: false)
        try checkFirstInput(catalog, model, preparation: preparation, load: load, tiled: config.task == .segment)

        let outputURL: URL
        if let output = options.output { outputURL = resolveArgument(output) } else if config.task == .segment {
            outputURL = resolve(config.outputs.fitsImages ?? "segmentation")
        } else {
            outputURL = resolve(config.outputs.csv ?? "predictions.csv")
        }
        let journalURL = outputURL.deletingLastPathComponent()
            .appendingPathComponent(".\(outputURL.lastPathComponent).journal")
        let journal = try RunJournal(url: journalURL, resume: config.run.resume && !options.fresh)
        let todo = Catalog(entries: catalog.entries.filter { !journal.isFinished($0.name) }, source: catalog.source)
        if journal.resumedCount > 0 { log("resuming: \(journal.resumedCount) of \(catalog.count) files already done") }

        let progress = options.quiet ? nil : ProgressBar(total: todo.count, label: config.name.isEmpty ? "run" : config.name,
                                                          unit: "file")
        if config.task == .segment {
            try segment(todo, model: model, preparation: preparation, load: load, into: outputURL,
                        journal: journal, progress: progress)
        } else {
            try tabulate(todo, model: model, preparation: preparation, load: load, journal: journal, progress: progress)
        }

        // Outputs in the input's order, written atomically, from everything the journal holds.
        var outputs = [outputURL.path]
        if config.task != .segment {
            let header = Self.header(task: config.task, recipe: recipe, probabilities: config.outputs.probabilities)
            let rows = catalog.entries.compactMap { journal.finished[$0.name] }
            try writeAtomically(Data(try CSVText.table(header: header, rows: rows).utf8), to: outputURL)
            if let table = config.outputs.fitsTable {
                let url = resolve(table)
                try writeFITSTable(header: header, rows: rows, to: url)
                outputs.append(url.path)
            }
        }
        let failures = catalog.entries.compactMap { entry in journal.failed[entry.name].map { [entry.name, $0] } }
        var errorsFile: String?
        if !failures.isEmpty {
            let url = config.run.errorsFile.map(resolve) ?? outputURL.deletingLastPathComponent()
                .appendingPathComponent(outputURL.deletingPathExtension().lastPathComponent + ".errors.csv")
            try writeAtomically(Data(try CSVText.table(header: ["file", "error"], rows: failures).utf8), to: url)
            errorsFile = url.path
        }
        let resumed = journal.resumedCount
        var summary = RunSummary(done: catalog.count - failures.count, failed: failures.count, resumed: resumed,
                                 seconds: Date().timeIntervalSince(start), outputs: outputs, errorsFile: errorsFile)
        if config.outputs.previews != nil || config.outputs.report != nil {
            let header = Self.header(task: config.task, recipe: recipe, probabilities: config.outputs.probabilities)
            summary.outputs += try writePictures(catalog: catalog, rows: journal.finished, header: header,
                                                 summary: summary, outputURL: outputURL)
        }
        try journal.finish()
        log("\(config.name.isEmpty ? "run" : config.name): \(summary.line)")
        return summary
    }

    /// Classification, lens finding and regression: one CSV row per file.
    func tabulate(_ todo: Catalog, model: TrainedModel, preparation: Preparation, load: @escaping BatchLoader.Load,
                  journal: RunJournal, progress: ProgressBar?) throws {
        let recipe = model.recipe
        let network = withNoGrad { model.network.fusedForInference() }
        let policy: SampleFailurePolicy = config.run.onError == .skip ? .skip : .fail
        let loader = BatchLoader(catalog: todo, batchSize: config.run.batchSize, preparation: preparation,
                                 training: false, threads: config.run.threads, onFailure: policy, load: load)
        var reportedFailures = 0
        var batchesDone = 0
        while let batch = try loader.next() {
            guard Array(batch.shape.dropFirst()) == recipe.inputShape else {
                throw PipelineError.inputMismatch(file: batch.names[0], received: Array(batch.shape.dropFirst()),
                                                  expected: recipe.inputShape, model: model.path)
            }
            let output = withNoGrad { network(Tensor(shape: batch.shape, data: batch.inputs)) }
            var entries = [RunJournal.Entry]()
            for (i, name) in batch.names.enumerated() {
                entries.append(.init(file: name, row: [name] + row(output, i, recipe), error: nil))
            }
            let failures = loader.failures
            for (file, error) in failures[reportedFailures...] {
                entries.append(.init(file: file, row: nil, error: error.localizedDescription))
            }
            reportedFailures = failures.count
            try journal.record(entries)
            progress?.advance(by: entries.count)
            batchesDone += 1
            Self.simulateCrashIfAsked(batchesDone)
        }
        let failures = loader.failures
        if failures.count > reportedFailures {
            try journal.record(failures[reportedFailures...].map { .init(file: $0.file, row: nil, error: $0.error.localizedDescription) })
            progress?.advance(by: failures.count - reportedFailures)
        }
    }

    /// The CSV values of sample `i` of a batch's output.
    func row(_ output: Tensor, _ i: Int, _ recipe: ModelRecipe) -> [String] {
        let width = output.shape[1]
        let values = Array(output.scalars[(i * width)..<((i + 1) * width)])
        switch config.task {
        case .classify, .lens:
            let m = values.max() ?? 0
            let e = values.map { Foundation.exp(Double($0 - m)) }
            let total = e.reduce(0, +)
            let p = e.map { $0 / total }
            let best = p.indices.max { p[$0] < p[$1] } ?? 0
            let name = best < recipe.classNames.count ? recipe.classNames[best] : String(best)
            return [name] + (config.outputs.probabilities ? p.map { String(format: "%.6g", $0) } : [])
        case .regress:
            let k = recipe.targetNames.count
            var means = [Double](), sigmas = [Double]()
            for t in 0..<k {
                var mean = Double(values[t]) * recipe.targetStd[t] + recipe.targetMean[t]
                var sigma = recipe.predictsUncertainty ? Foundation.exp(0.5 * Double(values[k + t])) * recipe.targetStd[t] : 0
                if recipe.logTargets.contains(recipe.targetNames[t]) {
                    // Learned as log10: back to the value, sigma by the delta method.
                    mean = Foundation.pow(10, mean)
                    sigma *= mean * Foundation.log(10)
                }
                means.append(mean)
                sigmas.append(sigma)
            }
            return (means + (recipe.predictsUncertainty ? sigmas : [])).map { String(format: "%.6g", $0) }
        case .segment:
            return []
        }
    }

    /// For tests of resumption: `ASTROLABE_CRASH_AFTER_BATCHES=N` ends the process
    /// abruptly after N batches, as a kill would.
    static func simulateCrashIfAsked(_ batches: Int) {
        if let text = ProcessInfo.processInfo.environment["ASTROLABE_CRASH_AFTER_BATCHES"], Int(text) == batches {
            _exit(137)
        }
    }

    func writeFITSTable(header: [String], rows: [[String]], to url: URL) throws {
        var columns = [FITSColumn]()
        for (c, name) in header.enumerated() {
            let values = rows.map { $0[c] }
            if c > 0, values.allSatisfy({ Double($0) != nil }) {
                columns.append(FITSColumn(name, .double(values.map { Double($0)! })))
            } else {
                columns.append(FITSColumn(name, .string(values)))
            }
        }
        let writer = try FITSWriter(path: url.path, overwrite: true)
        do {
            try writer.appendTable(FITSTable(columns), extensionName: "RESULTS")
            try writer.commit()
        } catch {
            writer.discard()
            throw error
        }
    }
}

/// CSV output through CSV.swift (quoting as RFC 4180).
enum CSVText {
    static func table(header: [String], rows: [[String]]) throws -> String {
        let writer = try CSVWriter(stream: .toMemory())
        try writer.write(row: header)
        for row in rows { try writer.write(row: row) }
        writer.stream.close()
        let data = writer.stream.property(forKey: .dataWrittenToMemoryStreamKey) as? Data ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}
