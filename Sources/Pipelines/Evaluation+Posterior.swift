import AstroBase
import Foundation
import Plotting
import Preprocessing
import Training

/// The evaluation of a posterior regression model (TASKS.md task 4): point errors of the
/// posterior medians, overall and per bin of the true magnitude, and calibration: coverage of
/// the 68 % and 95 % intervals (per target and bin), simulation-based calibration rank
/// histograms, TARP on the joint posterior, corner plots of a few galaxies; with `bounds`,
/// the Cramér–Rao bound's NMAD beside the model's in each bin.
struct PosteriorEvaluation {
    /// One galaxy: its name, truth (catalog units), posterior.
    struct Object {
        var name: String
        var truth: [Double]
        var posterior: PosteriorEstimate
    }

    var targets: [String]
    var logTargets: [String]
    var objects: [Object]
    /// Cramér–Rao bounds of another population of the same distribution
    /// (`scripts/regression_fisher.py --out`): per galaxy its true `binTarget` value and the
    /// bound's σ per target (in measured units); the table gets the NMAD an unbiased estimator
    /// at the bound would score in each bin, from one seeded Gaussian error per galaxy.
    var bounds: [(binValue: Double, sigmas: [Double])]?
    /// The target whose truth bins the table (`mag`), and the bins' edges.
    var binTarget = "mag"
    var binEdges: [Double] = [17, 18, 19, 20, 21, 22]

    /// Catalog units → the units errors are measured in (log10 for log targets).
    func measured(_ value: Double, _ k: Int) -> Double {
        logTargets.contains(targets[k]) ? Foundation.log10(value) : value
    }

    /// The printed name of target `k`'s error (`log10_r_e` for a log target).
    func measuredName(_ k: Int) -> String { logTargets.contains(targets[k]) ? "log10_" + targets[k] : targets[k] }

    struct BinRow {
        var label: String
        var count: Int
        var nmad: [Double]
        /// The bootstrap standard error of each NMAD.
        var nmadError: [Double]
        /// The fraction of truths below their posterior medians (0.5 when calibrated) and the
        /// median of the medians' errors (measured units).
        var below: [Double]
        var medianError: [Double]
        /// The bound's NMAD and its galaxy count (nil without `bounds`).
        var boundNMAD: [Double]?
        var boundCount = 0
        var coverage68: [Double]
        var coverage95: [Double]
    }

    /// All galaxies, then each bin of `binTarget`'s truth.
    func rows() -> [BinRow] {
        let b = targets.firstIndex(of: binTarget)
        func inBin(_ v: Double, _ lo: Double, _ hi: Double) -> Bool { v >= lo && (v < hi || hi == binEdges.last! && v == hi) }
        var groups: [(String, [Object], (Double) -> Bool)] = [("all", objects, { _ in true })]
        if let b {
            for (lo, hi) in zip(binEdges, binEdges.dropFirst()) {
                groups.append((String(format: "%@ %g-%g", binTarget, lo, hi), objects.filter { inBin($0.truth[b], lo, hi) },
                               { inBin($0, lo, hi) }))
            }
        }
        var generator = SeededGenerator(seed: 17)
        return groups.compactMap { label, group, contains in
            guard !group.isEmpty else { return nil }
            var row = BinRow(label: label, count: group.count, nmad: [], nmadError: [], below: [], medianError: [],
                               coverage68: [], coverage95: [])
            if let bounds {
                let selected = bounds.filter { contains($0.binValue) }
                row.boundCount = selected.count
                row.boundNMAD = targets.indices.map { k in
                    let errors = selected.map { $0.sigmas[k] * generator.normal() }
                    return errors.isEmpty ? .nan : RegressionMetrics.nmad(predicted: errors, truth: [Double](repeating: 0, count: errors.count))
                }
            }
            for k in targets.indices {
                let truth = group.map { $0.truth[k] }
                let medians = group.map { measured($0.posterior.medians[k], k) }, measuredTruth = truth.map { measured($0, k) }
                row.nmad.append(RegressionMetrics.nmad(predicted: medians, truth: measuredTruth))
                row.nmadError.append(RegressionMetrics.nmadStandardError(predicted: medians, truth: measuredTruth))
                row.below.append(RegressionMetrics.fractionBelow(predicted: medians, truth: measuredTruth))
                row.medianError.append(RegressionMetrics.medianError(predicted: medians, truth: measuredTruth))
                row.coverage68.append(PosteriorCalibration.coverage(lower: group.map { $0.posterior.p16[k] },
                                                                    upper: group.map { $0.posterior.p84[k] }, truth: truth))
                row.coverage95.append(PosteriorCalibration.coverage(lower: group.map { $0.posterior.p025[k] },
                                                                    upper: group.map { $0.posterior.p975[k] }, truth: truth))
            }
            return row
        }
    }

