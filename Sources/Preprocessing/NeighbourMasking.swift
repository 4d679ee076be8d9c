import AstroBase
import Foundation

/// Masks the neighbours of a single-object cutout, as cutouts are prepared for profile
/// fitting (GALFIT-style masks from a SExtractor segmentation): the objects other than the
/// central one are found with `SourceExtraction` (SEP's detection and deblending), each is
/// masked out to `kronFactor` times its Kron radius (SEP's `kron_radius` on its ellipse,
/// as SExtractor's AUTO aperture) and to `grow` pixels round its segment, and the masked
/// pixels are filled from the central object's point reflection (Sérsic profiles are
/// point-symmetric, so the central object's light under a neighbour is kept), or with sky
/// noise where the reflected pixel is masked too or off the image. Blank (NaN) pixels whose
/// reflection was measured take its value as well (`NB_BLANKS` counts them; the others stay
/// blank for `fill_blanks`): a masked disc or bad column over the galaxy keeps its light.
///
/// Only objects whose filtered peak reaches `minimumPeak` × σ and stands `minimumProminence`
/// × σ above the level where they touch another object are masked, so noise peaks and bumps
/// on the central object's own faint wings are left alone, and nothing within `core` pixels
/// of the central object's centroid is masked. The image must be sky-subtracted
/// and in counts (the stage comes after observation matching). The number of masked pixels
/// is written to the header as `NB_MASKED`.
public struct NeighbourMasking: Equatable, Sendable {
    /// Detection threshold in units of the noise σ (SEP's `thresh` with `err`).
    public var threshold: Double
    /// Objects whose filtered peak is below this many σ are not masked.
    public var minimumPeak: Double
    /// ... and those whose peak stands less than this many σ above the level at which they
    /// touch another object (a bump on a larger object rather than an object of its own).
    public var minimumProminence: Double
    /// Each neighbour's ellipse is masked out to this many Kron radii (0: segments only).
    public var kronFactor: Double
    /// Pixels added round each neighbour's segment (4-connected dilation steps).
    public var grow: Int
    /// Radius in pixels round the central object's centroid that is never masked.
    public var core: Double
    /// The object at the image centre is the central one only if its centroid lies within this
    /// many pixels of the centre; otherwise every object is a neighbour (a galaxy too faint to
    /// be detected next to a bright one) and reflections are about the image centre.
    public var centralRadius: Double
    /// Header keyword of the noise σ; per band `bandKeywords` for multi-channel images.
    public var keyword: String
    public var bandKeywords: [String]

    public init(threshold: Double = 1.5, minimumPeak: Double = 4, minimumProminence: Double = 2, kronFactor: Double = 2.5, grow: Int = 2,
                core: Double = 3, centralRadius: Double = 6, keyword: String = "SKYSIG", bandKeywords: [String] = []) {
        self.threshold = threshold; self.minimumPeak = minimumPeak
        self.minimumProminence = minimumProminence; self.kronFactor = kronFactor
        self.grow = grow; self.core = core; self.centralRadius = centralRadius; self.keyword = keyword; self.bandKeywords = bandKeywords
    }

    /// The header keyword that records how many pixels were masked.
    public static let maskedKeyword = "NB_MASKED"

