import Autograd
import FITS
import Foundation
import NN
import Preprocessing

extension Predictor {
    /// Segments the map of `entry` into `url`: one tile row at a time, rows read
    /// as FITS sections the recipe's way (HDU, cube planes or band files),
    /// prepared, cut into tiles, run, stitched with a smooth window (no seams) and
    /// written as soon as they are final, so a map larger than memory works (about
    /// two tile rows are held). The class map is uint8 with every header card of the input but the structural ones
    /// (so any WCS, DSS plate solutions included) and the
    /// recipe's class names in `CLASSES`. Pointwise stages (noise scaling, asinh,
    /// clipping) give exactly the in-memory result; stages that use whole-image
    /// statistics (standardize, subtract_background) see one band of rows at a time.
    /// `batchSize` tiles go through the network at once; `probabilities` adds a `PROB` extension.
    @discardableResult
    public func segment(_ entry: CatalogEntry, to url: URL, tiling: TilingConfig, batchSize: Int,
                        probabilities: Bool) throws -> [Assumption] {
        let source = try SectionSource(entry, input: input)
        try checkShape([source.channels, source.height, source.width], file: entry.name)
        let (width, height, classes) = (source.width, source.height, architecture.classes)
        // Values the whole map shares (the noise level) are settled once, on its central 512 rows.
        var numbers = source.numbers.merging(headerValues) { $1 }
        var notes = [Assumption]()
        var domain: DomainCheck?
        if !matchingStages.isEmpty {
            let middle = height / 2
            let probe = try Preparation(matchingStages).prepare(
                Sample(image: try source.rows(Swift.max(0, middle - 256)..<Swift.min(height, middle + 256)),
                       name: entry.name, header: numbers), training: false)
            // The noise was measured after the zero point's rescaling, which every band of rows
            // gets again: it is kept in the input's units.
            let scale = Stage.zeroPointScale(of: matchingStages, header: numbers)
            for case let .estimateNoise(keyword, bandKeywords) in matchingStages {
                for key in [keyword] + bandKeywords where numbers[key] == nil { numbers[key] = probe.header[key].map { $0 / scale } }
            }
            notes = probe.assumptions
            domain = recipe?.observation.map { DomainCheck($0, probe) }
        }
        var outHeader = FITSHeader(source.header.derivedImageRecords)
        outHeader.annotate(domain: domain, assumptions: notes)
        outHeader.set("CLASSES", .string(classNames.enumerated().map { "\($0.offset)=\($0.element)" }.joined(separator: ",")),
                      comment: "pixel values")
        outHeader.set("ORIGIN", .string("astrolabe"), comment: "segment-sky pipeline")
        let writer = try FITSWriter(path: url.path, overwrite: true)
        do {
            let mapHDU = try writer.appendEmptyImage(shape: [width, height], uint8: true, header: outHeader)
            let probHDU = probabilities
                ? try writer.appendEmptyImage(shape: [width, height, classes], uint8: false,
                                              header: FITSHeader(source.header.derivedImageRecords), extensionName: "PROB")
                : nil
            let grid = TileGrid(height: height, width: width, tile: tiling.tile, overlap: tiling.overlap)
            var stream = StreamingTileStitcher(grid: grid, channels: classes, weighting: tiling.weighting)
            for row in grid.rows.indices {
                let top = grid.rows[row], bottom = Swift.min(height, top + tiling.tile)
                let band = try source.rows(top..<bottom)
                let prepared = try preparation.prepare(Sample(image: band, name: entry.name, header: numbers),
                                                       training: false).image
                let rects = stream.tiles(inRow: row)
                var start = 0
                while start < rects.count {
                    let chunk = Array(rects[start..<Swift.min(rects.count, start + Swift.max(1, batchSize))])
                    // NaN blanks would poison every overlapping output pixel: tiles see zeros there.
                    let inputs = chunk.map {
                        prepared.cropped(y: 0, x: $0.x, height: tiling.tile, width: tiling.tile, fill: 0).fillingBlanks(.zero)
                    }
                    let output = withNoGrad {
                        network(Tensor(shape: [chunk.count, prepared.channels, tiling.tile, tiling.tile],
                                       data: inputs.flatMap(\.pixels))).softmax(axis: 1)
                    }
                    let values = output.scalars, size = classes * tiling.tile * tiling.tile
                    for (k, rect) in chunk.enumerated() {
                        stream.add(PlanarImage(channels: classes, height: tiling.tile, width: tiling.tile,
                                               pixels: Array(values[(k * size)..<((k + 1) * size)])), at: rect)
                    }
                    start += chunk.count
                }
                let (rows, finished) = stream.finishRow(row)
                guard let finished else { continue }
                try writer.writePixels(hdu: mapHDU, first: [0, rows.lowerBound], .uint8(Self.classMap(finished)))
                if let probHDU {
                    for c in 0..<classes {
                        try writer.writePixels(hdu: probHDU, first: [0, rows.lowerBound, c], .float32(finished.channel(c).pixels))
                    }
                }
            }
            try writer.commit()
        } catch {
            writer.discard()
            throw error
        }
        return notes
    }

