import Foundation

/// Errors of the simulator: file output and bad settings (FITS files are written by the
/// FITS module, whose `FITSError` carries cfitsio's own text).
public enum SkySimError: Error, LocalizedError, Equatable {
    /// Any other I/O failure (directory creation, rename, CSV write).
    case io(operation: String, path: String, reason: String)
    /// An option out of range: which, what was given, what is allowed.
    case invalidSetting(name: String, received: String, expected: String)

    public var errorDescription: String? {
        switch self {
        case let .io(operation, path, reason):
            let text = reason.hasSuffix(".") ? String(reason.dropLast()) : reason
            return "\(operation) failed for '\(path)': \(text)."
        case let .invalidSetting(name, received, expected):
            return "Invalid \(name): got \(received), expected \(expected)."
        }
    }
}
