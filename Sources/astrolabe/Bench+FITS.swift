extension Bench {
    func runFITSBench(quick: Bool) throws {
        throw BenchError.notImplemented("fits")
    }
}
enum BenchError: Error { case notImplemented(String) }
