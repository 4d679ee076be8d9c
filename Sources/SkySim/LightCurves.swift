// Light curves of TASKS.md task 5: supernova-like transients (Villar et al. 2019), AGN
// (damped random walk), RR Lyrae and eclipsing binaries, as difference fluxes sampled
// irregularly in g, r, i.
import AstroBase
import Foundation

/// The observing and class parameters of TASKS.md task 5; every default is the spec's.
public struct LightCurveSettings: Sendable, Equatable {
    /// Survey span in days (times are uniform in it).
    public var span: ClosedRange<Double> = 0...200
    /// Visits per object (uniform integer).
    public var visits: ClosedRange<Int> = 20...60
    /// Per-object sky sigma in FLUXCAL.
    public var skySigma: ClosedRange<Double> = 3...15
    /// FLUXCAL zero point: magnitude m has flux 10^(0.4 (zeroPoint - m)).
    public var zeroPoint = 27.5
    /// Supernova explosion time t0.
    public var explosionTime: ClosedRange<Double> = -20...150

    public init() {}

    public func flux(magnitude: Double) -> Double { Foundation.pow(10, 0.4 * (zeroPoint - magnitude)) }

    /// Checks ranges once, at the CLI boundary.
    public func validate() throws {
        func require(_ ok: Bool, _ name: String, _ got: String, _ expected: String) throws {
            if !ok { throw SkySimError.invalidSetting(name: name, received: got, expected: expected) }
        }
        try require(span.upperBound > span.lowerBound, "time span", "\(span)", "a range of positive length in days")
        try require(visits.lowerBound >= 1, "visits", "\(visits)", "at least one visit per object")
        try require(skySigma.lowerBound > 0, "sky sigma", "\(skySigma)", "positive FLUXCAL")
    }
}

/// One simulated object: its measured curve, its class and the noiseless fluxes (for tests
/// and pictures).
public struct SimulatedLightCurve: Sendable {
    public var curve: LightCurve
    public var kind: LightCurveClass
    /// The noiseless difference flux at each point of `curve`.
    public var noiseless: [Double]
    public var skySigma: Double
}

/// Seeded simulator of TASKS.md task 5. Object `i` depends only on (seed, i); its class is
/// `i mod 7` in label order, so every block of 7 consecutive objects holds each class once
/// (classes equally frequent, as the spec's evaluation sets).
public struct LightCurveSimulator: Sendable {
    public var seed: UInt64
    public var settings: LightCurveSettings

    public init(seed: UInt64, settings: LightCurveSettings = LightCurveSettings()) {
        self.seed = seed; self.settings = settings
    }

    /// The class of object `index`.
    public static func kind(of index: Int) -> LightCurveClass {
        LightCurveClass.allCases[index % LightCurveClass.allCases.count]
    }

    /// Object `index` (object_id = index).
    public func curve(at index: Int) -> SimulatedLightCurve {
        var random = SeededGenerator(seed: seed, stream: UInt64(index))
        let kind = Self.kind(of: index)
        let count = random.integer(settings.visits)
        var visits: [(mjd: Double, band: PhotometricBand)] = (0..<count).map { _ in
            (random.uniform(settings.span), PhotometricBand.allCases[random.integer(0...2)])
        }
        visits.sort { $0.mjd < $1.mjd }
        let model = LightCurveModel.draw(kind, random: &random, settings: settings)
        let truth = model.differenceFlux(at: visits, random: &random, settings: settings)
        let sky = random.uniform(settings.skySigma)
        var points: [LightCurvePoint] = []
        points.reserveCapacity(count)
        for (visit, f) in zip(visits, truth) {
            let error = (sky * sky + 0.0001 * f * f).squareRoot()
            points.append(LightCurvePoint(mjd: visit.mjd, band: visit.band, flux: f + error * random.normal(), fluxError: error))
        }
        return SimulatedLightCurve(curve: LightCurve(objectID: Int64(index), points: points), kind: kind,
                                   noiseless: truth, skySigma: sky)
    }
}

// MARK: - Class models

/// The drawn parameters of one object's class model.
enum LightCurveModel {
    case supernova(Supernova)
    case agn(meanR: Double, tau: Double, sfInfinity: Double, gr: Double, ri: Double)
    case periodic(Periodic)

    /// Magnitude offsets of the bands (g - r, r - i → m_b = m_r + offset).
    static func offsets(gr: Double, ri: Double) -> [Double] { [gr, 0, -ri] }

