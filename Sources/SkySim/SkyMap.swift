// Large sky maps with a WCS and a position catalog, for tiling and cutout demonstrations.
import Foundation

/// A wide sky map (segmentation population, density of TASKS.md per 256²) with a TAN WCS,
/// and the RA/Dec of its sources.
public enum SkyMap {
    /// Writes `<name>.fits` (float32 map + TRUTH extension, both with the WCS) and
    /// `positions.csv` (id,ra,dec of sources at least `edge` pixels inside the map).
    /// - Returns: the map, for previews.
    @discardableResult
    public static func write(size: Int, seed: UInt64, settings: ObservationSettings = ObservationSettings(),
                             center: (ra: Double, dec: Double) = (150.1, 2.2), edge: Int = 32,
                             directory: URL, name: String) throws -> SimulatedImage {
        try createDirectory(directory)
        let wcs = TangentPlaneWCS(referenceRA: center.ra, referenceDec: center.dec,
                                  referencePixelX: Double(size + 1) / 2, referencePixelY: Double(size + 1) / 2,
                                  pixelScale: settings.pixelScale)
        let (image, sources) = SegmentationScene.make(index: 0, seed: seed, settings: settings, size: size,
                                                      wcs: wcs, fileName: "\(name).fits")
        try image.write(to: directory.appendingPathComponent(image.fileName))
        var lines = ["id,ra,dec"]
        let limit = Double(size - 1 - edge)
        for source in sources where source.x >= Double(edge) && source.y >= Double(edge) && source.x <= limit && source.y <= limit {
            let (ra, dec) = wcs.world(x: source.x, y: source.y)
            lines.append(String(format: "%d,%.7f,%.7f", lines.count, ra, dec))
        }
        try writeText(lines.joined(separator: "\n") + "\n", to: directory.appendingPathComponent("positions.csv"))
        return image
    }
}
