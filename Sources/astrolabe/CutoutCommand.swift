import ArgumentParser
import FITS
import Foundation
import Preprocessing

/// `astrolabe cutout`: square cutouts around catalog positions, with the WCS kept.
struct Cutout: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Cut square images out of a map around positions from a CSV (id,ra,dec or id,x,y).",
        discussion: """
        Sky positions (degrees) go through the map's WCS (wcslib); pixel positions are 0-based \
        (x along NAXIS1). Each cutout is written as OUT/<id>.fits with the map's header and its \
        CRPIX shifted, so its WCS stays right. Cutouts that cross the map's edge are padded with \
        NaN and get a MASK extension (1 = outside), or are skipped with --edges skip. Only the \
        rows needed are read, so maps larger than memory work.
        """)

    @Argument(help: "The map (FITS image).") var map: String
    @Option(help: "CSV of positions: columns id,ra,dec (degrees) or id,x,y (pixels).") var positions: String
    @Option(help: "Side of the square cutouts, in pixels.") var size: Int = 64
    @Option(help: "Image HDU of the map: an index from 0 or an EXTNAME.") var hdu: String = "0"
    @Option(help: "At the map's edge: pad (NaN + MASK extension) or skip.") var edges: CutoutEdges = .pad
    @Option(help: "Output folder.") var out: String
    @Flag(help: "Replace existing cutout files.") var overwrite = false

    func validate() throws {
        guard size > 0 else { throw ValidationError("--size must be positive, got \(size).") }
    }

    func run() throws {
        let rows = try readCutoutPositions(URL(fileURLWithPath: positions))
        let result = try writeCutouts(mapPath: map, hdu: HDUSelector(parsing: hdu), positions: rows, size: size,
                                      edges: edges, folder: URL(fileURLWithPath: out), overwrite: overwrite)
        for (id, reason) in result.skipped {
            FileHandle.standardError.write(Data("astrolabe cutout: skipped \(id): \(reason)\n".utf8))
        }
        print("wrote \(result.written.count) cutouts to \(out)" + (result.skipped.isEmpty ? "" : ", skipped \(result.skipped.count)"))
    }
}

extension CutoutEdges: ExpressibleByArgument {}