    /// Reads `scripts/regression_fisher.py --out`'s CSV: `sersic_n,r_e,q,mag,sigma_n,
    /// sigma_log10_r_e,sigma_q,sigma_mag` per galaxy (the bound of `r_e` on its log10).
    static func readBounds(_ url: URL, targets: [String], binTarget: String) throws -> [(binValue: Double, sigmas: [Double])] {
        let text = try String(contentsOf: url, encoding: .utf8)
        var lines = text.split(whereSeparator: \.isNewline).map { $0.split(separator: ",").map(String.init) }
        guard let header = lines.first, let b = header.firstIndex(of: binTarget) else {
            throw PipelineError.missingTruth(file: url.path, what: "a '\(binTarget)' column (scripts/regression_fisher.py --out)")
        }
        let k = targets.count
        guard header.count >= 2 * k else {
            throw PipelineError.missingTruth(file: url.path, what: "\(k) values and \(k) bounds per galaxy")
        }
        lines.removeFirst()
        return try lines.enumerated().map { i, fields in
            guard fields.count == header.count, let values = Optional(fields.compactMap(Double.init)), values.count == fields.count else {
                throw PipelineError.missingTruth(file: url.path, what: "numbers on line \(i + 2)")
            }
            return (values[b], Array(values[k..<(2 * k)]))
        }
    }

    /// SBC ranks per target, from the draws each object keeps.
    func ranks() -> (ranks: [[Int]], draws: Int) {
        let k = targets.count
        var ranks = [[Int]](repeating: [], count: k)
        var draws = Int.max
        for object in objects {
            guard let samples = object.posterior.samples else { continue }
            let s = samples.count / k
            draws = Swift.min(draws, s)
            for t in 0..<k {
                ranks[t].append(PosteriorCalibration.rank(of: object.truth[t], among: stride(from: t, to: s * k, by: k).map { samples[$0] }))
            }
        }
        return (ranks, draws == .max ? 0 : draws)
    }

    /// TARP over the joint posterior in measured units, each divided by the truths' spread.
    func tarp() -> PosteriorCalibration.TARPResult? {
        let k = targets.count
        let withDraws = objects.filter { $0.posterior.samples != nil }
        guard !withDraws.isEmpty else { return nil }
        let s = withDraws.map { $0.posterior.samples!.count / k }.min()!
        var scale = [Double]()
        for t in 0..<k {
            let values = withDraws.map { measured($0.truth[t], t) }
            scale.append(Swift.max(1e-12, PixelStatistics.meanAndStd(values).std))
        }
        var draws = [Double](), truths = [Double]()
        draws.reserveCapacity(withDraws.count * s * k)
        for object in withDraws {
            for t in 0..<k { truths.append(measured(object.truth[t], t) / scale[t]) }
            let samples = object.posterior.samples!
            for i in 0..<(s * k) { draws.append(measured(samples[i], i % k) / scale[i % k]) }
        }
        return PosteriorCalibration.tarp(draws: draws, truths: truths, objects: withDraws.count, dimensions: k)
    }

