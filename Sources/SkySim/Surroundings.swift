// Neighbours and cut-off light: what real survey cutouts have around the object and
// TASKS.md's cutouts do not. Off by default.
import AstroBase
import FITS
import Foundation

/// Per-cutout probabilities of two things real single-object cutouts have that TASKS.md's do
/// not; zero (TASKS.md) by default. The draws come from a stream of their own, so a data set
/// with both off is byte-identical to TASKS.md's, and one with them on has the same central
/// objects, PSFs and noise levels as the plain set of the same seed.
public struct CutoutSurroundings: Sendable, Equatable {
    /// Probability of neighbours: 1 to 3 (equal odds), each a star (30 %, m 16-22) or a Sérsic
    /// galaxy (n 0.5-5, r_e 0.3-2", q 0.3-1, m 17-23) centred 2-8" from the object in a
    /// uniform direction (it may run off the cutout), through the same PSF.
    public var neighbours: Double
    /// Probability that the object's light is cut off outside a circle round its centre that
    /// keeps 85-99 % of its light in the cutout, as a mask round a neighbour or the edge of
    /// the image the cutout came from does: beyond it there is sky noise only.
    public var truncation: Double

    public init(neighbours: Double = 0, truncation: Double = 0) {
        self.neighbours = neighbours
        self.truncation = truncation
    }

    public var isEmpty: Bool { neighbours == 0 && truncation == 0 }

    /// Neighbour kinds, magnitudes and distances (arcsec); the light kept by a truncation.
    static let starFraction = 0.3
    static let starMagnitudes = 16.0...22.0
    static let galaxyMagnitudes = 17.0...23.0
    static let distances = 2.0...8.0
    static let keptLight = 0.85...0.99

    /// Adds the surroundings drawn for image `index` to the noiseless cutout `image` (the
    /// object alone, centred at pixel (`cx`, `cy`), 0-based), rendered through the image's
    /// own PSF; returns the cards that record them (none when nothing was drawn).
    func apply(to image: inout [Double], cx: Double, cy: Double, observation: SingleBandObservation,
               settings: ObservationSettings, seed: UInt64, index: Int, size: Int) -> [HeaderRecord] {
        guard !isEmpty else { return [] }
        var random = SeededGenerator(seed: seed ^ 0x5355_5252_4F55_4E44, stream: UInt64(index))  // "SURROUND"
        let truncate = random.uniform() < truncation
        let neighbourCount = random.uniform() < neighbours ? random.integer(1...3) : 0
        var cards: [HeaderRecord] = []
        if truncate {
            let kept = random.uniform(Self.keptLight)
            let radius = Self.cutOff(&image, cx: cx, cy: cy, size: size, keeping: kept)
            cards += [HeaderRecord("TRUNC_R", .float(radius * settings.pixelScale), comment: "object's light cut off beyond this radius [arcsec]"),
                      HeaderRecord("TRUNC_F", .float(kept), comment: "fraction of the object's cutout light kept")]
        }
        guard neighbourCount > 0 else { return cards }
        var components: [SceneComponent] = []
        cards.append(HeaderRecord("NNEIGH", .integer(neighbourCount), comment: "number of neighbours"))
        for k in 1...neighbourCount {
            let isStar = random.uniform() < Self.starFraction
            let distance = settings.pixels(random.uniform(Self.distances)), direction = random.uniform(0, 2 * Double.pi)
            let x = cx + distance * Foundation.cos(direction), y = cy + distance * Foundation.sin(direction)
            let magnitude = random.uniform(isStar ? Self.starMagnitudes : Self.galaxyMagnitudes)
            let flux = settings.flux(magnitude: magnitude)
            if isStar {
                components.append(.gaussian(GaussianBlob(centerX: x, centerY: y, sigma: 0, flux: flux)))
            } else {
                let n = random.uniform(0.5, 5), re = random.uniform(0.3, 2.0), q = random.uniform(0.3, 1.0)
                let geometry = EllipseGeometry(centerX: x, centerY: y, q: q, angle: random.positionAngle())
                components.append(.sersic(SersicProfile(n: n, halfLightRadius: settings.pixels(re), flux: flux, geometry: geometry)))
            }
            cards += DeblendScene.neighbourCards(k, isStar: isStar, magnitude: magnitude, x: x, y: y)
        }
        let light = observation.render(components, settings: settings, seed: seed, index: index, size: size).image
        for i in image.indices { image[i] += light[i] }
        return cards
    }

    /// Sets to zero every pixel of `image` whose centre lies farther from (`cx`, `cy`) than
    /// the radius holding the fraction `kept` of the image's light; returns that radius (pixels).
    static func cutOff(_ image: inout [Double], cx: Double, cy: Double, size: Int, keeping kept: Double) -> Double {
        var pixels = image.indices.map { i -> (r2: Double, flux: Double) in
            let dy = Double(i / size) - cy, dx = Double(i % size) - cx
            return (dx * dx + dy * dy, max(image[i], 0))
        }
        pixels.sort { $0.r2 < $1.r2 }
        let total = pixels.reduce(0) { $0 + $1.flux }
        var sum = 0.0, limit = pixels.last?.r2 ?? 0
        for p in pixels {
            sum += p.flux
            if sum >= kept * total { limit = p.r2; break }
        }
        for i in image.indices {
            let dy = Double(i / size) - cy, dx = Double(i % size) - cx
            if dx * dx + dy * dy > limit { image[i] = 0 }
        }
        return limit.squareRoot()
    }
}
