import AstroBase
import FITS
import Foundation
import Preprocessing
import SkySim

/// Deblending that ends in a fitted scene (`input.fit_profiles`): the deblender's image of the
/// central galaxy is the starting point of a maximum-likelihood fit of the whole blend, and the
/// output is the fitted central galaxy, PSF-convolved and noiseless.
///
/// The central galaxy starts from the network's image (its light above 1σ of the sky: centroid,
/// flux, second moments with the PSF taken off); the neighbours are the sources of the blend
/// minus that image and of the blend itself (`SourceExtraction`: 1.5σ, 5 pixels, multi-threshold
/// deblending) with signal-to-noise at least `minimumSignalToNoise`, more than `centralRadius`
/// pixels from every other start, each starting as a Sérsic profile (a star's shrinks to the
/// PSF; a faint diffuse galaxy detected as compact pieces needs a profile that can grow).
/// `SceneFit` fits them all to the blend at once under the header's Gaussian PSF with sky and
/// Poisson noise, so the light the neighbours put under the central galaxy goes to their own
/// profiles; sources left in the fit's residual join it (`rounds`), sources inside a brighter
/// profile's light that do not pay for their parameters are taken out (`pruned`), and the
/// central galaxy is the profile most like the network's image (`centralFirst`). A network
/// alone smooths the galaxy's faint wings and leaves a faint pedestal and blotches; the fit
/// gives an image whose every pixel follows a Sérsic profile. It assumes what TASKS.md task 6
/// says: one Sérsic central galaxy, a Gaussian PSF of `PSF_FWHM`, a subtracted sky.
public struct ProfileFitting: Sendable {
    /// How neighbours are found in the blend minus the network's central galaxy.
    public var detection = SourceExtraction()
    /// The least signal-to-noise (summed counts over σ √pixels) of a neighbour that is fitted.
    public var minimumSignalToNoise = 8.0
    /// Sources found closer than this (pixels) to a start are the start's own light.
    public var centralRadius = 2.5
    /// Times the residual of a fit is searched for sources it missed (each found one refits the scene).
    public var rounds = 2

    public init() {}

    /// The scene fitted to `blend` (row-major counts) from the network's `central` image: its
    /// first component is the central galaxy. nil when the network's image holds no light.
    public func fit(blend: [Float], central: [Float], width: Int, height: Int, skySigma: Double, psfSigma: Double,
                    gain: Double?) -> SceneFit.Result? {
        let guess = central.map(Double.init)
        let bright = guess.indices.filter { guess[$0] > skySigma }
        let members = bright.count >= 5 ? bright : guess.indices.filter { guess[$0] > 0 }
        guard var first = FitComponent.measured(guess, members: members, width: width, psfSigma: psfSigma) else { return nil }
        if first.kind == .point {
            first = .sersic(x: first.x, y: first.y, flux: first.flux, halfLightRadius: 1, n: 1.5, q: 1, angle: 0)
        }
        var residual = [Float](repeating: 0, count: blend.count)
        for i in blend.indices { residual[i] = blend[i].isFinite ? blend[i] - central[i] : 0 }
        let clean = blend.map { $0.isFinite ? $0 : 0 }
        let fitter = SceneFit(width: width, height: height, psfSigma: psfSigma, skySigma: skySigma, gain: gain)
        // Neighbours: the sources of the blend minus the network's galaxy, and the blend's own sources away
        // from the central (a network that kept some of a neighbour hides it from the first).
        var scene = [first]
        add(sources(residual, width: width, height: height, skySigma: skySigma, psfSigma: psfSigma), to: &scene)
        add(sources(clean, width: width, height: height, skySigma: skySigma, psfSigma: psfSigma), to: &scene)
        let result = fitScene(scene, blend: blend, clean: clean, like: guess, fitter: fitter)
        guard let fitted = result.components.first, fitted.flux.isFinite, result.chiSquare.isFinite else { return nil }
        return result
    }