    /// Writes the numbers (metrics, `calibration.csv`, `sbc_ranks.csv`, `tarp.csv`) and the
    /// pictures into `folder`; returns the metrics and the files written.
    func write(into folder: URL) throws -> (metrics: [String: Double], files: [String]) {
        var metrics = [String: Double]()
        var files = [String]()
        let table = rows()
        let withBound = bounds != nil
        var columns = ["bin", "count"]
        for k in targets.indices { columns += ["nmad_" + measuredName(k), "coverage68_" + targets[k], "coverage95_" + targets[k]] }
        // The spreads a calibrated model's coverage has for this count (binomial) and each
        // NMAD's bootstrap standard error, so a reader can tell a miss from the sample's noise.
        columns += ["coverage68_se", "coverage95_se"] + targets.indices.map { "nmad_se_" + measuredName($0) }
            + targets.indices.map { "truth_below_median_" + targets[$0] } + targets.indices.map { "median_error_" + measuredName($0) }
        if withBound { columns += ["bound_count"] + targets.indices.map { "bound_nmad_" + measuredName($0) } }
        var csv = columns.joined(separator: ",") + "\n"
        for row in table {
            csv += "\(row.label),\(row.count)," + targets.indices.map { k in
                String(format: "%.5f,%.4f,%.4f", row.nmad[k], row.coverage68[k], row.coverage95[k]) }.joined(separator: ",")
            csv += String(format: ",%.4f,%.4f,", Self.coverageError(0.68, row.count), Self.coverageError(0.95, row.count))
                + row.nmadError.map { String(format: "%.5f", $0) }.joined(separator: ",") + ","
                + row.below.map { String(format: "%.4f", $0) }.joined(separator: ",") + ","
                + row.medianError.map { String(format: "%.5f", $0) }.joined(separator: ",")
            if let bound = row.boundNMAD {
                csv += ",\(row.boundCount)," + bound.map { String(format: "%.5f", $0) }.joined(separator: ",")
                let suffix = row.label == "all" ? "" : "_" + row.label.replacingOccurrences(of: " ", with: "")
                for k in targets.indices { metrics["bound_nmad_" + measuredName(k) + suffix] = bound[k] }
            }
            csv += "\n"
            let suffix = row.label == "all" ? "" : "_" + row.label.replacingOccurrences(of: " ", with: "")
            for k in targets.indices {
                metrics["nmad_" + measuredName(k) + suffix] = row.nmad[k]
                metrics["nmad_se_" + measuredName(k) + suffix] = row.nmadError[k]
                metrics["truth_below_median_" + targets[k] + suffix] = row.below[k]
                metrics["median_error_" + measuredName(k) + suffix] = row.medianError[k]
                metrics["coverage68_" + targets[k] + suffix] = row.coverage68[k]
                metrics["coverage95_" + targets[k] + suffix] = row.coverage95[k]
            }
        }
        for k in targets.indices {
            let medians = objects.map { $0.posterior.medians[k] }, truth = objects.map { $0.truth[k] }
            metrics["rmse_" + targets[k]] = RegressionMetrics.rmse(predicted: medians, truth: truth)
            if logTargets.contains(targets[k]) { metrics["nmad_" + targets[k]] = RegressionMetrics.nmad(predicted: medians, truth: truth) }
        }
        try writeAtomically(Data(csv.utf8), to: folder.appendingPathComponent("calibration.csv"))
        files.append("calibration.csv")

        var panels = [Canvas]()
        let (ranks, draws) = ranks()
        if draws > 0 {
            var rankCSV = "target,bin,count\n"
            var histograms = [Canvas]()
            for (k, name) in targets.enumerated() {
                let (counts, p) = PosteriorCalibration.rankHistogram(ranks[k], draws: draws)
                metrics["sbc_p_" + name] = p
                for (b, c) in counts.enumerated() { rankCSV += "\(name),\(b),\(c)\n" }
                var plot = LinePlot(title: String(format: "%@ SBC RANKS (CHI2 P %.2f)", name.uppercased(), p),
                                    xLabel: "NORMALISED RANK", yLabel: "COUNT")
                let expected = Double(ranks[k].count) / Double(counts.count)
                let (x, y) = Self.steps(counts.map(Double.init))
                plot.add(x: x, y: y, label: "ranks", color: .blue)
                plot.add(x: [0, 1], y: [expected, expected], label: "uniform", color: .lightGray)
                histograms.append(plot.canvas(width: 420, height: 300))
            }
            try writeAtomically(Data(rankCSV.utf8), to: folder.appendingPathComponent("sbc_ranks.csv"))
            files.append("sbc_ranks.csv")
            try Self.grid(histograms, columns: 2).write(to: folder.appendingPathComponent("sbc_ranks.png"))
            files.append("sbc_ranks.png")
        }
        if let tarp = tarp() {
            metrics["tarp_area_difference"] = tarp.areaDifference
            metrics["tarp_signed_area_difference"] = tarp.signedAreaDifference
            metrics["tarp_ks_statistic"] = tarp.ksStatistic
            metrics["tarp_ks_p"] = tarp.ksPValue
            var tarpCSV = "alpha,expected_coverage\n"
            for (a, e) in zip(tarp.alpha, tarp.expectedCoverage) { tarpCSV += String(format: "%.4f,%.5f\n", a, e) }
            try writeAtomically(Data(tarpCSV.utf8), to: folder.appendingPathComponent("tarp.csv"))
            files.append("tarp.csv")
            var plot = LinePlot(title: String(format: "TARP: AREA %.3f, KS P %.2f", tarp.areaDifference, tarp.ksPValue),
                                xLabel: "CREDIBILITY LEVEL", yLabel: "EXPECTED COVERAGE")
            plot.add(x: [0, 1], y: [0, 1], label: "calibrated", color: .lightGray)
            plot.add(x: tarp.alpha, y: tarp.expectedCoverage, label: "model", color: .blue)
            panels.append(plot.canvas(width: 480, height: 400))
        }
        // Coverage per magnitude bin, one panel per interval.
        let binned = table.dropFirst()
        if !binned.isEmpty {
            let centres = binned.map { row -> Double in
                let parts = row.label.split(separator: " ").last!.split(separator: "-").compactMap { Double($0) }
                return parts.count == 2 ? (parts[0] + parts[1]) / 2 : 0
            }
            for (level, pick) in [(0.68, \BinRow.coverage68), (0.95, \BinRow.coverage95)] {
                var plot = LinePlot(title: String(format: "COVERAGE OF THE %.0f%% INTERVALS", level * 100),
                                    xLabel: binTarget.uppercased() + " (TRUE)", yLabel: "FRACTION OF TRUTHS INSIDE")
                plot.add(x: [centres.first! - 0.5, centres.last! + 0.5], y: [level, level], label: "nominal", color: .lightGray)
                for sign in [1.0, -1.0] {
                    plot.add(x: centres, y: binned.map { level + sign * 2 * Self.coverageError(level, $0.count) },
                             label: sign > 0 ? "+/-2 SE (calibrated)" : "", color: .lightGray)
                }
                for (k, name) in targets.enumerated() {
                    plot.add(x: centres, y: binned.map { $0[keyPath: pick][k] }, label: name, color: Self.palette[k % Self.palette.count])
                }
                panels.append(plot.canvas(width: 480, height: 400))
            }
        }
        if !panels.isEmpty {
            try TrainingPlots.stacked(panels).write(to: folder.appendingPathComponent("calibration.png"))
            files.append("calibration.png")
        }
        // Corner plots of three galaxies spread in magnitude.
        let b = targets.firstIndex(of: binTarget) ?? 0
        let withDraws = objects.filter { $0.posterior.samples != nil }.sorted { $0.truth[b] < $1.truth[b] }
        for (i, position) in [0.1, 0.5, 0.9].enumerated() where !withDraws.isEmpty {
            let object = withDraws[Swift.min(withDraws.count - 1, Int(position * Double(withDraws.count)))]
            try corner(object).write(to: folder.appendingPathComponent("corner-\(i + 1).png"))
            files.append("corner-\(i + 1).png")
        }
        return (metrics, files)
    }

