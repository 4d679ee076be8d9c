import AstroBase
import Autograd
import Cluster
import FITS
import Foundation
import NN
import Preprocessing
import Training

/// What `astrolabe run` was asked on the command line.
public struct RunOptions {
    public var input: String?
    public var output: String?
    public var overrides: [String]
    public var quiet: Bool
    /// Restart from scratch even if a journal of an interrupted run exists.
    public var fresh: Bool
    /// Posterior draws per input to keep in the results (besides `outputs.posterior_samples`);
    /// `evaluate` keeps them all for its calibration tests.
    public var keptPosteriorSamples = 0
    /// One part of a batch run (`--shard I/N`, for job arrays): this process predicts its
    /// part of the inputs into a part journal; `merge` joins the parts.
    public var shard: Shard?
    /// The processes of an MPI job (nil: `Communicator.world`, one process unless launched by mpirun).
    public var communicator: Communicator?

    public init(input: String? = nil, output: String? = nil, overrides: [String] = [], quiet: Bool = false, fresh: Bool = false,
                shard: Shard? = nil, communicator: Communicator? = nil) {
        self.input = input
        self.output = output
        self.overrides = overrides
        self.quiet = quiet
        self.fresh = fresh
        self.shard = shard
        self.communicator = communicator
    }
}

/// What a run did.
public struct RunSummary: Equatable {
    public var done: Int
    public var failed: Int
    /// Files finished by an earlier, interrupted run and not redone.
    public var resumed: Int
    public var seconds: Double
    public var outputs: [String]
    public var errorsFile: String?

    public var line: String {
        var text = "done \(done)"
        if resumed > 0 { text += " (\(resumed) from an earlier run)" }
        text += ", failed \(failed), " + String(format: "%.1f s", seconds)
        if let errorsFile, failed > 0 { text += "; failures listed in \(errorsFile)" }
        return text
    }
}

/// Runs a pipeline file: inference over any number of FITS files (resumable,
/// bounded memory, failures recorded), or training when the model has a `train` block.
public final class PipelineRunner {
    public let config: PipelineConfig
    public let pipelinePath: String
    public let options: RunOptions
    let folder: URL
    /// What the run's stages assumed, per file; each kind said once on the console.
    let assumptions: AssumptionLog
    /// Prepared files' images before the recipe's stages, kept from preparation until the sky fit.
    let matchedImages = SampleStore()

    public init(pipelinePath: String, options: RunOptions = RunOptions()) throws {
        self.pipelinePath = pipelinePath
        self.options = options
        config = try PipelineLoader.load(pipelinePath, overrides: options.overrides)
        folder = URL(fileURLWithPath: pipelinePath).deletingLastPathComponent()
        assumptions = AssumptionLog(quiet: options.quiet)
    }

    /// A path from the pipeline file, relative to the file's folder.
    func resolve(_ path: String) -> URL {
        path.hasPrefix("/") ? URL(fileURLWithPath: path) : folder.appendingPathComponent(path).standardizedFileURL
    }

    /// A path from the command line, relative to the working directory.
    func resolveArgument(_ path: String) -> URL { URL(fileURLWithPath: path).standardizedFileURL }

    /// Whether this run trains (a `train` block) rather than predicts.
    public var trains: Bool { config.model.train != nil }

    /// The processes of this run: several when launched by mpirun or srun.
    var communicator: Communicator { options.communicator ?? .world }

    /// Progress lines, from one process of an MPI job (rank 0).
    func log(_ text: String) {
        if !options.quiet && communicator.rank == 0 { FileHandle.standardError.write(Data((text + "\n").utf8)) }
    }

    public func run() throws -> RunSummary {
        if config.task == .lightcurves { return try trains ? trainLightCurves(cancellation: nil) : classifyLightCurves().summary }
        if trains { return try train() }
        return try predictAll().summary
    }

    // MARK: - Inputs

    func inputCatalog(labelColumn: String? = nil, targetColumns: [String] = [], classNames: [String] = []) throws -> Catalog {
        let path: String
        if let input = options.input {
            path = resolveArgument(input).path
        } else if let configured = config.input.path {
            path = configured.contains("*") ? folder.appendingPathComponent(configured).path : resolve(configured).path
        } else {
            throw PipelineError.noInput(pipeline: pipelinePath)
        }
        return try Catalog.resolve(path, labelColumn: labelColumn, classNames: classNames, targetColumns: targetColumns)
    }
}

/// Samples by file name, put by the loader's threads and taken once by the run's.
final class SampleStore: @unchecked Sendable {
    private let lock = NSLock()
    private var samples: [String: Sample] = [:]
    func put(_ name: String, _ sample: Sample) { lock.lock(); samples[name] = sample; lock.unlock() }
    func take(_ name: String) -> Sample? { lock.lock(); defer { lock.unlock() }; return samples.removeValue(forKey: name) }
}

/// The assumptions of one run: per file (written with the outputs) and each kind
/// (subject) announced once on the console, with the first file's value.
final class AssumptionLog: @unchecked Sendable {
    private let lock = NSLock()
    private var files: [String: [String]] = [:]
    private var announced: Set<String> = []
    /// Whether the heading of the assumptions has been printed.
    private var introduced = false
    let quiet: Bool

    init(quiet: Bool) { self.quiet = quiet }

    /// Every file's notes, by file name.
    var byFile: [String: [String]] { lock.lock(); defer { lock.unlock() }; return files }

    private var domains: [String: DomainCheck] = [:]

    func record(_ sample: Sample, observation: Observation? = nil) {
        if let observation {
            let check = DomainCheck(observation, sample)
            lock.lock(); domains[sample.name] = check; lock.unlock()
        }
        record(file: sample.name, sample.assumptions)
    }

    /// Adds `name` to what lies outside the training domain for `file` (when it has a domain check).
    func flag(_ file: String, outside name: String) {
        lock.lock(); defer { lock.unlock() }
        if domains[file] != nil, !domains[file]!.outside.contains(name) { domains[file]!.outside.append(name) }
    }

    /// The domain check of a prepared file (nil when the model records no observation).
    func domain(_ file: String) -> DomainCheck? { lock.lock(); defer { lock.unlock() }; return domains[file] }

    func record(file: String, _ notes: [Assumption]) {
        guard !notes.isEmpty else { return }
        lock.lock()
        var fresh = [Assumption]()
        var seen = Set(files[file] ?? [])
        for note in notes where !seen.contains(note.note) {
            files[file, default: []].append(note.note)
            seen.insert(note.note)
            if announced.insert(note.subject).inserted { fresh.append(note) }
        }
        let first = !fresh.isEmpty && !introduced
        if !fresh.isEmpty { introduced = true }
        lock.unlock()
        guard !quiet, !fresh.isEmpty else { return }
        var text = first ? "assumed (each said once per run; every file's values are in the run record):\n" : ""
        for note in fresh { text += "  \(file): \(note.note)\n" }
        FileHandle.standardError.write(Data(text.utf8))
    }
}
