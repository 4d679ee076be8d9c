import CSV
import FITS
import Foundation
import Training

/// The columns of a task's result table (TASKS.md, "Shipped pipelines and what
/// they write") and the one place where typed results become text (CSV) or
/// typed FITS columns.
public struct ResultTable: Sendable {
    public enum Layout: Sendable {
        /// `file,predicted,p_<class>...` (probabilities optional).
        case classes(names: [String], probabilities: Bool)
        /// `file,<target>...`, then with `percentiles` (a model with uncertainty) per target
        /// `<target>_p16,<target>_p84,<target>_p025,<target>_p975` of its Gaussian (TASKS.md).
        case regression(targets: [String], percentiles: Bool)
        /// `file,<target>...` (posterior medians), then per target
        /// `<target>_p16,<target>_p84,<target>_p025,<target>_p975` (TASKS.md).
        case posterior(targets: [String])
        /// `file,output` (segmentation maps).
        case maps
        /// `file,logit_0...` (`predict --raw`).
        case logits(count: Int)
        /// `file,probability_0...` or `file,p_<class>...`: probabilities without a predicted column (`predict`).
        case probabilities(names: [String])
    }

    public let layout: Layout
    /// When set (a model that records its observation), rows end with the quality columns
    /// `in_domain` (yes, no, unknown), `outside_domain` (pixel_scale, psf, depth, neighbours; for a
    /// posterior also `<target>_range` when its posterior piles up on a bound of the prior,
    /// `TargetScaling.targetsAtRangeEdge`; for a class model with an energy threshold
    /// `atypical` when the image's energy score is above it; `;`-separated) and, for
    /// classifiers, `ood_energy` (the energy score of the network output); for a model with a
    /// feature density (class models and regressions) also `ood_features`
    /// (`Prediction.featureDistance`), and `unfamiliar` in `outside_domain` when it is above the
    /// density's threshold. A posterior's rows end with `posterior_from` in any case: `network`,
    /// or `profile_fit` where a profile fit's likelihood gave it (`ProfileRefinement`).
    public var domains: [String: DomainCheck]?
    /// A posterior model's target scaling (its prior ranges), for the `<target>_range` flags.
    public var scaling: TargetScaling?
    /// A class model's energy threshold (`ModelRecipe.oodEnergyThreshold`), for the `atypical` flag.
    public var energyThreshold: Double?
    /// The model's feature density (`ModelRecipe.featureDensity`), for `ood_features` and `unfamiliar`.
    public var featureDensity: FeatureDensity?

    public init(_ layout: Layout) { self.layout = layout }

    var qualityHeader: [String] {
        var header = [String]()
        if domains != nil {
            header = ["in_domain", "outside_domain"]
            if case .classes = layout { header.append("ood_energy") }
            if featureDensity != nil { header.append("ood_features") }
        }
        if case .posterior = layout { header.append("posterior_from") }
        return header
    }

    func qualityText(file: String, _ prediction: Prediction) -> [String] {
        var row = domainText(file: file, prediction)
        // A posterior's source: the network's flow, or a profile fit (`ProfileRefinement`).
        if case .posterior = layout {
            if case let .posterior(p) = prediction { row.append(p.source ?? "network") } else { row.append("") }
        }
        return row
    }

    func domainText(file: String, _ prediction: Prediction) -> [String] {
        guard let domains else { return [] }
        let check = domains[file]
        var flags = [String]()
        if let scaling, case let .posterior(p) = prediction { flags = scaling.targetsAtRangeEdge(p).map { $0 + "_range" } }
        flags += prediction.oodFlags(energyThreshold: energyThreshold, featureThreshold: featureDensity?.threshold)
        let outside = (check?.outside ?? []) + flags
        var row = [flags.isEmpty ? check?.verdict ?? "unknown" : "no", outside.joined(separator: ";")]
        if case .classes = layout { row.append(prediction.energy.map(Self.format) ?? "") }
        if featureDensity != nil { row.append(prediction.featureDistance.map(Self.format) ?? "") }
        return row
    }

