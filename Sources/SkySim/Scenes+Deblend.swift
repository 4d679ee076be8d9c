// Task 6 (deblend) scenes: a central Sérsic galaxy blended with one or two neighbours.
import AstroBase
import FITS
import Foundation

/// Builds deblending cutouts (TASKS.md task 6): the central galaxy (n [0.5, 6], r_e
/// [0.3, 2.0] arcsec, q [0.3, 1], m [18, 21] or `galaxyMagnitudes`, centred within ±2 px) and
/// 1 or 2 neighbours (equal odds), each a star (probability 0.2, m [16, 22] or
/// `starMagnitudes`) or a Sérsic galaxy from the central's population with m 0.5 mag fainter
/// at both ends ([17.5, 22.5] by default), at a distance uniform in [1, 5] arcsec from the
/// central's centre in a uniform direction. The `TRUTH` extension holds the central galaxy
/// alone, noiseless and PSF-convolved, rendered on the same grid as the blend (the blend's
/// noiseless image is exactly TRUTH plus the neighbours).
enum DeblendScene {
    /// The cards of neighbour `k`: kind, magnitude and centre (FITS pixel, 1-based, from the
    /// 0-based `x`, `y`); cutouts with `CutoutSurroundings` neighbours write the same.
    static func neighbourCards(_ k: Int, isStar: Bool, magnitude: Double, x: Double, y: Double) -> [HeaderRecord] {
        [HeaderRecord("NB\(k)_TYP", .string(isStar ? "star" : "galaxy"), comment: "neighbour \(k) kind"),
         HeaderRecord("NB\(k)_MAG", .float(magnitude), comment: "neighbour \(k) magnitude"),
         HeaderRecord("NB\(k)_X", .float(x + 1), comment: "neighbour \(k) centre, FITS pixel (1-based)"),
         HeaderRecord("NB\(k)_Y", .float(y + 1), comment: "neighbour \(k) centre, FITS pixel (1-based)")]
    }

    static func make(index: Int, seed: UInt64, settings: ObservationSettings, size: Int,
                     keepNoiseless: Bool = false) -> SimulatedImage {
        var random = SeededGenerator(seed: seed, stream: UInt64(index))
        let observation = SingleBandObservation(settings, &random)
        let px = settings.pixels
        let cx = Double(size - 1) / 2 + random.uniform(-2, 2)
        let cy = Double(size - 1) / 2 + random.uniform(-2, 2)
        let centralMagnitudes = settings.galaxyMagnitudes ?? 18...21
        let neighbourMagnitudes = (centralMagnitudes.lowerBound - 0.5)...(centralMagnitudes.upperBound + 1.5)
        func galaxy(x: Double, y: Double, magnitudes: ClosedRange<Double>)
            -> (SceneComponent, n: Double, re: Double, q: Double, angle: Double, mag: Double) {
            let n = random.uniform(0.5, 6.0), re = random.uniform(0.3, 2.0), q = random.uniform(0.3, 1.0)
            let mag = random.uniform(magnitudes)
            let geometry = EllipseGeometry(centerX: x, centerY: y, q: q, angle: random.positionAngle())
            return (.sersic(SersicProfile(n: n, halfLightRadius: px(re), flux: settings.flux(magnitude: mag), geometry: geometry)),
                    n, re, q, geometry.angle, mag)
        }
        let central = galaxy(x: cx, y: cy, magnitudes: centralMagnitudes)
        let neighbourCount = random.uniform() < 0.5 ? 1 : 2
        var neighbours: [SceneComponent] = []
        var neighbourCards: [HeaderRecord] = []
        for k in 1...neighbourCount {
            let isStar = random.uniform() < 0.2
            let distance = px(random.uniform(1.0, 5.0)), direction = random.uniform(0, 2 * Double.pi)
            let x = cx + distance * Foundation.cos(direction), y = cy + distance * Foundation.sin(direction)
            let mag: Double
            if isStar {
                mag = random.uniform(settings.starMagnitudes ?? 16...22)
                neighbours.append(.gaussian(GaussianBlob(centerX: x, centerY: y, sigma: 0, flux: settings.flux(magnitude: mag))))
            } else {
                let g = galaxy(x: x, y: y, magnitudes: neighbourMagnitudes)
                neighbours.append(g.0)
                mag = g.mag
                neighbourCards.append(HeaderRecord("NB\(k)_N", .float(g.n), comment: "neighbour \(k) Sersic index"))
                neighbourCards.append(HeaderRecord("NB\(k)_RE", .float(g.re), comment: "neighbour \(k) half-light radius [arcsec]"))
            }
            neighbourCards += Self.neighbourCards(k, isStar: isStar, magnitude: mag, x: x, y: y)
        }
        let renderer = Renderer(width: size, height: size, psfSigma: observation.psfSigma, components: [central.0] + neighbours)
        let truth = renderer.render([central.0])
        let others = renderer.render(neighbours)
        let clean = zip(truth, others).map { $0 + $1 }
        let pixels = NoiseModel.noisy(clean, skySigma: observation.skySigma, gain: settings.gain, random: &random)
        let centralCards = MorphologyScene.shapeCards(n: central.n, re: central.re, q: central.q, angle: central.angle) + [
            HeaderRecord("MAG", .float(central.mag), comment: "central galaxy total magnitude (untruncated model)"),
            HeaderRecord("NNEIGH", .integer(neighbourCount), comment: "number of neighbours"),
            HeaderRecord("OBJ_X", .float(cx + 1), comment: "central galaxy centre, FITS pixel (1-based)"),
            HeaderRecord("OBJ_Y", .float(cy + 1), comment: "central galaxy centre, FITS pixel (1-based)"),
        ]
        let header = provenanceCards(task: .deblend, seed: seed, index: index)
            + settings.commonCards(psfFWHM: observation.fwhm, skySigma: observation.skySigma) + centralCards + neighbourCards
        var image = SimulatedImage(fileName: String(format: "deblend_%06d.fits", index), pixels: pixels, shape: [size, size],
                                   header: header, truth: nil,
                                   catalogFields: [central.n, central.re, central.q, central.mag].map(catalogNumber)
                                       + [String(neighbourCount)],
                                   label: nil, caption: String(format: "M%.1f N%d", central.mag, neighbourCount),
                                   noiseless: keepNoiseless ? clean : nil)
        image.truthImage = truth.map { Float($0) }
        image.truthHeader = [HeaderRecord("BUNIT", .string("count"), comment: "central galaxy alone, noiseless, PSF-convolved")]
            + centralCards
        return image
    }
}
