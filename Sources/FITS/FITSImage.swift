// FITSImage: pixels read from an image HDU, and their summary statistics.
import CFITSIO
import Glibc

/// A pixel type the readers produce: values after BSCALE/BZERO, blanks as NaN.
public protocol FITSPixel: BinaryFloatingPoint, Sendable {
    /// cfitsio's datatype code (TFLOAT, TDOUBLE).
    static var cfitsioType: Int32 { get }
}

extension Float: FITSPixel {
    public static var cfitsioType: Int32 { TFLOAT }
}

extension Double: FITSPixel {
    public static var cfitsioType: Int32 { TDOUBLE }
}

/// Image pixels in FITS order: `pixels[x + NAXIS1 * (y + NAXIS2 * plane)]`, so that a
/// 2-D image is row-major with `shape = [width, height]` (numpy's `data.shape` reversed).
public struct FITSImage<Pixel: FITSPixel>: Equatable {
    /// Values after BSCALE/BZERO; BLANK pixels (and NaN on disk) are NaN.
    public var pixels: [Pixel]
    /// NAXIS1, NAXIS2, ... (width, height, planes).
    public var shape: [Int]
    /// The HDU's header (empty for sections and buffer reads).
    public var header: FITSHeader

    public init(pixels: [Pixel], shape: [Int], header: FITSHeader = FITSHeader()) {
        precondition(pixels.count == shape.reduce(1, *),
                     "FITSImage: \(pixels.count) pixels do not fill shape \(shape)")
        self.pixels = pixels
        self.shape = shape
        self.header = header
    }

    /// The width (NAXIS1).
    public var width: Int { shape.first ?? 0 }
    /// The height (NAXIS2; 1 for a 1-D image).
    public var height: Int { shape.count > 1 ? shape[1] : 1 }

    /// The pixel at 0-based column `x`, row `y` and `plane` (cubes).
    public subscript(x x: Int, y y: Int, plane plane: Int = 0) -> Pixel {
        pixels[x + width * (y + height * plane)]
    }

    /// Minimum, maximum, mean and standard deviation of the finite pixels.
    public var statistics: ImageStatistics {
        pixels.withUnsafeBufferPointer { ImageStatistics($0) }
    }
}

/// Summary of an image's finite pixels; `blankCount` counts the NaN (BLANK) ones.
/// The standard deviation is the population one (numpy's default, `ddof=0`).
public struct ImageStatistics: Equatable, Sendable {
    public var minimum: Double?
    public var maximum: Double?
    public var mean: Double?
    public var standardDeviation: Double?
    public var finiteCount: Int
    public var blankCount: Int

    /// Two passes in Double: the mean first, then the squared deviations about it,
    /// which avoids the cancellation of the one-pass `E[x²] - E[x]²` formula.
    public init<Pixel: FITSPixel>(_ pixels: UnsafeBufferPointer<Pixel>) {
        var low = Double.infinity, high = -Double.infinity, sum = 0.0
        var finite = 0, blank = 0
        for value in pixels {
            if value.isFinite {
                let v = Double(value)
                sum += v
                if v < low { low = v }
                if v > high { high = v }
                finite += 1
            } else if value.isNaN {
                blank += 1
            }
        }
        finiteCount = finite
        blankCount = blank
        guard finite > 0 else { return }
        let average = sum / Double(finite)
        var squares = 0.0
        for value in pixels where value.isFinite {
            let d = Double(value) - average
            squares += d * d
        }
        minimum = low
        maximum = high
        mean = average
        standardDeviation = (squares / Double(finite)).squareRoot()
    }
}

// MARK: - Reading images

/// Asks Linux to back a large, untouched buffer with 2 MiB pages (as numpy does for its
/// arrays): a 64 MB image then takes 32 page faults instead of 16,384, which otherwise
/// cost more than reading the file. A hint only; ignored where unsupported.
public func adviseHugePages(_ buffer: UnsafeMutableRawBufferPointer) {
    #if os(Linux)
    let hugePage = 2 << 20
    guard buffer.count >= 2 * hugePage, let base = buffer.baseAddress else { return }
    let start = (Int(bitPattern: base) + hugePage - 1) & ~(hugePage - 1)
    let end = (Int(bitPattern: base) + buffer.count) & ~(hugePage - 1)
    if end > start, let pointer = UnsafeMutableRawPointer(bitPattern: start) {
        _ = madvise(pointer, end - start, 14)  // MADV_HUGEPAGE
    }
    #endif
}

