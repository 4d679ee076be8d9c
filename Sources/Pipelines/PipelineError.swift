import Foundation

/// Problems found while running a pipeline, each naming the file or key at fault.
public enum PipelineError: Error, Equatable, LocalizedError {
    case missingFile(path: String, what: String)
    case modelFile(path: String, reason: String)
    case inputMismatch(file: String, received: [Int], expected: [Int], model: String)
    case noInput(pipeline: String)
    case unsupported(String)
    case missingTruth(file: String, what: String)
    /// An output location that is one of the run's inputs.
    case outputIsInput(output: String, input: String)
    /// Two inputs whose names give the same output file.
    case outputCollision(output: String, first: String, second: String)
    /// Another process holds the output's run journal.
    case outputBusy(output: String, journal: String, pid: Int32?)
    /// A part of a split run (`--shard I/N`) that has not finished, when joining the parts.
    case incompletePart(part: String, journal: String, missing: Int)

    public var errorDescription: String? {
        switch self {
        case let .missingFile(path, what):
            return "\(path): no such file (\(what))."
        case let .modelFile(path, reason):
            return "\(path): \(reason)."
        case let .inputMismatch(file, received, expected, model):
            return "\(file): after preprocessing the image has shape \(received) (channels, height, width), but the "
                + "model \(model) takes \(expected). Check the input's bands (cube planes or band_files) and add a "
                + "resize or center_crop stage if only the size differs."
        case let .noInput(pipeline):
            return "\(pipeline): no input: give --input (a folder, a glob or a catalog CSV) or set input.path."
        case let .unsupported(message):
            return message
        case let .missingTruth(file, what):
            return "\(file): \(what) is missing, so it cannot be evaluated."
        case let .outputIsInput(output, input):
            return "\(output): this output would overwrite the input \(input); choose another --output (nothing was written)."
        case let .outputCollision(output, first, second):
            return "\(output): the inputs '\(first)' and '\(second)' would both be written there; "
                + "give them distinct names in the catalog (nothing was written)."
        case let .outputBusy(output, journal, pid):
            return "\(output): another astrolabe process" + (pid.map { " (PID \($0))" } ?? "")
                + " is writing this output (it holds \(journal)); wait for it or choose another --output."
        case let .incompletePart(part, journal, missing):
            return "part \(part) is not finished: \(missing) of its inputs have no result in \(journal); "
                + "run that part again (`astrolabe run ... --shard \(part)`) and merge once every part is done."
        }
    }
}
