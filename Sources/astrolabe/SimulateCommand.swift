import ArgumentParser
import Foundation
import Plotting
import SkySim

extension SimulationTask: ExpressibleByArgument {}

/// `astrolabe simulate`: labelled images for one of the four tasks of TASKS.md.
struct Simulate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Simulate labelled images for one of the four tasks.",
        discussion: """
            Writes DIR/<task>_NNNNNN.fits and DIR/catalog.csv following shared/spec/TASKS.md.
            The same seed gives byte-identical files. Observation options default to TASKS.md.
            """,
        subcommands: [Skymap.self])

    @Option(help: "Task: \(SimulationTask.allCases.map(\.rawValue).joined(separator: ", ")).")
    var task: SimulationTask
    @Option(help: "Number of images.") var count: Int
    @Option(help: "Random seed (non-negative integer).") var seed: UInt64 = 0
    @Option(help: "Output folder.") var out: String
    @Option(help: "Image side in pixels (default 64; segmentation 256).") var size: Int?
    @Option(help: "Pixel scale, arcsec/pixel.") var pixelScale: Double = 0.2
    @Option(help: "PSF FWHM range in arcsec, 'low,high'.") var psfFwhm: String = "0.6,1.0"
    @Option(help: "Sky noise sigma range in counts, 'low,high'.") var skySigma: String = "5,15"
    @Option(help: "Photometric zero point.") var magZero: Double = 30
    @Option(help: "Galaxy magnitude range 'low,high' (default per task; lens: lens galaxy i band).") var galaxyMag: String?
    @Option(help: "Star magnitude range 'low,high' (default per task).") var starMag: String?
    @Option(help: "Lens source / companion g magnitude range 'low,high'.") var sourceMag: String = "21,24"
    @Option(help: "Also write a PNG contact sheet of the first images to this path.") var contactSheet: String?
    @Option(help: "Images on the contact sheet.") var sheetCount: Int = 40

    func validate() throws {
        guard count > 0 else { throw ValidationError("--count must be positive, got \(count).") }
        if let size, size < 8 { throw ValidationError("--size must be at least 8 pixels, got \(size).") }
    }

    func run() throws {
        var settings = ObservationSettings()
        settings.pixelScale = pixelScale
        settings.psfFWHM = try Simulate.range(psfFwhm, option: "--psf-fwhm")
        settings.skySigma = try Simulate.range(skySigma, option: "--sky-sigma")
        settings.magnitudeZeroPoint = magZero
        settings.galaxyMagnitudes = try galaxyMag.map { try Simulate.range($0, option: "--galaxy-mag") }
        settings.starMagnitudes = try starMag.map { try Simulate.range($0, option: "--star-mag") }
        settings.sourceMagnitudes = try Simulate.range(sourceMag, option: "--source-mag")
        try settings.validate()
        let simulator = Simulator(task: task, seed: seed, settings: settings, size: size)
        let directory = URL(fileURLWithPath: out, isDirectory: true)
        let summary = try simulator.writeDataset(count: count, to: directory,
                                                 keep: contactSheet == nil ? 0 : min(sheetCount, count))
        print(String(format: "simulate: %d %@ images in %.2f s (%.1f images/s) -> %@",
                     summary.files.count, task.rawValue, summary.seconds, summary.imagesPerSecond, directory.path))
        if let contactSheet {
            let columns = task == .segmentation ? 4 : 8
            let sheet = SimulationPreview.contactSheet(summary.kept, task: task, columns: columns,
                                                       cellSize: task == .segmentation ? 256 : 128)
            try sheet.write(to: URL(fileURLWithPath: contactSheet))
            print("simulate: contact sheet -> \(contactSheet)")
        }
    }

    /// Parses 'low,high' into a closed range.
    static func range(_ text: String, option: String) throws -> ClosedRange<Double> {
        let parts = text.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 2, let low = parts[0], let high = parts[1], low <= high else {
            throw ValidationError("\(option) expects 'low,high' with low <= high, got '\(text)'.")
        }
        return low...high
    }
}

/// `astrolabe simulate-skymap`-style helper kept inside `simulate`: see `Simulate.Skymap`.
extension Simulate {
    /// Writes a wide sky map with WCS plus positions.csv (used for samples/skymap).
    struct Skymap: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "skymap", abstract: "Write a wide sky map with a TAN WCS and a RA/Dec position list.")
        @Option(help: "Map side in pixels.") var size: Int = 1024
        @Option(help: "Random seed.") var seed: UInt64 = 0
        @Option(help: "Output folder.") var out: String
        @Option(help: "File name without extension.") var name: String = "skymap_1024"
        @Option(help: "Also write a PNG preview here.") var preview: String?

        func run() throws {
            let start = Date()
            let image = try SkyMap.write(size: size, seed: seed, directory: URL(fileURLWithPath: out, isDirectory: true), name: name)
            print(String(format: "simulate skymap: %dx%d map in %.1f s -> %@", size, size, Date().timeIntervalSince(start), out))
            if let preview {
                var sheet = ContactSheet(columns: 2, cellSize: size, title: "SKY MAP \(size)X\(size) AND TRUTH")
                sheet.add(gray: Stretch.astronomical.gray(image.pixels), width: size, height: size, label: "MAP")
                let palette: [[UInt8]] = [[0, 0, 0], [240, 200, 40], [38, 110, 210]]
                sheet.add(rgb: image.truth!.flatMap { palette[Int(min($0, 2))] }, width: size, height: size, label: "TRUTH")
                try sheet.write(to: URL(fileURLWithPath: preview))
            }
        }
    }
}
