import AstroBase
import Autograd
import Foundation
import Preprocessing
import SkySim

/// A residual sky under a single Sérsic galaxy, fitted against the regression's own answer.
///
/// A cutout's outer frame holds the galaxy's wings as well as any sky the image was left
/// with, so its level alone cannot tell a pedestal from a large galaxy (subtracting it
/// takes a bright elliptical's wings away). Here the galaxy the model predicted is drawn
/// (its Sérsic profile at the predicted n, r_e, q and magnitude, centred on the light's
/// centroid and turned to its second moments' angle; out in the frame the PSF changes
/// nothing that matters), and a plane a + b x + c y is fitted by least squares to the data
/// minus that galaxy on the outer `border` pixels, 3σ-clipped about the plane. Its χ² (3
/// degrees of freedom; the header's noise, or the scatter of 4 × 4-pixel block means of the
/// frame when correlated noise makes that larger) says whether there is a sky to remove: above
/// `threshold` the plane is subtracted, the model predicts again, and the plane is fitted
/// again against the new prediction, `iterations` times. Below it the file is left exactly
/// as it was: on 3,000 TASKS.md cutouts 1 file passes 25 (docs/results.md). A level above
/// `largest` σ is not taken for sky: observation matching removed any frame level above 1σ, so
/// such a plane is the wings of a galaxy the model cannot reach (a cluster's central galaxy
/// at the bright bound of the prior), not sky.
public struct SkyFitting: Equatable, Sendable {
    /// Width in pixels of the outer frame the plane is fitted on.
    public var border: Int = 8
    /// χ² of the fitted plane above which it is subtracted.
    public var threshold: Double = 25
    /// Refits after the plane was found.
    public var iterations: Int = 3
    /// The largest level, in noise σ, taken for sky (a larger one is left alone).
    public var largest: Double = 2
    /// The regression targets the fit needs (catalog units: r_e in arcsec, mag at the observation's zero point).
    public static let targets = ["sersic_n", "r_e", "q", "mag"]
    /// The `DomainCheck.outside` name of a row whose sky was fitted and subtracted.
    public static let outsideName = "sky"
    /// The `DomainCheck.outside` name of a row whose frame has correlated noise.
    public static let correlatedName = "correlated_noise"
    /// `ResidualSky.noiseCorrelation` above which a row says `correlated_noise`.
    public var correlationLimit: Double = 1.3

    public init(border: Int = 8, threshold: Double = 25, iterations: Int = 3) {
        self.border = border; self.threshold = threshold; self.iterations = iterations
    }
}

/// The plane a fit found, in counts per pixel: `level` at the image centre, `slopeX`,
/// `slopeY` per pixel along x (NAXIS1) and y; `chiSquare` of the plane on the frame's noise.
/// `noiseCorrelation`: the scatter of the frame's 4 × 4-pixel means (galaxy and plane taken
/// away) over what white noise of the frame's own pixel scatter gives, 1 for white noise
/// (nil: too few blocks); resampled, drizzled or co-added images have more.
public struct ResidualSky: Equatable, Sendable {
    public var level: Double
    public var slopeX: Double
    public var slopeY: Double
    public var chiSquare: Double
    public var noiseCorrelation: Double? = nil

    /// The plane's value at pixel (x, y) of an image `height` × `width`.
    @inline(__always)
    func value(x: Int, y: Int, height: Int, width: Int) -> Double {
        level + slopeX * (Double(x) - Double(width - 1) / 2) + slopeY * (Double(y) - Double(height - 1) / 2)
    }

    /// `image` with the plane subtracted from every channel.
    func subtracted(from image: PlanarImage) -> PlanarImage {
        var out = image
        let (h, w) = (image.height, image.width)
        out.forEachPlane { plane in
            for y in 0..<h { for x in 0..<w { plane[y * w + x] -= Float(value(x: x, y: y, height: h, width: w)) } }
        }
        return out
    }
}

