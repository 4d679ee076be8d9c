// Lists the HDUs and reads every header (what `astrolabe inspect` does without --stats).
import FITS
import FuzzSupport

let scratch = ScratchFile(suffix: ".fits")
runFuzzer { bytes in
    withFITSInput(scratch, bytes) { file in
        for info in try file.hdus() {
            let header = try file.header(.index(info.index))
            _ = header.records.count
            _ = try? file.index(of: .name(info.extensionName))
        }
    }
}