    /// A scene fitted from `start`: the fit, then sources its residual still holds added and
    /// the scene refitted (up to `rounds` times), then pruned.
    func fitScene(_ start: [FitComponent], blend: [Float], clean: [Float], like guess: [Double], fitter: SceneFit) -> SceneFit.Result {
        let (width, height) = (fitter.width, fitter.height)
        var result = centralFirst(fitter.fit(blend, from: start), like: guess, fitter: fitter)
        // Sources the fit left in its residual (hidden under a brighter one) join, and the scene is fitted again.
        for _ in 0..<rounds {
            let model = fitter.image(result.components)
            let left = (0..<clean.count).map { clean[$0] - Float(model[$0]) }
            var grown = result.components
            add(sources(left, width: width, height: height, skySigma: fitter.skySigma, psfSigma: fitter.psfSigma), to: &grown)
            if grown.count == result.components.count { break }
            result = centralFirst(fitter.fit(blend, from: grown), like: guess, fitter: fitter)
        }
        return pruned(result, blend: blend, like: guess, fitter: fitter)
    }

    /// `result` without the sources that lie inside a brighter profile's light (within twice
    /// its half-light ellipse, or 3 pixels) and that the blend does not need: each, faintest
    /// first, is taken out and the scene refitted, and it stays out when χ² rises by less than
    /// the Bayesian information criterion's price of its parameters (k ln N). A detection in
    /// the network's residual can split one galaxy into two profiles that fit as well as one,
    /// or leave the central's start a sliver beside the profile that took its light.
    func pruned(_ result: SceneFit.Result, blend: [Float], like guess: [Double], fitter: SceneFit) -> SceneFit.Result {
        func isInside(_ c: FitComponent, _ host: FitComponent) -> Bool {
            guard host.kind == .sersic, host.flux > c.flux else { return false }
            let radius = max(2 * host.halfLightRadius, 3)
            let geometry = EllipseGeometry(centerX: host.x, centerY: host.y, q: host.q, angle: host.angle)
            let (u, v) = geometry.frame(c.x, c.y)
            return geometry.circularRadiusSquared(u: u, v: v) < radius * radius
        }
        var best = result
        var removed = true
        while removed && best.components.count > 1 {
            removed = false
            let candidates = best.components.indices.filter { k in best.components.contains { isInside(best.components[k], $0) } }
                .sorted { best.components[$0].flux < best.components[$1].flux }
            for index in candidates {
                var fewer = best.components
                fewer.remove(at: index)
                let refit = centralFirst(fitter.fit(blend, from: fewer), like: guess, fitter: fitter)
                let price = Double(best.parameters - refit.parameters) * Foundation.log(Double(max(best.pixels, 2)))
                if refit.chiSquare - best.chiSquare < price { best = refit; removed = true; break }
            }
        }
        return best
    }

    /// `result` with the central galaxy first: the Sérsic profile whose image is most like the
    /// network's image of the central galaxy (largest cosine similarity). A fit may hand the
    /// galaxy's light to another start and leave the first one a sliver, and a neighbour may
    /// be brighter or as near the centre.
    func centralFirst(_ result: SceneFit.Result, like guess: [Double], fitter: SceneFit) -> SceneFit.Result {
        func similarity(_ c: FitComponent) -> Double {
            let image = fitter.image([c])
            var dot = 0.0, norm = 0.0
            for i in image.indices { dot += image[i] * guess[i]; norm += image[i] * image[i] }
            return norm > 0 ? dot / norm.squareRoot() : -.infinity
        }
        let scores = result.components.map { $0.kind == .sersic ? similarity($0) : -.infinity }
        guard let index = scores.indices.max(by: { scores[$0] < scores[$1] }), index != 0 else { return result }
        var reordered = result
        reordered.components.swapAt(0, index)
        return reordered
    }

    /// The sources of `pixels` (counts) with at least `minimumSignalToNoise`, as Sérsic starts.
    func sources(_ pixels: [Float], width: Int, height: Int, skySigma: Double, psfSigma: Double) -> [FitComponent] {
        let segmentation = detection.segment(pixels, width: width, height: height, noise: skySigma)
        var groups = [[Int]](repeating: [], count: segmentation.objectCount)
        for (p, label) in segmentation.labels.enumerated() where label > 0 { groups[Int(label) - 1].append(p) }
        let values = pixels.map(Double.init)
        return groups.compactMap { group in
            let signal = group.reduce(0.0) { $0 + values[$1] }
            guard signal >= minimumSignalToNoise * skySigma * Double(group.count).squareRoot() else { return nil }
            return FitComponent.measured(values, members: group, width: width, psfSigma: psfSigma, pointSize: 0)
        }
    }

