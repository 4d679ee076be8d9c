import ArgumentParser

/// `astrolabe bench`: JSON lines as in BENCH.md. Each workload lives in its own
/// file (`Bench+FITS.swift`, `Bench+Conv.swift`, ...).
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure speed; prints one JSON object per line (see BENCH.md).")

    enum Workload: String, ExpressibleByArgument, CaseIterable {
        case fits, conv, preprocessing
    }

    @Option(help: "Data-path or kernel workload: \(Workload.allCases.map(\.rawValue).joined(separator: ", ")).")
    var workload: Workload?

    @Flag(help: "Fewer repetitions and smaller data, for a quick look.")
    var quick = false

    func run() throws {
        let workloads = workload.map { [$0] } ?? Workload.allCases
        for w in workloads {
            switch w {
            case .fits: try runFITSBench(quick: quick)
            case .conv: try runConvBench(quick: quick)
            case .preprocessing: try runPreprocessingBench(quick: quick)
            }
        }
    }
}