extension SkyFitting {
    /// The plane under `image` (one channel, counts) once `galaxy` is taken away, on the outer
    /// frame; nil when the frame has fewer finite pixels than 10 per fitted value, or scatters
    /// less than a fifth of `sigma` (padding, not sky).
    func residualSky(_ image: PlanarImage, galaxy: SersicProfile?, sigma: Double) -> ResidualSky? {
        let (h, w) = (image.height, image.width)
        let cx = Double(w - 1) / 2, cy = Double(h - 1) / 2, half = Double(max(h, w)) / 2
        var xs = [Double](), ys = [Double](), rs = [Double]()
        for y in 0..<h {
            for x in 0..<w where PlanarImage.isInFrame(x: x, y: y, height: h, width: w, border: border) {
                let v = Double(image.pixels[y * w + x])
                guard v.isFinite else { continue }
                xs.append((Double(x) - cx) / half); ys.append((Double(y) - cy) / half)
                rs.append(v - (galaxy?.intensity(x: Double(x), y: Double(y)) ?? 0))
            }
        }
        guard rs.count >= 30, sigma > 0 else { return nil }
        var keep = [Bool](repeating: true, count: rs.count)
        var coefficients = [0.0, 0.0, 0.0], normal = [Double](repeating: 0, count: 9)
        func offPlane(_ i: Int) -> Double { rs[i] - coefficients[0] - coefficients[1] * xs[i] - coefficients[2] * ys[i] }
        for _ in 0..<10 {
            var rhs = [0.0, 0.0, 0.0]
            normal = [Double](repeating: 0, count: 9)
            for i in rs.indices where keep[i] {
                let basis = [1, xs[i], ys[i]]
                for a in 0..<3 {
                    rhs[a] += basis[a] * rs[i]
                    for b in 0..<3 { normal[a * 3 + b] += basis[a] * basis[b] }
                }
            }
            guard let solved = Self.solve3(normal, rhs) else { return nil }
            coefficients = solved
            var squares = 0.0, kept = 0
            for i in rs.indices where keep[i] {
                let d = offPlane(i)
                squares += d * d; kept += 1
            }
            let limit = 3 * (squares / Double(max(kept - 3, 1))).squareRoot()
            var changed = false
            for i in rs.indices {
                let inside = abs(offPlane(i)) <= limit
                if inside != keep[i] { keep[i] = inside; changed = true }
            }
            if !changed { break }
        }
        // Correlated noise (resampled or co-added images) averages down more slowly than white noise:
        // the noise of the fit is taken from the scatter of 4 × 4-pixel block means when that is larger.
        var sums = [Int: (sum: Double, count: Int)]()
        var squares = 0.0, kept = 0
        for i in rs.indices where keep[i] {
            let bx = Int(((xs[i] * half + cx) / 4).rounded(.down)), by = Int(((ys[i] * half + cy) / 4).rounded(.down))
            let d = offPlane(i)
            sums[by * 4096 + bx, default: (0, 0)].sum += d
            sums[by * 4096 + bx, default: (0, 0)].count += 1
            squares += d * d; kept += 1
        }
        // A frame without the image's noise is not sky: padding (fit_size) or a constant fill.
        let pixelVariance = squares / Double(max(kept - 3, 1))
        guard pixelVariance > 0.04 * sigma * sigma else { return nil }
        let blocks = sums.values.filter { $0.count >= 8 }
        var variance = sigma * sigma, correlation: Double? = nil
        if blocks.count >= 20 {
            let blockVariance = blocks.map { $0.sum * $0.sum / Double($0.count) }.reduce(0, +) / Double(blocks.count - 3)
            variance = max(variance, blockVariance)
            correlation = (blockVariance / pixelVariance).squareRoot()
        }
        var chi = 0.0
        for a in 0..<3 { for b in 0..<3 { chi += coefficients[a] * normal[a * 3 + b] * coefficients[b] } }
        return ResidualSky(level: coefficients[0], slopeX: coefficients[1] / half, slopeY: coefficients[2] / half,
                           chiSquare: chi / variance, noiseCorrelation: correlation)
    }

    /// Solves the symmetric 3 × 3 system `m x = v` (nil when singular).
    static func solve3(_ m: [Double], _ v: [Double]) -> [Double]? {
        func det(_ a: [Double]) -> Double {
            a[0] * (a[4] * a[8] - a[5] * a[7]) - a[1] * (a[3] * a[8] - a[5] * a[6]) + a[2] * (a[3] * a[7] - a[4] * a[6])
        }
        let d = det(m)
        guard abs(d) > 1e-12 else { return nil }
        return (0..<3).map { column in
            var replaced = m
            for row in 0..<3 { replaced[row * 3 + column] = v[row] }
            return det(replaced) / d
        }
    }

