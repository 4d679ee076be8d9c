import Foundation

// MARK: - The observation a model was trained for

/// The observation a model was trained for (TASKS.md's observation model): pixel
/// scale, PSF and noise ranges, zero point, cutout size and bands. A model file
/// records it (`observation` in its recipe), and inference brings real images to it
/// with the matching stages below (`Observation.matchingStages`).
public struct Observation: Equatable, Sendable {
    /// arcsec per pixel.
    public var pixelScale: Double
    /// PSF FWHM range in arcsec, `[min, max]`.
    public var psfFWHM: [Double]
    /// Sky noise range in counts, `[min, max]`.
    public var skySigma: [Double]
    /// Magnitude of one count per image: m = zeroPoint - 2.5 log10(flux).
    public var zeroPoint: Double
    /// `[height, width]` of the cutouts; nil for maps of any size.
    public var size: [Int]?
    public var bands: [String]
    /// Whether the training images had their sky subtracted.
    public var skySubtracted: Bool

    public init(pixelScale: Double, psfFWHM: [Double], skySigma: [Double], zeroPoint: Double, size: [Int]?,
                bands: [String], skySubtracted: Bool = true) {
        self.pixelScale = pixelScale; self.psfFWHM = psfFWHM; self.skySigma = skySigma
        self.zeroPoint = zeroPoint; self.size = size; self.bands = bands; self.skySubtracted = skySubtracted
    }

    /// Lines for `astrolabe inspect`.
    public var summaryLines: [String] {
        func range(_ r: [Double], _ unit: String) -> String {
            r.count == 2 ? String(format: "%g-%g %@", r[0], r[1], unit) : r.map { String(format: "%g", $0) }.joined(separator: ", ")
        }
        return ["pixel scale   \(String(format: "%g", pixelScale)) arcsec/px",
                "PSF FWHM      " + range(psfFWHM, "arcsec"),
                "sky noise     " + range(skySigma, "counts"),
                "zero point    \(String(format: "%g", zeroPoint)) (MAGZERO)",
                "image size    " + (size.map { "\($0[0]) x \($0[1])" } ?? "any (maps, tiled)"),
                "bands         " + (bands.isEmpty ? "one" : bands.joined(separator: ", ")),
                "sky           " + (skySubtracted ? "subtracted" : "left in")]
    }

    /// The stages that bring an image to this observation, each deciding from the
    /// file's header (and the data where the header is silent): zero point, sky
    /// background, noise level, pixel scale, PSF, then (cutouts) the model's size.
    /// They run before the recipe's own stages.
    public func matchingStages(noiseKeyword: String = "SKYSIG", bandNoiseKeywords: [String] = []) -> [Stage] {
        var stages: [Stage] = [.matchZeroPoint(zeroPoint)]
        // A cutout is centred on its object: its sky comes from its outer 8 pixels, a map's from meshes.
        if skySubtracted { stages.append(.subtractMeshBackground(MeshBackground(policy: .pedestal, border: size == nil ? 0 : 8))) }
        stages += [.estimateNoise(keyword: noiseKeyword, bandKeywords: bandNoiseKeywords),
                   .matchPixelScale(pixelScale)]
        if psfFWHM.count == 2 { stages.append(.matchPSF(fwhm: psfFWHM[0]...psfFWHM[1])) }
        if let size, size.count == 2 { stages.append(.fitSize(height: size[0], width: size[1])) }
        return stages
    }

    /// Whether a file with these header values (after matching) lies in the training
    /// domain: one flag per quantity, nil where the header does not say.
    public func domain(_ header: [String: Double]) -> (pixelScale: Bool?, psf: Bool?, depth: Bool?) {
        // An image resampled from coarser pixels (PIXSCALE_NATIVE, set by match_pixel_scale) lacks
        // the resolution the model saw: up to 1.5 times the model's pixel is taken as inside.
        let native = header["PIXSCALE_NATIVE"] ?? HeaderValues.pixelScale(header)
        let scale = native.map { $0 <= pixelScale * 1.5 && (header["PIXSCALE_NATIVE"] != nil || abs($0 / pixelScale - 1) < 0.02) }
        let psf = HeaderValues.psfFWHM(header).map { psfFWHM.count == 2 && $0 >= psfFWHM[0] * 0.98 && $0 <= psfFWHM[1] * 1.02 }
        let depth = header["SKYSIG"].map { skySigma.count == 2 && $0 >= skySigma[0] * 0.9 && $0 <= skySigma[1] * 1.1 }
        return (scale, psf, depth)
    }
}