    func apply(to sample: inout Sample) throws {
        let image = sample.image
        let (channels, height, width, plane) = (image.channels, image.height, image.width, image.planeSize)
        let keys = channels > 1 && bandKeywords.count == channels ? bandKeywords : [String](repeating: keyword, count: channels)
        var sigmas = [Double]()
        var measured = false, fills = [String]()
        for c in 0..<channels {
            if let s = sample.header[keys[c]], s.isFinite, s > 0 { sigmas.append(s); continue }
            let noise = try Stage.measuredNoise(image.channel(c).pixels, stage: "mask_neighbours", keyword: keys[c], sample: sample.name)
            sigmas.append(noise.sigma)
            if let fill = noise.fill { fills.append(fill) }
            measured = true
        }
        if measured {
            sample.assumptions.append(Assumption(subject: keyword, note: "mask_neighbours: \(Set(keys).sorted().joined(separator: ", ")) "
                + "not in the header: noise measured from the data (sigma-clipped MAD): "
                + sigmas.map { String(format: "%.4g", $0) }.joined(separator: ", ") + " counts"
                + (fills.isEmpty ? "" : " (" + fills.joined(separator: "; ") + ")")))
        }
        // One detection image: the mean of the channels, blanks as sky.
        var detection = [Float](repeating: 0, count: plane)
        for c in 0..<channels {
            for p in 0..<plane {
                let v = image.pixels[c * plane + p]
                if v.isFinite { detection[p] += v / Float(channels) }
            }
        }
        let sigma = sigmas.reduce(0) { $0 + $1 * $1 }.squareRoot() / Double(channels)
        let extraction = SourceExtraction(threshold: threshold)
        let found = extraction.neighbourMask(detection, width: width, height: height, noise: sigma, minimumPeak: minimumPeak,
                                             minimumProminence: minimumProminence, kronFactor: kronFactor, grow: grow, core: core,
                                             centralRadius: centralRadius)
        sample.header[Self.maskedKeyword] = Double(found.count)
        guard let centre = found.centre else { return }
        // Point reflection through the centroid, on the pixel grid: x' = round(2 cx) - x.
        let (rx, ry) = (Int((2 * centre.x).rounded()), Int((2 * centre.y).rounded()))
        func reflection(_ p: Int, _ base: Int) -> Float? {
            let (mx, my) = (rx - p % width, ry - p / width)
            guard mx >= 0, mx < width, my >= 0, my < height else { return nil }
            let m = my * width + mx
            let value = image.pixels[base + m]
            return !found.masked[m] && value.isFinite ? value : nil
        }
        var rng = SeededGenerator(seed: SeededGenerator.nameHash(sample.name))
        var blanks = 0
        for c in 0..<channels {
            let base = c * plane
            for p in 0..<plane {
                if !image.pixels[base + p].isFinite {
                    // A blank pixel whose reflection was measured takes it (the rest stay for fill_blanks).
                    if let value = reflection(p, base) { sample.image.pixels[base + p] = value; blanks += 1 }
                } else if found.masked[p] {
                    sample.image.pixels[base + p] = reflection(p, base) ?? Float(rng.normal() * sigmas[c])
                }
            }
        }
        sample.header[Self.blanksKeyword] = Double(blanks)
    }

    /// The header keyword that records how many blank pixels took their reflection's value.
    public static let blanksKeyword = "NB_BLANKS"

}

extension SourceExtraction {
    /// The pixels `NeighbourMasking` masks in `pixels` (row-major `width × height`, sky
    /// subtracted, noise `sigma`): `masked` per pixel, their `count` and the centre of the
    /// reflections (the central object's flux-weighted centroid, or the image centre when no
    /// object lies there; nil when nothing is detected).
    public struct NeighbourMask: Sendable {
        public var masked: [Bool]
        public var count: Int
        public var centre: (x: Double, y: Double)?
    }

