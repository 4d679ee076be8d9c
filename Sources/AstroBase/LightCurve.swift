// Multi-band light curves (TASKS.md task 5): the data type shared by the simulator,
// the readers, the sequence stages and the evaluation.

/// The survey bands of TASKS.md task 5, in encoding order (g = 0, r = 1, i = 2).
public enum PhotometricBand: String, CaseIterable, Codable, Sendable {
    case g, r, i

    /// The band's position in `allCases` (its one-hot slot).
    public var index: Int {
        switch self {
        case .g: return 0
        case .r: return 1
        case .i: return 2
        }
    }
}

/// One measurement: time in days, band, difference flux and its error in FLUXCAL.
public struct LightCurvePoint: Equatable, Sendable {
    public var mjd: Double
    public var band: PhotometricBand
    public var flux: Double
    public var fluxError: Double

    public init(mjd: Double, band: PhotometricBand, flux: Double, fluxError: Double) {
        self.mjd = mjd; self.band = band; self.flux = flux; self.fluxError = fluxError
    }
}

/// The classes of TASKS.md task 5, in label order.
public enum LightCurveClass: String, CaseIterable, Codable, Sendable {
    case snIa = "sn_ia", snII = "sn_ii", snIbc = "sn_ibc", slsn, agn, rrLyrae = "rr_lyrae",
         eclipsingBinary = "eclipsing_binary"

    /// The label (0 for `sn_ia` ... 6 for `eclipsing_binary`).
    public var label: Int { Self.allCases.firstIndex(of: self)! }

    /// The class names in label order, as files spell them.
    public static var names: [String] { allCases.map(\.rawValue) }
}

/// One object's light curve: its points in time order.
public struct LightCurve: Equatable, Sendable {
    public var objectID: Int64
    public var points: [LightCurvePoint]

    /// Sorts `points` by time (stable, so simultaneous points keep their file order).
    public init(objectID: Int64, points: [LightCurvePoint]) {
        self.objectID = objectID
        var sorted = points
        if !zip(points, points.dropFirst()).allSatisfy({ $0.mjd <= $1.mjd }) {
            sorted = points.enumerated().sorted { ($0.element.mjd, $0.offset) < ($1.element.mjd, $1.offset) }.map(\.element)
        }
        self.points = sorted
    }

    /// The signal-to-noise ratio that starts TASKS.md's early cut.
    public static let earlyDetectionSNR = 5.0
    /// Days kept after that first detection.
    public static let earlyWindow = 10.0

    /// TASKS.md's early light curve: the points up to t5 + 10 days, with t5 the time of the
    /// first point whose flux / flux_err exceeds 5 (all points when none does).
    public var earlyCut: LightCurve { cut(daysAfterDetection: Self.earlyWindow) }

    /// The time of the first point whose flux / flux_err exceeds 5 (nil when none does).
    public var detectionMJD: Double? {
        points.first(where: { $0.fluxError > 0 && $0.flux / $0.fluxError > Self.earlyDetectionSNR })?.mjd
    }

    /// The points up to `days` after the first detection (`detectionMJD`); all points when
    /// the curve has no detection.
    public func cut(daysAfterDetection days: Double) -> LightCurve {
        guard let first = detectionMJD else { return self }
        let end = first + days
        return LightCurve(objectID: objectID, points: points.filter { $0.mjd <= end })
    }
}
