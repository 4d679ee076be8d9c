// Task 3 (segmentation) scenes: sky maps of stars and galaxies with a per-pixel class map.
import AstroBase
import FITS
import Foundation

/// A source placed on a sky map.
public struct PlacedSource: Sendable {
    /// 1 star, 2 galaxy (the TRUTH codes).
    public let classCode: UInt8
    /// 0-based pixel position.
    public let x: Double
    public let y: Double
    public let magnitude: Double
}

/// Builds segmentation maps: 10-60 sources per 256² (scaled with area), 30 % stars.
enum SegmentationScene {
    /// Stamps end where a source's noiseless flux falls below this fraction of SKYSIG
    /// (the wings beyond are far below the noise and the 1.0 SKYSIG truth threshold).
    static let stampFloor = 0.02

    static func make(index: Int, seed: UInt64, settings: ObservationSettings, size: Int,
                     keepNoiseless: Bool = false, wcs fixedWCS: TangentPlaneWCS? = nil,
                     task: SimulationTask = .segmentation, fileName: String? = nil) -> (SimulatedImage, [PlacedSource]) {
        var random = SeededGenerator(seed: seed, stream: UInt64(index))
        let observation = SingleBandObservation(settings, &random)
        let areaScale = Double(size * size) / (256.0 * 256.0)
        let count = max(1, Int((Double(random.integer(10...60)) * areaScale).rounded()))
        var image = [Double](repeating: 0, count: size * size)
        var best = [Double](repeating: 0, count: size * size)
        var truth = [UInt8](repeating: 0, count: size * size)
        var sources: [PlacedSource] = []
        let threshold = observation.skySigma
        // Under `--psf varied` one PSF per map, rendered per stamp; the truth follows its wings.
        let psf = observation.variedPSF(settings: settings, seed: seed, index: index)

        for _ in 0..<count {
            let isStar = random.uniform() < 0.3
            let x = random.uniform(-0.5, Double(size) - 0.5), y = random.uniform(-0.5, Double(size) - 0.5)
            let magnitude = random.uniform(isStar ? settings.starMagnitudes ?? 16...22 : settings.galaxyMagnitudes ?? 17...23)
            let flux = settings.flux(magnitude: magnitude)
            // Stamp centred on the source's pixel, large enough for its wings.
            let ix = Int(x.rounded()), iy = Int(y.rounded())
            let halfSize: Int
            var component: SceneComponent
            let floor = stampFloor * observation.skySigma
            if isStar, let psf {
                halfSize = psf.kernelRadius + 2
                component = .gaussian(GaussianBlob(centerX: 0, centerY: 0, sigma: 0, flux: flux))
            } else if isStar {
                let sigma = observation.psfSigma
                let peak = flux / (2 * Double.pi * sigma * sigma)
                halfSize = Int((sigma * (2 * Foundation.log(max(peak / floor, 1))).squareRoot()).rounded(.up)) + 2
                component = .gaussian(GaussianBlob(centerX: 0, centerY: 0, sigma: 0, flux: flux))
            } else {
                let n = random.uniform(0.5, 5), re = settings.pixels(random.uniform(0.3, 2.0)), q = random.uniform(0.3, 1.0)
                let profile = SersicProfile(n: n, halfLightRadius: re, flux: flux,
                                            geometry: EllipseGeometry(centerX: 0, centerY: 0, q: q, angle: random.positionAngle()))
                let extent = profile.radius(atIntensity: floor) / q.squareRoot()
                let wings = psf.map { Double($0.kernelRadius) } ?? 5 * observation.psfSigma
                halfSize = Int((extent + wings).rounded(.up)) + 2
                component = .sersic(profile)
            }
            let half = min(halfSize, 160)
            let side = 2 * half + 1
            let originX = ix - half, originY = iy - half
            component = component.moved(dx: x - Double(originX), dy: y - Double(originY))
            let stamp = observation.render([component], psf: psf, width: side, height: side)
            paint(stamp, side: side, originX: originX, originY: originY, classCode: isStar ? 1 : 2,
                  threshold: threshold, size: size, image: &image, best: &best, truth: &truth)
            sources.append(PlacedSource(classCode: isStar ? 1 : 2, x: x, y: y, magnitude: magnitude))
        }

        let pixels = NoiseModel.noisy(image, skySigma: observation.skySigma, gain: settings.gain, random: &random)
        let wcs = fixedWCS ?? TangentPlaneWCS(referenceRA: random.uniform(0, 360), referenceDec: random.uniform(-60, 60),
                                              referencePixelX: Double(size + 1) / 2, referencePixelY: Double(size + 1) / 2,
                                              pixelScale: settings.pixelScale)
        let stars = sources.filter { $0.classCode == 1 }.count
        let header = provenanceCards(task: task, seed: seed, index: index)
            + settings.commonCards(psfFWHM: observation.fwhm, skySigma: observation.skySigma) + (psf?.cards() ?? []) + [
                HeaderRecord("NSOURCE", .integer(sources.count), comment: "sources placed"),
                HeaderRecord("NSTAR", .integer(stars), comment: "stars"),
                HeaderRecord("NGALAXY", .integer(sources.count - stars), comment: "galaxies"),
                HeaderRecord("TRUTHLEV", .float(1.0), comment: "truth threshold [SKYSIG] on noiseless flux"),
            ] + wcs.cards
        let truthHeader = [HeaderRecord("CLASSES", .string("0 background, 1 star, 2 galaxy"), comment: "pixel codes")] + wcs.cards
        let name = fileName ?? String(format: "segmentation_%06d.fits", index)
        let result = SimulatedImage(fileName: name, pixels: pixels, shape: [size, size], header: header,
                                    truth: truth, truthHeader: truthHeader, catalogFields: [], label: nil,
                                    caption: "\(stars) STARS \(sources.count - stars) GAL",
                                    noiseless: keepNoiseless ? image : nil)
        return (result, sources)
    }
}

extension SegmentationScene {
    /// Adds one source's noiseless stamp (side x side, top-left at map pixel originX, originY)
    /// to the map and applies TASKS.md's truth rule: a pixel belongs to a source where that
    /// source's flux exceeds `threshold` (1.0 SKYSIG); where several qualify, the one with the
    /// most flux at that pixel wins (`best` holds the winning flux so far).
    static func paint(_ stamp: [Double], side: Int, originX: Int, originY: Int, classCode: UInt8,
                      threshold: Double, size: Int, image: inout [Double], best: inout [Double], truth: inout [UInt8]) {
        for j in 0..<side {
            let my = originY + j
            guard my >= 0 && my < size else { continue }
            for i in 0..<side {
                let mx = originX + i
                guard mx >= 0 && mx < size else { continue }
                let value = stamp[j * side + i], p = my * size + mx
                image[p] += value
                if value > threshold && value > best[p] { best[p] = value; truth[p] = classCode }
            }
        }
    }
}

extension SceneComponent {
    /// The component moved by (dx, dy) pixels.
    func moved(dx: Double, dy: Double) -> SceneComponent {
        switch self {
        case .sersic(let p):
            return .sersic(SersicProfile(n: p.n, halfLightRadius: p.halfLightRadius, flux: p.flux,
                                         geometry: p.geometry.shifted(dx: dx, dy: dy)))
        case .gaussian(var blob):
            blob.centerX += dx; blob.centerY += dy
            return .gaussian(blob)
        case .spiral, .lensed:
            preconditionFailure("SceneComponent.moved: only Sérsic and Gaussian components move")
        }
    }
}