    static func draw(_ kind: LightCurveClass, random: inout SeededGenerator, settings: LightCurveSettings) -> LightCurveModel {
        switch kind {
        case .snIa, .snII, .snIbc, .slsn:
            return .supernova(Supernova.draw(kind, random: &random, settings: settings))
        case .agn:
            return .agn(meanR: random.uniform(19, 22), tau: random.uniform(50, 500), sfInfinity: random.uniform(0.1, 0.4),
                        gr: random.uniform(0, 0.4), ri: random.uniform(0, 0.3))
        case .rrLyrae, .eclipsingBinary:
            return .periodic(Periodic.draw(kind, random: &random))
        }
    }

    /// Noiseless difference fluxes at the visits.
    func differenceFlux(at visits: [(mjd: Double, band: PhotometricBand)], random: inout SeededGenerator,
                        settings: LightCurveSettings) -> [Double] {
        switch self {
        case let .supernova(model):
            return visits.map { model.flux(at: $0.mjd, band: $0.band) }
        case let .periodic(model):
            let means = PhotometricBand.allCases.map { band in
                Self.timeAverage(span: settings.span, period: model.period) { settings.flux(magnitude: model.magnitude(at: $0, band: band)) }
            }
            return visits.map { settings.flux(magnitude: model.magnitude(at: $0.mjd, band: $0.band)) - means[$0.band.index] }
        case let .agn(meanR, tau, sfInfinity, gr, ri):
            return Self.dampedRandomWalk(at: visits, meanR: meanR, tau: tau, sfInfinity: sfInfinity,
                                         offsets: Self.offsets(gr: gr, ri: ri), random: &random, settings: settings)
        }
    }

    /// The AGN: one Ornstein–Uhlenbeck process x(t) in magnitude (stationary variance
    /// SF∞²/2, started from its stationary distribution), scaled × 1.2 in g, × 0.8 in i. It
    /// is drawn exactly (the OU transition) on the visits merged with a half-day grid over
    /// the span; the grid gives each band's time-averaged flux by the trapezoid rule.
    static func dampedRandomWalk(at visits: [(mjd: Double, band: PhotometricBand)], meanR: Double, tau: Double,
                                 sfInfinity: Double, offsets: [Double], random: inout SeededGenerator,
                                 settings: LightCurveSettings) -> [Double] {
        let scales = [1.2, 1.0, 0.8]
        let sigma = sfInfinity / 2.0.squareRoot()
        let step = 0.5
        let gridCount = Int(((settings.span.upperBound - settings.span.lowerBound) / step).rounded(.up)) + 1
        var times: [(t: Double, visit: Int)] = (0..<gridCount).map {
            (min(settings.span.lowerBound + Double($0) * step, settings.span.upperBound), -1)
        }
        times += visits.enumerated().map { ($0.element.mjd, $0.offset) }
        times.sort { ($0.t, $0.visit) < ($1.t, $1.visit) }
        var x = sigma * random.normal()
        var previous = times[0].t
        var process = [Double](repeating: 0, count: times.count)
        for (k, entry) in times.enumerated() {
            let decay = Foundation.exp(-(entry.t - previous) / tau)
            if k > 0 { x = x * decay + sigma * (1 - decay * decay).squareRoot() * random.normal() }
            process[k] = x
            previous = entry.t
        }
        func flux(_ x: Double, _ band: Int) -> Double {
            settings.flux(magnitude: meanR + offsets[band] + scales[band] * x)
        }
        var means = [Double](repeating: 0, count: 3)
        for band in 0..<3 {
            var integral = 0.0
            var last: (t: Double, f: Double)?
            for (k, entry) in times.enumerated() where entry.visit < 0 {
                let f = flux(process[k], band)
                if let last { integral += 0.5 * (f + last.f) * (entry.t - last.t) }
                last = (entry.t, f)
            }
            means[band] = integral / (settings.span.upperBound - settings.span.lowerBound)
        }
        var result = [Double](repeating: 0, count: visits.count)
        for (k, entry) in times.enumerated() where entry.visit >= 0 {
            let band = visits[entry.visit].band.index
            result[entry.visit] = flux(process[k], band) - means[band]
        }
        return result
    }

