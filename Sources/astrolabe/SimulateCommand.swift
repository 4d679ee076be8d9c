import ArgumentParser
import Foundation
import Plotting
import SkySim

extension SimulationTask: ExpressibleByArgument {}
extension PSFChoice: ExpressibleByArgument {}
extension IrregularLayout: ExpressibleByArgument {}

/// `astrolabe simulate`: labelled images or light curves for the tasks of TASKS.md.
struct Simulate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Simulate labelled images or light curves for the tasks of TASKS.md.",
        discussion: """
            Writes DIR/<task>_NNNNNN.fits and DIR/catalog.csv following shared/spec/TASKS.md.
            Task lightcurves writes DIR/lightcurves.csv (object_id,mjd,band,flux,flux_err),
            DIR/catalog.csv (object_id,label) and with --fits DIR/lightcurves.fits (binary
            table LIGHTCURVES); --count is the number of objects, classes in turn.
            The same seed gives byte-identical files. Observation options default to TASKS.md.
            With --skymap (task segmentation) it writes one wide map DIR/skymap_<size>.fits with a
            TAN WCS centred on --center, and DIR/positions.csv (id,ra,dec of its sources).
            """)

    @Option(help: "Task: \(SimulationTask.allCases.map(\.rawValue).joined(separator: ", ")).")
    var task: SimulationTask
    @Option(help: "Number of images.") var count: Int = 1
    @Option(help: "Random seed (non-negative integer).") var seed: UInt64 = 0
    @Option(help: "Output folder.") var out: String
    @Option(help: "Image side in pixels (default 64; segmentation 256; --skymap 1024).") var size: Int?
    @Option(help: "Pixel scale, arcsec/pixel.") var pixelScale: Double = 0.2
    @Option(help: "PSF FWHM range in arcsec, 'low,high'.") var psfFwhm: String = "0.6,1.0"
    @Option(help: "PSF shapes: gaussian (TASKS.md) or varied (per image, per band for lenses: Moffat beta 2.5-6 or Gaussian, elliptical |e| <= 0.12 half of the time; FWHM from --psf-fwhm; PSFTYPE/PSFBETA/PSF_E/PSF_PA record the draw). Morphology, lens, segmentation (one PSF per map; the truth follows it) and regression.")
    var psf: PSFChoice = .gaussian
    @Option(help: "Morphology and regression: probability per cutout of 1-3 neighbours (stars m 16-22 or Sersic galaxies m 17-23, 2-8\" from the object; NNEIGH, NBk_* record them). 0: TASKS.md.")
    var neighbours: Double = 0
    @Option(help: "Morphology and regression: probability per cutout that the object's light is cut off outside a circle keeping 85-99 % of it, as a mask or an image edge does (TRUNC_R, TRUNC_F record it). 0: TASKS.md.")
    var truncate: Double = 0
    @Option(help: "Morphology: probability per cutout of a galaxy of none of the five classes (an S0: bulge plus disk without arms; or a spiral with 3-8 star-forming clumps), labelled 'outside' in catalog.csv (LABEL -1, OUTKIND records the kind), for outlier exposure (loss: {cross_entropy: {outside_weight: w}}). 0: TASKS.md.")
    var outside: Double = 0
    @Option(help: "Morphology irregulars where TASKS.md leaves the choice open: standard (component weights uniform in 0.3-1, centres chained, clumps 0.2-1.5 r_e from their host) or varied (light split uniformly over the simplex, each centre from a random earlier one, clumps anywhere within 1.5 r_e), for training data.")
    var irregulars: IrregularLayout = .standard
    @Option(help: "Sky noise sigma range in counts, 'low,high'.") var skySigma: String = "5,15"
    @Option(help: "Photometric zero point.") var magZero: Double = 30
    @Option(help: "Galaxy magnitude range 'low,high' (default per task; lens: lens galaxy i band).") var galaxyMag: String?
    @Option(help: "Star magnitude range 'low,high' (default per task).") var starMag: String?
    @Option(help: "Lens source / companion g magnitude range 'low,high'.") var sourceMag: String = "21,24"
    @Option(help: "Also write a PNG contact sheet of the first images to this path.") var contactSheet: String?
    @Option(help: "Images on the contact sheet.") var sheetCount: Int = 40
    @Flag(help: "Write one wide sky map with WCS and positions.csv (task segmentation).") var skymap = false
    @Flag(help: "Task lens: add each lens's noiseless lensed source (g+r+i counts) as an ARC extension.") var arcs = false
    @Option(help: "Sky map centre 'ra,dec' in degrees (with --skymap).") var center: String = "150.1,2.2"
    @Flag(help: "Task lightcurves: also write lightcurves.fits (binary table LIGHTCURVES).") var fits = false

    func validate() throws {
        guard count > 0 else { throw ValidationError("--count must be positive, got \(count).") }
        if let size, size < 8 { throw ValidationError("--size must be at least 8 pixels, got \(size).") }
        if skymap && task != .segmentation {
            throw ValidationError("--skymap draws a segmentation sky map; use --task segmentation (got '\(task.rawValue)').")
        }
        if psf != .gaussian && ![.morphology, .lens, .segmentation, .regression].contains(task) {
            throw ValidationError("--psf \(psf.rawValue) is for morphology, lens, segmentation and regression images (got task '\(task.rawValue)').")
        }
        if (neighbours != 0 || truncate != 0) && ![.morphology, .regression].contains(task) {
            throw ValidationError("--neighbours and --truncate are for single-object cutouts (morphology, regression), got task '\(task.rawValue)'.")
        }
        if outside != 0 && task != .morphology {
            throw ValidationError("--outside draws galaxies of none of the morphology classes; use --task morphology (got '\(task.rawValue)').")
        }
        if irregulars != .standard && task != .morphology {
            throw ValidationError("--irregulars shapes morphology irregulars; use --task morphology (got '\(task.rawValue)').")
        }
        if arcs && task != .lens {
            throw ValidationError("--arcs writes the lensed source of lenses; use --task lens (got '\(task.rawValue)').")
        }
    }

    func run() throws {
        var settings = ObservationSettings()
        settings.pixelScale = pixelScale
        settings.psfFWHM = try Simulate.range(psfFwhm, option: "--psf-fwhm")
        settings.skySigma = try Simulate.range(skySigma, option: "--sky-sigma")
        settings.psf = psf
        settings.surroundings = CutoutSurroundings(neighbours: neighbours, truncation: truncate)
        settings.outside = outside
        settings.irregulars = irregulars
        settings.magnitudeZeroPoint = magZero
        settings.galaxyMagnitudes = try galaxyMag.map { try Simulate.range($0, option: "--galaxy-mag") }
        settings.starMagnitudes = try starMag.map { try Simulate.range($0, option: "--star-mag") }
        settings.sourceMagnitudes = try Simulate.range(sourceMag, option: "--source-mag")
        try settings.validate()
        if skymap { return try writeSkymap(settings) }
        if task == .lightcurves { return try writeLightCurves() }
        var simulator = Simulator(task: task, seed: seed, settings: settings, size: size)
        simulator.arcs = arcs
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

    private func writeLightCurves() throws {
        let simulator = LightCurveSimulator(seed: seed)
        let directory = URL(fileURLWithPath: out, isDirectory: true)
        let keep = contactSheet == nil ? 0 : min(sheetCount, count)
        let report = max(count / 10, 2048)
        var next = report
        let summary = try simulator.writeDataset(count: count, to: directory, fits: fits, keep: keep) { done in
            if done >= next || done == count {
                print("simulate: \(done)/\(count) light curves")
                next = done + report
            }
        }
        print(String(format: "simulate: %d light curves (%d points) in %.2f s -> %@ (%@)", summary.objects, summary.points,
                     summary.seconds, directory.path, summary.files.joined(separator: ", ")))
        if let contactSheet {
            try LightCurveSimulator.contactSheet(summary.kept, columns: 7, cellWidth: 300, cellHeight: 200)
                .canvas(flipVertically: false).write(to: URL(fileURLWithPath: contactSheet))
            print("simulate: contact sheet -> \(contactSheet)")
        }
    }

    private func writeSkymap(_ settings: ObservationSettings) throws {
        let side = size ?? 1024
        let position = try Simulate.pair(center, option: "--center")
        let start = Date()
        let directory = URL(fileURLWithPath: out, isDirectory: true)
        let image = try SkyMap.write(size: side, seed: seed, settings: settings, center: (position.0, position.1),
                                     directory: directory, name: "skymap_\(side)")
        print(String(format: "simulate: %dx%d sky map in %.1f s -> %@", side, side, Date().timeIntervalSince(start),
                     directory.appendingPathComponent(image.fileName).path))
        if let contactSheet {
            try SimulationPreview.contactSheet([image], task: .segmentation, columns: 2, cellSize: side)
                .write(to: URL(fileURLWithPath: contactSheet))
        }
    }

    /// Parses 'a,b' into two numbers.
    static func pair(_ text: String, option: String) throws -> (Double, Double) {
        let parts = text.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 2, let a = parts[0], let b = parts[1] else {
            throw ValidationError("\(option) expects two comma-separated numbers, got '\(text)'.")
        }
        return (a, b)
    }

    /// Parses 'low,high' into a closed range.
    static func range(_ text: String, option: String) throws -> ClosedRange<Double> {
        let (low, high) = try pair(text, option: option)
        guard low <= high else { throw ValidationError("\(option) expects 'low,high' with low <= high, got '\(text)'.") }
        return low...high
    }
}