    /// The binomial standard error of the coverage of a calibrated `level` interval over
    /// `count` objects.
    static func coverageError(_ level: Double, _ count: Int) -> Double {
        (level * (1 - level) / Double(Swift.max(count, 1))).squareRoot()
    }

    static let palette: [Color] = [.blue, Color(red: 220, green: 60, blue: 40), Color(red: 40, green: 160, blue: 60),
                                   Color(red: 150, green: 70, blue: 190)]

    /// Bin counts as a step line over [0, 1].
    static func steps(_ counts: [Double]) -> ([Double], [Double]) {
        var x = [Double](), y = [Double]()
        for (b, c) in counts.enumerated() {
            x += [Double(b) / Double(counts.count), Double(b + 1) / Double(counts.count)]
            y += [c, c]
        }
        return (x, y)
    }

    /// Canvases laid out in a grid, row by row.
    static func grid(_ canvases: [Canvas], columns: Int) -> Canvas {
        let w = canvases.map(\.width).max() ?? 1, h = canvases.map(\.height).max() ?? 1
        let rows = (canvases.count + columns - 1) / columns
        var out = Canvas(width: w * columns, height: h * rows, background: .white)
        for (i, c) in canvases.enumerated() {
            out.blit(c.pixels, width: c.width, height: c.height, channels: 3, x: (i % columns) * w, y: (i / columns) * h)
        }
        return out
    }