extension Observation: Codable {
    enum CodingKeys: String, CodingKey, ConfigName {
        case pixelScale = "pixel_scale", psfFWHM = "psf_fwhm", skySigma = "sky_sigma", zeroPoint = "zero_point"
        case size, bands, skySubtracted = "sky_subtracted"
    }

    public init(from decoder: Decoder) throws {
        let c = try StrictKeyed<CodingKeys>(decoder, section: "observation")
        pixelScale = try c.required(.pixelScale)
        psfFWHM = try c.optional(.psfFWHM) ?? []
        skySigma = try c.optional(.skySigma) ?? []
        zeroPoint = try c.required(.zeroPoint)
        size = try c.optional(.size)
        bands = try c.optional(.bands) ?? []
        skySubtracted = try c.optional(.skySubtracted) ?? true
        guard pixelScale > 0, pixelScale.isFinite else {
            throw c.invalid(.pixelScale, "observation.pixel_scale must be a positive number of arcsec per pixel.")
        }
        for (key, r) in [(CodingKeys.psfFWHM, psfFWHM), (.skySigma, skySigma)] where !r.isEmpty {
            guard r.count == 2, r[0] > 0, r[0] <= r[1] else {
                throw c.invalid(key, "observation.\(key.rawValue) must be [min, max], positive, min ≤ max; got \(r).")
            }
        }
        if let size, size.count != 2 || size.contains(where: { $0 <= 0 }) {
            throw c.invalid(.size, "observation.size must be [height, width], positive; got \(size).")
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(pixelScale, forKey: .pixelScale)
        try c.encode(psfFWHM, forKey: .psfFWHM)
        try c.encode(skySigma, forKey: .skySigma)
        try c.encode(zeroPoint, forKey: .zeroPoint)
        try c.encodeIfPresent(size, forKey: .size)
        try c.encode(bands, forKey: .bands)
        try c.encode(skySubtracted, forKey: .skySubtracted)
    }
}

/// Something a stage filled in that the file's header did not say (an estimated noise
/// level, an assumed pixel scale): runs print each kind once and write every file's
/// notes with their outputs.
public struct Assumption: Equatable, Sendable, Codable {
    /// What it is about (a header keyword such as `SKYSIG`): a run announces each subject once.
    public var subject: String
    /// The assumption for this file, with its value.
    public var note: String

    public init(subject: String, note: String) {
        self.subject = subject
        self.note = note
    }
}

/// Reading observation quantities from the numeric header keywords of a sample.
public enum HeaderValues {
    /// Zero-point keywords holding a magnitude, in the order they are tried.
    public static let magnitudeZeroPointKeywords = ["MAGZERO", "MAGZP", "MAGZPT", "PHOTZP", "ZEROPT", "ZPMAG", "ZP"]
    /// Every zero-point key, in the order tried: the magnitude keywords, then the one derived from PHOTFLAM.
    public static let zeroPointKeywords = magnitudeZeroPointKeywords + [photflamZeroPointKey]
    /// The key under which `Sample.numericKeywords` puts the AB zero point it derives from
    /// HST's `PHOTFLAM` and `PHOTPLAM` (tried after the magnitude keywords).
    public static let photflamZeroPointKey = "ZP_PHOTFLAM"

    /// The AB zero point of an HST image from `PHOTFLAM` (erg cm⁻² s⁻¹ Å⁻¹ per unit rate) and
    /// `PHOTPLAM` (Å): −2.5 log10 PHOTFLAM − 21.10 − 5 log10 PHOTPLAM + 18.692 (STScI) for a
    /// count rate; for an image in counts or electrons (`BUNIT` without "/S") 2.5 log10 EXPTIME
    /// more. Nil without both keywords.
    public static func photflamZeroPoint(_ h: [String: Double], unit: String?) -> Double? {
        guard let flam = h["PHOTFLAM"], let plam = h["PHOTPLAM"], flam > 0, plam > 0, flam.isFinite, plam.isFinite else { return nil }
        var zp = -2.5 * Foundation.log10(flam) - 21.10 - 5 * Foundation.log10(plam) + 18.692
        if let unit, !unit.isEmpty, !unit.uppercased().contains("/S"), let t = h["EXPTIME"], t > 0 { zp += 2.5 * Foundation.log10(t) }
        return zp
    }
    /// PSF FWHM keywords in arcsec, in the order they are tried.
    public static let psfKeywords = ["PSF_FWHM", "SEEING", "FWHM"]

