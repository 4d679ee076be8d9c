// Attribution maps for files read the pipeline's way: FITS maps with the input's WCS, PNG
// overlays and a contact sheet (`astrolabe explain`, `outputs.explain`).
import AstroBase
import Autograd
import Explain
import FITS
import Foundation
import NN
import Plotting
import Preprocessing
import Training

extension AttributionMethod: ConfigName {}
extension IntegrationMethod: ConfigName {}
extension MapInterpolation: ConfigName {}
extension OverlayStyle: ConfigName {}

/// Which output is explained.
public enum ExplainTarget: Equatable, Sendable {
    /// The class the model predicts for each file (regression: output 0).
    case predicted
    /// An output by index.
    case index(Int)
    /// A class name (or, for regression, a target name).
    case name(String)

    /// `predicted`, an integer, or a name.
    public init(_ text: String) {
        if text == "predicted" { self = .predicted } else if let i = Int(text) { self = .index(i) } else { self = .name(text) }
    }
}

/// `outputs.explain` of a pipeline (and the options of `astrolabe explain`): see docs/interpretability.md.
public struct ExplainConfig: Equatable, Sendable {
    /// The folder of maps, relative to the pipeline file.
    public var folder: String
    public var methods: [AttributionMethod]
    public var target: ExplainTarget
    public var options: AttributionOptions
    public var overlay: OverlayStyle
    /// At most this many files in the contact sheet.
    public var sheetCount: Int
    /// Also write each file's network input (after the recipe's stages) as `<stem>.input.fits`.
    public var saveInputs = false

    public init(folder: String = "explain", methods: [AttributionMethod] = [.integratedGradients, .gradCAM],
                target: ExplainTarget = .predicted, options: AttributionOptions = AttributionOptions(),
                overlay: OverlayStyle = .colour, sheetCount: Int = 24) {
        self.folder = folder; self.methods = methods; self.target = target; self.options = options
        self.overlay = overlay; self.sheetCount = sheetCount
    }

    enum Key: String, ConfigName {
        case folder, methods, target, layer, steps, integration, baseline, samples, noise, seed, window, stride
        case occlusion_baseline, relu, interpolation, absolute, batch_size, overlay, contact_sheet_count
        case tolerance, max_steps, save_inputs
    }
}

extension ExplainConfig: Decodable {
    public init(from decoder: Decoder) throws {
        let c = try StrictKeyed<Key>(decoder, section: "outputs.explain")
        self.init()
        folder = try c.optional(.folder) ?? "explain"
        if let names: [String] = try c.optional(.methods) {
            methods = try names.map { name in
                guard let method = AttributionMethod(rawValue: name) else {
                    throw c.invalid(.methods, "'\(name)' is not an attribution method." + NearMiss.hint(for: name, among: AttributionMethod.names)
                                    + " Choose from: \(AttributionMethod.names.joined(separator: ", ")).")
                }
                return method
            }
            if methods.isEmpty { throw c.invalid(.methods, "outputs.explain.methods lists no method.") }
        }
        target = (try c.optional(.target, String.self)).map(ExplainTarget.init) ?? .predicted
        var o = AttributionOptions()
        o.layer = try c.optional(.layer) ?? o.layer
        o.steps = try c.optional(.steps) ?? o.steps
        o.integration = try c.choice(.integration, IntegrationMethod.self) ?? o.integration
        o.baseline = try c.optional(.baseline) ?? 0
        o.smoothGrad.samples = try c.optional(.samples) ?? o.smoothGrad.samples
        o.smoothGrad.standardDeviation = try c.optional(.noise) ?? o.smoothGrad.standardDeviation
        o.smoothGrad.seed = try c.optional(.seed) ?? 0
        if let window: Int = try c.optional(.window) { o.window = [window] }
        if let stride: Int = try c.optional(.stride) { o.strides = [stride] }
        o.occlusionBaseline = try c.optional(.occlusion_baseline) ?? 0
        o.relu = try c.optional(.relu) ?? false
        o.interpolation = try c.choice(.interpolation, MapInterpolation.self) ?? .nearest
        o.absolute = try c.optional(.absolute) ?? true
        o.batchSize = try c.optional(.batch_size) ?? o.batchSize
        o.tolerance = try c.optional(.tolerance)
        o.maxSteps = try c.optional(.max_steps) ?? o.maxSteps
        if let tolerance = o.tolerance, !(tolerance > 0 && tolerance < 1) {
            throw c.invalid(.tolerance, "outputs.explain.tolerance is the largest |delta| / |f(x) - f(baseline)| wanted, "
                            + "between 0 and 1 (0.01 = 1 %); got \(tolerance).")
        }
        if o.tolerance != nil, o.steps < 2 || o.maxSteps < o.steps {
            throw c.invalid(.max_steps, "outputs.explain: with a tolerance, steps (the starting points, at least 2) must not "
                            + "exceed max_steps; got steps \(o.steps), max_steps \(o.maxSteps).")
        }
        guard o.steps > 0, o.smoothGrad.samples > 0, o.batchSize > 0, o.window[0] > 0, o.strides[0] > 0,
              o.smoothGrad.standardDeviation >= 0 else {
            throw c.invalid(.steps, "outputs.explain: steps, samples, batch_size, window and stride must be positive, noise ≥ 0.")
        }
        options = o
        overlay = try c.choice(.overlay, OverlayStyle.self) ?? .colour
        sheetCount = try c.optional(.contact_sheet_count) ?? 24
        saveInputs = try c.optional(.save_inputs) ?? false
    }
}