    /// See `NeighbourMasking`.
    public func neighbourMask(_ pixels: [Float], width: Int, height: Int, noise sigma: Double, minimumPeak: Double,
                              minimumProminence: Double, kronFactor: Double, grow: Int, core: Double,
                              centralRadius: Double) -> NeighbourMask {
        let segmentation = segment(pixels, width: width, height: height, noise: sigma)
        var result = NeighbourMask(masked: [Bool](repeating: false, count: pixels.count), count: 0, centre: nil)
        // The central object: the one at the image centre (else the nearest), if its centroid lies
        // within `centralRadius` of the centre. A faint galaxy below the detection threshold next to
        // a bright neighbour leaves the neighbour there: it is masked, and the reflection is about
        // the image centre (a cutout is centred on its object).
        let middle = (x: Double(width - 1) / 2, y: Double(height - 1) / 2)
        var central = segmentation.centralLabel
        if central != 0 {
            let c = segmentation.centroids[Int(central) - 1]
            if (c.x - middle.x) * (c.x - middle.x) + (c.y - middle.y) * (c.y - middle.y) > centralRadius * centralRadius { central = 0 }
        }
        guard segmentation.objectCount > 0 else { return result }
        let centre = central != 0 ? segmentation.centroids[Int(central) - 1] : middle
        result.centre = centre
        let filtered = Self.filter(pixels, width: width, height: height)
        var members = [[Int]](repeating: [], count: segmentation.objectCount + 1)
        for (p, label) in segmentation.labels.enumerated() where label != 0 { members[Int(label)].append(p) }
        let labels = segmentation.labels
        // The highest filtered level at which an object touches another one (the level at which the
        // deblender split them; the detection threshold for an object that touches none): a noise
        // bump on a large, flat galaxy splits off just below its peak, a neighbour far below.
        func saddle(_ label: Int) -> Double {
            var level = threshold * sigma
            for p in members[label] {
                let (x, y) = (p % width, p / width)
                for dy in -1...1 where (0..<height).contains(y + dy) {
                    for dx in -1...1 where (0..<width).contains(x + dx) {
                        let q = (y + dy) * width + x + dx
                        if labels[q] != 0 && Int(labels[q]) != label { level = Swift.max(level, Swift.min(filtered[p], filtered[q])) }
                    }
                }
            }
            return level
        }
        var masked = result.masked
        var selected = Set<Int32>()
        for label in 1...segmentation.objectCount where label != Int(central) {
            let member = members[label]
            guard let peak = member.map({ filtered[$0] }).max(), peak >= minimumPeak * sigma,
                  peak - saddle(label) >= minimumProminence * sigma else { continue }
            selected.insert(Int32(label))
            for p in member { masked[p] = true }
            guard kronFactor > 0 else { continue }
            let (ellipse, kron) = Self.kronEllipse(of: label, members: member, labels: labels, pixels: pixels, width: width)
            for p in pixels.indices where ellipse(p) <= kronFactor * kron { masked[p] = true }
        }
        // Grow the segments of the masked neighbours (not into the central object's segment).
        var segments = labels.map { selected.contains($0) }
        for _ in 0..<Swift.max(0, grow) {
            let previous = segments
            for p in previous.indices where !previous[p] && (central == 0 || labels[p] != central) {
                let (x, y) = (p % width, p / width)
                if (x > 0 && previous[p - 1]) || (x + 1 < width && previous[p + 1])
                    || (y > 0 && previous[p - width]) || (y + 1 < height && previous[p + width]) {
                    segments[p] = true
                    masked[p] = true
                }
            }
        }
        for p in masked.indices where masked[p] {
            let dx = Double(p % width) - centre.x, dy = Double(p / width) - centre.y
            if dx * dx + dy * dy <= core * core { masked[p] = false }
        }
        result.masked = masked
        result.count = masked.reduce(0) { $0 + ($1 ? 1 : 0) }
        return result
    }

    /// SEP's `kron_radius` of object `label` (its pixels `members`): the flux-weighted mean
    /// elliptical radius of the pixels within 6 of its moment ellipse, other objects' pixels
    /// left out; at least 1 (SEP flags smaller or undefined ones). Also the elliptical radius
    /// of any pixel index in units of that ellipse.
    static func kronEllipse(of label: Int, members: [Int], labels: [Int32], pixels: [Float], width: Int)
        -> (radius: (Int) -> Double, kron: Double) {
        let gaussian = BranchGaussian(members, pixels: pixels, width: width)
        let radius = { (p: Int) -> Double in
            let dx = Double(p % width) - gaussian.centroid.x, dy = Double(p / width) - gaussian.centroid.y
            let i = gaussian.inverse
            return (i.xx * dx * dx + i.yy * dy * dy + 2 * i.xy * dx * dy).squareRoot()
        }
        var sumR = 0.0, sum = 0.0
        for p in pixels.indices where labels[p] == 0 || Int(labels[p]) == label {
            let r = radius(p)
            if r <= 6 { sumR += r * Double(pixels[p]); sum += Double(pixels[p]) }
        }
        return (radius, sum > 0 && sumR > 0 ? Swift.max(1, sumR / sum) : 1)
    }

    /// The Kron radius (`kronEllipse`) of every object of `segmentation` of `pixels`, in label order.
    public func kronRadii(_ pixels: [Float], segmentation: Segmentation) -> [Double] {
        var members = [[Int]](repeating: [], count: segmentation.objectCount + 1)
        for (p, label) in segmentation.labels.enumerated() where label != 0 { members[Int(label)].append(p) }
        return (1..<members.count).map {
            Self.kronEllipse(of: $0, members: members[$0], labels: segmentation.labels, pixels: pixels, width: segmentation.width).kron
        }
    }
}
