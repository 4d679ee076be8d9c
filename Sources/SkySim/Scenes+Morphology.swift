// Task 1 (morphology) and task 4 (regression) scenes: single-band 64 x 64 cutouts.
import AstroBase
import FITS
import Foundation

/// The choices TASKS.md leaves open for morphology irregulars (2-3 Sérsic components 0.5-2.5
/// mean r_e apart, up to 5 clumps).
public enum IrregularLayout: String, CaseIterable, Sendable {
    /// Component weights uniform in [0.3, 1] before normalising (no component under 13 % of
    /// the light), each centre placed from the previous one (a chain), clumps 0.2-1.5 r_e from
    /// their host's centre.
    case standard
    /// Light split uniformly over the simplex (a component may hold nearly all of it), each
    /// centre placed from a random earlier one, clumps uniform in area within 1.5 r_e of their
    /// host: training data that covers other readings of TASKS.md.
    case varied
}

/// Builds morphology cutouts: elliptical, spiral, edge-on, irregular, star; with
/// `settings.outside` also galaxies of none of these classes (`OutsideClass`).
enum MorphologyScene {
    /// Kinds of galaxies outside the five classes (`OUTKIND`).
    static let outsideKinds = ["s0", "clumpy_spiral"]

    static func make(index: Int, seed: UInt64, settings: ObservationSettings, size: Int,
                     keepNoiseless: Bool = false, forcedLabel: Int? = nil) -> SimulatedImage {
        var random = SeededGenerator(seed: seed, stream: UInt64(index))
        let label = random.integer(0...4)
        let observation = SingleBandObservation(settings, &random)
        // Drawn only when asked for, so TASKS.md data sets stay byte-identical.
        let outsideKind = settings.outside > 0 && random.uniform() < settings.outside ? random.integer(0...1) : nil
        let chosen = outsideKind != nil ? OutsideClass.label : forcedLabel ?? label
        let cx = Double(size - 1) / 2 + random.uniform(-2, 2)
        let cy = Double(size - 1) / 2 + random.uniform(-2, 2)
        let magnitude = random.uniform(chosen == 4 ? settings.starMagnitudes ?? 16...21
                                                   : settings.galaxyMagnitudes ?? 17...21)
        let flux = settings.flux(magnitude: magnitude)
        let px = settings.pixels
        var cards: [HeaderRecord] = []
        var components: [SceneComponent] = []

        switch chosen {
        case OutsideClass.label:
            components = outside(kind: outsideKind!, cx: cx, cy: cy, flux: flux, settings: settings, random: &random, cards: &cards)
        case 0:  // elliptical
            let n = random.uniform(3, 5), re = random.uniform(0.5, 2.0), q = random.uniform(0.6, 1.0)
            let geometry = EllipseGeometry(centerX: cx, centerY: cy, q: q, angle: random.positionAngle())
            components = [.sersic(SersicProfile(n: n, halfLightRadius: px(re), flux: flux, geometry: geometry))]
            cards = shapeCards(n: n, re: re, q: q, angle: geometry.angle)
        case 1:
            components = spiral(cx: cx, cy: cy, flux: flux, settings: settings, random: &random, cards: &cards).components
        case 2:  // edge-on
            let re = random.uniform(1.0, 3.0), q = random.uniform(0.10, 0.25)
            let geometry = EllipseGeometry(centerX: cx, centerY: cy, q: q, angle: random.positionAngle())
            components = [.sersic(SersicProfile(n: 1, halfLightRadius: px(re), flux: flux, geometry: geometry))]
            cards = shapeCards(n: 1, re: re, q: q, angle: geometry.angle)
        case 3:
            components = irregular(cx: cx, cy: cy, flux: flux, settings: settings, random: &random, cards: &cards)
        default:  // star
            components = [.gaussian(GaussianBlob(centerX: cx, centerY: cy, sigma: 0, flux: flux))]
        }

        let rendered = observation.render(components, settings: settings, seed: seed, index: index, size: size)
        var clean = rendered.image
        let surroundingCards = settings.surroundings.apply(to: &clean, cx: cx, cy: cy, observation: observation,
                                                           settings: settings, seed: seed, index: index, size: size)
        let pixels = NoiseModel.noisy(clean, skySigma: observation.skySigma, gain: settings.gain, random: &random)
        let name = chosen == OutsideClass.label ? OutsideClass.name : SimulationTask.morphology.classNames[chosen]
        let header = provenanceCards(task: .morphology, seed: seed, index: index)
            + settings.commonCards(psfFWHM: observation.fwhm, skySigma: observation.skySigma) + [
                HeaderRecord("LABEL", .integer(chosen), comment: "0 elliptical 1 spiral 2 edge_on 3 irregular 4 star -1 outside"),
                HeaderRecord("CLASS", .string(name), comment: "morphology class"),
                HeaderRecord("MAG", .float(magnitude), comment: "total magnitude (untruncated model)"),
                HeaderRecord("OBJ_X", .float(cx + 1), comment: "object centre, FITS pixel (1-based)"),
                HeaderRecord("OBJ_Y", .float(cy + 1), comment: "object centre, FITS pixel (1-based)"),
            ] + cards + rendered.psfCards + surroundingCards
        return SimulatedImage(fileName: String(format: "morphology_%06d.fits", index), pixels: pixels,
                              shape: [size, size], header: header, truth: nil,
                              catalogFields: [chosen == OutsideClass.label ? OutsideClass.name : String(chosen)], label: chosen, caption: name,
                              noiseless: keepNoiseless ? clean : nil)
    }

