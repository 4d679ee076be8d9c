import ArgumentParser
import AstroBase
import Autograd
import Cluster
import Foundation
import Pipelines
import Training

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
        --set input.header_values.MAGZERO=27.5. Rows carry in_domain, outside_domain, \
        ood_energy (class models) and, where the model records a feature density, ood_features (see docs/real-data.md).

        Under mpirun (or srun) with N processes the inputs are split over them; each process \
        writes its part with its own journal and rank 0 joins the parts into the one output, in \
        the input order. Without MPI, --shard I/N runs part I of N (Slurm job arrays) and \
        `astrolabe merge` joins the parts (see docs/distributed.md).

        Examples:
          astrolabe run pipelines/classify-galaxies.yaml --input samples/morphology --output morph.csv
          astrolabe run pipelines/train-morphology.yaml --set model.train.epochs=3
          mpirun -np 4 astrolabe run pipelines/classify-galaxies.yaml --input big.csv --output big-predictions.csv
        """)

    @Argument(help: "The pipeline file (YAML).") var pipeline: String
    @Option(help: "Input: a folder of FITS files, a glob such as 'data/*.fits', or a catalog CSV.") var input: String?
    @Option(help: "Output: a CSV file, or a folder for segmentation maps and deblended images.") var output: String?
    @Option(name: .customLong("set"), parsing: .singleValue,
            help: "Override a key of the pipeline, e.g. --set run.batch_size=32 (repeatable).")
    var overrides: [String] = []
    @Flag(help: "Ignore the journal of an interrupted run and start over.") var fresh = false
    @Flag(help: "No progress output.") var quiet = false
    @Option(help: "Run part I of N of the inputs (I from 0), e.g. --shard $SLURM_ARRAY_TASK_ID/8; join with `astrolabe merge`.")
    var shard: String?

    func validate() throws {
        if let shard, Shard(parsing: shard) == nil {
            throw ValidationError("--shard \(shard): expected I/N with 0 ≤ I < N, e.g. --shard 0/4")
        }
    }

    func run() throws {
        joinMPIJobIfLaunched()
        try runReportingErrors {
            let runner = try PipelineRunner(pipelinePath: pipeline, options: RunOptions(
                input: input, output: output, overrides: overrides, quiet: quiet, fresh: fresh,
                shard: shard.flatMap(Shard.init(parsing:))))
            if shard != nil && runner.trains {
                throw ValidationError("--shard splits the inputs of a prediction run; \(pipeline) trains (use mpirun to train on several processes)")
            }
            let summary = runner.trains ? try withCtrlCCancellation { try runner.train(cancellation: $0) } : try runner.run()
            if !summary.outputs.isEmpty { print(summary.outputs.joined(separator: "\n")) }
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
        Data-parallel on N processes: `mpirun -np N astrolabe train P.yaml` (see docs/distributed.md).
        """)

    @Argument(help: "The training pipeline file (YAML).") var pipeline: String
    @Option(help: "Training data: a catalog CSV or a folder (overrides model.train.data).") var input: String?
    @Option(name: .customLong("set"), parsing: .singleValue, help: "Override a key, e.g. --set model.train.epochs=3.")
    var overrides: [String] = []
    @Flag(help: "Ignore an existing checkpoint and start over.") var fresh = false
    @Flag(help: "No progress output.") var quiet = false

    func run() throws {
        joinMPIJobIfLaunched()
        try runReportingErrors {
            let runner = try PipelineRunner(pipelinePath: pipeline, options: RunOptions(
                input: input, overrides: overrides, quiet: quiet, fresh: fresh))
            guard runner.trains else {
                throw ValidationError("\(pipeline) has no model.train block: use `astrolabe run` to predict with it.")
            }
            let summary = try withCtrlCCancellation { try runner.train(cancellation: $0) }
            if !summary.outputs.isEmpty { print(summary.outputs.joined(separator: "\n")) }
        }
    }
}

/// `astrolabe merge PIPELINE.yaml --parts N`: joins the parts of a run split with `--shard`.
struct Merge: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Join the parts of a batch run split with `astrolabe run --shard I/N` into its one output.",
        discussion: """
        Give the same pipeline, --input, --output and --set as the parts. Every part must have \
        finished (run an unfinished one again: it resumes); the output is the one a single \
        process writes, in the input order, and the part journals are removed.

        Example (a Slurm job array of 8 tasks, then one merge):
          astrolabe run p.yaml --input all.csv --output out.csv --shard $SLURM_ARRAY_TASK_ID/8
          astrolabe merge p.yaml --input all.csv --output out.csv --parts 8
        """)

    @Argument(help: "The pipeline file (YAML) the parts ran.") var pipeline: String
    @Option(help: "The parts' --input.") var input: String?
    @Option(help: "The parts' --output.") var output: String?
    @Option(name: .customLong("set"), parsing: .singleValue, help: "The parts' --set overrides.") var overrides: [String] = []
    @Option(help: "Number of parts (N of --shard I/N).") var parts: Int
    @Flag(help: "No progress output.") var quiet = false

    func run() throws {
        try runReportingErrors {
            let runner = try PipelineRunner(pipelinePath: pipeline, options: RunOptions(
                input: input, output: output, overrides: overrides, quiet: quiet))
            let result = try runner.merge(parts: parts)
            print(result.summary.outputs.joined(separator: "\n"))
        }
    }
}

/// Sets up the processes of an MPI job (when launched by mpirun or srun): starts MPI and
/// gives each process its share of the machine's cores (ranks × threads ≤ cores).
/// `ASTROLABE_THREADS` sets the threads per process instead.
func joinMPIJobIfLaunched() {
    let comm = Communicator.world
    guard comm.isLaunched else { return }
    let threads = ProcessInfo.processInfo.environment["ASTROLABE_THREADS"].flatMap(Int.init).flatMap { $0 > 0 ? $0 : nil }
    Threading.shareCores(index: comm.localRank, processes: comm.localSize, threads: threads)
}

/// Prints an error as one line naming what is wrong and exits 1 (no stack traces for users).
/// In an MPI job, a process that fails ends the whole job (`MPI_Abort`) with the message,
/// so no other process waits for it; an interrupted training (every process stopped at
/// the same batch) ends normally.
func runReportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as ExitCode {
        throw error
    } catch let error as ValidationError {
        throw error
    } catch {
        let comm = Communicator.world
        if comm.size > 1 {
            if case TrainingError.interrupted = error {
                if comm.rank == 0 { FileHandle.standardError.write(Data("astrolabe: \(error.localizedDescription)\n".utf8)) }
                throw ExitCode(1)
            }
            comm.abort(error.localizedDescription)
        }
        FileHandle.standardError.write(Data("astrolabe: \(error.localizedDescription)\n".utf8))
        throw ExitCode(1)
    }
}
