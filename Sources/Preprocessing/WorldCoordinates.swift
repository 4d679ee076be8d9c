import CWCS
import Foundation

/// Errors from the world coordinate system of a header.
public enum WCSError: Error, Equatable, LocalizedError {
    /// The header holds no usable celestial WCS.
    case noWCS(source: String)
    /// wcslib refused the header or a transformation.
    case wcslib(status: Int32, operation: String, source: String)
    /// A sky position that does not project onto the image plane.
    case invalidCoordinate(ra: Double, dec: Double, source: String)

    public var errorDescription: String? {
        switch self {
        case let .noWCS(source):
            return "\(source): the header has no world coordinate system (CTYPE1/2, CRVAL, CRPIX and CD or CDELT). "
                + "Give pixel positions instead, or add the WCS keywords."
        case let .wcslib(status, operation, source):
            return "\(source): wcslib failed in \(operation) (status \(status)): \(WorldCoordinates.message(status))."
        case let .invalidCoordinate(ra, dec, source):
            return "\(source): RA \(ra), Dec \(dec) does not project onto the image plane of this WCS."
        }
    }
}

/// A celestial world coordinate system read from FITS header cards with wcslib
/// (Calabretta & Greisen 2002): every standard projection, CD or PC+CDELT.
///
/// Pixel coordinates here are 0-based (x along NAXIS1, y along NAXIS2), like
/// astropy's `wcs_world2pix(..., 0)`; FITS' own are 1-based. wcslib's structure
/// is not safe to share between threads, so calls are serialised by a lock.
public final class WorldCoordinates: @unchecked Sendable {
    private var wcs: UnsafeMutablePointer<wcsprm>?
    private var count: Int32 = 0
    private let lock = NSLock()
    /// Where the header came from, for messages.
    public let source: String

    /// Parses `header`: concatenated 80-character cards (as cfitsio's `fits_hdr2str` gives).
    public init(headerCards header: String, source: String) throws {
        self.source = source
        var cards = Array(header.utf8CString)
        let nkeys = Int32((cards.count - 1) / 80)
        var rejected: Int32 = 0
        let status = cards.withUnsafeMutableBufferPointer { buffer in
            wcspih(buffer.baseAddress, nkeys, WCSHDR_all, 0, &rejected, &count, &wcs)
        }
        guard status == 0 else { throw WCSError.wcslib(status: status, operation: "wcspih", source: source) }
        guard count > 0, let wcs, wcs.pointee.naxis >= 2 else { throw WCSError.noWCS(source: source) }
        let setStatus = wcsset(wcs)
        guard setStatus == 0 else { throw WCSError.wcslib(status: setStatus, operation: "wcsset", source: source) }
        // wcsset finds the celestial axes; a header with only linear axes has none.
        guard wcs.pointee.lng >= 0, wcs.pointee.lat >= 0 else { throw WCSError.noWCS(source: source) }
    }

    deinit {
        if wcs != nil { wcsvfree(&count, &wcs) }
    }

    /// The 0-based pixel position `(x, y)` of a sky position (degrees).
    public func pixel(ra: Double, dec: Double) throws -> (x: Double, y: Double) {
        lock.lock(); defer { lock.unlock() }
        let naxis = Int(wcs!.pointee.naxis)
        var world = [Double](repeating: 0, count: naxis)
        world[Int(wcs!.pointee.lng)] = ra
        world[Int(wcs!.pointee.lat)] = dec
        var phi = 0.0, theta = 0.0
        var imgcrd = [Double](repeating: 0, count: naxis), pixcrd = [Double](repeating: 0, count: naxis)
        var stat: Int32 = 0
        let status = wcss2p(wcs, 1, Int32(naxis), world, &phi, &theta, &imgcrd, &pixcrd, &stat)
        guard status == 0, pixcrd[0].isFinite, pixcrd[1].isFinite else {
            if status == 9 || stat != 0 { throw WCSError.invalidCoordinate(ra: ra, dec: dec, source: source) }
            throw WCSError.wcslib(status: status, operation: "wcss2p", source: source)
        }
        return (pixcrd[0] - 1, pixcrd[1] - 1)
    }

    /// The sky position (degrees) of a 0-based pixel position.
    public func world(x: Double, y: Double) throws -> (ra: Double, dec: Double) {
        lock.lock(); defer { lock.unlock() }
        let naxis = Int(wcs!.pointee.naxis)
        var pixcrd = [Double](repeating: 1, count: naxis)
        pixcrd[0] = x + 1
        pixcrd[1] = y + 1
        var imgcrd = [Double](repeating: 0, count: naxis), world = [Double](repeating: 0, count: naxis)
        var phi = 0.0, theta = 0.0
        var stat: Int32 = 0
        let status = wcsp2s(wcs, 1, Int32(naxis), pixcrd, &imgcrd, &phi, &theta, &world, &stat)
        guard status == 0 else { throw WCSError.wcslib(status: status, operation: "wcsp2s", source: source) }
        return (world[Int(wcs!.pointee.lng)], world[Int(wcs!.pointee.lat)])
    }

    /// wcslib's meaning of a `wcs.h` status (its `wcs_errmsg` table is not importable).
    static func message(_ status: Int32) -> String {
        let messages = [
            "success", "null wcsprm pointer passed", "memory allocation failed",
            "linear transformation matrix is singular", "inconsistent or unrecognized coordinate axis type",
            "invalid parameter value", "unrecognized coordinate transformation parameter",
            "ill-conditioned coordinate transformation parameters", "one or more of the pixel coordinates were invalid",
            "one or more of the world coordinates were invalid", "invalid world coordinate",
            "no solution found in the specified interval", "invalid subimage specification",
            "non-separable subimage coordinate system",
        ]
        return status >= 0 && Int(status) < messages.count ? messages[Int(status)] : "unknown error"
    }
}