/// Explains files with a model file's recipe: reads and prepares each file as the
/// Predictor does, runs the methods on the un-fused network (gradients are needed) and
/// writes `<stem>.<method>.fits` (the map `[C, H, W]`, or `[H, W]` for Grad-CAM, with the
/// input's WCS when the stages kept its size), `<stem>.png` (the input and one overlay per
/// method) and `contact_sheet.png`.
public final class ExplanationWriter {
    public let predictor: Predictor
    public let explainer: Explainer
    public let config: ExplainConfig
    public let folder: URL
    private var sheet: ContactSheet
    private var sheetFiles = 0
    private(set) public var written: [String] = []
    /// Said once per run when a file's stages change its size (the maps then carry no WCS).
    private var warnedGeometry = false
    /// Files whose integrated gradients' completeness delta was above 1 %, or above the
    /// tolerance when one is set (the first 5 are said).
    private(set) public var warnedCompleteness = 0
    private let log: (String) -> Void

    /// `network` is the model file's un-fused network (the `Predictor` keeps a fused copy).
    public init(predictor: Predictor, network: any Layer, config: ExplainConfig, folder: URL,
                log: @escaping (String) -> Void = { _ in }) throws {
        self.predictor = predictor
        self.explainer = Explainer(model: network)
        self.config = config
        self.folder = folder
        self.log = log
        if config.methods.contains(.gradCAM) { _ = try Explainer.layer(named: config.options.layer, in: network) }
        sheet = ContactSheet(columns: 1 + config.methods.count, cellSize: 96, title: "ATTRIBUTIONS")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    /// The output index explained for a file whose outputs are `outputs`.
    public func targetIndex(outputs: [Float]) throws -> Int {
        switch config.target {
        case .predicted:
            return predictor.task == .regress ? 0 : outputs.indices.max { outputs[$0] < outputs[$1] } ?? 0
        case let .index(i):
            guard i >= 0 && i < outputs.count else { throw ExplainError.targetOutOfRange(target: i, outputs: outputs.count) }
            return i
        case let .name(name):
            let names = predictor.task == .regress ? (predictor.recipe?.targetNames ?? []) : predictor.classNames
            guard let i = names.firstIndex(of: name) else {
                throw ExplainError.unknownChoice(option: "target", value: name, valid: ["predicted"] + names)
            }
            return i
        }
    }

    /// The name of output `i` (class or target name).
    func targetName(_ i: Int) -> String {
        let names = predictor.task == .regress ? (predictor.recipe?.targetNames ?? []) : predictor.classNames
        return i < names.count ? names[i] : String(i)
    }

    /// Integrated gradients' completeness of one file: the delta `Σ attributions − (f(x) − f(x'))`
    /// and `|f(x) − f(x')|` (the explained output at the input and at the baseline).
    public struct Completeness: Sendable {
        public var delta: Double
        public var change: Double
        /// Gradient evaluations used (`steps`, or with a tolerance those the adaptive rule spent).
        public var steps: Int
        /// With a tolerance: whether it was met within `max_steps` (always true without one).
        public var converged: Bool
        /// `|delta| / |f(x) − f(x')|`.
        public var relative: Double { abs(delta) / Swift.max(change, 1e-30) }
    }

    /// Relative completeness deltas above this are reported per file (1 %).
    public static let completenessWarning = 0.01

    /// Explains one file; returns the attributions (one per method), the target index and,
    /// with integrated gradients, its completeness (a warning is logged when the relative
    /// delta exceeds `completenessWarning`: the integral needs more steps).
    @discardableResult
    public func explain(_ entry: CatalogEntry) throws -> (attributions: [Attribution], target: Int, completeness: Completeness?) {
        let raw = try predictor.read(entry)
        let sample = try predictor.prepare(raw, file: entry.name)
        try predictor.checkShape(sample.image.shape, file: entry.name)
        let image = sample.image
        let x = Tensor(shape: [1] + image.shape, data: image.pixels)
        let outputs = explainer.outputs(x).scalars
        let target = try targetIndex(outputs: outputs)
        var attributions = [Attribution]()
        for method in config.methods {
            attributions.append(try explainer.attribute(x, targets: [target], method: method, options: config.options))
        }
        var completeness: Completeness?
        if let ig = attributions.first(where: { $0.method == .integratedGradients }), let delta = ig.deltas?.first {
            let atBaseline = explainer.outputs(Tensor(repeating: config.options.baseline, shape: x.shape)).scalars[target]
            let c = Completeness(delta: delta, change: Double(abs(outputs[target] - atBaseline)),
                                 steps: ig.steps?.first ?? config.options.steps, converged: ig.converged?.first ?? true)
            completeness = c
            let limit = config.options.tolerance ?? Self.completenessWarning
            if c.relative > limit {
                warnedCompleteness += 1
            }
            if c.relative > limit && warnedCompleteness <= 5 {
                let advice = config.options.tolerance == nil
                    ? "more steps (--steps, outputs.explain.steps) or a tolerance (--tolerance, outputs.explain.tolerance) make it smaller"
                    : String(format: "the tolerance %.2g%% was not met within max_steps (--max-steps, outputs.explain.max_steps)",
                             limit * 100)
                log("explain: \(entry.name): " + String(format: "integrated gradients' completeness delta is %.2g%% of "
                           + "|f(x) - f(baseline)| (%.3g of %.3g) at %d steps; ", c.relative * 100, abs(c.delta), c.change, c.steps)
                    + advice
                    + (warnedCompleteness == 5 ? " (further files: IGRELDEL in the maps' headers, completeness.csv)" : ""))
            }
        }

        // FITS maps with the input's WCS when the stages kept the geometry.
        let stem = Sample.stem(OutputSafety.relativeOutputName(entry.name)).replacingOccurrences(of: "/", with: "_")
        var header = FITSHeader()
        let sameGeometry = raw.image.height == image.height && raw.image.width == image.width
        if sameGeometry, let path = predictor.input.bandPaths(for: entry).first?.path {
            header.copyWCS(from: try FITSFile(path: path).header(predictor.rawInput ? 0 : predictor.input.hdu))
        } else if !sameGeometry && !warnedGeometry {
            warnedGeometry = true
            log("explain: the stages change the image size (\(raw.image.height)×\(raw.image.width) → "
                + "\(image.height)×\(image.width)), so the maps carry no WCS")
        }
        header.set("TARGET", .integer(target), comment: "explained output index")
        header.set("TARGNAME", .string(targetName(target)), comment: "explained class or target")
        header.set("WCSKEPT", .logical(sameGeometry), comment: "input WCS copied (stages kept the size)")
        for attribution in attributions {
            var h = header
            h.set("METHOD", .string(attribution.method.rawValue), comment: "attribution method (captum semantics)")
            switch attribution.method {
            case .integratedGradients:
                h.set("STEPS", .integer(attribution.steps?.first ?? config.options.steps), comment: "gradient evaluations on the path")
                if let tolerance = config.options.tolerance {
                    h.set("IGRULE", .string("adaptive_trapezoid"))
                    h.set("IGTOL", .float(tolerance), comment: "tolerance on IGRELDEL")
                    h.set("IGMAXST", .integer(config.options.maxSteps), comment: "largest STEPS allowed")
                    h.set("IGCONV", .logical(attribution.converged?.first ?? false), comment: "IGTOL met within IGMAXST")
                } else {
                    h.set("IGRULE", .string(config.options.integration.rawValue))
                }
                h.set("IGDELTA", .float(attribution.deltas?[0] ?? 0), comment: "completeness delta")
                if let completeness {
                    h.set("IGCHANGE", .float(completeness.change), comment: "|f(x) - f(baseline)|")
                    h.set("IGRELDEL", .float(completeness.relative), comment: "|IGDELTA| / IGCHANGE")
                }
            case .gradCAM: h.set("LAYER", .string(config.options.layer))
            case .smoothGrad:
                h.set("SAMPLES", .integer(config.options.smoothGrad.samples))
                h.set("NOISE", .float(config.options.smoothGrad.standardDeviation))
            case .occlusion:
                h.set("WINDOW", .integer(config.options.window[0]))
                h.set("STRIDE", .integer(config.options.strides[0]))
            case .saliency: break
            }
            let planes = attribution.method.isSinglePlane ? 1 : image.channels
            let shape = planes == 1 ? [image.width, image.height] : [image.width, image.height, planes]
            let url = folder.appendingPathComponent("\(stem).\(attribution.method.rawValue).fits")
            let writer = try FITSWriter(path: url.path, overwrite: true)
            try writer.appendImage(attribution.map(0), shape: shape, header: h)
            try writer.commit()
            written.append(url.path)
        }

        if config.saveInputs {
            var h = header
            h.set("CONTENT", .string("network input"), comment: "the file after the recipe's stages")
            let shape = image.channels == 1 ? [image.width, image.height] : [image.width, image.height, image.channels]
            let url = folder.appendingPathComponent("\(stem).input.fits")
            let writer = try FITSWriter(path: url.path, overwrite: true)
            try writer.appendImage(image.pixels, shape: shape, header: h)
            try writer.commit()
            written.append(url.path)
        }

        // The picture: the input, then each method's overlay.
        let gray = AttributionPicture.gray(image.pixels, channels: image.channels, height: image.height, width: image.width)
        var tiles: [(bytes: [UInt8], label: String)] = [(gray.map { UInt8($0 * 255) }.flatMap { [$0, $0, $0] },
                                                         "\(targetName(target))")]
        for attribution in attributions {
            let planes = attribution.method.isSinglePlane ? 1 : image.channels
            let map = AttributionPicture.summed(attribution.map(0), channels: planes, plane: image.planeSize)
            tiles.append((AttributionPicture.overlay(background: gray, map: map, height: image.height, width: image.width,
                                                     style: config.overlay), attribution.method.rawValue))
        }
        var row = ContactSheet(columns: tiles.count, cellSize: max(96, min(256, image.width * 2)),
                               title: entry.name.uppercased())
        for tile in tiles { row.add(rgb: tile.bytes, width: image.width, height: image.height, label: tile.label) }
        let png = folder.appendingPathComponent("\(stem).png")
        try row.write(to: png)
        written.append(png.path)
        if sheetFiles < config.sheetCount {
            for tile in tiles { sheet.add(rgb: tile.bytes, width: image.width, height: image.height, label: tile.label) }
            sheetFiles += 1
        }
        return (attributions, target, completeness)
    }

    /// Writes the contact sheet of the files explained so far.
    public func finish() throws {
        guard sheetFiles > 0 else { return }
        let url = folder.appendingPathComponent("contact_sheet.png")
        try sheet.write(to: url)
        written.append(url.path)
    }
}

extension PipelineRunner {
    /// `outputs.explain` of an inference run: maps for the files with results, beside the predictions.
    func writeExplanations(_ entries: [CatalogEntry], config explain: ExplainConfig) throws -> [String] {
        guard config.task != .segment else {
            throw PipelineError.unsupported("outputs.explain: attributions are for classifiers and regressors, not segmentation")
        }
        let predictor = try makePredictor()
        let network = try TrainedModel(contentsOf: resolve(config.model.weights!)).network
        let writer = try ExplanationWriter(predictor: predictor, network: network, config: explain,
                                           folder: resolve(explain.folder), log: { [weak self] in self?.log($0) })
        let progress = options.quiet ? nil : ProgressBar(total: entries.count, label: "explain", unit: "file")
        for entry in entries {
            do {
                try writer.explain(entry)
            } catch {
                guard self.config.run.onError == .skip else { throw error }
                log("explain: \(entry.name): \(error.localizedDescription)")
            }
            progress?.advance()
        }
        try writer.finish()
        return writer.written
    }
}

// MARK: - Commands

/// What `astrolabe explain` produced.
public struct ExplanationRun {
    public var outputs: [String]
    /// Integrated gradients: per file, the completeness delta, `|f(x) − f(baseline)|`, the
    /// gradient evaluations used and whether the tolerance (if any) was met.
    public var completeness: [(file: String, completeness: ExplanationWriter.Completeness)]
}

extension PipelineRunner {
    /// `astrolabe explain`: maps for every input of the pipeline into `folder`.
    public func explainAll(_ explain: ExplainConfig, folder: URL) throws -> ExplanationRun {
        guard config.task != .segment else {
            throw PipelineError.unsupported("explain: attributions are for classifiers and regressors, not segmentation")
        }
        let catalog = try inputCatalog()
        try OutputSafety.checkOutputs([folder.appendingPathComponent("contact_sheet.png")], catalog: catalog,
                                      input: try makePredictor().input)
        let predictor = try makePredictor()
        let network = try TrainedModel(contentsOf: resolve(config.model.weights!)).network
        let writer = try ExplanationWriter(predictor: predictor, network: network, config: explain, folder: folder,
                                           log: { [weak self] in self?.log($0) })
        let progress = options.quiet ? nil : ProgressBar(total: catalog.count, label: "explain", unit: "file")
        var completeness = [(file: String, completeness: ExplanationWriter.Completeness)]()
        var failures = [[String]]()
        for entry in catalog.entries {
            do {
                if let c = try writer.explain(entry).completeness { completeness.append((entry.name, c)) }
            } catch {
                if case ExplainError.unknownChoice = error { throw error }
                if case ExplainError.targetOutOfRange = error { throw error }
                guard config.run.onError == .skip else { throw error }
                failures.append([entry.name, error.localizedDescription])
                log("explain: \(entry.name): \(error.localizedDescription)")
            }
            progress?.advance()
        }
        try writer.finish()
        var outputs = writer.written
        if !completeness.isEmpty {
            let rows = completeness.map { file, c in
                [file, String(format: "%.6g", c.delta), String(format: "%.6g", c.change), String(format: "%.6g", c.relative),
                 String(c.steps), c.converged ? "true" : "false"]
            }
            let url = folder.appendingPathComponent("completeness.csv")
            try writeAtomically(Data(try CSVText.table(header: ["file", "delta", "abs_output_change", "relative_delta", "steps",
                                                                "converged"], rows: rows).utf8), to: url)
            outputs.append(url.path)
        }
        if !failures.isEmpty {
            let url = folder.appendingPathComponent("explain.errors.csv")
            try writeAtomically(Data(try CSVText.table(header: ["file", "error"], rows: failures).utf8), to: url)
            outputs.append(url.path)
        }
        return ExplanationRun(outputs: outputs, completeness: completeness)
    }

