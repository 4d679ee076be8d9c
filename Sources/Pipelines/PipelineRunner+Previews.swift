import FITS
import Foundation
import Plotting
import Preprocessing
import Training

extension PipelineRunner {
    /// `outputs.previews`: a contact sheet of the first inputs with what the model
    /// said about each (segmentation: an overlay per map); `outputs.report`: a short
    /// Markdown report of the run with the counts per class (or target means) and the
    /// previews. Written after the outputs, atomically.
    func writePictures(catalog: Catalog, results: [String: Prediction], table: ResultTable, predictor: Predictor,
                       summary: RunSummary, maps: [String: URL]) throws -> [String] {
        let header = table.header
        let rows = results.mapValues { table.row(file: "", $0) }
        var written = [String]()
        var previewFile: URL?
        if let previews = config.outputs.previews {
            let folder = resolve(previews)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let entries = catalog.entries.filter { rows[$0.name] != nil }.prefix(config.outputs.previewCount)
            if config.task == .segment {
                for entry in entries {
                    let image = try FITSFile(path: entry.url.path).readImage(predictor.input.hdu, as: Float.self)
                    let classes = try FITSFile(path: maps[entry.name]!.path).readImage(0, as: Float.self)
                    let url = folder.appendingPathComponent(Sample.stem(OutputSafety.relativeOutputName(entry.name))
                        .replacingOccurrences(of: "/", with: "_") + ".png")
                    try Self.overlay(image: image, classes: classes).write(to: url)
                    written.append(url.path)
                    previewFile = previewFile ?? url
                }
            } else {
                var sheet = ContactSheet(columns: 6, cellSize: 96, title: (config.name.isEmpty ? "PREDICTIONS" : config.name).uppercased())
                for entry in entries {
                    let sample = try predictor.read(entry)
                    let row = rows[entry.name]!
                    let label = config.task == .regress
                        ? zip(header.dropFirst(), row.dropFirst()).prefix(2).map { "\($0)=\(String($1.prefix(5)))" }.joined(separator: " ")
                        : row[1]
                    let image = sample.image
                    if image.channels >= 3 {
                        let plane = image.planeSize
                        let red = Array(image.pixels[(2 * plane)..<(3 * plane)])
                        let green = Array(image.pixels[plane..<(2 * plane)]), blue = Array(image.pixels[0..<plane])
                        let bytes = LuptonRGB.noiseScaled(red: red, green: green, blue: blue)
                            .composite8(red: red, green: green, blue: blue)
                        sheet.add(rgb: bytes, width: image.width, height: image.height, label: label)
                    } else {
                        let band = Array(image.pixels[0..<image.planeSize])
                        sheet.add(gray: ImageNormalization.display(for: band).bytes(band),
                                  width: image.width, height: image.height, label: label)
                    }
                }
                let url = folder.appendingPathComponent("previews.png")
                try sheet.write(to: url)
                written.append(url.path)
                previewFile = url
            }
        }
        if let report = config.outputs.report {
            let folder = resolve(report)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            var text = "# \(config.name.isEmpty ? "Run" : config.name)\n\n"
            text += "Pipeline `\(pipelinePath)`, \(catalog.count) inputs from `\(catalog.source)`: \(summary.line).\n\n"
            text += "Output: `\(summary.outputs[0])`.\n\n"
            switch config.task {
            case .classify, .lens, .lightcurves:
                var counts = [String: Int]()
                for row in rows.values { counts[row[1], default: 0] += 1 }
                text += "| predicted | files |\n| --- | ---: |\n"
                for (name, n) in counts.sorted(by: { $0.key < $1.key }) { text += "| \(name) | \(n) |\n" }
            case .regress:
                text += "| target | mean | min | max |\n| --- | ---: | ---: | ---: |\n"
                for (k, name) in header.dropFirst().enumerated() {
                    let values = results.values.map { table.numbers($0)[k] }
                    guard !values.isEmpty else { continue }
                    text += String(format: "| %@ | %.4g | %.4g | %.4g |\n", name, values.reduce(0, +) / Double(values.count),
                                   values.min()!, values.max()!)
                }
            case .generate:
                text += "Generated images.\n"
            case .deblend:
                text += "Deblended images of the central galaxy (float32, counts) in the output folder, one per input.\n"
            case .segment:
                text += "Class maps (" + predictor.classNames.enumerated().map { "\($0.offset) \($0.element)" }
                    .joined(separator: ", ") + ") in the output folder, one per input.\n"
            }
            if let previewFile {
                let copy = folder.appendingPathComponent(previewFile.lastPathComponent)
                if copy.path != previewFile.path {
                    try? FileManager.default.removeItem(at: copy)
                    try FileManager.default.copyItem(at: previewFile, to: copy)
                }
                text += "\n![previews](\(previewFile.lastPathComponent))\n"
            }
            let url = folder.appendingPathComponent("report.md")
            try writeAtomically(Data(text.utf8), to: url)
            written.append(url.path)
        }
        return written
    }
}