    /// The time average of a periodic `f` over `span`: whole periods by their phase
    /// average, the remainder on its own (midpoint rule, 512 points each).
    static func timeAverage(span: ClosedRange<Double>, period: Double, _ f: (Double) -> Double) -> Double {
        let length = span.upperBound - span.lowerBound
        let cycles = (length / period).rounded(.down)
        let samples = 512
        func integral(from a: Double, to b: Double) -> Double {
            guard b > a else { return 0 }
            let h = (b - a) / Double(samples)
            var sum = 0.0
            for k in 0..<samples { sum += f(a + (Double(k) + 0.5) * h) }
            return sum * h
        }
        let start = span.lowerBound
        let whole = cycles * integral(from: start, to: start + period)
        let rest = integral(from: start + cycles * period, to: span.upperBound)
        return (whole + rest) / length
    }
}

// MARK: - Supernovae

/// The Villar et al. (2019) model per band, with TASKS.md's class ranges.
///
/// Reference: Villar et al., "Supernova Photometric Classification Pipelines Trained on
/// Spectroscopically Classified Supernovae from the Pan-STARRS1 Medium-Deep Survey"
/// (2019), https://arxiv.org/abs/1905.07422
struct Supernova {
    var t0: Double, tauRise: Double, gamma: Double, beta: Double
    /// τ_fall per band (g, r, i) and the amplitude A per band.
    var tauFall: [Double], amplitude: [Double]
    /// SN Ia: the i-band second maximum (centre, sigma, amplitude in flux).
    var secondMaximum: (centre: Double, sigma: Double, amplitude: Double)?
    /// SN II: g − r at t0 and its growth over the plateau (g only, in mag).
    var reddening: (start: Double, growth: Double)?

    static func draw(_ kind: LightCurveClass, random: inout SeededGenerator, settings: LightCurveSettings) -> Supernova {
        typealias R = ClosedRange<Double>
        let p: (rise: R, gamma: R, delta: R, fall: R, sg: R, si: R, gr: R, ri: R, peak: R)
        switch kind {
        case .snIa: p = (1...3, 3...10, 0...0.2, 15...30, 0.6...0.8, 1.0...1.3, -0.2...0.1, -0.4...(-0.1), 19...23.5)
        case .snII: p = (2...8, 60...110, 0.1...0.5, 10...25, 1...1, 1...1, -0.1...0.2, 0...0.2, 19...23.5)
        case .snIbc: p = (2...6, 2...8, 0...0.2, 8...20, 0.7...0.9, 1.0...1.2, 0.2...0.6, 0...0.3, 19...23.5)
        default: p = (10...30, 10...40, 0...0.3, 30...80, 0.8...1.0, 1.0...1.2, -0.4...0, -0.3...0, 20...23.5)
        }
        let t0 = random.uniform(settings.explosionTime)
        let tauRise = random.uniform(p.rise), gamma = random.uniform(p.gamma)
        let delta = random.uniform(p.delta), fallR = random.uniform(p.fall)
        let sg = random.uniform(p.sg), si = random.uniform(p.si)
        let gr = random.uniform(p.gr), ri = random.uniform(p.ri)
        let peak = settings.flux(magnitude: random.uniform(p.peak))
        var model = Supernova(t0: t0, tauRise: tauRise, gamma: gamma, beta: delta / gamma,
                              tauFall: [fallR * sg, fallR, fallR * si], amplitude: [1, 1, 1])
        let ar = peak / model.unitPeak(band: 1)
        model.amplitude = [ar * Foundation.pow(10, -0.4 * gr), ar, ar * Foundation.pow(10, 0.4 * ri)]
        if kind == .snIa {
            model.secondMaximum = (t0 + random.uniform(20, 30), random.uniform(5, 8),
                                   random.uniform(0.3, 0.6) * model.amplitude[2])
        }
        if kind == .snII { model.reddening = (gr, random.uniform(0.5, 1.0)) }
        return model
    }

    /// The Villar shape of `band` with A = 1.
    func shape(at t: Double, band: Int) -> Double {
        let sigmoid = 1 / (1 + Foundation.exp(-(t - t0) / tauRise))
        let t1 = t0 + gamma
        if t < t1 { return (1 - beta * (t - t0)) * sigmoid }
        return (1 - beta * gamma) * Foundation.exp(-(t - t1) / tauFall[band]) * sigmoid
    }

    /// The maximum of the unit-amplitude curve of `band` (a fine grid, then golden-section
    /// refinement; the curve rises to one maximum at or before t1 and then falls).
    func unitPeak(band: Int) -> Double {
        let low = t0 - 10 * tauRise, high = t0 + gamma + 5 * tauRise
        let steps = 400
        var best = low
        for k in 0...steps {
            let t = low + (high - low) * Double(k) / Double(steps)
            if shape(at: t, band: band) > shape(at: best, band: band) { best = t }
        }
        let h = (high - low) / Double(steps)
        var a = best - h, b = best + h
        let ratio = (5.0.squareRoot() - 1) / 2
        for _ in 0..<40 {
            let c = b - ratio * (b - a), d = a + ratio * (b - a)
            if shape(at: c, band: band) > shape(at: d, band: band) { b = d } else { a = c }
        }
        return max(shape(at: (a + b) / 2, band: band), shape(at: best, band: band))
    }

