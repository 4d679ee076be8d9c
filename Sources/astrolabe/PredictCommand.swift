// `astrolabe predict`: run a classifier (PyTorch state dict or Astrolabe model file) on FITS images.
import ArgumentParser
import Autograd
import FITS
import Foundation
import NN
import Pipelines
import Preprocessing

/// `astrolabe predict --weights FILE.safetensors --arch resnet18|resnet34|cnn --classes N
/// --in-channels C --raw INPUT.fits... --output out.csv`
///
/// With `--raw`, pixels go to the model untouched (no scaling, NaN kept) and the CSV holds
/// `file,logit_0,...,logit_{N-1}`. A plain PyTorch `state_dict` needs `--arch`, `--classes`
/// and `--in-channels`; ResNet widths and the stem are read from the weights' shapes. A model
/// file with Astrolabe metadata needs none of them; without `--raw` its recorded recipe
/// (how inputs are read and prepared) is applied and the CSV holds class probabilities,
/// `file,p_<class>,...` (or `probability_0,...` when the file names no classes), or for a
/// regression model `file,<target>,...` and, with uncertainty, `<target>_p16,_p84,_p025,_p975`. Reading, batching, the fused
/// network and the output transform are the pipelines' `Predictor`, as in `astrolabe run`.
struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Classify FITS images (or light-curve tables, with a gru model) with a safetensors model; writes one CSV row per file (per object).")

    enum Arch: String, ExpressibleByArgument, CaseIterable {
        case resnet18, resnet34, cnn
    }

    @Option(help: "Weights: a PyTorch state_dict or an Astrolabe model file (.safetensors).")
    var weights: String

    @Option(help: "Architecture of a plain state_dict.")
    var arch: Arch?

    @Option(help: "Number of classes (plain state_dict).")
    var classes: Int?

    @Option(name: .customLong("in-channels"), help: "Input bands (plain state_dict).")
    var inChannels: Int?

    @Flag(help: "Feed the pixels unchanged and write logits (no preprocessing, no softmax).")
    var raw = false

    @Option(help: "Images (light curves) per forward pass.")
    var batchSize = 32

    @Option(help: "Output CSV path (written atomically).")
    var output: String

    @Argument(help: "FITS images: [H, W] (one band) or [C, H, W]; for a gru model, light-curve tables (CSV or FITS).")
    var inputs: [String]

    func run() throws {
        try runReportingErrors { try predict() }
    }

    private func predict() throws {
        guard batchSize > 0 else { throw PredictError.usage("--batch-size must be positive") }
        guard !inputs.isEmpty else { throw PredictError.usage("no input images: give one or more FITS files") }
        let file = try Safetensors(contentsOf: URL(fileURLWithPath: weights))
        // The recipe a model trained by Astrolabe records: how its inputs are read and prepared.
        let recipe: ModelRecipe? = try file.metadata[ModelFile.preprocessingKey].flatMap { json in
            let trimmed = json.filter { !$0.isWhitespace }
            if trimmed == "[]" || trimmed == "{}" || trimmed.isEmpty { return nil }
            return try ModelRecipe.decode(json, path: weights)
        }
        let entries = inputs.map { CatalogEntry(url: URL(fileURLWithPath: $0), name: $0) }
        let (model, architecture, preprocessing) = try buildModel(file, firstInput: entries[0])
        if !raw && preprocessing == nil && file.metadata[ModelFile.architectureKey] == nil {
            throw PredictError.usage("'\(weights)' is a plain state_dict with no recorded preprocessing: add --raw "
                + "to feed the pixels unchanged and write logits")
        }
        if architecture.name == .gru { return try predictLightCurves(model, architecture, recipe) }
        if recipe?.task == .generate || architecture.name == .dcgan {
            throw PredictError.usage("'\(weights)' is an image generator (dcgan): it takes no input images; sample it with "
                + "`astrolabe generate --weights \(weights) --count N --output DIR`")
        }
        let predictor = Predictor(network: model, architecture: architecture, recipe: recipe, path: weights, raw: raw)
        let images = try entries.map { try predictor.prepared($0).image }
        let results = predictor.predict(images, batchSize: batchSize)

        let table: ResultTable
        switch (raw, predictor.task) {
        case (true, _): table = ResultTable(.logits(count: architecture.classes))
        case (false, .regress): table = ResultTable(predictor: predictor, probabilities: true)
        default:
            table = ResultTable(.probabilities(names: predictor.hasClassNames ? predictor.classNames.map { "p_" + $0 }
                                               : (0..<architecture.classes).map { "probability_\($0)" }))
        }
        do {
            let text = try table.csv(zip(inputs, results).map { (file: $0, prediction: $1) })
            try Data(text.utf8).write(to: URL(fileURLWithPath: output), options: .atomic)
        } catch {
            throw PredictError.usage("cannot write '\(output)': \(error.localizedDescription)")
        }
    }

    /// A `gru` model file: the inputs are light-curve tables (CSV or FITS, TASKS.md task 5),
    /// prepared with the recorded sequence stages; the CSV holds `object_id,predicted,p_<class>...`
    /// as `classify-lightcurves.yaml` writes it.
    private func predictLightCurves(_ model: any Layer, _ architecture: Architecture, _ recipe: ModelRecipe?) throws {
        guard !raw else {
            throw PredictError.usage("--raw feeds image pixels unchanged; '\(weights)' is a light-curve model (gru), "
                + "which reads tables prepared by its recorded stages")
        }
        let predictor = Predictor(network: model, architecture: architecture, recipe: recipe, path: weights)
        let preparation = try predictor.sequencePreparation()
        var bytes = ResultTable.lightCurveHeader(classNames: predictor.classNames, probabilities: true)
        for input in inputs {
            try LightCurveTable(url: URL(fileURLWithPath: input)).forEachBatchReadingAhead(size: 16384) { curves in
                let predictions = try predictor.classify(curves, preparation: preparation, batchSize: batchSize)
                ResultTable.appendLightCurveRows(predictions, classNames: predictor.classNames, probabilities: true, to: &bytes)
            }
        }
        do {
            try Data(bytes).write(to: URL(fileURLWithPath: output), options: .atomic)
        } catch {
            throw PredictError.usage("cannot write '\(output)': \(error.localizedDescription)")
        }
    }

    /// The model from the file's metadata, or from `--arch/--classes/--in-channels` for a plain
    /// state dict (ResNet widths and stem read from the tensor shapes), loaded strictly.
    private func buildModel(_ file: Safetensors, firstInput: CatalogEntry) throws -> (any Layer, Architecture, String?) {
        if file.metadata[ModelFile.architectureKey] != nil {
            let m = try ModelFile(contentsOf: URL(fileURLWithPath: weights))
            guard [.resnet18, .resnet34, .cnn, .mlp, .gru].contains(m.architecture.name) else {
                throw PredictError.usage("'\(weights)' holds a \(m.architecture.name.rawValue); predict runs classifiers "
                    + "(resnet18, resnet34, cnn, mlp, gru)")
            }
            // Options given anyway must agree with the file rather than be silently ignored.
            if let classes, classes != m.architecture.classes {
                throw PredictError.usage("--classes \(classes), but '\(weights)' records \(m.architecture.classes) classes")
            }
            if let inChannels, inChannels != m.architecture.inChannels {
                throw PredictError.usage("--in-channels \(inChannels), but '\(weights)' records \(m.architecture.inChannels) bands")
            }
            if let arch, arch.rawValue != m.architecture.name.rawValue {
                throw PredictError.usage("--arch \(arch.rawValue), but '\(weights)' records a \(m.architecture.name.rawValue)")
            }
            return (m.model, m.architecture, m.preprocessing)
        }
        guard let arch, let classes, let inChannels else {
            throw PredictError.usage("'\(weights)' has no Astrolabe metadata (a plain PyTorch state_dict): "
                + "give --arch, --classes and --in-channels")
        }
        let architecture: Architecture
        switch arch {
        case .resnet18, .resnet34:
            let widths = (1...4).map { file.tensors["layer\($0).0.conv1.weight"]?.shape.first ?? [64, 128, 256, 512][$0 - 1] }
            let stem = file.tensors["conv1.weight"]?.shape.last == 3
            architecture = Architecture(name: arch == .resnet18 ? .resnet18 : .resnet34, inChannels: inChannels, classes: classes,
                                        widths: widths, smallImageStem: stem)
        case .cnn:
            // The CNN's head depends on the image size: the first input's width.
            let width = try Predictor.firstImage(firstInput).image.width
            architecture = Architecture(name: .cnn, inChannels: inChannels, classes: classes, imageSize: width)
        }
        let model = try architecture.makeModel()
        try model.load(stateDict: file.tensors, mode: .strict)
        return (model, architecture, nil)
    }
}

enum PredictError: Error, LocalizedError {
    case usage(String)
    case fits(path: String, operation: String, status: Int32, message: String)

    var errorDescription: String? {
        switch self {
        case .usage(let m): return m
        case .fits(let path, let operation, let status, let message):
            return "FITS: \(operation) failed for '\(path)': \(message) (cfitsio status \(status))"
        }
    }
}
