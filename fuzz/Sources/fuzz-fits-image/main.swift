// Reads every image HDU whole, as Double, into a buffer and as a section.
import FITS
import FuzzSupport

let scratch = ScratchFile(suffix: ".fits")
runFuzzer { bytes in
    withFITSInput(scratch, bytes) { file in
        for info in try file.hdus() where info.kind == .image && info.elementCount > 0 {
            let image = try file.readImage(.index(info.index))
            _ = image.statistics
            _ = try file.readImage(.index(info.index), as: Double.self)
            var buffer = [Float](repeating: 0, count: info.elementCount)
            try buffer.withUnsafeMutableBufferPointer { _ = try file.readImage(.index(info.index), into: $0) }
            if info.shape.count >= 2 {
                _ = try file.readSection(.index(info.index), x: 0..<min(info.shape[0], 3),
                                         y: info.shape[1] / 2..<info.shape[1])
            }
        }
    }
}