    func flux(at t: Double, band: PhotometricBand) -> Double {
        let b = band.index
        var scale = amplitude[b]
        if b == 0, let reddening {
            // g − r grows linearly over the plateau [t0, t1] and keeps its final value after.
            let progress = min(max((t - t0) / gamma, 0), 1)
            scale = amplitude[1] * Foundation.pow(10, -0.4 * (reddening.start + reddening.growth * progress))
        }
        var f = scale * shape(at: t, band: b)
        if b == 2, let bump = secondMaximum {
            let z = (t - bump.centre) / bump.sigma
            f += bump.amplitude * Foundation.exp(-0.5 * z * z)
        }
        return f
    }
}

// MARK: - Periodic variables

/// RR Lyrae (sawtooth in magnitude) and eclipsing binaries (Gaussian dips in phase).
struct Periodic {
    var period: Double, phase: Double
    /// Phase-averaged magnitude per band (g, r, i).
    var meanMagnitude: [Double]
    /// RR Lyrae: peak-to-peak amplitude per band and the rise fraction ρ.
    var amplitude: [Double] = []
    var riseFraction = 0.0
    /// Eclipsing binary: depths (mag) and the Gaussian σ in phase.
    var primaryDepth = 0.0, secondaryDepth = 0.0, eclipseSigma = 0.0
    var isBinary: Bool

    static func draw(_ kind: LightCurveClass, random: inout SeededGenerator) -> Periodic {
        if kind == .rrLyrae {
            let period = random.uniform(0.4, 0.8), phase = random.uniform()
            let rise = random.uniform(0.1, 0.25), ampG = random.uniform(0.4, 1.2)
            let meanR = random.uniform(18, 22), gr = random.uniform(0, 0.3), ri = random.uniform(0, 0.2)
            return Periodic(period: period, phase: phase, meanMagnitude: LightCurveModel.offsets(gr: gr, ri: ri).map { meanR + $0 },
                            amplitude: [ampG, 0.8 * ampG, 0.65 * ampG], riseFraction: rise, isBinary: false)
        }
        let period = random.uniform(0.5, 10), phase = random.uniform()
        let meanR = random.uniform(18, 22), gr = random.uniform(0, 0.6), ri = random.uniform(0, 0.3)
        let primary = random.uniform(0.2, 1.0), secondary = random.uniform(0, 0.6) * primary
        let fwhm = random.uniform(0.03, 0.10)
        return Periodic(period: period, phase: phase, meanMagnitude: LightCurveModel.offsets(gr: gr, ri: ri).map { meanR + $0 },
                        primaryDepth: primary, secondaryDepth: secondary,
                        eclipseSigma: fwhm / SpecialFunctions.fwhmPerSigma, isBinary: true)
    }

    /// Phase in [0, 1) at time t.
    func phase(at t: Double) -> Double {
        let value = t / period + phase
        return value - value.rounded(.down)
    }

    /// The magnitude at time t in `band`. Both shapes have their phase average at the
    /// band's mean magnitude (TASKS.md: a mean magnitude is the phase average): the sawtooth
    /// is symmetric about it; the binary's constant level sits below it by the dips' mean.
    func magnitude(at t: Double, band: PhotometricBand) -> Double {
        let psi = phase(at: t)
        let mean = meanMagnitude[band.index]
        if isBinary {
            func dip(_ centre: Double) -> Double {
                var d = psi - centre
                d -= d.rounded()
                return Foundation.exp(-0.5 * d * d / (eclipseSigma * eclipseSigma))
            }
            let dipMean = (primaryDepth + secondaryDepth) * eclipseSigma * (2 * Double.pi).squareRoot()
            return mean - dipMean + primaryDepth * dip(0) + secondaryDepth * dip(0.5)
        }
        let a = amplitude[band.index]
        // Faint (mean + a/2) to bright (mean − a/2) over ρ, back to faint over the rest.
        if psi < riseFraction { return mean + a / 2 - a * psi / riseFraction }
        return mean - a / 2 + a * (psi - riseFraction) / (1 - riseFraction)
    }
}