    /// arcsec per pixel from `PIXSCALE` (or `PIXSCAL1`, `SECPIX`), else the WCS (`CDi_j`, else
    /// `CDELTi`, in degrees), else a DSS plate solution (`PLTSCALE` arcsec/mm × `XPIXELSZ` µm).
    public static func pixelScale(_ h: [String: Double]) -> Double? {
        for key in ["PIXSCALE", "PIXSCAL1", "SECPIX"] { if let v = h[key], v > 0, v.isFinite { return v } }
        if let a = h["CD1_1"], let d = h["CD2_2"] {
            let det = abs(a * d - (h["CD1_2"] ?? 0) * (h["CD2_1"] ?? 0))
            if det > 0 { return det.squareRoot() * 3600 }
        }
        if let a = h["CDELT1"], let d = h["CDELT2"], a * d != 0 {
            // A PC matrix with CDELT: the scale is |CDELT| × |det PC|^(1/2).
            let pc = abs((h["PC1_1"] ?? 1) * (h["PC2_2"] ?? 1) - (h["PC1_2"] ?? 0) * (h["PC2_1"] ?? 0))
            return (abs(a * d) * pc).squareRoot() * 3600
        }
        if let plate = h["PLTSCALE"], let size = h["XPIXELSZ"], plate > 0, size > 0 { return plate * size / 1000 }
        return nil
    }

    public static func psfFWHM(_ h: [String: Double]) -> Double? { first(psfKeywords, h)?.value }
    public static func zeroPoint(_ h: [String: Double]) -> (value: Double, keyword: String)? { first(zeroPointKeywords, h) }

    static func first(_ keys: [String], _ h: [String: Double]) -> (value: Double, keyword: String)? {
        for key in keys { if let v = h[key], v.isFinite, v > 0 { return (v, key) } }
        return nil
    }

    /// The noise keywords of a sample (`SKYSIG` and per band `SKYSIG_G`...), to rescale with the pixels.
    static func noiseKeywords(_ h: [String: Double]) -> [String] {
        h.keys.filter { $0 == "SKYSIG" || $0.hasPrefix("SKYSIG_") }
    }
}

// MARK: - Mesh background

/// A sky background that varies across the image, as SExtractor, SEP and photutils'
/// `Background2D` estimate it: the image is cut into `mesh`×`mesh` boxes; in each, the
/// pixels are sigma-clipped (`sigma`, `iterations`) and summarised by the `estimator`
/// (SExtractor's mode 2.5·median − 1.5·mean unless (mean − median)/std ≥ 0.3, then the
/// median); boxes with fewer than 90 % finite pixels are filled from the others; the grid
/// is median-filtered over `filter`×`filter` boxes (ignoring the outside) and interpolated
/// bilinearly between box centres (constant beyond the outer centres).
public struct MeshBackground: Equatable, Sendable {
    public enum Estimator: String, ConfigName { case sextractor, median, mean }
    /// `always` subtracts it; `pedestal` only when the sky level differs from zero by more
    /// than the noise sigma (a file whose sky was already subtracted is left alone; faint
    /// wings of a galaxy filling a cutout raise the estimate by up to about half a sigma).
    public enum Policy: String, ConfigName { case always, pedestal }

    public var mesh: Int
    public var filter: Int
    public var estimator: Estimator
    public var sigma: Double
    public var iterations: Int
    public var policy: Policy
    /// When positive, one constant sky from the image's outer `border` pixels on each side
    /// instead of meshes: for a cutout centred on one object, whose meshes would hold the
    /// object's wings (a 64-pixel mesh on a 256-pixel cutout of an n = 4.5, r_e = 2.5"
    /// galaxy at 0.1"/px takes 0.35 mag of its light and turns n into 3.1).
    public var border: Int

