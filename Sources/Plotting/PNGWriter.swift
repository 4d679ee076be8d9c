// PNG output through libpng's simplified write API.
import CPNG
import Foundation

/// Errors of the Plotting module.
public enum PlottingError: Error, LocalizedError, Equatable {
    /// libpng refused to write: the file and libpng's message.
    case pngWrite(path: String, message: String)
    /// The final rename of the temporary file failed.
    case rename(path: String, reason: String)
    /// Pixel buffer size does not match the stated geometry.
    case badBuffer(expected: Int, received: Int)

    public var errorDescription: String? {
        switch self {
        case let .pngWrite(path, message): return "PNG write failed for '\(path)': \(message)."
        case let .rename(path, reason): return "Could not move the finished PNG into place at '\(path)': \(reason)."
        case let .badBuffer(expected, received):
            return "PNG pixel buffer holds \(received) bytes, expected \(expected) (width x height x channels)."
        }
    }
}

/// 8-bit PNG files, gray or RGB.
///
/// Uses libpng's `png_image` API, which reports errors through a status and message
/// instead of `longjmp` (which Swift cannot unwind). Writes go to a temporary file in the
/// target directory, then `rename` into place, so a failed write never leaves a partial PNG.
public enum PNGWriter {
    /// Pixel layouts.
    public enum Format: Sendable {
        case gray, rgb
        var channels: Int { self == .gray ? 1 : 3 }
        var libpngFormat: UInt32 { self == .gray ? UInt32(PNG_FORMAT_GRAY) : 2 /* PNG_FORMAT_RGB */ }
    }

    /// Writes row-major 8-bit pixels (`height` rows of `width` x channels bytes).
    public static func write(_ pixels: [UInt8], width: Int, height: Int, format: Format, to url: URL) throws {
        let expected = width * height * format.channels
        guard pixels.count == expected, width > 0, height > 0 else {
            throw PlottingError.badBuffer(expected: expected, received: pixels.count)
        }
        let path = url.path
        let temporary = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).tmp-\(UUID().uuidString)").path
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        image.width = UInt32(width)
        image.height = UInt32(height)
        image.format = format.libpngFormat
        let ok = pixels.withUnsafeBytes { buffer in
            png_image_write_to_file(&image, temporary, 0, buffer.baseAddress, Int32(width * format.channels), nil)
        }
        guard ok != 0 else {
            let message = withUnsafeBytes(of: &image.message) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            png_image_free(&image)
            unlink(temporary)
            throw PlottingError.pngWrite(path: path, message: message)
        }
        if rename(temporary, path) != 0 {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw PlottingError.rename(path: path, reason: reason)
        }
    }
}
