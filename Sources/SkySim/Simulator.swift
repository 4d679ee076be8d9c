// Data set generation: images in parallel, FITS files, catalog.csv.
import FITS
import Foundation

/// Simulates the data sets of TASKS.md.
///
/// Image `i` of a data set depends only on (seed, i), so the files are byte-identical for
/// a repeated seed whatever the number of threads or the order they run in.
public struct Simulator: Sendable {
    public var task: SimulationTask
    public var settings: ObservationSettings
    /// Image side in pixels.
    public var size: Int
    public var seed: UInt64
    /// Lens data sets: also write each lens's noiseless lensed source as an `ARC` extension.
    public var arcs = false

    public init(task: SimulationTask, seed: UInt64, settings: ObservationSettings = ObservationSettings(), size: Int? = nil) {
        self.task = task; self.seed = seed; self.settings = settings
        self.size = size ?? task.defaultSize
    }

    /// Image `index` of the data set (noiseless pixels kept on request, for tests).
    public func image(at index: Int, keepNoiseless: Bool = false) -> SimulatedImage {
        switch task {
        case .morphology:
            return MorphologyScene.make(index: index, seed: seed, settings: settings, size: size, keepNoiseless: keepNoiseless)
        case .lens:
            return LensScene.make(index: index, seed: seed, settings: settings, size: size, keepNoiseless: keepNoiseless,
                                  keepArc: arcs)
        case .segmentation:
            return SegmentationScene.make(index: index, seed: seed, settings: settings, size: size, keepNoiseless: keepNoiseless).0
        case .regression:
            return RegressionScene.make(index: index, seed: seed, settings: settings, size: size, keepNoiseless: keepNoiseless)
        case .deblend:
            return DeblendScene.make(index: index, seed: seed, settings: settings, size: size, keepNoiseless: keepNoiseless)
        case .lightcurves:
            preconditionFailure("Simulator.image(at:): light curves are tables, not images; use LightCurveSimulator")
        }
    }

    /// What a data set run produced.
    public struct Summary: Sendable {
        public var files: [String]
        public var seconds: Double
        /// The first `keep` images, for contact sheets.
        public var kept: [SimulatedImage]
        public var imagesPerSecond: Double { seconds > 0 ? Double(files.count) / seconds : 0 }
    }

    /// Writes `count` FITS files and catalog.csv into `directory`, images made in parallel.
    /// - Parameter keep: how many of the first images to return in memory.
    public func writeDataset(count: Int, to directory: URL, keep: Int = 0) throws -> Summary {
        guard count > 0 else {
            throw SkySimError.invalidSetting(name: "count", received: String(count), expected: "a positive number of images")
        }
        guard task != .lightcurves else {
            throw SkySimError.invalidSetting(name: "task", received: task.rawValue,
                                             expected: "an image task (light curves are tables: LightCurveSimulator.writeDataset)")
        }
        if task == .deblend && settings.psf != .gaussian {
            throw SkySimError.invalidSetting(name: "PSF choice for \(task.rawValue)", received: settings.psf.rawValue,
                                             expected: "gaussian (varied PSFs are for morphology, lens, segmentation and regression)")
        }
        if !settings.surroundings.isEmpty && ![.morphology, .regression].contains(task) {
            throw SkySimError.invalidSetting(name: "neighbours / truncation for \(task.rawValue)", received: "on",
                                             expected: "off (they are for single-object cutouts: morphology and regression)")
        }
        try createDirectory(directory)
        let start = Date()
        let results = ResultBox(count: count)
        DispatchQueue.concurrentPerform(iterations: count) { index in
            if results.failed { return }
            let image = self.image(at: index)
            do {
                try image.write(to: directory.appendingPathComponent(image.fileName))
                results.store(index, row: ([image.fileName] + image.catalogFields).joined(separator: ","),
                              image: index < keep ? image : nil)
            } catch {
                results.fail(error)
            }
        }
        if let error = results.error { throw error }
        let lines = [task.catalogHeader] + results.rows.map { $0! }
        try writeText(lines.joined(separator: "\n") + "\n", to: directory.appendingPathComponent("catalog.csv"))
        return Summary(files: results.rows.map { String($0!.prefix { $0 != "," }) },
                       seconds: Date().timeIntervalSince(start), kept: results.images.compactMap { $0 })
    }
}

/// Collects per-index results from concurrent workers.
final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var rows: [String?]
    private(set) var images: [SimulatedImage?]
    private(set) var error: Error?
    init(count: Int) { rows = Array(repeating: nil, count: count); images = Array(repeating: nil, count: count) }
    var failed: Bool { lock.lock(); defer { lock.unlock() }; return error != nil }
    func store(_ index: Int, row: String, image: SimulatedImage?) {
        lock.lock(); rows[index] = row; images[index] = image; lock.unlock()
    }
    func fail(_ error: Error) { lock.lock(); if self.error == nil { self.error = error }; lock.unlock() }
}

func createDirectory(_ url: URL) throws {
    do {
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    } catch {
        throw SkySimError.io(operation: "create directory", path: url.path, reason: error.localizedDescription)
    }
}

/// Atomic text write (temporary file + rename).
func writeText(_ text: String, to url: URL) throws {
    do {
        try Data(text.utf8).write(to: url, options: .atomic)
    } catch {
        throw SkySimError.io(operation: "write", path: url.path, reason: error.localizedDescription)
    }
}