    /// A task-1 spiral: an exponential disk (returned too) with 2-4 logarithmic arms and a bulge
    /// of up to 30 %.
    static func spiral(cx: Double, cy: Double, flux: Double, settings: ObservationSettings,
                       random: inout SeededGenerator, cards: inout [HeaderRecord])
        -> (components: [SceneComponent], disk: SersicProfile) {
        let px = settings.pixels
        let re = random.uniform(1.0, 3.0), q = random.uniform(0.5, 1.0), angle = random.positionAngle()
        let arms = random.integer(2...4), pitch = random.uniform(10, 30), armFraction = random.uniform(0.2, 0.5)
        let sharpness = random.integer(2...6), phase = random.uniform(0, 2 * Double.pi)
        let chirality = random.uniform() < 0.5 ? 1.0 : -1.0  // S- and Z-shaped winding alike
        let bulgeRe = random.uniform(0.2, 0.5), bulgeToTotal = random.uniform(0, 0.3)
        let bulgeQ = random.uniform(max(q, 0.7), 1.0)
        let transition = random.uniform(0.3, 0.6) * px(re) / q.squareRoot()
        let disk = SersicProfile(n: 1, halfLightRadius: px(re), flux: flux * (1 - bulgeToTotal),
                                 geometry: EllipseGeometry(centerX: cx, centerY: cy, q: q, angle: angle))
        var components: [SceneComponent] = [
            .spiral(SpiralDisk(disk: disk, armCount: arms, pitch: chirality * pitch * Double.pi / 180, phase: phase,
                               sharpness: sharpness, armFraction: armFraction, transitionRadius: transition))]
        if bulgeToTotal > 0 {
            components.append(.sersic(SersicProfile(n: 4, halfLightRadius: px(bulgeRe), flux: flux * bulgeToTotal,
                geometry: EllipseGeometry(centerX: cx, centerY: cy, q: bulgeQ, angle: angle))))
        }
        cards = shapeCards(n: 1, re: re, q: q, angle: angle) + [
            HeaderRecord("NARMS", .integer(arms), comment: "spiral arms"),
            HeaderRecord("PITCH", .float(pitch), comment: "arm pitch angle [deg]"),
            HeaderRecord("WINDING", .integer(Int(chirality)), comment: "arm winding sense (+1 or -1)"),
            HeaderRecord("ARMFRAC", .float(armFraction), comment: "fraction of disk light in the arm term"),
            HeaderRecord("BT", .float(bulgeToTotal), comment: "bulge-to-total flux ratio"),
            HeaderRecord("BULGE_RE", .float(bulgeRe), comment: "bulge r_e (n = 4) [arcsec]"),
        ]
        return (components, disk)
    }

