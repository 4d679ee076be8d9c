// Observation model of TASKS.md: pixel scale, PSF, noise, zero point, magnitude ranges.
import AstroBase
import FITS
import Foundation

/// The simulated data sets of TASKS.md (images for tasks 1-4, tables for light curves).
public enum SimulationTask: String, CaseIterable, Sendable {
    case morphology, lens, segmentation, regression
    /// Task 6: blends of a central galaxy and neighbours, with the central alone as `TRUTH`.
    case deblend
    /// Light curves (task 5): tables, not images; see `LightCurveSimulator`.
    case lightcurves

    /// Class names in label order (classification and segmentation tasks).
    public var classNames: [String] {
        switch self {
        case .morphology: return ["elliptical", "spiral", "edge_on", "irregular", "star"]
        case .lens: return ["non_lens", "lens"]
        case .segmentation: return ["background", "star", "galaxy"]
        case .regression, .deblend: return []
        case .lightcurves: return LightCurveClass.names
        }
    }

    /// Default image side in pixels.
    public var defaultSize: Int { self == .segmentation ? 256 : 64 }

    /// Header of catalog.csv.
    public var catalogHeader: String {
        switch self {
        case .morphology, .lens: return "file,label"
        case .regression: return "file,sersic_n,r_e,q,mag"
        case .deblend: return "file,sersic_n,r_e,q,mag,nneigh"
        case .segmentation: return "file"
        case .lightcurves: return "object_id,label"
        }
    }
}

/// Observation parameters; every default is TASKS.md's value. Angles in arcsec, magnitudes AB-like.
public struct ObservationSettings: Sendable, Equatable {
    public var pixelScale = 0.2
    public var psfFWHM: ClosedRange<Double> = 0.6...1.0
    public var skySigma: ClosedRange<Double> = 5...15
    public var magnitudeZeroPoint = 30.0
    public var gain = 1.0
    /// Galaxy magnitudes; `nil` takes the task's own range (morphology 17-21, segmentation
    /// 17-23, regression 17-22, lens galaxy i-band 18-20).
    public var galaxyMagnitudes: ClosedRange<Double>? = nil
    /// Star magnitudes; `nil`: morphology 16-21, segmentation 16-22.
    public var starMagnitudes: ClosedRange<Double>? = nil
    /// Unlensed g magnitude of lens sources and companions.
    public var sourceMagnitudes: ClosedRange<Double> = 21...24
    /// PSF shapes: TASKS.md's circular Gaussian, or `varied` (Moffat / elliptical) for
    /// training data that covers what real PSFs do; the FWHM range is `psfFWHM` either way.
    public var psf: PSFChoice = .gaussian
    /// Neighbours and cut-off light in single-object cutouts (morphology and regression);
    /// none under TASKS.md.
    public var surroundings = CutoutSurroundings()
    /// Morphology: probability per cutout of a galaxy of none of the five classes (an S0 or
    /// a clumpy spiral, label `outside`), for outlier exposure; 0 under TASKS.md.
    public var outside = 0.0
    /// Morphology: how irregulars split their light and lay out their components, which
    /// TASKS.md leaves open.
    public var irregulars: IrregularLayout = .standard

    public init() {}

    /// Counts of a source of magnitude m: 10^(0.4 (ZP - m)).
    public func flux(magnitude: Double) -> Double { Foundation.pow(10, 0.4 * (magnitudeZeroPoint - magnitude)) }

    /// Arcsec to pixels.
    public func pixels(_ arcsec: Double) -> Double { arcsec / pixelScale }

    /// Gaussian σ in pixels of a FWHM in arcsec.
    public func psfSigma(fwhm: Double) -> Double { fwhm / SpecialFunctions.fwhmPerSigma / pixelScale }

    /// Checks ranges once, at the CLI boundary.
    public func validate() throws {
        func require(_ ok: Bool, _ name: String, _ got: String, _ expected: String) throws {
            if !ok { throw SkySimError.invalidSetting(name: name, received: got, expected: expected) }
        }
        try require(pixelScale > 0, "pixel scale", "\(pixelScale)", "a positive number of arcsec/pixel")
        try require(psfFWHM.lowerBound > 0, "PSF FWHM range", "\(psfFWHM)", "positive arcsec")
        try require(skySigma.lowerBound >= 0, "sky sigma range", "\(skySigma)", "non-negative counts")
        try require(gain > 0, "gain", "\(gain)", "a positive number of e-/ADU")
        try require((0...1).contains(surroundings.neighbours), "neighbour probability", "\(surroundings.neighbours)", "a probability in [0, 1]")
        try require((0...1).contains(surroundings.truncation), "truncation probability", "\(surroundings.truncation)", "a probability in [0, 1]")
        try require((0...1).contains(outside), "probability of galaxies outside the classes", "\(outside)", "a probability in [0, 1]")
    }