    public init(mesh: Int = 64, filter: Int = 3, estimator: Estimator = .sextractor, sigma: Double = 3,
                iterations: Int = 10, policy: Policy = .always, border: Int = 0) {
        self.mesh = mesh; self.filter = filter; self.estimator = estimator; self.sigma = sigma
        self.iterations = iterations; self.policy = policy; self.border = border
    }

    /// The clipped estimate of one set of pixels (nil when none is finite).
    func level(_ values: [Float]) -> Double? {
        let s = values.withUnsafeBufferPointer { PixelStatistics.sigmaClipped($0, sigma: sigma, maxIterations: iterations) }
        guard s.count > 0 else { return nil }
        switch estimator {
        case .median: return s.median
        case .mean: return s.mean
        case .sextractor:
            if s.std == 0 { return s.mean }
            return abs(s.mean - s.median) / s.std < 0.3 ? 2.5 * s.median - 1.5 * s.mean : s.median
        }
    }

    /// The filtered mesh (`rows`×`columns` values, row-major) and the full-size background.
    public func estimate(_ plane: UnsafeBufferPointer<Float>, height: Int, width: Int)
        -> (mesh: [Double], rows: Int, columns: Int, background: [Float]) {
        if border > 0 {
            let b = Swift.min(border, Swift.max(1, Swift.min(height, width) / 2))
            var ring = [Float]()
            for y in 0..<height {
                for x in 0..<width where PlanarImage.isInFrame(x: x, y: y, height: height, width: width, border: b) && plane[y * width + x].isFinite {
                    ring.append(plane[y * width + x])
                }
            }
            let sky = level(ring) ?? 0
            return ([sky], 1, 1, [Float](repeating: Float(sky), count: height * width))
        }
        let box = Swift.max(1, Swift.min(mesh, Swift.max(height, width)))
        let rows = (height + box - 1) / box, columns = (width + box - 1) / box
        var grid = [Double](repeating: .nan, count: rows * columns)
        var values = [Float]()
        for r in 0..<rows {
            for c in 0..<columns {
                values.removeAll(keepingCapacity: true)
                let y1 = Swift.min(height, (r + 1) * box), x1 = Swift.min(width, (c + 1) * box)
                for y in (r * box)..<y1 {
                    for x in (c * box)..<x1 where plane[y * width + x].isFinite { values.append(plane[y * width + x]) }
                }
                guard Double(values.count) >= 0.9 * Double((y1 - r * box) * (x1 - c * box)) else { continue }
                if let sky = level(values) { grid[r * columns + c] = sky }
            }
        }
        let good = grid.filter(\.isFinite).sorted()
        let fill = good.isEmpty ? 0 : PixelStatistics.median(sorted: good)
        for i in grid.indices where !grid[i].isFinite { grid[i] = fill }
        if filter > 1 {
            let half = filter / 2
            var filtered = grid
            var window = [Double]()
            for r in 0..<rows {
                for c in 0..<columns {
                    window.removeAll(keepingCapacity: true)
                    for rr in (r - half)...(r - half + filter - 1) where rr >= 0 && rr < rows {
                        for cc in (c - half)...(c - half + filter - 1) where cc >= 0 && cc < columns {
                            window.append(grid[rr * columns + cc])
                        }
                    }
                    window.sort()
                    filtered[r * columns + c] = PixelStatistics.median(sorted: window)
                }
            }
            grid = filtered
        }
        // Bilinear between box centres: (p + 0.5) / box - 0.5 in box units, clamped.
        func taps(_ n: Int, _ cells: Int) -> [(Int, Int, Double)] {
            (0..<n).map { p in
                let u = Swift.min(Swift.max((Double(p) + 0.5) / Double(box) - 0.5, 0), Double(cells - 1))
                let i0 = Int(u), i1 = Swift.min(i0 + 1, cells - 1)
                return (i0, i1, u - Double(i0))
            }
        }
        let ty = taps(height, rows), tx = taps(width, columns)
        var background = [Float](repeating: 0, count: height * width)
        for y in 0..<height {
            let (r0, r1, fy) = ty[y]
            for x in 0..<width {
                let (c0, c1, fx) = tx[x]
                let top = grid[r0 * columns + c0] * (1 - fx) + grid[r0 * columns + c1] * fx
                let bottom = grid[r1 * columns + c0] * (1 - fx) + grid[r1 * columns + c1] * fx
                background[y * width + x] = Float(top * (1 - fy) + bottom * fy)
            }
        }
        return (grid, rows, columns, background)
    }
}

// MARK: - Flux-conserving resampling

extension PlanarImage {
    /// The image on a grid `factor` times coarser (factor > 1) or finer (< 1), each new
    /// pixel the sum of the old ones weighted by the area they share (axis-aligned
    /// square pixels, as drizzle with pixfrac 1): the total flux is kept. The output
    /// has round(n / factor) pixels per axis, centred on the input. Returns the image and
    /// the factor by which the noise sigma of independent pixels changes (the root
    /// mean square of each output pixel's summed squared weights).
    public func resampledConservingFlux(factor: Double) -> (image: PlanarImage, noiseFactor: Double) {
        func weights(_ n: Int) -> (count: Int, rows: [[(Int, Float)]], sumSquares: Double) {
            let m = Swift.max(1, Int((Double(n) / factor).rounded()))
            // Output pixel j covers input coordinates [start + j·factor, start + (j+1)·factor), centred.
            let start = (Double(n) - Double(m) * factor) / 2
            var rows = [[(Int, Float)]]()
            var squares = 0.0
            for j in 0..<m {
                let lo = start + Double(j) * factor, hi = lo + factor
                var taps = [(Int, Float)]()
                var i = Swift.max(0, Int(Foundation.floor(lo)))
                while i < n && Double(i) < hi {
                    let overlap = Swift.min(hi, Double(i + 1)) - Swift.max(lo, Double(i))
                    if overlap > 0 { taps.append((i, Float(overlap))); squares += overlap * overlap }
                    i += 1
                }
                rows.append(taps)
            }
            return (m, rows, squares / Double(m))
        }
        let (newHeight, ty, sy) = weights(height), (newWidth, tx, sx) = weights(width)
        var out = PlanarImage(channels: channels, height: newHeight, width: newWidth,
                              pixels: [Float](repeating: 0, count: channels * newHeight * newWidth))
        var horizontal = [Float](repeating: 0, count: height * newWidth)
        for c in 0..<channels {
            for y in 0..<height {
                for (j, taps) in tx.enumerated() {
                    var sum: Float = 0
                    for (i, w) in taps { sum += w * self[c, y, i] }
                    horizontal[y * newWidth + j] = sum
                }
            }
            for (j, taps) in ty.enumerated() {
                for x in 0..<newWidth {
                    var sum: Float = 0
                    for (i, w) in taps { sum += w * horizontal[i * newWidth + x] }
                    out[c, j, x] = sum
                }
            }
        }
        return (out, (sx * sy).squareRoot())
    }