    /// The galaxy a Sérsic regression predicted, placed on `image` (counts at `zeroPoint`,
    /// `pixelScale` arcsec per pixel) at the light's centroid within 12 pixels of the centre
    /// and at its second moments' angle, both measured above the median of the outer `border` pixels.
    static func galaxy(_ values: [Double], names: [String], image: PlanarImage, pixelScale: Double, zeroPoint: Double,
                       border: Int) -> SersicProfile? {
        let index = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
        guard let n = index["sersic_n"].map({ values[$0] }), let re = index["r_e"].map({ values[$0] }),
              let q = index["q"].map({ values[$0] }), let mag = index["mag"].map({ values[$0] }),
              n.isFinite, re.isFinite, re > 0, q.isFinite, mag.isFinite else { return nil }
        let (h, w) = (image.height, image.width)
        let cx = Double(w - 1) / 2, cy = Double(h - 1) / 2
        var frame = [Double]()
        for y in 0..<h { for x in 0..<w where PlanarImage.isInFrame(x: x, y: y, height: h, width: w, border: border) {
            let v = Double(image.pixels[y * w + x]); if v.isFinite { frame.append(v) }
        } }
        let floor = frame.isEmpty ? 0 : PixelStatistics.median(frame)
        var above = [Double](repeating: 0, count: h * w), members: [Int] = []
        for y in 0..<h { for x in 0..<w {
            let dx = Double(x) - cx, dy = Double(y) - cy, v = Double(image.pixels[y * w + x]) - floor
            guard dx * dx + dy * dy < 144, v.isFinite, v > 0 else { continue }
            above[y * w + x] = v
            members.append(y * w + x)
        } }
        guard let light = FitComponent.measured(above, members: members, width: w, psfSigma: 0, pointSize: 0) else { return nil }
        return SersicProfile(n: min(max(n, 0.3), 8), halfLightRadius: re / pixelScale,
                             flux: pow(10, 0.4 * (zeroPoint - mag)),
                             geometry: EllipseGeometry(centerX: light.x, centerY: light.y, q: min(max(q, 0.05), 1),
                                                       angle: light.angle))
    }
}

extension Predictor {
    /// The residual sky of `matched` (the image after observation matching and neighbour
    /// masking, before the recipe's stages) against `prediction`'s galaxy.
    func residualSky(_ matched: Sample, _ prediction: Prediction, _ fitting: SkyFitting) -> ResidualSky? {
        guard matched.image.channels == 1, let recipe, let observation = recipe.observation,
              let values = prediction.pointEstimates,
              let sigma = matched.header[noiseKeyword] ?? matched.header["SKYSIG"] else { return nil }
        let galaxy = SkyFitting.galaxy(values, names: recipe.targetNames, image: matched.image,
                                       pixelScale: observation.pixelScale, zeroPoint: observation.zeroPoint,
                                       border: fitting.border)
        // Observation matching has taken away any frame level above 1σ: a plane much brighter than that is the
        // wings of a galaxy the model does not reach (brighter or larger than its prior), not sky.
        guard let sky = fitting.residualSky(matched.image, galaxy: galaxy, sigma: sigma),
              abs(sky.level) <= fitting.largest * sigma else { return nil }
        return sky
    }

    /// `predictions` of the `matched` images (nil: not kept), with `skyFitting`'s residual sky
    /// fitted against each prediction; where it stands out, the plane is subtracted and the
    /// file predicted again (`SkyFitting`). Returns per file the final prediction, the plane
    /// fitted (nil: none could be) and whether it was subtracted.
    public func fittingSky(_ predictions: [Prediction], matched: [Sample?]) throws
        -> [(prediction: Prediction, plane: ResidualSky?, subtracted: Bool)] {
        guard let fitting = skyFitting else { return predictions.map { ($0, nil, false) } }
        var out = [(prediction: Prediction, plane: ResidualSky?, subtracted: Bool)]()
        var active = [(index: Int, sky: ResidualSky)]()
        let planes = Threading.parallelMap(matched.count, costPerItem: 1 << 16) { i in
            matched[i].flatMap { residualSky($0, predictions[i], fitting) }
        }
        for (i, sky) in planes.enumerated() {
            out.append((predictions[i], sky, false))
            if let sky, sky.chiSquare > fitting.threshold { active.append((i, sky)) }
        }
        guard !active.isEmpty else { return out }
        let own = Preparation(ownStages)
        let rounds = max(fitting.iterations, 1)
        for round in 1...rounds {
            let images = try active.map { item -> PlanarImage in
                var sample = matched[item.index]!
                sample.image = item.sky.subtracted(from: sample.image)
                return try own.prepare(sample, training: false).image
            }
            let again = predict(images)
            for (k, item) in active.enumerated() {
                out[item.index] = (again[k], item.sky, true)
                if round < rounds, let refit = residualSky(matched[item.index]!, again[k], fitting) {
                    // The plane under the original image against the new galaxy; the χ² that found it is kept.
                    active[k].sky = ResidualSky(level: refit.level, slopeX: refit.slopeX, slopeY: refit.slopeY,
                                                chiSquare: item.sky.chiSquare, noiseCorrelation: item.sky.noiseCorrelation)
                }
            }
        }
        return out
    }
}