    /// The table a pipeline writes for `predictor`'s task.
    public init(predictor: Predictor, probabilities: Bool) {
        if predictor.raw {
            layout = .logits(count: predictor.architecture.classes)
            return
        }
        switch predictor.task {
        case .classify, .lens, .lightcurves:
            layout = .classes(names: predictor.classNames, probabilities: probabilities)
            energyThreshold = predictor.recipe?.oodEnergyThreshold
        case .regress where predictor.isPosterior:
            layout = .posterior(targets: predictor.recipe!.targetNames)
            scaling = predictor.recipe!.targetScaling
        case .regress: layout = .regression(targets: predictor.recipe!.targetNames, percentiles: predictor.recipe!.predictsUncertainty)
        case .segment, .deblend, .generate: layout = .maps
        }
        featureDensity = predictor.featureDensity?.0
    }

    public var header: [String] {
        switch layout {
        case let .classes(names, probabilities): return ["file", "predicted"] + (probabilities ? names.map { "p_" + $0 } : [])
        case let .regression(targets, percentiles):
            return ["file"] + targets + (percentiles ? targets.flatMap { t in Self.percentileSuffixes.map { t + $0 } } : [])
        case let .posterior(targets):
            return ["file"] + targets + targets.flatMap { t in Self.percentileSuffixes.map { t + $0 } }
        case .maps: return ["file", "output"]
        case let .logits(count): return ["file"] + (0..<count).map { "logit_\($0)" }
        case let .probabilities(names): return ["file"] + names
        }
    }

    /// The numbers of one result, in column order after `file` (and `predicted`).
    public func numbers(_ prediction: Prediction) -> [Double] {
        switch (layout, prediction) {
        case let (.classes(_, probabilities), .classes(p)): return probabilities ? p.probabilities : []
        case let (.probabilities, .classes(p)): return p.probabilities
        case let (.regression(_, percentiles), .regression(r)):
            return r.values + (percentiles ? (r.percentiles ?? []).flatMap { $0 } : [])
        case let (.posterior, .posterior(p)):
            return p.medians + p.medians.indices.flatMap { [p.p16[$0], p.p84[$0], p.p025[$0], p.p975[$0]] }
        case let (_, .logits(values)): return values
        default: return []
        }
    }

    /// The text of one result's row: numbers with 6 significant digits.
    public func row(file: String, _ prediction: Prediction) -> [String] {
        var row = [file]
        switch (layout, prediction) {
        case let (.classes(names, _), .classes(p)):
            row.append(p.predicted < names.count ? names[p.predicted] : String(p.predicted))
        case let (.maps, .segmentation(map)):
            row.append(map.output)
        case let (.maps, .deblended(image)):
            row.append(image.output)
        default:
            break
        }
        return row + numbers(prediction).map(Self.format)
    }

    /// The percentile columns of a posterior, in TASKS.md's order.
    public static let percentileSuffixes = ["_p16", "_p84", "_p025", "_p975"]