    /// The first `count` inputs prepared the model file's way, as one batch, with the explained
    /// output of each (the pipeline's target) and a writer for `network`.
    func firstImages(_ count: Int, network: any Layer, explain: ExplainConfig, folder: URL) throws
        -> (entries: [CatalogEntry], images: [PlanarImage], input: Tensor, targets: [Int], writer: ExplanationWriter) {
        let predictor = try makePredictor()
        let entries = Array(try inputCatalog().entries.prefix(count))
        let images = try entries.map { try predictor.prepared($0).image }
        guard let first = images.first else { throw PipelineError.noInput(pipeline: pipelinePath) }
        let input = Tensor(shape: [images.count] + first.shape, data: images.flatMap(\.pixels))
        let writer = try ExplanationWriter(predictor: predictor, network: network, config: explain, folder: folder)
        let outputs = writer.explainer.outputs(input).scalars
        let k = outputs.count / images.count
        let targets = try (0..<images.count).map { try writer.targetIndex(outputs: Array(outputs[($0 * k)..<(($0 + 1) * k)])) }
        return (entries, images, input, targets, writer)
    }

    /// Adebayo et al.'s cascading randomisation on the first `count` inputs: `randomisation.csv`
    /// (Spearman ρ of |maps| per block randomised and method) and `randomisation.png`.
    public func randomisationCheck(_ explain: ExplainConfig, folder: URL, count: Int = 8, seed: UInt64 = 0) throws -> [String] {
        let model = try TrainedModel(contentsOf: resolve(config.model.weights!)).network
        let (_, images, input, targets, _) = try firstImages(count, network: model, explain: explain, folder: folder)
        let check = CascadingRandomisation(methods: explain.methods, options: explain.options, seed: seed)
        let blocks = CascadingRandomisation.blocks(of: model)
        let progress = options.quiet ? nil : ProgressBar(total: blocks.count, label: "randomisation", unit: "block")
        let steps = try check.run(model: model, input: input, targets: targets) { _ in progress?.advance() }
        let header = ["randomised_down_to"] + explain.methods.map(\.rawValue)
        let rows = steps.map { step in [step.block] + explain.methods.map { String(format: "%.4f", step.correlations[$0]!) } }
        let csv = folder.appendingPathComponent("randomisation.csv")
        try writeAtomically(Data(try CSVText.table(header: header, rows: rows).utf8), to: csv)
        var plot = LinePlot(title: "Cascading randomisation (\(images.count) images)",
                            xLabel: "blocks randomised, from the output down", yLabel: "Spearman rho of |map|")
        let colors: [Color] = [.red, .blue, .green, .yellow, .darkGray]
        for (i, method) in explain.methods.enumerated() {
            let x = (0..<steps.count).map { Double($0 + 1) }
            let y = steps.map { $0.correlations[method]! }
            plot.add(x: x, y: y, label: method.rawValue, color: colors[i % colors.count])
        }
        let png = folder.appendingPathComponent("randomisation.png")
        try plot.canvas().write(to: png)
        return [csv.path, png.path]
    }

