// Minimal line plots (training curves and the like) on a Canvas.
import Foundation

/// A line plot: one or more (x, y) series on linear axes, with tick labels and a legend.
///
/// ```swift
/// var plot = LinePlot(title: "LOSS", xLabel: "EPOCH", yLabel: "LOSS")
/// plot.add(x: epochs, y: trainLoss, label: "train", color: .blue)
/// try plot.canvas(width: 640, height: 400).write(to: url)
/// ```
public struct LinePlot: Sendable {
    public struct Series: Sendable {
        public var x: [Double]
        public var y: [Double]
        public var label: String
        public var color: Color
        /// Points (with optional ± error bars) instead of a line.
        public var points = false
        public var errors: [Double]? = nil
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public private(set) var series: [Series] = []

    public init(title: String = "", xLabel: String = "", yLabel: String = "") {
        self.title = title; self.xLabel = xLabel; self.yLabel = yLabel
    }

    /// Adds a series; `x` and `y` must have the same length.
    public mutating func add(x: [Double], y: [Double], label: String, color: Color) {
        precondition(x.count == y.count, "LinePlot.add: \(x.count) x values for \(y.count) y values")
        series.append(Series(x: x, y: y, label: label, color: color))
    }

    /// Adds a scatter series, each point with an optional vertical error bar of ± `errors`.
    public mutating func addPoints(x: [Double], y: [Double], errors: [Double]? = nil, label: String, color: Color) {
        precondition(x.count == y.count && (errors?.count ?? x.count) == x.count,
                     "LinePlot.addPoints: \(x.count) x, \(y.count) y, \(errors?.count ?? -1) errors")
        series.append(Series(x: x, y: y, label: label, color: color, points: true, errors: errors))
    }

    /// The plot drawn on a white canvas.
    public func canvas(width: Int = 640, height: Int = 400) -> Canvas {
        var canvas = Canvas(width: width, height: height, background: .white)
        let left = 60, right = width - 16, top = title.isEmpty ? 16 : 30, bottom = height - 36
        let points = series.flatMap { s in zip(s.x, s.y).filter { $0.0.isFinite && $0.1.isFinite } }
            + series.flatMap { s in zip(zip(s.x, s.y), s.errors ?? []).flatMap { [($0.0.0, $0.0.1 - $0.1), ($0.0.0, $0.0.1 + $0.1)] } }
                .filter { $0.0.isFinite && $0.1.isFinite }
        var (x0, x1) = (points.map(\.0).min() ?? 0, points.map(\.0).max() ?? 1)
        var (y0, y1) = (points.map(\.1).min() ?? 0, points.map(\.1).max() ?? 1)
        if x1 <= x0 { x1 = x0 + 1 }
        if y1 <= y0 { y1 = y0 + 1 }
        let pad = 0.05 * (y1 - y0); y0 -= pad; y1 += pad
        func px(_ x: Double) -> Int { left + Int(((x - x0) / (x1 - x0) * Double(right - left)).rounded()) }
        func py(_ y: Double) -> Int { bottom - Int(((y - y0) / (y1 - y0) * Double(bottom - top)).rounded()) }

        if !title.isEmpty { canvas.drawText(title, x: (width - BitmapFont.width(of: title, scale: 2)) / 2, y: 6, scale: 2) }
        for i in 0...4 {  // grid and tick labels
            let fx = x0 + (x1 - x0) * Double(i) / 4, fy = y0 + (y1 - y0) * Double(i) / 4
            canvas.drawLine(x0: px(fx), y0: top, x1: px(fx), y1: bottom, color: .lightGray)
            canvas.drawLine(x0: left, y0: py(fy), x1: right, y1: py(fy), color: .lightGray)
            let xt = LinePlot.tick(fx), yt = LinePlot.tick(fy)
            canvas.drawText(xt, x: px(fx) - BitmapFont.width(of: xt) / 2, y: bottom + 4)
            canvas.drawText(yt, x: left - 4 - BitmapFont.width(of: yt), y: py(fy) - 3)
        }
        canvas.strokeRect(x: left, y: top, width: right - left + 1, height: bottom - top + 1, color: .black)
        canvas.drawText(xLabel, x: (left + right - BitmapFont.width(of: xLabel)) / 2, y: height - 12)
        canvas.drawText(yLabel, x: 4, y: top - 12 < 0 ? 0 : max(0, top - 12))
        for s in series {
            let valid = zip(s.x, s.y).filter { $0.0.isFinite && $0.1.isFinite }
            if s.points {
                let faint = Color(red: UInt8((Int(s.color.red) + 510) / 3), green: UInt8((Int(s.color.green) + 510) / 3),
                                  blue: UInt8((Int(s.color.blue) + 510) / 3))
                for (i, (x, y)) in zip(s.x, s.y).enumerated() where x.isFinite && y.isFinite {
                    if let e = s.errors?[i], e.isFinite, e > 0 {
                        canvas.drawLine(x0: px(x), y0: py(y - e), x1: px(x), y1: py(y + e), color: faint)
                    }
                }
                for (x, y) in valid { canvas.fillRect(x: px(x) - 1, y: py(y) - 1, width: 3, height: 3, color: s.color) }
                continue
            }
            for (a, b) in zip(valid, valid.dropFirst()) {
                canvas.drawLine(x0: px(a.0), y0: py(a.1), x1: px(b.0), y1: py(b.1), color: s.color)
            }
            if valid.count == 1 { canvas.fillRect(x: px(valid[0].0) - 1, y: py(valid[0].1) - 1, width: 3, height: 3, color: s.color) }
        }
        for (i, s) in series.filter({ !$0.label.isEmpty }).enumerated() {  // legend, top right (unlabelled series left out)
            let y = top + 6 + i * 12, x = right - 8 - BitmapFont.width(of: s.label) - 16
            canvas.fillRect(x: x, y: y + 2, width: 12, height: 3, color: s.color)
            canvas.drawText(s.label, x: x + 16, y: y)
        }
        return canvas
    }

    /// Short tick text: 3 significant digits.
    static func tick(_ value: Double) -> String {
        let text = String(format: "%.3g", value)
        return text == "-0" ? "0" : text
    }
}