    /// `value` as C's `%.6g` (glibc's `snprintf`, which `String(format:)` also ends in, at a
    /// fraction of its cost: a table row formats every probability and score).
    public static func format(_ value: Double) -> String {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 32) { buffer in
            _ = withVaList([value]) { vsnprintf(buffer.baseAddress, 32, "%.6g", $0) }
            return String(cString: buffer.baseAddress!)
        }
    }

    /// The header line of a light-curve table (TASKS.md task 5):
    /// `object_id,predicted[,p_<class>...]`.
    public static func lightCurveHeader(classNames: [String], probabilities: Bool) -> [UInt8] {
        Array((["object_id", "predicted"] + (probabilities ? classNames.map { "p_" + $0 } : [])).joined(separator: ",").utf8) + [10]
    }

    /// Appends one line per prediction, `object_id,<class>[,p...]`, to `bytes`.
    public static func appendLightCurveRows(_ predictions: [LightCurvePrediction], classNames: [String], probabilities: Bool,
                                            to bytes: inout [UInt8]) {
        bytes.reserveCapacity(bytes.count + predictions.count * (24 + 9 * classNames.count))
        let names = classNames.map { Array($0.utf8) }
        for p in predictions {
            bytes += Array(String(p.objectID).utf8)
            bytes.append(44)
            bytes += names[p.classes.predicted]
            if probabilities {
                for value in p.classes.probabilities {
                    bytes.append(44)
                    appendProbability(value, to: &bytes)
                }
            }
            bytes.append(10)
        }
    }

    /// Appends a probability with six decimals (`%.6f`) to `bytes`, without a formatted
    /// string per value (a light-curve run writes seven per curve); values outside [0, 1]
    /// go through `String(format:)`.
    public static func appendProbability(_ value: Double, to bytes: inout [UInt8]) {
        guard value >= 0 && value <= 1 else { bytes += Array(String(format: "%.6f", value).utf8); return }
        let scaled = Int((value * 1_000_000).rounded())
        bytes.append(scaled >= 1_000_000 ? 49 : 48)
        bytes.append(46)
        var fraction = scaled % 1_000_000, divisor = 100_000
        while divisor > 0 {
            bytes.append(UInt8(48 + fraction / divisor))
            fraction %= divisor
            divisor /= 10
        }
    }

    /// The whole table as CSV text (RFC 4180 quoting).
    public func csv(_ results: [(file: String, prediction: Prediction)]) throws -> String {
        try CSVText.table(header: header + qualityHeader,
                          rows: results.map { row(file: $0.file, $0.prediction) + qualityText(file: $0.file, $0.prediction) })
    }

    /// Posterior draws as a FITS binary table (`EXTNAME = SAMPLES`): up to `count` rows per
    /// input, columns `file`, `draw` (0-based) and one double column per target, in catalog units.
    /// Results without draws are left out; returns how many were.
    @discardableResult
    public static func writePosteriorSamples(_ results: [(file: String, prediction: Prediction)], targets: [String],
                                             count: Int, to url: URL) throws -> Int {
        var files = [String](), draws = [Int32](), values = [[Double]](repeating: [], count: targets.count)
        var missing = 0
        let k = targets.count
        for (file, prediction) in results {
            guard case let .posterior(p) = prediction, let samples = p.samples, k > 0 else { missing += 1; continue }
            for d in 0..<Swift.min(count, samples.count / k) {
                files.append(file)
                draws.append(Int32(d))
                for t in 0..<k { values[t].append(samples[d * k + t]) }
            }
        }
        var columns = [FITSColumn("file", .string(files)), FITSColumn("draw", .int32(draws))]
        for (k, name) in targets.enumerated() { columns.append(FITSColumn(name, .double(values[k]))) }
        try writeTable(columns, extensionName: "SAMPLES", to: url)
        return missing
    }

    /// The same table as a FITS binary table (`EXTNAME = RESULTS`): numbers as
    /// double columns straight from the results, names as strings.
    public func writeFITS(_ results: [(file: String, prediction: Prediction)], to url: URL) throws {
        let header = self.header
        var columns = [FITSColumn("file", .string(results.map(\.file)))]
        var textColumns = 1
        switch layout {
        case .classes, .maps:
            columns.append(FITSColumn(header[1], .string(results.map { row(file: $0.file, $0.prediction)[1] })))
            textColumns = 2
        default:
            break
        }
        let numbers = results.map { self.numbers($0.prediction) }
        for (k, name) in header.dropFirst(textColumns).enumerated() {
            columns.append(FITSColumn(name, .double(numbers.map { k < $0.count ? $0[k] : .nan })))
        }
        let quality = results.map { qualityText(file: $0.file, $0.prediction) }
        for (k, name) in qualityHeader.enumerated() {
            if name == "ood_energy" || name == "ood_features" {
                columns.append(FITSColumn(name, .double(results.map {
                    (name == "ood_features" ? $0.prediction.featureDistance : $0.prediction.energy) ?? .nan
                })))
            } else {
                columns.append(FITSColumn(name, .string(quality.map { $0[k] })))
            }
        }
        try Self.writeTable(columns, extensionName: "RESULTS", to: url)
    }

    /// One binary table in a new FITS file, written atomically (nothing left on failure).
    static func writeTable(_ columns: [FITSColumn], extensionName: String, to url: URL) throws {
        let writer = try FITSWriter(path: url.path, overwrite: true)
        do {
            try writer.appendTable(FITSTable(columns), extensionName: extensionName)
            try writer.commit()
        } catch {
            writer.discard()
            throw error
        }
    }
}

/// CSV output through CSV.swift (quoting as RFC 4180), every line ending in a line break, the
/// last too (so `wc -l`, `cat` of several files and `tail` see whole lines).
enum CSVText {
    static func table(header: [String], rows: [[String]]) throws -> String {
        let writer = try CSVWriter(stream: .toMemory())
        try writer.write(row: header)
        for row in rows { try writer.write(row: row) }
        writer.stream.close()
        let data = writer.stream.property(forKey: .dataWrittenToMemoryStreamKey) as? Data ?? Data()
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}