    /// A galaxy of none of the five classes, as real surveys have them: kind 0 an S0 (a
    /// bulge of n 2.5-5 holding 20-70 % of the light on an exponential disk without arms, at any
    /// inclination), kind 1 a clumpy spiral (a task-1 spiral with 3-8 star-forming clumps of
    /// 2-7 % of the light each, spread like the disk's light).
    static func outside(kind: Int, cx: Double, cy: Double, flux: Double, settings: ObservationSettings,
                        random: inout SeededGenerator, cards: inout [HeaderRecord]) -> [SceneComponent] {
        let px = settings.pixels
        var components: [SceneComponent]
        if kind == 0 {
            let re = random.uniform(1.2, 3.5), q = random.uniform(0.25, 1.0), angle = random.positionAngle()
            let bulgeToTotal = random.uniform(0.2, 0.7), bulgeN = random.uniform(2.5, 5)
            let bulgeRe = random.uniform(0.25, 0.4) * re, bulgeQ = random.uniform(max(q, 0.6), 1.0)
            components = [
                .sersic(SersicProfile(n: 1, halfLightRadius: px(re), flux: flux * (1 - bulgeToTotal),
                                      geometry: EllipseGeometry(centerX: cx, centerY: cy, q: q, angle: angle))),
                .sersic(SersicProfile(n: bulgeN, halfLightRadius: px(bulgeRe), flux: flux * bulgeToTotal,
                                      geometry: EllipseGeometry(centerX: cx, centerY: cy, q: bulgeQ, angle: angle))),
            ]
            cards = shapeCards(n: 1, re: re, q: q, angle: angle) + [
                HeaderRecord("BT", .float(bulgeToTotal), comment: "bulge-to-total flux ratio"),
                HeaderRecord("BULGE_N", .float(bulgeN), comment: "bulge Sersic index"),
                HeaderRecord("BULGE_RE", .float(bulgeRe), comment: "bulge r_e [arcsec]"),
            ]
        } else {
            let clumpCount = random.integer(3...8)
            let clumpFractions = (0..<clumpCount).map { _ in random.uniform(0.02, 0.07) }
            let clumpFlux = clumpFractions.reduce(0, +) * flux
            let disk: SersicProfile
            (components, disk) = spiral(cx: cx, cy: cy, flux: flux - clumpFlux, settings: settings, random: &random, cards: &cards)
            let q = disk.geometry.q, angle = disk.geometry.angle
            let scale = disk.halfLightRadius / disk.b  // the disk's exponential scale length (n = 1: I ∝ e^{-b r / r_e})
            for fraction in clumpFractions {
                // Radius drawn with the disk's light (r e^{-r/h}: the sum of two exponentials).
                let r = scale * (random.exponential() + random.exponential())
                let direction = random.uniform(0, 2 * Double.pi)
                // The radius is circularised: stretch it along the major axis, squeeze it along the minor.
                let x = r * Foundation.cos(direction) / q.squareRoot(), y = r * Foundation.sin(direction) * q.squareRoot()
                components.append(.gaussian(GaussianBlob(
                    centerX: cx + x * Foundation.cos(angle) - y * Foundation.sin(angle),
                    centerY: cy + x * Foundation.sin(angle) + y * Foundation.cos(angle),
                    sigma: px(random.uniform(0.03, 0.15)), flux: flux * fraction)))
            }
            cards.append(HeaderRecord("NCLUMP", .integer(clumpCount), comment: "star-forming clumps"))
        }
        cards.append(HeaderRecord("OUTKIND", .string(outsideKinds[kind]), comment: "galaxy of none of the five classes"))
        return components
    }

    /// 2-3 overlapping Sérsic components 0.5-2.5 mean r_e apart, plus up to 5 Gaussian clumps.
    static func irregular(cx: Double, cy: Double, flux: Double, settings: ObservationSettings,
                          random: inout SeededGenerator, cards: inout [HeaderRecord]) -> [SceneComponent] {
        let count = random.integer(2...3)
        let ns = (0..<count).map { _ in random.uniform(0.5, 2.0) }
        let radii = (0..<count).map { _ in settings.pixels(random.uniform(0.3, 1.5)) }
        let qs = (0..<count).map { _ in random.uniform(0.3, 1.0) }
        let angles = (0..<count).map { _ in random.positionAngle() }
        let meanRadius = radii.reduce(0, +) / Double(count)
        var positions = [(0.0, 0.0)]
        let varied = settings.irregulars == .varied
        for _ in 1..<count {
            let distance = random.uniform(0.5, 2.5) * meanRadius, direction = random.uniform(0, 2 * Double.pi)
            let base = positions[varied ? random.integer(0...(positions.count - 1)) : positions.count - 1]
            positions.append((base.0 + distance * Foundation.cos(direction), base.1 + distance * Foundation.sin(direction)))
        }
        let clumpCount = random.integer(0...5)
        let clumpFractions = (0..<clumpCount).map { _ in random.uniform(0.02, 0.08) }
        // Varied: uniform over the simplex (Dirichlet(1)), so one component may hold nearly all the light.
        let weights = (0..<count).map { _ in varied ? random.exponential() : random.uniform(0.3, 1.0) }
        let componentFlux = flux * (1 - clumpFractions.reduce(0, +))
        let fluxes = weights.map { componentFlux * $0 / weights.reduce(0, +) }
        var clumps: [(Double, Double, Double, Double)] = []  // x, y, sigma, flux
        for fraction in clumpFractions {
            let host = random.integer(0...(count - 1))
            let r = (varied ? 1.5 * random.uniform().squareRoot() : random.uniform(0.2, 1.5)) * radii[host]
            let direction = random.uniform(0, 2 * Double.pi)
            clumps.append((positions[host].0 + r * Foundation.cos(direction), positions[host].1 + r * Foundation.sin(direction),
                           settings.pixels(random.uniform(0.03, 0.12)), flux * fraction))
        }
        // Put the light-weighted centre at (cx, cy).
        var mx = 0.0, my = 0.0
        for i in 0..<count { mx += fluxes[i] * positions[i].0; my += fluxes[i] * positions[i].1 }
        for c in clumps { mx += c.3 * c.0; my += c.3 * c.1 }
        let dx = cx - mx / flux, dy = cy - my / flux
        var components: [SceneComponent] = (0..<count).map { i in
            .sersic(SersicProfile(n: ns[i], halfLightRadius: radii[i], flux: fluxes[i],
                                  geometry: EllipseGeometry(centerX: positions[i].0 + dx, centerY: positions[i].1 + dy,
                                                            q: qs[i], angle: angles[i])))
        }
        components += clumps.map { .gaussian(GaussianBlob(centerX: $0.0 + dx, centerY: $0.1 + dy, sigma: $0.2, flux: $0.3)) }
        cards = [HeaderRecord("NCOMP", .integer(count), comment: "Sersic components"),
                 HeaderRecord("NCLUMP", .integer(clumpCount), comment: "star-forming clumps")]
        return components
    }

