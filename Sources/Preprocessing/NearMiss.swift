/// "Did you mean" support for names typed in YAML or on the command line.
public enum NearMiss {
    /// The candidate closest to `word` (case-insensitive, ignoring `_` and `-`)
    /// by edit distance, if close enough to be a plausible typo.
    public static func suggestion(for word: String, among candidates: [String]) -> String? {
        func fold(_ s: String) -> [Character] { Array(s.lowercased().filter { $0 != "_" && $0 != "-" }) }
        let w = fold(word)
        var best: (String, Int)?
        for candidate in candidates {
            let d = distance(w, fold(candidate))
            if d <= Swift.max(1, Swift.min(3, candidate.count / 3)), d < (best?.1 ?? Int.max) {
                best = (candidate, d)
            }
        }
        return best?.0
    }

    /// Edit distance counting a swap of neighbours as one edit (optimal string
    /// alignment), since `lable` for `label` is one typo, not two.
    static func distance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var beforePrevious = [Int](repeating: 0, count: b.count + 1)
        var previous = Array(0...b.count)
        var current = previous
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                current[j] = Swift.min(previous[j] + 1, current[j - 1] + 1,
                                       previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    current[j] = Swift.min(current[j], beforePrevious[j - 2] + 1)
                }
            }
            (beforePrevious, previous, current) = (previous, current, beforePrevious)
        }
        return previous[b.count]
    }

    /// " Did you mean 'x'?" or "", ready to append to a message.
    public static func hint(for word: String, among candidates: [String]) -> String {
        suggestion(for: word, among: candidates).map { " Did you mean '\($0)'?" } ?? ""
    }
}
