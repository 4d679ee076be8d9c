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
                 into folder: URL, journal: RunJournal, progress: ProgressBar?) throws -> Int {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let network = withNoGrad { model.network.fusedForInference() }
        let tiling = config.tiling ?? TilingConfig(tile: 256, overlap: 32, weighting: .smooth)
        let classes = model.architecture.classes
        var failures = 0
        for (done, entry) in todo.entries.enumerated() {
            do {
                let sample = try preparation.prepare(try load(entry), training: false)
                let probabilities = try Self.segmentProbabilities(sample.image, network: network, classes: classes,
                                                                  tiling: tiling, batchSize: config.run.batchSize,
                                                                  expectedChannels: model.recipe.inputShape[0],
                                                                  file: entry.name, model: model.path)
                let header = try FITSFile(path: entry.url.path).header(config.input.hdu.selector)
                try writeSegmentation(probabilities, inputHeader: header, to: folder.appendingPathComponent(entry.name))
                try journal.record([.init(file: entry.name, row: [entry.name, entry.name], error: nil)])
            } catch {
                // A model that cannot take the data stops the run; a bad file is recorded and skipped.
                if let mismatch = error as? PipelineError, isModelMismatch(mismatch) { throw error }
                guard config.run.onError == .skip else { throw error }
                failures += 1
                try journal.record([.init(file: entry.name, row: nil, error: error.localizedDescription)])
            }
            progress?.advance()
            Self.simulateCrashIfAsked(done + 1)
        }
        return failures
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

    func writeSegmentation(_ probabilities: PlanarImage, inputHeader: FITSHeader, to url: URL) throws {
        var header = FITSHeader(inputHeader.wcsRecords)
        header.set("CLASSES", .string("0=background,1=star,2=galaxy"), comment: "pixel values")
        header.set("ORIGIN", .string("astrolabe"), comment: "segment-sky pipeline")
        let writer = try FITSWriter(path: url.path, overwrite: true)
        do {
            let shape = [probabilities.width, probabilities.height]
            try writer.appendImage(mask: Self.classMap(probabilities), shape: shape, header: header)
            if config.outputs.probabilities {
                try writer.appendImage(probabilities.pixels, shape: shape + [probabilities.channels],
                                       header: FITSHeader(inputHeader.wcsRecords), extensionName: "PROB")
            }
            try writer.commit()
        } catch {
            writer.discard()
            throw error
        }
    }
}
