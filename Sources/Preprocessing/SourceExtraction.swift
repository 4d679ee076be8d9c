import AstroBase
import Foundation

/// Source detection and segmentation in the way of SExtractor / SEP (Bertin & Arnouts 1996;
/// Barbary 2016), on one sky-subtracted image with a known noise σ: the classical deblender
/// that task 6's networks are compared with.
///
/// 1. The image is convolved with SEP's default 3 × 3 kernel ([1 2 1; 2 4 2; 1 2 1] / 16,
///    zeros beyond the edge) and pixels above `threshold × σ` are detected; 8-connected
///    groups of at least `minimumArea` pixels are objects (SEP's `extract(..., err=σ)`).
/// 2. Multi-threshold deblending: between the detection threshold and the group's filtered
///    peak, `deblendLevels` exponentially spaced levels; at the first level where two or more
///    8-connected branches (each of at least `minimumArea` pixels) each hold at least
///    `deblendContrast` of the group's filtered flux, the group splits and each branch is
///    deblended again from the next level.
/// 3. Every pixel of a split group goes to the branch whose bivariate Gaussian (the branch's
///    flux-weighted centroid and second moments, scaled by its flux) is largest there.
///
/// Cleaning of spurious detections next to bright ones (SEP's `clean`) is not done.
public struct SourceExtraction: Sendable {
    public var threshold: Double
    public var minimumArea: Int
    public var deblendLevels: Int
    public var deblendContrast: Double

    public init(threshold: Double = 1.5, minimumArea: Int = 5, deblendLevels: Int = 32, deblendContrast: Double = 0.005) {
        self.threshold = threshold
        self.minimumArea = minimumArea
        self.deblendLevels = deblendLevels
        self.deblendContrast = deblendContrast
    }

    /// A segmentation map: per pixel 0 (background) or the object's number 1...`objectCount`.
    public struct Segmentation: Sendable {
        public var width: Int, height: Int
        public var labels: [Int32]
        public var objectCount: Int
        /// Flux-weighted centroid (x, y; 0-based pixels) of each object's pixels, in label order.
        public var centroids: [(x: Double, y: Double)]

        /// The object at the image centre, else the one whose centroid is nearest to it (0: none).
        public var centralLabel: Int32 {
            let centre = labels[(height / 2) * width + width / 2]
            if centre != 0 { return centre }
            let cx = Double(width - 1) / 2, cy = Double(height - 1) / 2
            let nearest = centroids.indices.min { a, b in
                let da = (centroids[a].x - cx) * (centroids[a].x - cx) + (centroids[a].y - cy) * (centroids[a].y - cy)
                let db = (centroids[b].x - cx) * (centroids[b].x - cx) + (centroids[b].y - cy) * (centroids[b].y - cy)
                return da < db
            }
            return nearest.map { Int32($0 + 1) } ?? 0
        }
    }

    /// Detects and deblends the objects of `pixels` (row-major `width × height`).
    public func segment(_ pixels: [Float], width: Int, height: Int, noise sigma: Double) -> Segmentation {
        precondition(pixels.count == width * height, "SourceExtraction: \(pixels.count) pixels for \(width) × \(height)")
        let filtered = Self.filter(pixels, width: width, height: height)
        let detection = threshold * sigma
        var labels = [Int32](repeating: 0, count: pixels.count)
        var centroids: [(x: Double, y: Double)] = []
        var finder = ComponentFinder(width: width, height: height)
        let all = filtered.indices.filter { filtered[$0] > detection }
        for group in finder.components(of: all, above: -.infinity, in: filtered) where group.count >= minimumArea {
            let peak = group.map { filtered[$0] }.max()!
            let total = group.reduce(0.0) { $0 + filtered[$1] }
            let levels = (1..<deblendLevels).map { detection * Foundation.pow(peak / detection, Double($0) / Double(deblendLevels)) }
            let seeds = split(group, from: 0, levels: levels, total: total, filtered: filtered, finder: &finder)
            let gaussians = seeds.map { BranchGaussian($0, pixels: pixels, width: width) }
            let seedOf = Dictionary(seeds.enumerated().flatMap { k, seed in seed.map { ($0, k) } }, uniquingKeysWith: { a, _ in a })
            var members = [[Int]](repeating: [], count: seeds.count)
            for p in group {
                let k = seedOf[p] ?? gaussians.indices.max { gaussians[$0].density(p % width, p / width) < gaussians[$1].density(p % width, p / width) }!
                members[k].append(p)
            }
            for member in members where !member.isEmpty {
                centroids.append(BranchGaussian(member, pixels: pixels, width: width).centroid)
                for p in member { labels[p] = Int32(centroids.count) }
            }
        }
        return Segmentation(width: width, height: height, labels: labels, objectCount: centroids.count, centroids: centroids)
    }

    /// The classical deblend of the central object: the image with every other object's
    /// pixels set to 0 (the central object's pixels and the background are kept).
    public func deblendCentral(_ pixels: [Float], width: Int, height: Int, noise sigma: Double) -> [Float] {
        let segmentation = segment(pixels, width: width, height: height, noise: sigma)
        let central = segmentation.centralLabel
        return zip(pixels, segmentation.labels).map { value, label in label == 0 || label == central ? value : 0 }
    }

