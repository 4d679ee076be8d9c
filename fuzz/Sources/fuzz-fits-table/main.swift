// Reads every binary-table HDU.
import FITS
import FuzzSupport

let scratch = ScratchFile(suffix: ".fits")
runFuzzer { bytes in
    withFITSInput(scratch, bytes) { file in
        for info in try file.hdus() where info.kind == .binaryTable {
            _ = try? file.header(.index(info.index))
            let table = try file.readTable(.index(info.index))
            _ = table.rowCount
        }
    }
}
