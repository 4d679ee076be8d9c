// Splitting work into parts: ranks of an MPI job, slices of a batch run.

/// Part `index` of `count` of some work: a rank of a data-parallel job (its part of every
/// batch) or one slice of a batch run (`astrolabe run --shard I/N`).
public struct Shard: Equatable, Sendable, CustomStringConvertible {
    public var index: Int
    public var count: Int
    public init(index: Int, count: Int) {
        precondition(count > 0 && index >= 0 && index < count, "Shard: index \(index) of \(count)")
        self.index = index
        self.count = count
    }
    public static let whole = Shard(index: 0, count: 1)

    /// This part's range of `0..<total`: contiguous, sizes differing by at most one, in order.
    public func range(of total: Int) -> Range<Int> { (total * index / count)..<(total * (index + 1) / count) }

    public var description: String { "\(index)/\(count)" }

    /// Parses `I/N` (0 ≤ I < N); nil for anything else.
    public init?(parsing text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]), n > 0, i >= 0, i < n else { return nil }
        self.init(index: i, count: n)
    }
}

