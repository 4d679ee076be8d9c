import CSV
import FITS
import Foundation

/// A position to cut around: a sky position or a 0-based pixel position.
public enum CutoutPosition: Equatable, Sendable {
    case sky(ra: Double, dec: Double)
    case pixel(x: Double, y: Double)
}

/// Reads `id,ra,dec` (degrees) or `id,x,y` (0-based pixels) rows of a CSV.
public func readCutoutPositions(_ url: URL) throws -> [(id: String, position: CutoutPosition)] {
    guard let text = try? String(contentsOf: url, encoding: .utf8) else {
        throw DatasetError.catalogNotFound(path: url.path)
    }
    let reader = try CSVReader(string: text, hasHeaderRow: true, trimFields: true)
    let header = reader.headerRow ?? []
    let sky = header.contains("ra") && header.contains("dec")
    guard sky || (header.contains("x") && header.contains("y")) else {
        throw DatasetError.missingColumn(catalog: url.path, column: "ra", available: header)
    }
    var rows = [(String, CutoutPosition)]()
    var line = 1
    while let row = reader.next() {
        line += 1
        let id = reader["id"] ?? String(rows.count)
        let (a, b) = sky ? ("ra", "dec") : ("x", "y")
        guard let u = Double(reader[a] ?? ""), let v = Double(reader[b] ?? "") else {
            throw DatasetError.badValue(catalog: url.path, line: line, column: a, value: row.joined(separator: ","),
                                        expected: "numbers in '\(a)' and '\(b)'")
        }
        rows.append((id, sky ? .sky(ra: u, dec: v) : .pixel(x: u, y: v)))
    }
    return rows
}

/// Cuts `size × size` pieces out of the image HDU `hdu` of `mapPath` around
/// each position and writes `<folder>/<id>.fits`: the pixels (NaN outside the
/// map) with the map's header keywords and a WCS whose CRPIX is shifted so the
/// cutout's sky coordinates stay right, plus a `MASK` extension (1 = outside)
/// when the cutout crosses the edge. With `.skip`, such positions are left out.
/// Only the rows needed are read (a section), so maps larger than memory work.
/// Returns the ids written and the ids skipped with the reason.
@discardableResult
public func writeCutouts(mapPath: String, hdu: HDUSelector = 0, positions: [(id: String, position: CutoutPosition)],
                         size: Int, edges: CutoutEdges = .pad, folder: URL, overwrite: Bool = false) throws
    -> (written: [String], skipped: [(id: String, reason: String)]) {
    let file = try FITSFile(path: mapPath)
    let info = try file.hduInfo(hdu)
    guard info.shape.count == 2 else {
        throw InputError.notAnImage(file: mapPath, shape: info.shape)
    }
    let header = try file.header(hdu)
    let width = info.shape[0], height = info.shape[1]
    let wcs: WorldCoordinates? = positions.contains { if case .sky = $0.position { return true }; return false }
        ? try WorldCoordinates(header: header, source: mapPath) : nil
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    var written = [String](), skipped = [(id: String, reason: String)]()
    for (id, position) in positions {
        let (x, y): (Double, Double)
        switch position {
        case let .pixel(px, py): (x, y) = (px, py)
        case let .sky(ra, dec):
            do { (x, y) = try wcs!.pixel(ra: ra, dec: dec) } catch {
                skipped.append((id, error.localizedDescription)); continue
            }
        }
        let x0 = Int(Foundation.ceil(x - Double(size) / 2)), y0 = Int(Foundation.ceil(y - Double(size) / 2))
        let inside = x0 >= 0 && y0 >= 0 && x0 + size <= width && y0 + size <= height
        let overlaps = x0 + size > 0 && y0 + size > 0 && x0 < width && y0 < height
        guard overlaps else { skipped.append((id, "outside the map")); continue }
        if !inside && edges == .skip { skipped.append((id, "crosses the map's edge")); continue }
        // Read only the overlapping section, then place it in a NaN-filled cutout.
        let xs = Swift.max(0, x0)..<Swift.min(width, x0 + size), ys = Swift.max(0, y0)..<Swift.min(height, y0 + size)
        let section = try file.readSection(hdu, x: xs, y: ys, as: Float.self)
        let piece = PlanarImage(height: ys.count, width: xs.count, pixels: section.pixels)
        let cut = piece.cutout(centerX: x - Double(xs.lowerBound), centerY: y - Double(ys.lowerBound),
                               height: size, width: size, edges: .pad)!
        var out = FITSHeader(header.records.filter { record in
            !["SIMPLE", "BITPIX", "EXTEND", "XTENSION", "PCOUNT", "GCOUNT", "BSCALE", "BZERO", "BLANK",
              "CHECKSUM", "DATASUM", "EXTNAME"].contains(record.keyword) && !record.keyword.hasPrefix("NAXIS")
        })
        for (key, origin) in [("CRPIX1", x0), ("CRPIX2", y0)] {
            if let crpix = header.double(key) { out.set(key, .float(crpix - Double(origin))) }
        }
        out.set("CUTOUTX", .integer(x0), comment: "0-based column of pixel (0, 0) in the map")
        out.set("CUTOUTY", .integer(y0), comment: "0-based row of pixel (0, 0) in the map")
        let target = folder.appendingPathComponent("\(id).fits").path
        let writer = try FITSWriter(path: target, overwrite: overwrite)
        do {
            try writer.appendImage(cut.image.pixels, shape: [size, size], header: out)
            if let mask = cut.mask {
                try writer.appendImage(mask: mask.pixels.map { UInt8($0) }, shape: [size, size], extensionName: "MASK")
            }
            try writer.commit()
        } catch {
            writer.discard()
            throw error
        }
        written.append(id)
    }
    return (written, skipped)
}
