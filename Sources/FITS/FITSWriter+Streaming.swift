// Images written piece by piece, for outputs larger than memory.
import CFITSIO
import Foundation

/// Pixels for `FITSWriter.writePixels`: the type must match the HDU's BITPIX.
public enum StreamedPixels: Sendable {
    case uint8([UInt8])
    case float32([Float])
}

extension FITSWriter {
    /// Appends an image HDU of `shape` (NAXIS1, NAXIS2, ...) whose pixels are written
    /// later, in any number of `writePixels` calls (e.g. a band of rows at a time as a
    /// tiled segmentation produces them). Returns the HDU's index for `writePixels`.
    /// Pixels never written read as zero. `uint8` selects BITPIX 8, else -32.
    @discardableResult
    public func appendEmptyImage(shape: [Int], uint8: Bool, header: FITSHeader = FITSHeader(),
                                 extensionName: String? = nil) throws -> Int {
        let index = hduCount
        let count = shape.reduce(1, *)
        try appendImage(bitpix: uint8 ? BYTE_IMG : FLOAT_IMG, shape: shape, count: count, header: header,
                        extensionName: extensionName, compression: nil) { _, _ in }
        return index
    }

    /// Writes `pixels` into HDU `hdu` starting at the 0-based position `first`
    /// (x, y[, plane]), continuing in FITS order (x fastest): a whole band of rows
    /// is one call with `first = [0, y0]`.
    public func writePixels(hdu: Int, first: [Int], _ pixels: StreamedPixels) throws {
        try withHandle { pointer in
            var status: Int32 = 0
            var type: Int32 = 0
            ffmahd(pointer, Int32(hdu + 1), &type, &status)
            try check(status, "move to HDU \(hdu) to write pixels", path: path, hdu: hdu)
            var firstPixel = first.map { Int64($0 + 1) }
            switch pixels {
            case var .uint8(values):
                ffppxll(pointer, TBYTE, &firstPixel, Int64(values.count), &values, &status)
            case var .float32(values):
                ffppxll(pointer, TFLOAT, &firstPixel, Int64(values.count), &values, &status)
            }
            try check(status, "write pixels at \(first)", path: path, hdu: hdu)
        }
    }
}