    /// Adebayo et al.'s randomised-labels test, or any two models with the same recipe: the
    /// maps of the pipeline's model and of `otherModel` for the first `count` inputs (the
    /// pipeline model's targets for both), compared by Spearman ρ of |map| per image and
    /// method. Writes `model-comparison.csv` (per file and method, and the mean),
    /// `model-comparison.png` (per image: the input, then each method's map from either model)
    /// and `model-comparison-rho.png` (ρ per image and method, mean ± standard error).
    public func modelComparison(_ explain: ExplainConfig, otherModel: String, folder: URL, count: Int = 8)
        throws -> (outputs: [String], mean: [AttributionMethod: Double]) {
        let mine = try TrainedModel(contentsOf: resolve(config.model.weights!))
        let otherURL = URL(fileURLWithPath: otherModel).standardizedFileURL
        guard FileManager.default.fileExists(atPath: otherURL.path) else {
            throw PipelineError.missingFile(path: otherURL.path, what: "the model to compare with (--compare-model)")
        }
        let other = try TrainedModel(contentsOf: otherURL)
        guard other.recipe.inputShape == mine.recipe.inputShape, other.recipe.classNames == mine.recipe.classNames,
              other.recipe.task == mine.recipe.task else {
            throw PipelineError.modelFile(path: otherURL.path, reason: "it cannot be compared with \(mine.path): input "
                + "\(other.recipe.inputShape) and outputs \(other.recipe.classNames) against \(mine.recipe.inputShape) and "
                + "\(mine.recipe.classNames) (the same task, input and classes are needed)")
        }
        let (entries, images, input, targets, writer) = try firstImages(count, network: mine.network, explain: explain, folder: folder)
        let progress = options.quiet ? nil : ProgressBar(total: explain.methods.count, label: "compare", unit: "method")
        var results = [(method: AttributionMethod, correlations: [Double], maps: Tensor, otherMaps: Tensor)]()
        for method in explain.methods {
            results += try ModelComparison(methods: [method], options: explain.options)
                .run(model: mine.network, other: other.network, input: input, targets: targets)
            progress?.advance()
        }
        var rows = entries.indices.map { i in [entries[i].name] + results.map { String(format: "%.4f", $0.correlations[i]) } }
        var mean = [AttributionMethod: Double]()
        for r in results { mean[r.method] = r.correlations.reduce(0, +) / Double(r.correlations.count) }
        rows.append(["mean"] + results.map { String(format: "%.4f", mean[$0.method]!) })
        let csv = folder.appendingPathComponent("model-comparison.csv")
        try writeAtomically(Data(try CSVText.table(header: ["file"] + results.map(\.method.rawValue), rows: rows).utf8), to: csv)

        // Per image: the input, then for each method the two maps side by side.
        var sheet = ContactSheet(columns: 1 + 2 * results.count, cellSize: 96,
                                 title: "TRAINED MODEL AGAINST \(otherURL.deletingPathExtension().lastPathComponent.uppercased())")
        for (i, image) in images.prefix(6).enumerated() {
            let gray = AttributionPicture.gray(image.pixels, channels: image.channels, height: image.height, width: image.width)
            sheet.add(gray: gray.map { UInt8($0 * 255) }, width: image.width, height: image.height, label: writer.targetName(targets[i]))
            for r in results {
                let planes = r.method.isSinglePlane ? 1 : image.channels
                let size = r.maps.count / images.count
                for (maps, tag) in [(r.maps, "trained"), (r.otherMaps, "other")] {
                    let values = Array(maps.scalars[(i * size)..<((i + 1) * size)])
                    let map = AttributionPicture.summed(values, channels: planes, plane: image.planeSize)
                    sheet.add(rgb: AttributionPicture.overlay(background: gray, map: map, height: image.height, width: image.width,
                                                              style: .map),
                              width: image.width, height: image.height,
                              label: tag == "trained" ? "\(r.method.rawValue)" : String(format: "rho %.2f", r.correlations[i]))
                }
            }
        }
        let png = folder.appendingPathComponent("model-comparison.png")
        try sheet.write(to: png)
        // ρ per image and method (points at x = method 1, 2, …), with the mean ± standard error.
        var plot = LinePlot(title: "Maps against \(otherURL.deletingPathExtension().lastPathComponent) (\(images.count) images)",
                            xLabel: results.enumerated().map { "\($0.offset + 1) \($0.element.method.rawValue)" }.joined(separator: "  "),
                            yLabel: "Spearman rho of |map|")
        let colors: [Color] = [.red, .blue, .green, .yellow, Color(red: 150, green: 60, blue: 180)]
        for (i, r) in results.enumerated() {
            let n = Double(r.correlations.count), m = mean[r.method]!
            let se = (r.correlations.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Swift.max(n - 1, 1) / n).squareRoot()
            plot.addPoints(x: r.correlations.indices.map { Double(i + 1) - 0.3 * (Double($0) + 1) / n }, y: r.correlations,
                           label: r.method.rawValue, color: colors[i % colors.count])
            plot.addPoints(x: [Double(i + 1) + 0.1], y: [m], errors: [se], label: i == 0 ? "mean +- s.e." : "", color: .black)
        }
        // White points half a method beyond either end keep the first and last columns off the frame.
        plot.addPoints(x: [0.4, Double(results.count) + 0.5], y: [0, 0], label: "", color: .white)
        let rhoPNG = folder.appendingPathComponent("model-comparison-rho.png")
        try plot.canvas(width: 720, height: 400).write(to: rhoPNG)
        return ([csv.path, png.path, rhoPNG.path], mean)
    }

