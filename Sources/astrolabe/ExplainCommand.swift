import ArgumentParser
import Explain
import Foundation
import Pipelines

/// `astrolabe explain PIPELINE.yaml`: attribution maps, sanity checks and feature pictures.
struct ExplainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Attribution maps (where the model looked) for the inputs of a pipeline, with sanity checks.",
        discussion: """
        Reads each input the pipeline's way (the model file's recipe), runs each method on the \
        network with gradients and writes, into --output: <stem>.<method>.fits (the map, with the \
        input's WCS), <stem>.png (the input and one overlay per method), contact_sheet.png, and for \
        integrated gradients completeness.csv. Options default to the pipeline's outputs.explain, \
        then to captum's defaults. Methods: \(AttributionMethod.allCases.map(\.rawValue).joined(separator: ", ")). \
        See docs/interpretability.md.

        Examples:
          astrolabe explain pipelines/find-lenses.yaml --input samples/lens --method integrated_gradients \\
              --method gradcam --layer layer3 --output out/explain
          astrolabe explain pipelines/classify-galaxies.yaml --input samples/morphology --randomisation --output out/sanity
          astrolabe explain pipelines/classify-galaxies.yaml --input samples/morphology --compare-model random-labels.safetensors \\
              --method saliency --method gradcam --layer layer3 --images 30 --output out/labels
          astrolabe explain pipelines/classify-galaxies.yaml --features layer1,layer2,layer3,layer4 --output out/features
        """)

    @Argument(help: "The pipeline file (YAML) naming the model.") var pipeline: String
    @Option(help: "Input: a folder of FITS files, a glob, or a catalog CSV.") var input: String?
    @Option(help: "Output folder.") var output: String
    @Option(name: .customLong("method"), help: "Attribution method (repeatable).") var methods: [String] = []
    @Option(help: "Output to explain: 'predicted' (default), a class name or an index.") var target: String?
    @Option(help: "Grad-CAM layer (key path, e.g. layer4 or layer3.1.conv2).") var layer: String?
    @Option(help: "Integrated gradients: steps.") var steps: Int?
    @Option(help: "Integrated gradients: rule (\(IntegrationMethod.allCases.map(\.rawValue).joined(separator: ", "))).")
    var integration: String?
    @Option(help: "Integrated gradients: constant baseline.") var baseline: Float?
    @Option(help: "Integrated gradients: refine the path per file until |delta| / |f(x) - f(baseline)| is at most this (0.01 = 1 %); --steps is then the starting grid.")
    var tolerance: Double?
    @Option(help: "Integrated gradients with --tolerance: most gradient evaluations per file (default 1024).") var maxSteps: Int?
    @Flag(help: "Also write each file's network input (after the recipe's stages) as <stem>.input.fits.") var saveInputs = false
    @Option(help: "SmoothGrad: noisy samples.") var samples: Int?
    @Option(help: "SmoothGrad: noise standard deviation in input units (captum's stdevs).") var noise: Double?
    @Option(help: "Occlusion: window side in pixels.") var window: Int?
    @Option(help: "Occlusion: stride in pixels.") var stride: Int?
    @Flag(help: "Grad-CAM: ReLU of the map.") var relu = false
    @Option(help: "Overlay: \(OverlayStyle.allCases.map(\.rawValue).joined(separator: ", ")).") var overlay: String?
    @Option(help: "Network inputs per pass.") var batchSize: Int?
    @Flag(help: "Cascading weight randomisation (Adebayo et al. 2018) instead of maps.") var randomisation = false
    @Option(help: "Images used by --randomisation and --compare-model.") var images: Int = 8
    @Option(help: "Randomised-labels test: compare the maps with those of this model file (e.g. trained on permuted labels; scripts/randomised_labels.sh).")
    var compareModel: String?
    @Option(help: "Feature pictures for these layers (comma-separated) instead of maps; filters.png too.") var features: String?
    @Option(help: "Channels per layer for --features.") var channels: Int = 8
    @Option(name: .customLong("set"), parsing: .singleValue, help: "Override a key of the pipeline (repeatable).")
    var overrides: [String] = []
    @Flag(help: "No progress output.") var quiet = false

    func run() throws {
        try runReportingErrors {
            let runner = try PipelineRunner(pipelinePath: pipeline, options: RunOptions(
                input: input, output: output, overrides: overrides, quiet: quiet))
            let folder = URL(fileURLWithPath: output).standardizedFileURL
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            var config = runner.config.outputs.explain ?? ExplainConfig()
            if !methods.isEmpty { config.methods = try methods.map { try AttributionMethod.named($0, option: "method") } }
            if let target { config.target = ExplainTarget(target) }
            if let layer { config.options.layer = layer }
            if let steps { config.options.steps = steps }
            if let integration { config.options.integration = try IntegrationMethod.named(integration, option: "integration rule") }
            if let baseline { config.options.baseline = baseline }
            if let tolerance {
                guard tolerance > 0 && tolerance < 1 else {
                    throw ExplainError.invalidOption(option: "--tolerance", reason: "between 0 and 1 (0.01 = 1 %); got \(tolerance)")
                }
                config.options.tolerance = tolerance
            }
            if let maxSteps { config.options.maxSteps = maxSteps }
            if saveInputs { config.saveInputs = true }
            if config.options.tolerance != nil, config.options.steps < 2 || config.options.maxSteps < config.options.steps {
                throw ExplainError.invalidOption(option: "--max-steps", reason: "with --tolerance, --steps (the starting points, "
                    + "at least 2) must not exceed --max-steps; got steps \(config.options.steps), max-steps \(config.options.maxSteps)")
            }
            if let samples { config.options.smoothGrad.samples = samples }
            if let noise { config.options.smoothGrad.standardDeviation = noise }
            if let window { config.options.window = [window] }
            if let stride { config.options.strides = [stride] }
            if relu { config.options.relu = true }
            if let overlay { config.overlay = try OverlayStyle.named(overlay, option: "overlay") }
            if let batchSize { config.options.batchSize = batchSize }
            let outputs: [String]
            if let features {
                outputs = try runner.featurePictures(layers: features.split(separator: ",").map(String.init), channels: channels,
                                                     settings: ActivationMaximisation(), folder: folder)
            } else if let compareModel {
                let comparison = try runner.modelComparison(config, otherModel: compareModel, folder: folder, count: images)
                outputs = comparison.outputs
                FileHandle.standardError.write(Data(("mean Spearman rho of |map| against \(compareModel): "
                    + config.methods.map { "\($0.rawValue) " + String(format: "%.3f", comparison.mean[$0]!) }.joined(separator: ", ")
                    + "\n").utf8))
            } else if randomisation {
                outputs = try runner.randomisationCheck(config, folder: folder, count: images)
            } else {
                let run = try runner.explainAll(config, folder: folder)
                outputs = run.outputs
                if !run.completeness.isEmpty {
                    let relative = run.completeness.map(\.completeness.relative).sorted()
                    let limit = config.options.tolerance ?? ExplanationWriter.completenessWarning
                    let above = relative.filter { $0 > limit }.count
                    let steps = run.completeness.map(\.completeness.steps)
                    FileHandle.standardError.write(Data(String(
                        format: "integrated gradients: |delta| / |f(x) - f(baseline)| median %.3g%%, largest %.3g%% over %d files; "
                            + "%d above %.3g%%; steps mean %.1f, largest %d (completeness.csv)\n",
                        relative[relative.count / 2] * 100, relative.last! * 100, relative.count, above, limit * 100,
                        Double(steps.reduce(0, +)) / Double(steps.count), steps.max()!).utf8))
                }
            }
            print(outputs.filter { !$0.hasSuffix(".fits") || outputs.count < 20 }.joined(separator: "\n"))
        }
    }
}