    static func shapeCards(n: Double, re: Double, q: Double, angle: Double) -> [HeaderRecord] {
        [HeaderRecord("SERSIC_N", .float(n), comment: "Sersic index"),
         HeaderRecord("R_E", .float(re), comment: "circularised half-light radius [arcsec]"),
         HeaderRecord("Q", .float(q), comment: "axis ratio b/a"),
         HeaderRecord("PA", .float(angle * 180 / Double.pi), comment: "major axis from +x, counter-clockwise [deg]")]
    }
}

/// Builds regression cutouts: one Sérsic galaxy with its parameters as truth.
enum RegressionScene {
    static func make(index: Int, seed: UInt64, settings: ObservationSettings, size: Int,
                     keepNoiseless: Bool = false) -> SimulatedImage {
        var random = SeededGenerator(seed: seed, stream: UInt64(index))
        let observation = SingleBandObservation(settings, &random)
        let cx = Double(size - 1) / 2 + random.uniform(-2, 2)
        let cy = Double(size - 1) / 2 + random.uniform(-2, 2)
        let n = random.uniform(0.5, 6.0), re = random.uniform(0.3, 3.0), q = random.uniform(0.2, 1.0)
        let magnitude = random.uniform(settings.galaxyMagnitudes ?? 17...22)
        let geometry = EllipseGeometry(centerX: cx, centerY: cy, q: q, angle: random.positionAngle())
        let components: [SceneComponent] = [.sersic(SersicProfile(n: n, halfLightRadius: settings.pixels(re),
                                                                  flux: settings.flux(magnitude: magnitude), geometry: geometry))]
        let rendered = observation.render(components, settings: settings, seed: seed, index: index, size: size)
        var clean = rendered.image
        let surroundingCards = settings.surroundings.apply(to: &clean, cx: cx, cy: cy, observation: observation,
                                                           settings: settings, seed: seed, index: index, size: size)
        let pixels = NoiseModel.noisy(clean, skySigma: observation.skySigma, gain: settings.gain, random: &random)
        let header = provenanceCards(task: .regression, seed: seed, index: index)
            + settings.commonCards(psfFWHM: observation.fwhm, skySigma: observation.skySigma)
            + MorphologyScene.shapeCards(n: n, re: re, q: q, angle: geometry.angle) + [
                HeaderRecord("MAG", .float(magnitude), comment: "total magnitude (untruncated model)"),
                HeaderRecord("OBJ_X", .float(cx + 1), comment: "object centre, FITS pixel (1-based)"),
                HeaderRecord("OBJ_Y", .float(cy + 1), comment: "object centre, FITS pixel (1-based)"),
            ] + rendered.psfCards + surroundingCards
        let caption = String(format: "N%.1f R%.2f Q%.2f", n, re, q)
        return SimulatedImage(fileName: String(format: "regression_%06d.fits", index), pixels: pixels,
                              shape: [size, size], header: header, truth: nil,
                              catalogFields: [n, re, q, magnitude].map(catalogNumber), label: nil,
                              caption: caption, noiseless: keepNoiseless ? clean : nil)
    }
}