    /// A corner plot of one galaxy's draws (measured units): histograms on the diagonal, pairs
    /// below it, the truth in red.
    func corner(_ object: Object) -> Canvas {
        let k = targets.count, samples = object.posterior.samples!
        let s = samples.count / k
        let columns = (0..<k).map { t in (0..<s).map { measured(samples[$0 * k + t], t) } }
        let truth = (0..<k).map { measured(object.truth[$0], $0) }
        let red = Color(red: 220, green: 40, blue: 30)
        var cells = [Canvas]()
        for row in 0..<k {
            for column in 0..<k {
                if column > row { cells.append(Canvas(width: 300, height: 260, background: .white)); continue }
                if column == row {
                    let values = columns[row]
                    let lo = Swift.min(values.min()!, truth[row]), hi = Swift.max(values.max()!, truth[row])
                    let bins = 30, width = Swift.max(1e-12, (hi - lo) / Double(bins))
                    var counts = [Double](repeating: 0, count: bins)
                    for v in values { counts[Swift.min(bins - 1, Int((v - lo) / width))] += 1 }
                    var plot = LinePlot(title: measuredName(row).uppercased(), xLabel: "", yLabel: "")
                    let (x, y) = Self.steps(counts)
                    plot.add(x: x.map { lo + $0 * (hi - lo) }, y: y, label: "draws", color: .blue)
                    plot.add(x: [truth[row], truth[row]], y: [0, counts.max()!], label: "truth", color: red)
                    cells.append(plot.canvas(width: 300, height: 260))
                } else {
                    var plot = LinePlot(title: "", xLabel: measuredName(column).uppercased(), yLabel: measuredName(row).uppercased())
                    let shown = Swift.min(s, 400)
                    plot.addPoints(x: Array(columns[column].prefix(shown)), y: Array(columns[row].prefix(shown)), label: "draws",
                                   color: .blue)
                    plot.addPoints(x: [truth[column]], y: [truth[row]], label: "truth", color: red)
                    cells.append(plot.canvas(width: 300, height: 260))
                }
            }
        }
        var sheet = Self.grid(cells, columns: k)
        sheet.drawText(object.name, x: 300 * (k - 1), y: 8, scale: 2)
        return sheet
    }
}