extension FITSFile {
    /// Reads a large unscaled float32 image straight from the file into `buffer` and
    /// swaps it to host order; false when the HDU is scaled (then cfitsio reads it).
    ///
    /// cfitsio reads through 28,800-byte chunks and converts each; for a 4096 x 4096
    /// image one `pread` and a vectorised byte swap are about 3x faster.
    func readFloat32Directly(_ pointer: UnsafeMutablePointer<fitsfile>, info: HDUInfo,
                             into buffer: UnsafeMutableRawBufferPointer) throws -> Bool {
        for keyword in ["BSCALE", "BZERO"] {
            var value = 0.0
            var status: Int32 = 0
            ffgkyd(pointer, keyword, &value, nil, &status)
            if status == 0, value != (keyword == "BSCALE" ? 1 : 0) { return false }
            if status != 0 { ffcmsg() }
        }
        var status: Int32 = 0
        var headStart: Int64 = 0, dataStart: Int64 = 0, dataEnd: Int64 = 0
        ffghadll(pointer, &headStart, &dataStart, &dataEnd, &status)
        try check(status, "locate image data", path: path, hdu: info.index)
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { return false }
        defer { Glibc.close(descriptor) }
        var done = 0
        while done < buffer.count {
            let count = pread(descriptor, buffer.baseAddress! + done, buffer.count - done, off_t(dataStart) + off_t(done))
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else {
                throw FITSError.truncated(path: path, hdu: info.index, expectedBytes: Int(dataStart) + buffer.count,
                                          actualBytes: Int(dataStart) + done)
            }
            done += count
        }
        // FITS is big-endian.
        let words = buffer.bindMemory(to: UInt32.self)
        for index in 0..<words.count { words[index] = UInt32(bigEndian: words[index]) }
        return true
    }
}


extension FITSFile {
    /// Reads the whole image of HDU `selector` (default: the primary HDU) as `Float`
    /// (or `Double` with `as: Double.self`), applying BSCALE/BZERO (the unsigned
    /// convention included) and turning BLANK into NaN. Tile-compressed images are
    /// decompressed; 1-D to N-D images are read.
    ///
    /// Throws `.notAnImage` for a table or a data-less HDU.
    public func readImage<Pixel: FITSPixel>(_ selector: HDUSelector = 0,
                                            as type: Pixel.Type = Float.self) throws -> FITSImage<Pixel> {
        let info = try imageInfo(selector)
        let header = try self.header(.index(info.index))
        // Uninitialised storage: cfitsio writes every element (or we throw).
        let pixels = try [Pixel](unsafeUninitializedCapacity: info.elementCount) { buffer, count in
            adviseHugePages(UnsafeMutableRawBufferPointer(buffer))
            try readPixels(info, into: buffer)
            count = buffer.count
        }
        return FITSImage(pixels: pixels, shape: info.shape, header: header)
    }

    /// Reads the whole image of HDU `selector` into `buffer`, which must hold exactly
    /// its pixel count; returns the shape. No allocation: for filling batches.
    @discardableResult
    public func readImage<Pixel: FITSPixel>(_ selector: HDUSelector = 0,
                                            into buffer: UnsafeMutableBufferPointer<Pixel>) throws -> [Int] {
        let info = try imageInfo(selector)
        guard buffer.count == info.elementCount else {
            throw FITSError.shapeMismatch(path: path, expected: info.shape, received: buffer.count)
        }
        try readPixels(info, into: buffer)
        return info.shape
    }

