// One simulated file's content, its FITS file, and shared helpers of the scene builders.
import AstroBase
import FITS
import Foundation

/// Everything one simulated FITS file holds, plus its catalog row.
public struct SimulatedImage: Sendable {
    /// Base name of the file, e.g. `morphology_000012.fits`.
    public var fileName: String
    /// Row-major float32 pixels; for cubes the planes follow each other (band order g, r, i).
    public var pixels: [Float]
    /// [NAXIS1, NAXIS2] or [NAXIS1, NAXIS2, NAXIS3].
    public var shape: [Int]
    public var header: [HeaderRecord]
    /// Per-pixel class map (segmentation), written as the `TRUTH` extension.
    public var truth: [UInt8]?
    /// Deblending: the central galaxy alone (noiseless, PSF-convolved, counts), written as the
    /// float32 `TRUTH` extension.
    public var truthImage: [Float]?
    /// Extra keywords of the `TRUTH` extension (its WCS; deblending: the central galaxy's truth).
    public var truthHeader: [HeaderRecord] = []
    /// catalog.csv fields after `file`.
    public var catalogFields: [String]
    /// Class label, where the task has classes.
    public var label: Int?
    /// Short caption for contact sheets.
    public var caption: String

    /// The noiseless image is not kept; `noiseless` is filled only on request (tests).
    public var noiseless: [Double]?
    /// Lenses with `Simulator.arcs`: the lensed source alone, noiseless and PSF-convolved,
    /// summed over g, r, i `[NAXIS1, NAXIS2]` in counts, written as the float32 `ARC` extension.
    public var arc: [Float]?

    /// The header value of a keyword, if present.
    public func headerValue(_ keyword: String) -> HeaderValue? {
        header.first { $0.keyword == keyword }?.value
    }

    /// Writes the FITS file through `FITSWriter`, atomically, replacing an older file: a
    /// float32 primary image (2-D, or a cube with NAXIS3 bands) with `header`, and the
    /// uint8 `TRUTH` image extension with `truthHeader` when there is a truth map (float32 when
    /// the truth is an image, `truthImage`).
    /// No DATE or checksum keywords are written, so equal images give byte-identical files.
    public func write(to url: URL) throws {
        let writer = try FITSWriter(path: url.path, overwrite: true)
        try writer.appendImage(pixels, shape: shape, header: FITSHeader(header))
        if let truth {
            precondition(truth.count == shape[0] * shape[1], "SimulatedImage: truth map does not match the image")
            try writer.appendImage(mask: truth, shape: [shape[0], shape[1]], header: FITSHeader(truthHeader),
                                   extensionName: "TRUTH")
        }
        if let truthImage {
            precondition(truthImage.count == shape[0] * shape[1], "SimulatedImage: truth image does not match the image")
            try writer.appendImage(truthImage, shape: [shape[0], shape[1]], header: FITSHeader(truthHeader), extensionName: "TRUTH")
        }
        if let arc {
            try writer.appendImage(arc, shape: [shape[0], shape[1]],
                                   header: FITSHeader([HeaderRecord("BUNIT", .string("count"), comment: "noiseless lensed source, g+r+i")]),
                                   extensionName: "ARC")
        }
        try writer.commit()
    }
}

extension SeededGenerator {
    /// Position angle uniform in [0, π).
    mutating func positionAngle() -> Double { uniform(0, Double.pi) }
}

/// Catalog number formatting: fixed and locale-independent, so files stay byte-identical.
@inline(__always)
func catalogNumber(_ value: Double) -> String { String(format: "%.10g", value) }

/// Header cards shared by every task's file.
func provenanceCards(task: SimulationTask, seed: UInt64, index: Int) -> [HeaderRecord] {
    [
        HeaderRecord("TASK", .string(task.rawValue), comment: "TASKS.md task"),
        HeaderRecord("SIMULATR", .string("astrolabe SkySim"), comment: "generator"),
        HeaderRecord("SIMSEED", .string(String(seed)), comment: "data set seed"),
        HeaderRecord("SIMINDEX", .integer(index), comment: "image index in the data set"),
    ]
}

/// Observation draws shared by the single-band tasks.
struct SingleBandObservation {
    let fwhm: Double
    let skySigma: Double
    let psfSigma: Double

    init(_ settings: ObservationSettings, _ random: inout SeededGenerator) {
        fwhm = random.uniform(settings.psfFWHM)
        skySigma = random.uniform(settings.skySigma)
        psfSigma = settings.psfSigma(fwhm: fwhm)
    }
}

extension SingleBandObservation {
    /// The PSF drawn for image `index` under `settings.psf = .varied` (its own stream, so the
    /// scene draws match the Gaussian set of the same seed); nil under TASKS.md's Gaussian.
    func variedPSF(settings: ObservationSettings, seed: UInt64, index: Int) -> PSFShape? {
        psfShapes(settings.psf, seed: seed, index: index, fwhmPixels: [settings.pixels(fwhm)])?[0]
    }

    /// The noiseless image (`width` × `height`) of `components` through `psf`, or through
    /// TASKS.md's Gaussian PSF when it is nil.
    func render(_ components: [SceneComponent], psf: PSFShape?, width: Int, height: Int) -> [Double] {
        psf?.render(components, width: width, height: height)
            ?? Renderer(width: width, height: height, psfSigma: psfSigma, components: components).render(components)
    }

    /// The noiseless image through TASKS.md's Gaussian PSF, or under `settings.psf = .varied`
    /// through the PSF drawn for image `index`, and the cards recording that draw.
    func render(_ components: [SceneComponent], settings: ObservationSettings, seed: UInt64, index: Int,
                size: Int) -> (image: [Double], psfCards: [HeaderRecord]) {
        let psf = variedPSF(settings: settings, seed: seed, index: index)
        return (render(components, psf: psf, width: size, height: size), psf?.cards() ?? [])
    }
}
