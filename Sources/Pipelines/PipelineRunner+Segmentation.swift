import Autograd
import FITS
import Foundation
import NN
import Preprocessing
import Training

extension PipelineRunner {
    /// Segmentation of maps of any size: tiles through the network, probabilities
    /// stitched with a smooth window (no seams), the class map written per input
    /// as `<output folder>/<name>` (uint8, 0/1/2) with the input's WCS, and the
    /// probabilities in a `PROB` extension when `outputs.probabilities` is set.
    func segment(_ todo: Catalog, model: TrainedModel, preparation: Preparation, load: BatchLoader.Load,
                 into folder: URL, journal: RunJournal, progress: ProgressBar?) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let network = withNoGrad { model.network.fusedForInference() }
        let tiling = config.tiling ?? TilingConfig(tile: 256, overlap: 32, weighting: .smooth)
        let classes = model.architecture.classes
        for (done, entry) in todo.entries.enumerated() {
            do {
                try segmentStreaming(entry, network: network, classes: classes, tiling: tiling, preparation: preparation,
                                     expectedChannels: model.recipe.inputShape[0], model: model.path,
                                     to: folder.appendingPathComponent(entry.name))
                try journal.record([.init(file: entry.name, row: [entry.name, entry.name], error: nil)])
            } catch {
                // A model that cannot take the data stops the run; a bad file is recorded and skipped.
                if let mismatch = error as? PipelineError, isModelMismatch(mismatch) { throw error }
                guard config.run.onError == .skip else { throw error }
                try journal.record([.init(file: entry.name, row: nil, error: error.localizedDescription)])
            }
            progress?.advance()
            Self.simulateCrashIfAsked(done + 1)
        }
    }

    /// One map, one tile row at a time: rows are read as FITS sections, prepared,
    /// cut into tiles, run, stitched, and written as soon as they are final, so a map
    /// larger than memory works (about two tile rows are held). Pointwise stages
    /// (noise scaling, asinh, clipping) give exactly the in-memory result; stages that
    /// use whole-image statistics (standardize, subtract_background) see one band at a time.
    func segmentStreaming(_ entry: CatalogEntry, network: any Layer, classes: Int, tiling: TilingConfig,
                          preparation: Preparation, expectedChannels: Int, model: String, to url: URL) throws {
        let file = try FITSFile(path: entry.url.path)
        let hdu = config.input.hdu
        let info = try file.hduInfo(hdu)
        guard info.shape.count == 2 || info.shape.count == 3 else {
            throw InputError.notAnImage(file: entry.name, shape: info.shape)
        }
        let (width, height) = (info.shape[0], info.shape[1])
        let channels = info.shape.count == 3 ? info.shape[2] : 1
        guard channels == expectedChannels else {
            throw PipelineError.inputMismatch(file: entry.name, received: [channels, height, width],
                                              expected: [expectedChannels, -1, -1], model: model)
        }
        let header = try file.header(hdu)
        let numbers = Sample.numericKeywords(header)
        var outHeader = FITSHeader(header.wcsRecords)
        outHeader.set("CLASSES", .string("0=background,1=star,2=galaxy"), comment: "pixel values")
        outHeader.set("ORIGIN", .string("astrolabe"), comment: "segment-sky pipeline")
        let writer = try FITSWriter(path: url.path, overwrite: true)
        do {
            let mapHDU = try writer.appendEmptyImage(shape: [width, height], uint8: true, header: outHeader)
            let probHDU = config.outputs.probabilities
                ? try writer.appendEmptyImage(shape: [width, height, classes], uint8: false,
                                              header: FITSHeader(header.wcsRecords), extensionName: "PROB")
                : nil
            let grid = TileGrid(height: height, width: width, tile: tiling.tile, overlap: tiling.overlap)
            var stream = StreamingTileStitcher(grid: grid, channels: classes, weighting: tiling.weighting)
            for row in grid.rows.indices {
                let top = grid.rows[row], bottom = Swift.min(height, top + tiling.tile)
                let section = try file.readSection(hdu, x: 0..<width, y: top..<bottom,
                                                   planes: channels > 1 ? 0..<channels : nil, as: Float.self)
                let band = PlanarImage(channels: channels, height: bottom - top, width: width, pixels: section.pixels)
                let prepared = try preparation.prepare(Sample(image: band, name: entry.name, header: numbers),
                                                       training: false).image
                let rects = stream.tiles(inRow: row)
                var start = 0
                while start < rects.count {
                    let chunk = Array(rects[start..<Swift.min(rects.count, start + Swift.max(1, config.run.batchSize))])
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
    }

    func isModelMismatch(_ error: PipelineError) -> Bool {
        if case .inputMismatch = error { return true }
        return false
    }

    /// Per-class probabilities `[classes, H, W]` of a whole map through tiles.
    public static func segmentProbabilities(_ image: PlanarImage, network: any Layer, classes: Int, tiling: TilingConfig,
                                            batchSize: Int, expectedChannels: Int, file: String, model: String) throws -> PlanarImage {
        guard image.channels == expectedChannels else {
            throw PipelineError.inputMismatch(file: file, received: image.shape, expected: [expectedChannels, -1, -1],
                                              model: model)
        }
        let grid = TileGrid(height: image.height, width: image.width, tile: tiling.tile, overlap: tiling.overlap)
        var stitcher = TileStitcher(grid: grid, channels: classes, weighting: tiling.weighting)
        let tiles = grid.tiles
        var start = 0
        while start < tiles.count {
            let rects = Array(tiles[start..<Swift.min(tiles.count, start + Swift.max(1, batchSize))])
            // NaN blanks would poison every overlapping output pixel: tiles see zeros there.
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
