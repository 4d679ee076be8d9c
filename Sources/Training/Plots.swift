import Foundation
import Plotting

/// Pictures of training and evaluation results (PNG through `Plotting`).
public enum TrainingPlots {
    static let palette: [Color] = [.blue, .red, .green, Color(red: 150, green: 80, blue: 200), .yellow,
                                   Color(red: 0, green: 160, blue: 160)]

    /// Loss (training and validation) on top, every other logged metric below,
    /// per epoch.
    public static func curves(_ history: History, title: String = "TRAINING") -> Canvas {
        let epochs = (1...Swift.max(1, history.epochs)).map(Double.init)
        var loss = LinePlot(title: title + ": LOSS", xLabel: "EPOCH", yLabel: "LOSS")
        var metrics = LinePlot(title: "METRICS", xLabel: "EPOCH", yLabel: "")
        var lossColor = 0, metricColor = 0
        for key in history.keys where key != "lr" {
            guard let values = history[key], values.contains(where: \.isFinite) else { continue }
            if key.hasSuffix("loss") {
                loss.add(x: epochs, y: values, label: key, color: palette[lossColor % palette.count])
                lossColor += 1
            } else {
                metrics.add(x: epochs, y: values, label: key, color: palette[metricColor % palette.count])
                metricColor += 1
            }
        }
        let top = loss.canvas(width: 720, height: 360)
        guard metricColor > 0 else { return top }
        return stacked([top, metrics.canvas(width: 720, height: 360)])
    }

    /// A confusion matrix: rows are true classes, columns predictions; cells
    /// shaded by the fraction of the row, with counts written in them.
    public static func confusionMatrix(_ matrix: [[Int]], classNames: [String], title: String = "CONFUSION MATRIX") -> Canvas {
        let n = matrix.count
        let labelWidth = (classNames.map { BitmapFont.width(of: $0.uppercased()) }.max() ?? 0) + 16
        let cell = 64, top = 56, left = labelWidth + 20
        var canvas = Canvas(width: left + n * cell + 20, height: top + n * cell + 60, background: .white)
        canvas.drawText(title, x: 10, y: 10, scale: 2)
        canvas.drawText("PREDICTED", x: left + n * cell / 2 - 27, y: top + n * cell + 40)
        canvas.drawText("TRUE", x: 4, y: top - 12)
        for t in 0..<n {
            let rowTotal = Swift.max(1, matrix[t].reduce(0, +))
            for p in 0..<n {
                let fraction = Double(matrix[t][p]) / Double(rowTotal)
                let shade = UInt8(255 - Int(fraction * 200))
                let color = t == p ? Color(red: shade, green: 255 - UInt8(fraction * 60), blue: shade)
                                   : Color(red: 255 - UInt8(fraction * 40), green: shade, blue: shade)
                canvas.fillRect(x: left + p * cell, y: top + t * cell, width: cell - 2, height: cell - 2, color: color)
                let text = String(matrix[t][p])
                canvas.drawText(text, x: left + p * cell + (cell - BitmapFont.width(of: text, scale: 2)) / 2,
                                y: top + t * cell + cell / 2 - 7, scale: 2)
            }
            let name = t < classNames.count ? classNames[t].uppercased() : String(t)
            canvas.drawText(name, x: left - 8 - BitmapFont.width(of: name), y: top + t * cell + cell / 2 - 3)
            let short = String(name.prefix(10))
            canvas.drawText(short, x: left + t * cell + (cell - BitmapFont.width(of: short)) / 2, y: top + n * cell + 6)
        }
        return canvas
    }

    /// The ROC curve with the chance line; the title carries the AUC.
    public static func rocCurve(falsePositiveRates fpr: [Double], truePositiveRates tpr: [Double], auc: Double) -> Canvas {
        var plot = LinePlot(title: String(format: "ROC CURVE (AUC %.4f)", auc), xLabel: "FALSE POSITIVE RATE",
                            yLabel: "TRUE POSITIVE RATE")
        plot.add(x: [0, 1], y: [0, 1], label: "chance", color: .lightGray)
        plot.add(x: fpr, y: tpr, label: "model", color: .blue)
        return plot.canvas(width: 560, height: 480)
    }

    /// Reliability diagram: accuracy against mean confidence per bin of the top probability,
    /// one curve per labelled set of bins (e.g. before and after temperature scaling), with
    /// each curve's expected calibration error in its label.
    public static func reliabilityDiagram(_ curves: [(label: String, bins: [ProbabilityCalibration.Bin], ece: Double)]) -> Canvas {
        var plot = LinePlot(title: "RELIABILITY DIAGRAM", xLabel: "CONFIDENCE (TOP PROBABILITY)", yLabel: "ACCURACY")
        plot.add(x: [0, 1], y: [0, 1], label: "perfect calibration", color: .lightGray)
        let colors: [Color] = [.blue, .red, .green]
        for (i, curve) in curves.enumerated() {
            plot.add(x: curve.bins.map(\.confidence), y: curve.bins.map(\.accuracy),
                     label: curve.label + String(format: " (ECE %.4f)", curve.ece), color: colors[i % colors.count])
        }
        return plot.canvas(width: 560, height: 480)
    }

    /// Canvases one above the other.
    public static func stacked(_ canvases: [Canvas]) -> Canvas {
        let width = canvases.map(\.width).max() ?? 1, height = canvases.reduce(0) { $0 + $1.height }
        var out = Canvas(width: width, height: height, background: .white)
        var y = 0
        for c in canvases {
            out.blit(c.pixels, width: c.width, height: c.height, channels: 3, x: 0, y: y)
            y += c.height
        }
        return out
    }
}
