import FITS
import Foundation

/// How samples are read from FITS files.
public struct FITSInput: Equatable, Sendable {
    /// The image HDU (index from 0, or EXTNAME).
    public var hdu: HDUSelector
    /// Band names. With a cube, its planes in order (NAXIS3 must equal the count);
    /// with `bandFiles`, the order in which per-band files are stacked.
    public var bands: [String]
    /// Per band, a file name pattern where `{stem}` is the entry's name without
    /// its `.fits`/`.fits.gz`/`.fz` suffix: `{stem}_g.fits`. Relative to the entry's folder.
    public var bandFiles: [String: String]

    public init(hdu: HDUSelector = 0, bands: [String] = [], bandFiles: [String: String] = [:]) {
        self.hdu = hdu
        self.bands = bands
        self.bandFiles = bandFiles
    }

    /// The files of `entry`, with their bands: the entry's own file (band "") or,
    /// with `bandFiles`, one file per band in `bands` order, from the patterns.
    public func bandPaths(for entry: CatalogEntry) -> [(band: String, path: String)] {
        guard !bandFiles.isEmpty else { return [("", entry.url.path)] }
        let folder = entry.url.deletingLastPathComponent()
        let stem = Sample.stem(entry.url.lastPathComponent)
        let order = bands.isEmpty ? bandFiles.keys.sorted() : bands
        return order.compactMap { band in
            bandFiles[band].map { (band, folder.appendingPathComponent($0.replacingOccurrences(of: "{stem}", with: stem)).path) }
        }
    }
}

/// Problems with the images themselves (as opposed to the FITS container).
public enum InputError: Error, Equatable, LocalizedError {
    case wrongBandCount(file: String, planes: Int, bands: [String])
    case notAnImage(file: String, shape: [Int])
    case bandShapeMismatch(file: String, band: String, shape: [Int], expected: [Int])
    /// A single-object image in which every pixel is blank (NaN) or infinite: nothing was measured.
    case noData(file: String, shape: [Int])

    public var errorDescription: String? {
        switch self {
        case let .wrongBandCount(file, planes, bands):
            return "\(file): the image has \(planes) plane(s), but the input names \(bands.count) bands "
                + "(\(bands.joined(separator: ", "))). Give one band name per NAXIS3 plane."
        case let .notAnImage(file, shape):
            return "\(file): expected a 2-D image or a 3-D cube, found NAXIS = \(shape.count) with shape \(shape)."
        case let .bandShapeMismatch(file, band, shape, expected):
            return "\(file): band '\(band)' has shape \(shape), unlike the first band's \(expected)."
        case let .noData(file, shape):
            return "\(file): every pixel of the \(shape.map(String.init).joined(separator: " x ")) image is blank (NaN) or infinite; "
                + "there is nothing to measure (a cutout outside its survey's footprint?)."
        }
    }
}

extension PlanarImage {
    /// The pixels of a FITS image or cube (NAXIS1 = width, NAXIS2 = height,
    /// NAXIS3 = channels): FITS stores NAXIS1 fastest, which is C×H×W order already.
    public init(fits image: FITSImage<Float>, file: String) throws {
        let shape = image.shape
        guard shape.count == 2 || shape.count == 3, shape.allSatisfy({ $0 > 0 }) else {
            throw InputError.notAnImage(file: file, shape: shape)
        }
        self.init(channels: shape.count == 3 ? shape[2] : 1, height: shape[1], width: shape[0], pixels: image.pixels)
    }
}

extension Sample {
    /// Reads the sample of `entry`: its image (a 2-D image, a cube, or one file
    /// per band) and its numeric header keywords. Per-band files contribute their
    /// keywords also as `KEY_<BAND>` (e.g. `SKYSIG_G`).
    public static func load(_ entry: CatalogEntry, input: FITSInput = FITSInput()) throws -> Sample {
        if input.bandFiles.isEmpty {
            let file = try FITSFile(path: entry.url.path)
            let image = try file.readImage(input.hdu, as: Float.self)
            let planar = try PlanarImage(fits: image, file: entry.name)
            if !input.bands.isEmpty && planar.channels != input.bands.count {
                throw InputError.wrongBandCount(file: entry.name, planes: planar.channels, bands: input.bands)
            }
            return Sample(image: planar, name: entry.name, header: numericKeywords(image.header))
        }
        var planes = [PlanarImage]()
        var headers = [(band: String, header: FITSHeader)]()
        for (band, path) in input.bandPaths(for: entry) {
            let image = try FITSFile(path: path).readImage(input.hdu, as: Float.self)
            let planar = try PlanarImage(fits: image, file: path)
            if let first = planes.first, first.shape != planar.shape {
                throw InputError.bandShapeMismatch(file: path, band: band, shape: planar.shape, expected: first.shape)
            }
            planes.append(planar)
            headers.append((band, image.header))
        }
        return Sample(image: .stacking(planes), name: entry.name, header: numericKeywords(bands: headers))
    }

    /// The numeric keywords of per-band files: the first file's as they are, and
    /// every file's also as `KEY_<BAND>` (e.g. `SKYSIG_G`).
    public static func numericKeywords(bands headers: [(band: String, header: FITSHeader)]) -> [String: Double] {
        var values = [String: Double]()
        for (index, (band, header)) in headers.enumerated() {
            for (key, value) in numericKeywords(header) {
                if index == 0 { values[key] = value }
                values["\(key)_\(band.uppercased())"] = value
            }
        }
        return values
    }

    /// The numeric keywords of a header, by name (what stages read, e.g. SKYSIG).
    public static func numericKeywords(_ header: FITSHeader) -> [String: Double] {
        var values = [String: Double]()
        for record in header.records {
            if let v = record.value.doubleValue { values[record.keyword] = v }
        }
        if let zp = HeaderValues.photflamZeroPoint(values, unit: header.string("BUNIT")) {
            values[HeaderValues.photflamZeroPointKey] = zp
        }
        return values
    }

    public static func stem(_ name: String) -> String {
        for suffix in [".fits.gz", ".fits.fz", ".fits", ".fit", ".fz", ".fts"] where name.lowercased().hasSuffix(suffix) {
            return String(name.dropLast(suffix.count))
        }
        return name
    }
}

extension FITSHeader {
    /// The header as concatenated 80-character cards (what wcslib parses).
    public var cardString: String {
        var text = ""
        for record in records where !record.keyword.isEmpty && record.keyword != "END" {
            let card: String
            switch record.value {
            case .none: card = record.keyword.padding(toLength: 8, withPad: " ", startingAt: 0) + record.comment
            default: card = record.keyword.padding(toLength: 8, withPad: " ", startingAt: 0) + "= "
                + record.value.description.leftPadded(to: 20)
            }
            text += String(card.prefix(80)).padding(toLength: 80, withPad: " ", startingAt: 0)
        }
        return text + "END".padding(toLength: 80, withPad: " ", startingAt: 0)
    }
}

extension WorldCoordinates {
    /// The WCS of a FITS header.
    public convenience init(header: FITSHeader, source: String) throws {
        try self.init(headerCards: header.cardString, source: source)
    }
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
