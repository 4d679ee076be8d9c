// Light-curve data sets on disk (TASKS.md task 5 layouts) and their contact sheet.
import AstroBase
import FITS
import Foundation
import Plotting

extension LightCurveSimulator {
    /// What a data set run produced.
    public struct Summary: Sendable {
        public var objects: Int
        public var points: Int
        public var seconds: Double
        /// The first `keep` objects, for the contact sheet.
        public var kept: [SimulatedLightCurve]
        public var files: [String]
    }

    /// The text of one object's rows of `lightcurves.csv` (no header).
    public static func csvRows(_ curve: LightCurve) -> String {
        var text = ""
        for p in curve.points {
            text += "\(curve.objectID),\(String(format: "%.4f", p.mjd)),\(p.band.rawValue),"
                + "\(String(format: "%.4f", p.flux)),\(String(format: "%.4f", p.fluxError))\n"
        }
        return text
    }

    public static let csvHeader = "object_id,mjd,band,flux,flux_err"

    /// Writes `directory/lightcurves.csv` and `catalog.csv` (and `lightcurves.fits`, the same
    /// table as a binary table with EXTNAME `LIGHTCURVES`, when `fits` is set). Objects are
    /// drawn in parallel blocks and written in order, so files are byte-identical per seed.
    public func writeDataset(count: Int, to directory: URL, fits: Bool = false, keep: Int = 0,
                             progress: ((Int) -> Void)? = nil) throws -> Summary {
        guard count > 0 else {
            throw SkySimError.invalidSetting(name: "count", received: String(count), expected: "a positive number of light curves")
        }
        try createDirectory(directory)
        let start = Date()
        let csvURL = directory.appendingPathComponent("lightcurves.csv")
        let temporary = directory.appendingPathComponent(".lightcurves.csv.partial")
        guard FileManager.default.createFile(atPath: temporary.path, contents: nil),
              let handle = FileHandle(forWritingAtPath: temporary.path) else {
            throw SkySimError.io(operation: "create", path: temporary.path, reason: "cannot open for writing")
        }
        var kept: [SimulatedLightCurve] = []
        var catalog = "object_id,label\n"
        var points = 0
        var columns = (id: [Int64](), mjd: [Double](), band: [String](), flux: [Double](), error: [Double]())
        handle.write(Data((Self.csvHeader + "\n").utf8))
        let block = 2048
        var first = 0
        while first < count {
            let n = min(block, count - first)
            let box = CurveBox(count: n)
            DispatchQueue.concurrentPerform(iterations: n) { k in
                let curve = self.curve(at: first + k)
                box.store(k, curve, text: Self.csvRows(curve.curve))
            }
            var text = ""
            for (k, item) in box.items.enumerated() {
                let simulated = item!.curve
                text += item!.text
                catalog += "\(simulated.curve.objectID),\(simulated.kind.rawValue)\n"
                points += simulated.curve.points.count
                if first + k < keep { kept.append(simulated) }
                if fits {
                    for p in simulated.curve.points {
                        columns.id.append(simulated.curve.objectID); columns.mjd.append(p.mjd)
                        columns.band.append(p.band.rawValue); columns.flux.append(p.flux); columns.error.append(p.fluxError)
                    }
                }
            }
            handle.write(Data(text.utf8))
            first += n
            progress?(first)
        }
        try? handle.close()
        do {
            if FileManager.default.fileExists(atPath: csvURL.path) { try FileManager.default.removeItem(at: csvURL) }
            try FileManager.default.moveItem(at: temporary, to: csvURL)
        } catch {
            throw SkySimError.io(operation: "write", path: csvURL.path, reason: error.localizedDescription)
        }
        try writeText(catalog, to: directory.appendingPathComponent("catalog.csv"))
        var files = ["lightcurves.csv", "catalog.csv"]
        if fits {
            let path = directory.appendingPathComponent("lightcurves.fits").path
            let writer = try FITSWriter(path: path, overwrite: true)
            let table = FITSTable([
                FITSColumn("object_id", .int64(columns.id)), FITSColumn("mjd", .double(columns.mjd), unit: "d"),
                FITSColumn("band", .string(columns.band)), FITSColumn("flux", .double(columns.flux), unit: "FLUXCAL"),
                FITSColumn("flux_err", .double(columns.error), unit: "FLUXCAL"),
            ])
            try writer.appendTable(table, extensionName: "LIGHTCURVES",
                                   header: FITSHeader([HeaderRecord("SIMSEED", .integer(Int(seed)), comment: "simulator seed"),
                                                       HeaderRecord("TASK", .string("lightcurves"), comment: "TASKS.md task 5")]))
            try writer.commit()
            files.append("lightcurves.fits")
        }
        return Summary(objects: count, points: points, seconds: Date().timeIntervalSince(start), kept: kept, files: files)
    }

    /// A contact sheet of light curves: per object flux against time, g/r/i as
    /// blue/green/red points with error bars, captioned with the class.
    public static func contactSheet(_ curves: [SimulatedLightCurve], columns: Int = 4, cellWidth: Int = 360,
                                    cellHeight: Int = 240) -> ContactSheet {
        var sheet = ContactSheet(columns: columns, cellSize: cellWidth, title: "ASTROLABE SIMULATE: lightcurves")
        for simulated in curves {
            let canvas = plot(simulated.curve, title: "\(simulated.curve.objectID) \(simulated.kind.rawValue)")
                .canvas(width: cellWidth, height: cellHeight)
            sheet.add(rgb: canvas.pixels, width: canvas.width, height: canvas.height, label: simulated.kind.rawValue)
        }
        return sheet
    }

    /// Flux against time per band (g blue, r green, i red), with error bars.
    public static func plot(_ curve: LightCurve, title: String) -> LinePlot {
        LinePlot.bands(title: title, mjd: curve.points.map(\.mjd), flux: curve.points.map(\.flux),
                       errors: curve.points.map(\.fluxError), band: curve.points.map(\.band.index),
                       bandNames: PhotometricBand.allCases.map(\.rawValue))
    }
}

/// Per-index results of one parallel block.
private final class CurveBox: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var items: [(curve: SimulatedLightCurve, text: String)?]
    init(count: Int) { items = Array(repeating: nil, count: count) }
    func store(_ index: Int, _ curve: SimulatedLightCurve, text: String) {
        lock.lock(); items[index] = (curve, text); lock.unlock()
    }
}
