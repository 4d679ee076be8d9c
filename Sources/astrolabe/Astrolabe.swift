import ArgumentParser

@main
struct Astrolabe: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "astrolabe",
        abstract: "Deep learning on astronomical FITS images.",
        version: "0.1.0",
        subcommands: [Run.self, Train.self, Merge.self, Evaluate.self, Predict.self, Inspect.self, Simulate.self, Cutout.self, Bench.self, ExplainCommand.self, Generate.self, CompareImages.self])
}