    /// Appends the `found` sources that are more than `centralRadius` pixels from every component of `scene`.
    func add(_ found: [FitComponent], to scene: inout [FitComponent]) {
        for source in found where scene.allSatisfy({ ($0.x - source.x) * ($0.x - source.x) + ($0.y - source.y) * ($0.y - source.y)
                                                     > centralRadius * centralRadius }) {
            scene.append(source)
        }
    }
}

extension Predictor {
    /// The central galaxy of `sample` (one band, counts) fitted from the network's `central`
    /// image (`ProfileFitting`), with the cards that describe the fit; nil when the network's
    /// image holds no light (the network's image is written then). The PSF comes from
    /// `PSF_FWHM` and `PIXSCALE` (arcsec), the noise from the recipe's noise keyword or
    /// `SKYSIG`; without `GAIN` the Poisson term takes 1 e-/count, said as an assumption.
    func fittedCentral(_ sample: Sample, central: [Float], fitting: ProfileFitting)
        throws -> (image: [Float], cards: [HeaderRecord], assumptions: [Assumption])? {
        let (h, w) = (sample.image.height, sample.image.width)
        func keyword(_ name: String) throws -> Double {
            guard let value = sample.header[name], value.isFinite, value > 0 else {
                throw PipelineError.unsupported("\(sample.name): input.fit_profiles needs the header keyword \(name) "
                                                + "(\(name == "SKYSIG" ? "sky noise, counts" : "arcsec")), which the file "
                                                + "lacks; give it with --set input.header_values.\(name)=VALUE")
            }
            return value
        }
        let scale = try keyword("PIXSCALE")
        let psfSigma = try keyword("PSF_FWHM") / scale / SpecialFunctions.fwhmPerSigma
        let sigma = try sample.header[noiseKeyword].flatMap { $0 > 0 ? $0 : nil } ?? keyword("SKYSIG")
        var assumptions: [Assumption] = []
        let gain: Double
        if let value = sample.header["GAIN"], value > 0 { gain = value } else {
            gain = 1
            assumptions.append(Assumption(subject: "GAIN", note: "no GAIN: the profile fit takes 1 e-/count for the Poisson noise"))
        }
        let blend = Array(sample.image.pixels.prefix(h * w))
        guard let result = fitting.fit(blend: blend, central: central, width: w, height: h,
                                       skySigma: sigma, psfSigma: psfSigma, gain: gain) else { return nil }
        let fitter = SceneFit(width: w, height: h, psfSigma: psfSigma, skySigma: sigma, gain: gain)
        let galaxy = result.components[0]
        let image = fitter.image([galaxy]).map { Float($0) }
        var cards = [
            HeaderRecord("FIT_N", .float(galaxy.n), comment: "fitted Sersic index of the central galaxy"),
            HeaderRecord("FIT_RE", .float(galaxy.halfLightRadius * scale), comment: "fitted half-light radius [arcsec]"),
            HeaderRecord("FIT_Q", .float(galaxy.q), comment: "fitted axis ratio b/a"),
            HeaderRecord("FIT_PA", .float(galaxy.angle * 180 / .pi), comment: "fitted major axis, deg CCW from +x"),
            HeaderRecord("FIT_FLUX", .float(galaxy.flux), comment: "fitted total flux [count]"),
            HeaderRecord("FIT_X", .float(galaxy.x + 1), comment: "fitted centre, FITS pixel (1-based)"),
            HeaderRecord("FIT_Y", .float(galaxy.y + 1), comment: "fitted centre, FITS pixel (1-based)"),
            HeaderRecord("FIT_CHI2", .float(result.reducedChiSquare), comment: "reduced chi-square of the scene fit"),
            HeaderRecord("FIT_NSRC", .integer(result.components.count), comment: "sources fitted (central first)"),
        ]
        if let error = fitter.fluxErrors(blend, at: result.components)?.first,
           error.isFinite {
            cards.insert(HeaderRecord("FIT_MAGE", .float(1.0857362047581294 * error),
                                      comment: "its magnitude's standard error (Fisher, all sources free)"), at: 5)
        }
        if let zeroPoint = HeaderValues.magnitudeZeroPointKeywords.lazy.compactMap({ sample.header[$0] }).first {
            cards.insert(HeaderRecord("FIT_MAG", .float(zeroPoint - 2.5 * Foundation.log10(galaxy.flux)),
                                      comment: "fitted total magnitude at the header's zero point"), at: 5)
        }
        return (image, cards, assumptions)
    }
}