    /// Per-class probabilities `[classes, H, W]` of a whole prepared map through tiles.
    public func segmentProbabilities(_ image: PlanarImage, tiling: TilingConfig, batchSize: Int,
                                     file: String) throws -> PlanarImage {
        try checkShape(image.shape, file: file)
        let classes = architecture.classes
        let grid = TileGrid(height: image.height, width: image.width, tile: tiling.tile, overlap: tiling.overlap)
        var stitcher = TileStitcher(grid: grid, channels: classes, weighting: tiling.weighting)
        let tiles = grid.tiles
        var start = 0
        while start < tiles.count {
            let rects = Array(tiles[start..<Swift.min(tiles.count, start + Swift.max(1, batchSize))])
            let inputs = rects.map { image.tile($0, fill: 0).fillingBlanks(.zero) }
            let batch = Tensor(shape: [rects.count, image.channels, tiling.tile, tiling.tile],
                               data: inputs.flatMap(\.pixels))
            let output = withNoGrad { network(batch).softmax(axis: 1) }
            let values = output.scalars, size = classes * tiling.tile * tiling.tile
            for (k, rect) in rects.enumerated() {
                stitcher.add(PlanarImage(channels: classes, height: tiling.tile, width: tiling.tile,
                                         pixels: Array(values[(k * size)..<((k + 1) * size)])), at: rect)
            }
            start += rects.count
        }
        return stitcher.result()
    }

    /// The most probable class of every pixel.
    public static func classMap(_ probabilities: PlanarImage) -> [UInt8] {
        let plane = probabilities.planeSize
        return (0..<plane).map { p in
            var best = 0
            for c in 1..<probabilities.channels where probabilities.pixels[c * plane + p] > probabilities.pixels[best * plane + p] {
                best = c
            }
            return UInt8(best)
        }
    }
}

/// The planes of one map, read by rows as `FITSInput` says (as `Sample.load`
/// reads whole images): a 2-D image, a cube's planes, or one file per band.
struct SectionSource {
    let files: [FITSFile]
    let hdu: HDUSelector
    /// Planes per file (a cube has several; band files one each).
    let planesPerFile: Int
    let width: Int
    let height: Int
    var channels: Int { files.count * planesPerFile }
    /// The first file's header (its WCS goes into the outputs).
    let header: FITSHeader
    /// Numeric keywords for the stages, as `Sample.load` gives them.
    let numbers: [String: Double]

    init(_ entry: CatalogEntry, input: FITSInput) throws {
        hdu = input.hdu
        let paths = input.bandPaths(for: entry)
        var files = [FITSFile](), headers = [(band: String, header: FITSHeader)]()
        var shape: [Int]?
        for (band, path) in paths {
            let file = try FITSFile(path: path)
            let info = try file.hduInfo(input.hdu)
            let name = input.bandFiles.isEmpty ? entry.name : path
            guard info.shape.count == 2 || info.shape.count == 3, info.shape.allSatisfy({ $0 > 0 }) else {
                throw InputError.notAnImage(file: name, shape: info.shape)
            }
            let planar = [info.shape.count == 3 ? info.shape[2] : 1, info.shape[1], info.shape[0]]
            if let shape, shape != planar {
                throw InputError.bandShapeMismatch(file: path, band: band, shape: planar, expected: shape)
            }
            shape = planar
            files.append(file)
            headers.append((band, try file.header(input.hdu)))
        }
        let planes = shape![0]
        if input.bandFiles.isEmpty, !input.bands.isEmpty, planes != input.bands.count {
            throw InputError.wrongBandCount(file: entry.name, planes: planes, bands: input.bands)
        }
        self.files = files
        planesPerFile = planes
        height = shape![1]
        width = shape![2]
        header = headers[0].header
        numbers = input.bandFiles.isEmpty ? Sample.numericKeywords(header) : Sample.numericKeywords(bands: headers)
    }

    /// Rows `y` of every plane, `[channels, y.count, width]`.
    func rows(_ y: Range<Int>) throws -> PlanarImage {
        var pixels = [Float]()
        pixels.reserveCapacity(channels * y.count * width)
        for file in files {
            let section = try file.readSection(hdu, x: 0..<width, y: y, planes: planesPerFile > 1 ? 0..<planesPerFile : nil,
                                               as: Float.self)
            pixels += section.pixels
        }
        return PlanarImage(channels: channels, height: y.count, width: width, pixels: pixels)
    }
}
