// Contact sheets of simulated images, through the Plotting module.
import AstroBase
import Foundation
import Plotting

/// Pictures of simulated data for humans: contact sheets labelled with class names.
public enum SimulationPreview {
    /// A contact sheet of simulated images: single-band images with the asinh display
    /// normalisation (`ImageNormalization.display`), lens cubes as Lupton composites (i, r, g
    /// → red, green, blue; `LuptonRGB.noiseScaled`), segmentation maps next to their truth
    /// (black background, yellow stars, blue galaxies).
    public static func contactSheet(_ images: [SimulatedImage], task: SimulationTask,
                                    columns: Int = 8, cellSize: Int = 128) -> ContactSheet {
        var sheet = ContactSheet(columns: columns, cellSize: cellSize, title: "ASTROLABE SIMULATE: \(task.rawValue)")
        for image in images {
            let width = image.shape[0], height = image.shape[1]
            switch task {
            case .lens:
                let plane = width * height
                let g = Array(image.pixels[0..<plane]), r = Array(image.pixels[plane..<2 * plane])
                let i = Array(image.pixels[2 * plane..<3 * plane])
                let rgb = LuptonRGB.noiseScaled(red: i, green: r, blue: g).composite8(red: i, green: r, blue: g)
                sheet.add(rgb: rgb, width: width, height: height, label: image.caption)
            case .segmentation:
                sheet.add(gray: ImageNormalization.display(for: image.pixels).bytes(image.pixels),
                          width: width, height: height, label: "MAP \(image.caption)")
                if let truth = image.truth {
                    let palette: [Color] = [.black, .yellow, .blue]
                    var rgb = [UInt8](repeating: 0, count: truth.count * 3)
                    for (p, code) in truth.enumerated() {
                        let c = palette[Int(min(code, 2))]
                        rgb[3 * p] = c.red; rgb[3 * p + 1] = c.green; rgb[3 * p + 2] = c.blue
                    }
                    sheet.add(rgb: rgb, width: width, height: height, label: "TRUTH STAR/GALAXY")
                }
            case .deblend:
                // The blend and its truth on the blend's stretch, side by side.
                let display = ImageNormalization.display(for: image.pixels)
                sheet.add(gray: display.bytes(image.pixels), width: width, height: height, label: "BLEND \(image.caption)")
                if let truth = image.truthImage {
                    sheet.add(gray: display.bytes(truth), width: width, height: height, label: "TRUTH")
                }
            case .lightcurves:
                preconditionFailure("SimulationPreview: light curves have LightCurveSimulator.contactSheet")
            case .morphology, .regression:
                sheet.add(gray: ImageNormalization.display(for: image.pixels).bytes(image.pixels),
                          width: width, height: height, label: image.caption)
            }
        }
        return sheet
    }
}
