import ArgumentParser
import Foundation
import Pipelines

/// `astrolabe run PIPELINE.yaml`: the main job.
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a pipeline file: predict over FITS files, or train when the model has a train block.",
        discussion: """
        The pipeline file (see docs/pipelines.md) says where the inputs are, how to prepare them, \
        which model to use and what to write. Paths inside it are relative to the file; --input and \
        --output are relative to the working directory. A run that was interrupted continues where \
        it stopped (use --fresh to start over); files that fail are shown with their reasons, listed \
        in an errors CSV of that run (OUTPUT.errors-<time>.csv) and the run goes on (run.on_error: \
        stop to stop instead). Outputs stay inside --output and never overwrite an input; a second \
        run on an output that another process is writing stops at once (see docs/inference.md).

        Real survey images: a model file records the observation it was trained for (astrolabe \
        inspect MODEL.safetensors) and each image is brought to it from its header: zero point \
        (MAGZERO, PHOTZP, ...), sky (subtracted when it stands out), noise (SKYSIG, measured when \
        absent), pixel scale (PIXSCALE or the WCS), PSF (PSF_FWHM, SEEING), size. What the header \
        does not say is assumed, printed once and recorded in OUTPUT.runs.jsonl; give values with \
        --set input.header_values.MAGZERO=27.5. Rows carry in_domain, outside_domain and \
        ood_energy (see docs/real-data.md).

        Examples:
          astrolabe run pipelines/classify-galaxies.yaml --input samples/morphology --output morph.csv
          astrolabe run pipelines/train-morphology.yaml --set model.train.epochs=3
        """)

    @Argument(help: "The pipeline file (YAML).") var pipeline: String
    @Option(help: "Input: a folder of FITS files, a glob such as 'data/*.fits', or a catalog CSV.") var input: String?
    @Option(help: "Output: a CSV file, or a folder for segmentation maps.") var output: String?
    @Option(name: .customLong("set"), parsing: .singleValue,
            help: "Override a key of the pipeline, e.g. --set run.batch_size=32 (repeatable).")
    var overrides: [String] = []
    @Flag(help: "Ignore the journal of an interrupted run and start over.") var fresh = false
    @Flag(help: "No progress output.") var quiet = false

    func run() throws {
        try runReportingErrors {
            let runner = try PipelineRunner(pipelinePath: pipeline, options: RunOptions(
                input: input, output: output, overrides: overrides, quiet: quiet, fresh: fresh))
            let summary = runner.trains ? try withCtrlCCancellation { try runner.train(cancellation: $0) } : try runner.run()
            print(summary.outputs.joined(separator: "\n"))
            if summary.failed > 0 && summary.done == 0 { throw ExitCode(1) }
        }
    }
}

/// `astrolabe train PIPELINE.yaml`: `run` for a pipeline that trains.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train the model of a pipeline file that has a model.train block (see docs/pipelines.md).",
        discussion: """
        Writes the model file named by model.train.save (weights, architecture and the preprocessing \
        recipe, so inference needs nothing else), its history (.history.csv) and training curves \
        (-curves.png). Ctrl-C saves a checkpoint; running the same command again resumes from it.
        """)

    @Argument(help: "The training pipeline file (YAML).") var pipeline: String
    @Option(help: "Training data: a catalog CSV or a folder (overrides model.train.data).") var input: String?
    @Option(name: .customLong("set"), parsing: .singleValue, help: "Override a key, e.g. --set model.train.epochs=3.")
    var overrides: [String] = []
    @Flag(help: "Ignore an existing checkpoint and start over.") var fresh = false
    @Flag(help: "No progress output.") var quiet = false

    func run() throws {
        try runReportingErrors {
            let runner = try PipelineRunner(pipelinePath: pipeline, options: RunOptions(
                input: input, overrides: overrides, quiet: quiet, fresh: fresh))
            guard runner.trains else {
                throw ValidationError("\(pipeline) has no model.train block: use `astrolabe run` to predict with it.")
            }
            let summary = try withCtrlCCancellation { try runner.train(cancellation: $0) }
            print(summary.outputs.joined(separator: "\n"))
        }
    }
}

/// Prints an error as one line naming what is wrong and exits 1 (no stack traces for users).
func runReportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as ExitCode {
        throw error
    } catch let error as ValidationError {
        throw error
    } catch {
        FileHandle.standardError.write(Data("astrolabe: \(error.localizedDescription)\n".utf8))
        throw ExitCode(1)
    }
}