/// The posterior of a bright single Sérsic galaxy from its likelihood (`input.fit_profiles` with
/// a regression posterior model): where the data hold much information, a fit of the exact
/// forward model gets closer to what they allow than the network (docs/results.md: the network's
/// medians at mag 17–19 sit 1.1–1.2× the Bayesian reach, a profile fit at it).
///
/// For a row the network puts at most at `faintest` mag, with none of the domain flags
/// (`neighbours`, `sky`, … : the fit assumes one galaxy on a clean sky), `SceneFit` fits a
/// PSF-convolved Sérsic profile drawn as a Gaussian mixture (`SersicMixture`) to the matched
/// image (counts, the header's PSF, sky noise and the Poisson noise at `GAIN`, 1 e-/count
/// without it), started from the network's medians at the light's centroid and angle. The
/// posterior is that likelihood's Laplace approximation, made a split normal along its principal
/// axes by χ² probed `probe` standard deviations out (`SceneFit.laplaceDraws`), times a prior
/// flat in each target over the model's ranges (TASKS.md draws them uniformly; the position
/// angle uniform too): `proposals` draws weighted by the prior (truncated importance weights,
/// Ionides 2008: at most √proposals times their mean), resampled to the model's draws (the run
/// reports them with the recipe's `intervalScales[source]`, `Predictor.reported`). A fit that
/// does not converge, whose reduced χ² exceeds `largestReducedChiSquare` (a galaxy the profile
/// does not describe), or whose weights leave fewer than `smallestEffectiveDraws` keeps the
/// network's posterior.
public struct ProfileRefinement: Equatable, Sendable {
    /// Rows whose network median magnitude is at most this are fitted.
    public var faintest = 19.5
    public var largestReducedChiSquare = 1.15
    public var proposals = 1000
    public var probe = 2.0
    public var smallestEffectiveDraws = 100.0
    /// The `Assumption` subject of a refined row.
    public static let subject = "profile fit"
    /// A refined row's `PosteriorEstimate.source` (`posterior_from`), and the key of its interval
    /// factors in the recipe's `intervalScales` (fitted as the flow's, scripts/record_observation.py).
    public static let source = "profile_fit"

    public init() {}

    /// Whether a row with the network's `estimate` (targets `names`) is bright enough to fit.
    func accepts(_ estimate: PosteriorEstimate, names: [String]) -> Bool {
        guard let m = names.firstIndex(of: "mag"), m < estimate.medians.count else { return false }
        return estimate.medians[m] <= faintest
    }
}