    /// Reads the section `x` × `y` (0-based, half-open pixel ranges) of a 2-D image or
    /// of `planes` of a cube, without reading the rest: cfitsio reads only the rows
    /// (or, for a compressed image, the tiles) it needs. The result has shape
    /// `[x.count, y.count]`, or `[x.count, y.count, planes.count]` for a cube.
    public func readSection<Pixel: FITSPixel>(_ selector: HDUSelector = 0, x: Range<Int>, y: Range<Int>,
                                              planes: Range<Int>? = nil,
                                              as type: Pixel.Type = Float.self) throws -> FITSImage<Pixel> {
        let info = try imageInfo(selector)
        var lower = [x.lowerBound, y.lowerBound]
        var upper = [x.upperBound, y.upperBound]
        if info.shape.count >= 3 {
            let range = planes ?? 0..<info.shape[2]
            lower.append(range.lowerBound)
            upper.append(range.upperBound)
        }
        // Axes past those given are read at their first element.
        while lower.count < info.shape.count { lower.append(0); upper.append(1) }
        let sectionText = "x \(x), y \(y)" + (planes.map { ", planes \($0)" } ?? "")
        guard info.shape.count >= 2, lower.count == info.shape.count,
              zip(zip(lower, upper), info.shape).allSatisfy({ $0.0 >= 0 && $0.0 < $0.1 && $0.1 <= $1 }) else {
            throw FITSError.sectionOutOfBounds(path: path, hdu: info.index, section: sectionText, shape: info.shape)
        }
        let shape = zip(lower, upper).map { $1 - $0 }
        var pixels = [Pixel](repeating: 0, count: shape.reduce(1, *))
        var first = lower.map { $0 + 1 }
        var last = upper
        var step = [Int](repeating: 1, count: lower.count)
        try withHandle { pointer in
            try move(pointer, to: info.index)
            try validateTiles(pointer, info: info)
            var status: Int32 = 0
            var null = Pixel.nan
            var anyNull: Int32 = 0
            pixels.withUnsafeMutableBufferPointer { buffer in
                withUnsafeMutableBytes(of: &null) { nullBytes in
                    _ = ffgsv(pointer, Pixel.cfitsioType, &first, &last, &step, nullBytes.baseAddress,
                              buffer.baseAddress, &anyNull, &status)
                }
            }
            try check(status, "read section \(sectionText)", path: path, hdu: info.index)
        }
        let resultShape = Array(shape.prefix(info.shape.count >= 3 ? 3 : 2))
        return FITSImage(pixels: pixels, shape: resultShape)
    }

    /// The HDU's description, checked to be an image with data.
    func imageInfo(_ selector: HDUSelector) throws -> HDUInfo {
        let info = try hduInfo(selector, withName: false)
        guard info.kind == .image, !info.shape.isEmpty, info.elementCount > 0 else {
            throw FITSError.notAnImage(path: path, hdu: info.index)
        }
        return info
    }

    /// Reads every pixel of an image HDU; cfitsio applies BSCALE/BZERO while converting.
    ///
    /// Integer and compressed images are read with a NaN null value, so BLANK (ZBLANK)
    /// pixels become NaN. Uncompressed float images are read without one: their blanks
    /// already are NaN (and stay NaN through scaling), and cfitsio's per-pixel null test
    /// would cost about a third of a large read.
    func readPixels<Pixel: FITSPixel>(_ info: HDUInfo, into buffer: UnsafeMutableBufferPointer<Pixel>) throws {
        try withHandle { pointer in
            try move(pointer, to: info.index)
            try validateTiles(pointer, info: info)
            if Pixel.self == Float.self, info.storedBitpix == -32, info.compression == nil,
               buffer.count >= 1 << 18, isPlainFile,
               try readFloat32Directly(pointer, info: info, into: UnsafeMutableRawBufferPointer(buffer)) {
                return
            }
            var status: Int32 = 0
            var first = [Int64](repeating: 1, count: info.shape.count)
            var null = Pixel.nan
            var anyNull: Int32 = 0
            // Compressed floats mark nulls as ZBLANK in the tiles: those need the null value.
            let floatingPoint = info.storedBitpix < 0 && info.compression == nil
            withUnsafeMutableBytes(of: &null) { nullBytes in
                _ = ffgpxvll(pointer, Pixel.cfitsioType, &first, Int64(buffer.count),
                             floatingPoint ? nil : nullBytes.baseAddress, buffer.baseAddress, &anyNull, &status)
            }
            try check(status, "read image", path: path, hdu: info.index)
        }
    }
}