    /// Feature pictures of the pipeline's model: the first layer's filters
    /// (`filters.png`) and, per named layer, activation-maximisation images of its first
    /// `channels` channels (`features-<layer>.png`), the "hierarchy of features".
    public func featurePictures(layers: [String], channels: Int, settings: ActivationMaximisation, folder: URL) throws -> [String] {
        let predictor = try makePredictor()
        let model = try TrainedModel(contentsOf: resolve(config.model.weights!)).network
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var written = [String]()
        if let sheet = FeaturePictures.firstLayerFilters(model) {
            let url = folder.appendingPathComponent("filters.png")
            try sheet.write(to: url)
            written.append(url.path)
        }
        var shape = predictor.expectedShape
        if shape[1] < 0 { shape = [shape[0], 64, 64] }
        let progress = options.quiet ? nil : ProgressBar(total: layers.count * channels, label: "features", unit: "channel")
        for layer in layers {
            var sheet = ContactSheet(columns: min(channels, 8), cellSize: 96, title: "LAYER \(layer.uppercased())")
            for channel in 0..<channels {
                let result = try settings.visualise(model: model, layer: layer, channel: channel, shape: shape)
                sheet.add(rgb: FeaturePictures.rgb(result.image, channels: shape[0], height: shape[1], width: shape[2]),
                          width: shape[2], height: shape[1], label: "\(channel)")
                progress?.advance()
            }
            let url = folder.appendingPathComponent("features-\(layer).png")
            try sheet.write(to: url)
            written.append(url.path)
        }
        return written
    }
}