extension Predictor {
    /// `estimate` of `matched` (one band, counts after observation matching) refined by
    /// `ProfileRefinement`, with the notes that say so (and the gain it assumed); nil where the
    /// row keeps the network's posterior (too faint, no PSF or noise in the header, a fit that
    /// failed its checks).
    func refined(_ estimate: PosteriorEstimate, matched: Sample, refinement: ProfileRefinement, seed: UInt64)
        -> (estimate: PosteriorEstimate, notes: [Assumption])? {
        guard let recipe, let observation = recipe.observation, matched.image.channels == 1 else { return nil }
        let scaling = recipe.targetScaling, names = scaling.names
        guard Set(names) == Set(SkyFitting.targets), names.count == SkyFitting.targets.count else { return nil }
        let index = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
        let (iN, iR, iQ, iM) = (index["sersic_n"]!, index["r_e"]!, index["q"]!, index["mag"]!)
        guard refinement.accepts(estimate, names: names),
              let fwhm = HeaderValues.psfFWHM(matched.header), fwhm > 0,
              let sigma = matched.header[noiseKeyword] ?? matched.header["SKYSIG"], sigma > 0 else { return nil }
        let scale = HeaderValues.pixelScale(matched.header) ?? observation.pixelScale
        let headerGain = matched.header["GAIN"].flatMap { $0 > 0 ? $0 : nil }
        let gain = headerGain ?? 1
        let (h, w) = (matched.image.height, matched.image.width)
        let pixels = Array(matched.image.pixels.prefix(h * w))
        guard let start = SkyFitting.galaxy(estimate.medians, names: names, image: matched.image, pixelScale: scale,
                                            zeroPoint: observation.zeroPoint, border: 8) else { return nil }
        var fitter = SceneFit.drawingMixtures(width: w, height: h, psfSigma: fwhm / scale / SpecialFunctions.fwhmPerSigma,
                                              skySigma: sigma, gain: gain)
        fitter.iterations = 40
        let first = FitComponent.sersic(x: start.geometry.centerX, y: start.geometry.centerY, flux: start.flux,
                                        halfLightRadius: start.halfLightRadius, n: min(max(start.n, SersicMixture.indices.lowerBound),
                                                                                       SersicMixture.indices.upperBound),
                                        q: start.geometry.q, angle: start.geometry.angle)
        let fit = fitter.fit(pixels, from: [first])
        guard fit.converged, fit.reducedChiSquare <= refinement.largestReducedChiSquare else { return nil }
        var generator = SeededGenerator(seed: seed)
        guard let draws = fitter.laplaceDraws(pixels, at: fit.components[0], fit: fit, count: refinement.proposals,
                                              probe: refinement.probe, generator: &generator) else { return nil }
        // Each draw in catalog units, and its prior weight (zero outside the model's ranges).
        func range(_ k: Int) -> ClosedRange<Double> {
            guard let r = scaling.learnedRange(k) else { return -Double.infinity...Double.infinity }
            return scaling.isLogarithmic(k) ? Foundation.pow(10, r.lo)...Foundation.pow(10, r.hi) : r.lo...r.hi
        }
        let ranges = names.indices.map(range)
        var values = [[Double]](), logWeights = [Double]()
        for draw in draws {
            var v = [Double](repeating: 0, count: names.count)
            v[iN] = draw.galaxy.n; v[iR] = draw.galaxy.halfLightRadius * scale; v[iQ] = draw.galaxy.q
            v[iM] = observation.zeroPoint - 2.5 * Foundation.log10(draw.galaxy.flux)
            guard v.indices.allSatisfy({ ranges[$0].contains(v[$0]) }), draw.logVolume.isFinite else { continue }
            values.append(v); logWeights.append(draw.logVolume)
        }
        guard let top = logWeights.max() else { return nil }
        var weights = logWeights.map { Foundation.exp($0 - top) }
        let cap = weights.reduce(0, +) / Double(refinement.proposals) * Double(refinement.proposals).squareRoot()
        weights = weights.map { min($0, cap) }
        let total = weights.reduce(0, +), squares = weights.reduce(0) { $0 + $1 * $1 }
        guard total > 0, total * total / squares >= refinement.smallestEffectiveDraws else { return nil }
        // Systematic resampling to the model's number of draws, standardised as the flow's draws are.
        let count = posteriorDraws, k = names.count
        var standardized = [Float](repeating: 0, count: count * k)
        var cumulative = weights[0] / total, j = 0
        let offset = generator.uniform()
        for i in 0..<count {
            let u = (Double(i) + offset) / Double(count)
            while u > cumulative && j < weights.count - 1 { j += 1; cumulative += weights[j] / total }
            for t in 0..<k { standardized[i * k + t] = Float(scaling.standardizedValue(values[j][t], target: t)) }
        }
        var refined = standardized.withUnsafeBufferPointer { scaling.posterior($0, keepSamples: keptPosteriorSamples) }
        refined.featureDistance = estimate.featureDistance
        refined.source = ProfileRefinement.source
        let note = Assumption(subject: ProfileRefinement.subject, note: String(format:
            "posterior from a Sérsic profile fit (Gaussian-mixture profile under the header's PSF and noise, reduced "
            + "chi-square %.3f) and flat priors over the model's ranges, not the network's: the network put it at mag %.2f",
            fit.reducedChiSquare, estimate.medians[iM]))
        let assumed = headerGain == nil
            ? [Assumption(subject: "GAIN", note: "no GAIN: the profile fit takes 1 e-/count for the Poisson noise")] : []
        return (refined, [note] + assumed)
    }
}
