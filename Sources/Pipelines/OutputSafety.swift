import Foundation
import Preprocessing

/// Where a run's outputs land, checked before any work: names read from a
/// catalog never place an output outside its folder, and no output is ever an
/// input of the same run.
///
/// - A per-input output (a segmentation map) is `<folder>/<name>`, where `name`
///   is the catalog's name with empty, `.` and `..` components and any leading
///   `/` dropped: `../x.fits` → `x.fits`, `/data/x.fits` → `data/x.fits`,
///   `night1/x.fits` stays `night1/x.fits` (a sub-folder of the output folder).
/// - Two inputs whose names give the same output, or an output that is (after
///   symbolic links) one of the run's input files, stop the run with a typed error
///   naming both.
public enum OutputSafety {
    /// The catalog name `name` as a relative path that stays inside an output folder.
    public static func relativeOutputName(_ name: String) -> String {
        let parts = name.split(separator: "/").filter { $0 != "." && $0 != ".." && !$0.isEmpty }
        return parts.isEmpty ? "unnamed.fits" : parts.joined(separator: "/")
    }

    /// The real location of `url`: its deepest existing folder through `realpath`
    /// (symbolic links resolved), then the components that do not exist yet.
    static func real(_ url: URL) -> String {
        var existing = url.standardizedFileURL
        var rest = [String]()
        while existing.path != "/" {
            if let resolved = realpath(existing.path, nil) {
                defer { free(resolved) }
                return ([String(cString: resolved)] + rest.reversed()).joined(separator: "/")
            }
            rest.append(existing.lastPathComponent)
            existing.deleteLastPathComponent()
        }
        return url.standardizedFileURL.path
    }

    /// Every file a run reads: the catalog (when it is a CSV) and each entry's files.
    static func inputFiles(_ catalog: Catalog, input: FITSInput) -> [String: String] {
        var files = [String: String]()   // real path -> as named
        if catalog.source.lowercased().hasSuffix(".csv") { files[real(URL(fileURLWithPath: catalog.source))] = catalog.source }
        for entry in catalog.entries {
            for (_, path) in input.bandPaths(for: entry) { files[real(URL(fileURLWithPath: path))] = path }
        }
        return files
    }

    /// Throws `outputIsInput` if any of `outputs` is one of the run's input files.
    public static func checkOutputs(_ outputs: [URL], catalog: Catalog, input: FITSInput) throws {
        let inputs = inputFiles(catalog, input: input)
        for output in outputs {
            if let input = inputs[real(output)] {
                throw PipelineError.outputIsInput(output: output.path, input: input)
            }
        }
    }

    /// The output of every entry inside `folder`, refusing collisions and outputs that are inputs.
    public static func perInputOutputs(_ catalog: Catalog, in folder: URL, input: FITSInput) throws -> [String: URL] {
        var outputs = [String: URL](), owner = [String: String]()
        for entry in catalog.entries {
            let url = folder.appendingPathComponent(relativeOutputName(entry.name)).standardizedFileURL
            if let other = owner[url.path], other != entry.name {
                throw PipelineError.outputCollision(output: url.path, first: other, second: entry.name)
            }
            owner[url.path] = entry.name
            outputs[entry.name] = url
        }
        try checkOutputs(Array(outputs.values), catalog: catalog, input: input)
        return outputs
    }
}
