import ArgumentParser
import Autograd
import Foundation

/// `astrolabe bench`: JSON lines as in BENCH.md. Each workload lives in its own
/// file (`Bench+FITS.swift`, `Bench+Conv.swift`, ...).
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure speed; prints one JSON object per line (see BENCH.md).")

    enum Workload: String, ExpressibleByArgument, CaseIterable {
        case fits, conv, tiles, preprocessing, allreduce
    }

    @Option(help: "Network(s) to train and run: \(BenchModelChoice.allCases.map(\.rawValue).joined(separator: ", ")).")
    var model: BenchModelChoice?

    @Option(help: "Data-path or kernel workload: \(Workload.allCases.map(\.rawValue).joined(separator: ", ")).")
    var workload: Workload?

    /// Set when the command re-executes itself to measure one model in its own process.
    @Flag(help: .hidden)
    var child = false

    @Flag(help: "Fewer repetitions and smaller data, for a quick look.")
    var quick = false

    func run() throws {
        joinMPIJobIfLaunched()
        if child {
            guard let model, model != .all else { throw ValidationError("--child needs one --model") }
            runModelChild(model.models[0], quick: quick)
            return
        }
        if let note = BLASKernels.note { FileHandle.standardError.write(Data("note: \(note)\n".utf8)) }
        if let model { try runModelBench(model.models, quick: quick) }
        // With neither option: every model, then every workload.
        // allreduce needs mpirun: only on request.
        let workloads = workload.map { [$0] } ?? (model == nil ? Workload.allCases.filter { $0 != .allreduce } : [])
        if model == nil && workload == nil { try runModelBench(BenchModel.benchmarkModels, quick: quick) }
        for w in workloads {
            switch w {
            case .fits: try runFITSBench(quick: quick)
            case .conv: try runConvBench(quick: quick)
            case .tiles: try runTileBench(quick: quick)
            case .preprocessing: try runPreprocessingBench(quick: quick)
            case .allreduce: try runAllReduceBench(quick: quick)
            }
        }
    }
}