    /// Centre crop or zero padding (split evenly, the extra pixel after) to `height`×`width`.
    public func fitted(height h: Int, width w: Int) -> PlanarImage {
        var image = self
        if image.height > h || image.width > w {
            image = image.centerCropped(height: Swift.min(h, image.height), width: Swift.min(w, image.width))
        }
        if image.height < h || image.width < w {
            let dy = h - image.height, dx = w - image.width
            image = image.padded(top: dy / 2, bottom: dy - dy / 2, left: dx / 2, right: dx - dx / 2, mode: .constant(0))
        }
        return image
    }
}

// MARK: - The stages

extension Stage {
    /// The noise of background pixels: sigma-clipped, then the MAD of what is left (robust to
    /// faint sources), and the clipped median; the noise is 0 when more than half of the
    /// pixels hold one value (that median).
    static func clippedNoise(_ pixels: [Float]) -> (noise: Double, median: Double) {
        let s = pixels.withUnsafeBufferPointer { PixelStatistics.sigmaClipped($0) }
        var kept = pixels.filter { $0.isFinite && abs(Double($0) - s.median) <= 3 * s.std }
        if kept.isEmpty { kept = [0] }
        return (kept.withUnsafeBufferPointer(PixelStatistics.madStd), s.median)
    }

    /// The noise of one channel's pixels measured on the image (`clippedNoise`); when half the
    /// image or more holds one value (a constant fill where the cutout ran off its survey image,
    /// zeros most often), the noise of the rest, and a note saying what was left out. A channel
    /// without a finite pixel, or without noise, is an error naming `stage`, `keyword` and `sample`.
    static func measuredNoise(_ pixels: [Float], stage: String, keyword: String, sample: String) throws -> (sigma: Double, fill: String?) {
        guard pixels.contains(where: \.isFinite) else {
            throw PreprocessingError.noFinitePixels(stage: stage, sample: sample)
        }
        let clipped = clippedNoise(pixels)
        var sigma = clipped.noise, note: String?
        if sigma == 0 {
            let fill = Float(clipped.median)
            let rest = pixels.filter { $0.isFinite && $0 != fill }
            if rest.count >= 16 {
                sigma = clippedNoise(rest).noise
                note = String(format: "%d pixels equal to %g (a constant fill) left out", pixels.count - rest.count, fill)
            }
        }
        guard sigma.isFinite && sigma > 0 else {
            throw PreprocessingError.constantBackground(stage: stage, keyword: keyword, sample: sample)
        }
        return (sigma, note)
    }