    /// Keywords every simulated file carries.
    func commonCards(psfFWHM fwhm: Double, skySigma sigma: Double) -> [HeaderRecord] {
        [
            HeaderRecord("PIXSCALE", .float(pixelScale), comment: "pixel scale [arcsec/pixel]"),
            HeaderRecord("PSF_FWHM", .float(fwhm), comment: psf == .gaussian ? "Gaussian PSF FWHM [arcsec]" : "PSF FWHM [arcsec]"),
            HeaderRecord("GAIN", .float(gain), comment: "gain [e-/ADU]"),
            HeaderRecord("SKYSIG", .float(sigma), comment: "Gaussian sky noise sigma [counts]"),
            HeaderRecord("MAGZERO", .float(magnitudeZeroPoint), comment: "magnitude zero point"),
            HeaderRecord("BUNIT", .string("count"), comment: "sky-subtracted counts (ADU)"),
        ]
    }
}

/// Noise of TASKS.md: Poisson noise of the source counts plus Gaussian sky noise.
public enum NoiseModel {
    /// value = Poisson(gain · counts) / gain + N(0, skySigma²), pixel by pixel in row order.
    public static func noisy(_ counts: [Double], skySigma: Double, gain: Double = 1,
                             random: inout SeededGenerator) -> [Float] {
        counts.map { lambda in
            let electrons = random.poisson(max(lambda, 0) * gain)
            return Float(electrons / gain + skySigma * random.normal())
        }
    }
}

/// Simple celestial WCS of a map: TAN projection, north up, east left.
public struct TangentPlaneWCS: Sendable {
    public var referenceRA: Double
    public var referenceDec: Double
    /// 1-based FITS reference pixel.
    public var referencePixelX: Double
    public var referencePixelY: Double
    public var pixelScale: Double

    public init(referenceRA: Double, referenceDec: Double, referencePixelX: Double,
                referencePixelY: Double, pixelScale: Double) {
        self.referenceRA = referenceRA; self.referenceDec = referenceDec
        self.referencePixelX = referencePixelX; self.referencePixelY = referencePixelY
        self.pixelScale = pixelScale
    }

    var cards: [HeaderRecord] {
        let cd = pixelScale / 3600
        return [
            HeaderRecord("WCSAXES", .integer(2), comment: "number of WCS axes"),
            HeaderRecord("CTYPE1", .string("RA---TAN"), comment: "gnomonic projection"),
            HeaderRecord("CTYPE2", .string("DEC--TAN"), comment: "gnomonic projection"),
            HeaderRecord("CUNIT1", .string("deg"), comment: ""), HeaderRecord("CUNIT2", .string("deg"), comment: ""),
            HeaderRecord("CRVAL1", .float(referenceRA), comment: "RA at the reference pixel [deg]"),
            HeaderRecord("CRVAL2", .float(referenceDec), comment: "Dec at the reference pixel [deg]"),
            HeaderRecord("CRPIX1", .float(referencePixelX), comment: "reference pixel (1-based)"),
            HeaderRecord("CRPIX2", .float(referencePixelY), comment: "reference pixel (1-based)"),
            HeaderRecord("CD1_1", .float(-cd), comment: "[deg/pixel], east to the left"),
            HeaderRecord("CD1_2", .float(0), comment: ""), HeaderRecord("CD2_1", .float(0), comment: ""),
            HeaderRecord("CD2_2", .float(cd), comment: "[deg/pixel], north up"),
            HeaderRecord("RADESYS", .string("ICRS"), comment: ""),
        ]
    }

    /// (RA, Dec) in degrees of a 0-based pixel position (x along NAXIS1).
    public func world(x: Double, y: Double) -> (ra: Double, dec: Double) {
        let degree = Double.pi / 180
        let xi = -(x + 1 - referencePixelX) * pixelScale / 3600 * degree
        let eta = (y + 1 - referencePixelY) * pixelScale / 3600 * degree
        let dec0 = referenceDec * degree
        let denominator = Foundation.cos(dec0) - eta * Foundation.sin(dec0)
        var ra = referenceRA + Foundation.atan2(xi, denominator) / degree
        ra = ra.truncatingRemainder(dividingBy: 360); if ra < 0 { ra += 360 }
        let dec = Foundation.atan2(Foundation.sin(dec0) + eta * Foundation.cos(dec0),
                                   (xi * xi + denominator * denominator).squareRoot()) / degree
        return (ra, dec)
    }
}
