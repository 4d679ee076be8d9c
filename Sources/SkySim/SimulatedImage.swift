// One simulated file's content, and shared helpers of the scene builders.
import Foundation

/// Everything one simulated FITS file holds, plus its catalog row.
public struct SimulatedImage: Sendable {
    /// Base name of the file, e.g. `morphology_000012.fits`.
    public var fileName: String
    /// Row-major float32 pixels; for cubes the planes follow each other (band order g, r, i).
    public var pixels: [Float]
    /// [NAXIS1, NAXIS2] or [NAXIS1, NAXIS2, NAXIS3].
    public var shape: [Int]
    public var header: [HeaderCard]
    /// Per-pixel class map (segmentation), written as the `TRUTH` extension.
    public var truth: [UInt8]?
    /// Extra keywords of the `TRUTH` extension (its WCS).
    public var truthHeader: [HeaderCard] = []
    /// catalog.csv fields after `file`.
    public var catalogFields: [String]
    /// Class label, where the task has classes.
    public var label: Int?
    /// Short caption for contact sheets.
    public var caption: String

    /// The noiseless image is not kept; `noiseless` is filled only on request (tests).
    public var noiseless: [Double]?

    /// The header value of a keyword, if present.
    public func headerValue(_ keyword: String) -> HeaderValue? {
        header.first { $0.keyword == keyword }?.value
    }
}

/// Catalog number formatting: fixed and locale-independent, so files stay byte-identical.
@inline(__always)
func catalogNumber(_ value: Double) -> String { String(format: "%.10g", value) }

/// Header cards shared by every task's file.
func provenanceCards(task: SimulationTask, seed: UInt64, index: Int) -> [HeaderCard] {
    [
        HeaderCard("TASK", .string(task.rawValue), "TASKS.md task"),
        HeaderCard("SIMULATR", .string("astrolabe SkySim"), "generator"),
        HeaderCard("SIMSEED", .string(String(seed)), "data set seed"),
        HeaderCard("SIMINDEX", .integer(index), "image index in the data set"),
    ]
}

/// Observation draws shared by the single-band tasks.
struct SingleBandObservation {
    let fwhm: Double
    let skySigma: Double
    let psfSigma: Double

    init(_ settings: ObservationSettings, _ random: inout SimRandom) {
        fwhm = random.uniform(settings.psfFWHM)
        skySigma = random.uniform(settings.skySigma)
        psfSigma = settings.psfSigma(fwhm: fwhm)
    }
}