    /// The branches of `group` that survive deblending from level `from` on (the group itself if it does not split).
    func split(_ group: [Int], from start: Int, levels: [Double], total: Double, filtered: [Double],
               finder: inout ComponentFinder) -> [[Int]] {
        var level = start
        while level < levels.count {
            let branches = finder.components(of: group, above: levels[level], in: filtered).filter {
                $0.count >= minimumArea && $0.reduce(0.0) { $0 + filtered[$1] } >= deblendContrast * total
            }
            if branches.isEmpty { break }
            if branches.count >= 2 {
                return branches.flatMap { split($0, from: level + 1, levels: levels, total: total, filtered: filtered, finder: &finder) }
            }
            level += 1
        }
        return [group]
    }

    /// SEP's default detection filter, normalised, with zeros beyond the edge.
    static func filter(_ pixels: [Float], width: Int, height: Int) -> [Double] {
        let kernel: [Double] = [1, 2, 1, 2, 4, 2, 1, 2, 1].map { $0 / 16 }
        var out = [Double](repeating: 0, count: pixels.count)
        for y in 0..<height {
            for x in 0..<width {
                var s = 0.0
                for dy in -1...1 where (0..<height).contains(y + dy) {
                    for dx in -1...1 where (0..<width).contains(x + dx) {
                        s += kernel[(dy + 1) * 3 + dx + 1] * Double(pixels[(y + dy) * width + x + dx])
                    }
                }
                out[y * width + x] = s
            }
        }
        return out
    }
}

/// 8-connected groups among a set of pixels, with a reusable visit map.
struct ComponentFinder {
    let width: Int, height: Int
    private var mark: [Int32]
    private var stamp: Int32 = 0

    init(width: Int, height: Int) {
        self.width = width
        self.height = height
        mark = [Int32](repeating: 0, count: width * height)
    }

    /// The 8-connected groups of the pixels of `candidates` whose `values` exceed `level`.
    mutating func components(of candidates: [Int], above level: Double, in values: [Double]) -> [[Int]] {
        stamp += 2
        let member = stamp, seen = stamp + 1
        for p in candidates where values[p] > level { mark[p] = member }
        var groups: [[Int]] = []
        for p in candidates where mark[p] == member {
            var group = [p], head = 0
            mark[p] = seen
            while head < group.count {
                let q = group[head]
                head += 1
                let x = q % width, y = q / width
                for dy in -1...1 where (0..<height).contains(y + dy) {
                    for dx in -1...1 where (0..<width).contains(x + dx) {
                        let r = (y + dy) * width + x + dx
                        if mark[r] == member { mark[r] = seen; group.append(r) }
                    }
                }
            }
            groups.append(group)
        }
        return groups
    }
}

/// A branch's flux-weighted centroid and second moments, as a bivariate Gaussian scaled by its flux.
struct BranchGaussian {
    let centroid: (x: Double, y: Double)
    let flux: Double
    let inverse: (xx: Double, yy: Double, xy: Double)
    let normalisation: Double

    init(_ pixelIndices: [Int], pixels: [Float], width: Int) {
        var sum = 0.0, sx = 0.0, sy = 0.0
        for p in pixelIndices {
            let w = Swift.max(0, Double(pixels[p]))
            sum += w; sx += w * Double(p % width); sy += w * Double(p / width)
        }
        let weightTotal = Swift.max(sum, 1e-30)
        let mx = sum > 0 ? sx / weightTotal : pixelIndices.reduce(0.0) { $0 + Double($1 % width) } / Double(pixelIndices.count)
        let my = sum > 0 ? sy / weightTotal : pixelIndices.reduce(0.0) { $0 + Double($1 / width) } / Double(pixelIndices.count)
        var x2 = 0.0, y2 = 0.0, xy = 0.0
        for p in pixelIndices {
            let w = sum > 0 ? Swift.max(0, Double(pixels[p])) / weightTotal : 1 / Double(pixelIndices.count)
            let dx = Double(p % width) - mx, dy = Double(p / width) - my
            x2 += w * dx * dx; y2 += w * dy * dy; xy += w * dx * dy
        }
        // SExtractor's guard against singular (one-pixel-wide) moments.
        if x2 * y2 - xy * xy < 1.0 / 144 { x2 += 1.0 / 12; y2 += 1.0 / 12 }
        let det = x2 * y2 - xy * xy
        centroid = (mx, my)
        flux = sum
        inverse = (y2 / det, x2 / det, -xy / det)
        normalisation = sum / (2 * Double.pi * det.squareRoot())
    }

    func density(_ x: Int, _ y: Int) -> Double {
        let dx = Double(x) - centroid.x, dy = Double(y) - centroid.y
        return normalisation * Foundation.exp(-0.5 * (inverse.xx * dx * dx + inverse.yy * dy * dy + 2 * inverse.xy * dx * dy))
    }
}