    /// The factor `match_zero_point` multiplies pixels and noise by: 10^(0.4 (target − zp)).
    static func zeroPointScale(from zp: Double, to target: Double) -> Double {
        Foundation.pow(10, 0.4 * (target - zp))
    }

    /// The factor these stages' `match_zero_point` applies to an image with this header
    /// (1 without the stage or without a zero point in the header): a value measured after
    /// the stages, divided by it, is in the input's units.
    public static func zeroPointScale(of stages: [Stage], header: [String: Double]) -> Double {
        for case let .matchZeroPoint(target) in stages {
            if let (zp, _) = HeaderValues.zeroPoint(header) { return zeroPointScale(from: zp, to: target) }
        }
        return 1
    }

    func applyObservationMatching(to sample: inout Sample) throws {
        switch self {
        case let .matchZeroPoint(target):
            guard let (zp, keyword) = HeaderValues.zeroPoint(sample.header) else {
                sample.assumptions.append(Assumption(subject: "MAGZERO", note: String(format:
                    "no zero point in the header (%@ or PHOTFLAM with PHOTPLAM): assumed to be the model's, %g",
                    HeaderValues.magnitudeZeroPointKeywords.joined(separator: ", "), target)))
                sample.header["MAGZERO"] = target
                return
            }
            if keyword == HeaderValues.photflamZeroPointKey {
                // Its own subject: said once beside, not instead of, "no zero point" for other files.
                sample.assumptions.append(Assumption(subject: "PHOTFLAM", note: String(format:
                    "zero point from PHOTFLAM and PHOTPLAM (HST, AB magnitudes): %.3f", zp)))
            }
            let scale = Self.zeroPointScale(from: zp, to: target)
            if abs(scale - 1) > 1e-9 {
                for i in sample.image.pixels.indices { sample.image.pixels[i] *= Float(scale) }
                for key in HeaderValues.noiseKeywords(sample.header) { sample.header[key]! *= scale }
                if keyword != "MAGZERO" { sample.header[keyword] = target }
            }
            sample.header["MAGZERO"] = target
        case let .subtractMeshBackground(settings):
            let (h, w) = (sample.image.height, sample.image.width)
            var subtracted = [Double]()
            var noisy = false
            sample.image.forEachPlane { plane in
                let result = settings.estimate(UnsafeBufferPointer(plane), height: h, width: w)
                if settings.policy == .pedestal {
                    // Only a sky level that stands out of the noise is a pedestal to remove.
                    let sky = PixelStatistics.median(result.mesh)
                    let noise = PixelStatistics.sigmaClipped(UnsafeBufferPointer(plane)).std
                    guard sky.isFinite, noise.isFinite, abs(sky) > noise else { return }
                    noisy = true
                }
                for i in plane.indices { plane[i] -= result.background[i] }
                subtracted.append(PixelStatistics.median(result.mesh))
            }
            if settings.policy == .pedestal && noisy {
                sample.assumptions.append(Assumption(subject: "sky", note: "a sky level of " + subtracted.map { String(format: "%.4g", $0) }
                    .joined(separator: ", ") + " counts was found: the header does not say the sky was subtracted, "
                    + (settings.border > 0 ? "so that level, measured on the outer \(settings.border) pixels, was subtracted"
                        : "so a \(settings.mesh)-pixel mesh background was subtracted")))
            }
        case let .estimateNoise(keyword, bandKeywords):
            let channels = sample.image.channels
            let keys = channels > 1 && bandKeywords.count == channels ? bandKeywords : [keyword]
            guard keys.contains(where: { sample.header[$0] == nil }) else { return }
            var sigmas = [Double]()
            var fills: [String] = []
            for c in 0..<channels {
                let measured = try Self.measuredNoise(sample.image.channel(c).pixels, stage: name, keyword: keyword, sample: sample.name)
                sigmas.append(measured.sigma)
                if let fill = measured.fill { fills.append(fill) }
            }
            for (k, key) in keys.enumerated() where sample.header[key] == nil {
                sample.header[key] = keys.count == 1 ? sigmas.reduce(0, +) / Double(sigmas.count) : sigmas[k]
            }
            if keys.count > 1, sample.header[keyword] == nil {
                sample.header[keyword] = sigmas.reduce(0, +) / Double(sigmas.count)
            }
            sample.assumptions.append(Assumption(subject: keyword, note: "\(keys.joined(separator: ", ")) not in the header: "
                + "noise estimated from the data (sigma-clipped MAD of the background pixels): "
                + keys.map { String(format: "%.4g", sample.header[$0]!) }.joined(separator: ", ") + " counts"
                + (fills.isEmpty ? "" : " (" + fills.joined(separator: "; ") + ")")))
        case let .matchPixelScale(target):
            guard let scale = HeaderValues.pixelScale(sample.header) else {
                sample.assumptions.append(Assumption(subject: "PIXSCALE", note: String(format:
                    "no pixel scale in the header (PIXSCALE, CD, CDELT or PLTSCALE): assumed to be the model's, %g arcsec/px", target)))
                sample.header["PIXSCALE"] = target
                return
            }
            sample.header["PIXSCALE"] = target
            sample.header["PIXSCALE_NATIVE"] = scale
            guard abs(scale / target - 1) > 0.01 else { return }
            if sample.labels != nil { throw PreprocessingError.unsupportedWithLabels(stage: name, sample: sample.name) }
            let (image, noise) = sample.image.resampledConservingFlux(factor: target / scale)
            sample.image = image
            for key in HeaderValues.noiseKeywords(sample.header) { sample.header[key]! *= noise }
        case let .matchPSF(range):
            guard let fwhm = HeaderValues.psfFWHM(sample.header) else {
                sample.assumptions.append(Assumption(subject: "PSF_FWHM", note: String(format:
                    "no PSF size in the header (PSF_FWHM, SEEING, FWHM): assumed within the model's %g-%g arcsec, not matched",
                    range.lowerBound, range.upperBound)))
                return
            }
            guard fwhm < range.lowerBound else { return }
            guard let scale = HeaderValues.pixelScale(sample.header) else { return }
            // Gaussians add in quadrature: the kernel that takes FWHM f to the model's smallest.
            let kernel = (range.lowerBound * range.lowerBound - fwhm * fwhm).squareRoot() / scale
            sample.image = sample.image.gaussianBlurred(fwhm: kernel)
            let sigma = kernel / SpecialFunctions.fwhmPerSigma
            // White noise through a normalised Gaussian: sigma × 1 / (2 √π s) (continuous approximation, s ≥ 0.5 px).
            let noise = Swift.min(1, 1 / (2 * Double.pi.squareRoot() * Swift.max(sigma, 0.3)))
            for key in HeaderValues.noiseKeywords(sample.header) { sample.header[key]! *= noise }
            sample.header["PSF_FWHM"] = range.lowerBound
        case let .fitSize(h, w):
            guard sample.image.height != h || sample.image.width != w else { return }
            if sample.image.height < h || sample.image.width < w {
                sample.assumptions.append(Assumption(subject: "size", note: "the image (\(sample.image.height) x "
                    + "\(sample.image.width) after matching) is smaller than the model's \(h) x \(w): padded with zeros"))
            }
            sample.image = sample.image.fitted(height: h, width: w)
            sample.labels = sample.labels?.fitted(height: h, width: w)
        default:
            return
        }
    }
}
