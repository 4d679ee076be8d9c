extension Bench {
    func runConvBench(quick: Bool) throws {
        throw BenchError.notImplemented("conv")
    }
}
