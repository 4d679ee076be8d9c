// Tile-compressed images: header conversion, whole-image reads and tile-wise sections.
import FITS
import FuzzSupport

let scratch = ScratchFile(suffix: ".fits")
runFuzzer { bytes in
    withFITSInput(scratch, bytes) { file in
        for info in try file.hdus() where info.compression != nil && info.elementCount > 0 {
            _ = try file.header(.index(info.index))
            _ = try file.readImage(.index(info.index)).statistics
            if info.shape.count >= 2 {
                _ = try file.readSection(.index(info.index), x: info.shape[0] / 2..<info.shape[0],
                                         y: 0..<max(1, info.shape[1] / 2))
            }
        }
    }
}
