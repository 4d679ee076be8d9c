// Point-spread functions beyond TASKS.md's circular Gaussian, for training data that varies
// what real PSFs vary: Moffat wings and ellipticity.
import AstroBase
import FITS
import Foundation

/// Which PSFs a data set draws.
public enum PSFChoice: String, CaseIterable, Sendable {
    /// TASKS.md: a circular Gaussian with FWHM uniform in the range.
    case gaussian
    /// Per image (per band for lens cubes): a Moffat with β uniform in [2.5, 6] (60 %) or a
    /// Gaussian (40 %), elliptical (|e| uniform up to 0.12, random angle) half of the time,
    /// FWHM uniform in the same range as `gaussian`.
    case varied
}

/// One PSF: a circular profile (Gaussian or Moffat) stretched into an ellipse of the same
/// area, so its FWHM (geometric mean of the major and minor axes' FWHM) stays `fwhm`.
public struct PSFShape: Sendable, Equatable {
    public enum Profile: Sendable, Equatable {
        case gaussian
        /// I(r) ∝ (1 + (r/α)²)^(−β).
        case moffat(beta: Double)
    }

    public var profile: Profile
    /// FWHM in pixels (geometric mean over the axes).
    public var fwhm: Double
    /// Ellipticity (a − b)/(a + b) of the isophotes, 0 ≤ e < 1.
    public var ellipticity: Double
    /// Major axis from +x, counter-clockwise, radians.
    public var angle: Double

    public init(profile: Profile, fwhm: Double, ellipticity: Double = 0, angle: Double = 0) {
        precondition(fwhm > 0 && ellipticity >= 0 && ellipticity < 1, "PSFShape: bad fwhm \(fwhm) or e \(ellipticity)")
        self.profile = profile; self.fwhm = fwhm; self.ellipticity = ellipticity; self.angle = angle
    }

    /// Draws a PSF of `varied` for an FWHM (pixels) already drawn from the task's range.
    static func draw(fwhm: Double, random: inout SeededGenerator) -> PSFShape {
        let moffat = random.uniform() < 0.6
        let beta = random.uniform(2.5, 6)
        let elliptical = random.uniform() < 0.5
        let e = random.uniform(0, 0.12), angle = random.positionAngle()
        return PSFShape(profile: moffat ? .moffat(beta: beta) : .gaussian, fwhm: fwhm,
                        ellipticity: elliptical ? e : 0, angle: elliptical ? angle : 0)
    }

    /// The circular profile at radius r (pixels), 1 at the centre.
    @inline(__always) public func radialValue(_ r: Double) -> Double {
        let half = fwhm / 2
        switch profile {
        case .gaussian:
            return Foundation.exp(-Foundation.log(2.0) * r * r / (half * half))
        case .moffat(let beta):
            // FWHM = 2α √(2^{1/β} − 1)
            let alpha2 = half * half / (Foundation.pow(2, 1 / beta) - 1)
            return Foundation.pow(1 + r * r / alpha2, -beta)
        }
    }

    /// The unnormalised PSF at an offset (pixels) from its centre.
    public func value(dx: Double, dy: Double) -> Double {
        let c = Foundation.cos(angle), s = Foundation.sin(angle)
        let u = dx * c + dy * s, v = -dx * s + dy * c
        let stretch = ((1 + ellipticity) / (1 - ellipticity)).squareRoot()  // a/b = stretch², a·b = 1
        let uu = u / stretch, vv = v * stretch
        return radialValue((uu * uu + vv * vv).squareRoot())
    }

    /// Pixels of the kernel beyond its centre on each side: 6 FWHM, at most 24.
    public var kernelRadius: Int { min(24, Int((6 * fwhm).rounded(.up))) }

    /// The PSF sampled at whole-pixel offsets within `kernelRadius`, row-major
    /// (2R+1)², normalised to sum 1 so convolution conserves flux.
    public func kernel() -> [Double] {
        let r = kernelRadius, side = 2 * r + 1
        var values = [Double](repeating: 0, count: side * side)
        for j in 0..<side { for i in 0..<side { values[j * side + i] = value(dx: Double(i - r), dy: Double(j - r)) } }
        let total = values.reduce(0, +)
        return values.map { $0 / total }
    }

    /// Header cards recording the draw (FWHM goes in PSF_FWHM).
    func cards(suffix: String = "") -> [HeaderRecord] {
        var cards = [HeaderRecord("PSFTYPE" + suffix, .string(profile == .gaussian ? "GAUSSIAN" : "MOFFAT"), comment: "PSF profile")]
        if case .moffat(let beta) = profile { cards.append(HeaderRecord("PSFBETA" + suffix, .float(beta), comment: "Moffat beta")) }
        cards.append(HeaderRecord("PSF_E" + suffix, .float(ellipticity), comment: "PSF ellipticity (a-b)/(a+b)"))
        cards.append(HeaderRecord("PSF_PA" + suffix, .float(angle * 180 / Double.pi), comment: "PSF major axis from +x [deg]"))
        return cards
    }

    /// The Gaussian σ (pixels) the renderer applies before the kernel: it keeps sub-pixel
    /// positions in the pixel values (a point source's light is split over its pixels), which
    /// a kernel on the pixel grid alone would round to pixel centres. 0.6 px keeps the
    /// kernel path within 0.5 % of the peak of the exact Gaussian renderer (PSFTests).
    static let preBlurSigma = 0.6

    /// FWHM (pixels) of this shape's circular profile convolved with a circular Gaussian σ:
    /// the cut through the centre, ∫∫ I(x − u, v) G(u) G(v), on a 9 × 9 node rule over ±3σ,
    /// and its half-maximum point by bisection.
    func fwhm(blurredBy sigma: Double) -> Double {
        let nodes = (0..<9).map { sigma * 0.75 * Double($0 - 4) }
        let raw = nodes.map { Foundation.exp(-0.5 * $0 * $0 / (sigma * sigma)) }
        let total = raw.reduce(0, +)
        let weights = raw.map { $0 / total }
        func cut(_ x: Double) -> Double {
            var sum = 0.0
            for a in 0..<9 {
                let du = x - nodes[a]
                for b in 0..<9 { sum += weights[a] * weights[b] * radialValue((du * du + nodes[b] * nodes[b]).squareRoot()) }
            }
            return sum
        }
        let half = cut(0) / 2
        var low = 0.0, high = 2 * fwhm + 6 * sigma
        for _ in 0..<50 {
            let mid = (low + high) / 2
            if cut(mid) > half { low = mid } else { high = mid }
        }
        return low + high
    }

    /// This shape with its FWHM reduced so that, after the renderer's pre-blur, the FWHM is
    /// `fwhm` again (exact for a Gaussian; a few fixed-point steps for a Moffat).
    var afterPreBlur: PSFShape {
        let s0 = PSFShape.preBlurSigma
        var shape = self
        let pre = s0 * SpecialFunctions.fwhmPerSigma
        shape.fwhm = (fwhm * fwhm - pre * pre).squareRoot()
        if case .moffat = profile {
            for _ in 0..<6 { shape.fwhm *= fwhm / shape.fwhm(blurredBy: s0) }
        }
        return shape
    }

    /// Renders components through this PSF: pixel-integrated with a small Gaussian pre-blur
    /// (`Renderer`), then convolved with the kernel on the pixel grid. Light the kernel would
    /// scatter in from outside the image is not included (the image edge is a zero pad).
    public func render(_ components: [SceneComponent], width: Int, height: Int) -> [Double] {
        let renderer = Renderer(width: width, height: height, psfSigma: PSFShape.preBlurSigma, components: components)
        return afterPreBlur.convolve(renderer.render(components), width: width, height: height)
    }

    /// Renders a cell grid (lens cubes: one band of a shared grid) through this PSF.
    func render(grid: CellGrid, width: Int, height: Int, oversampling: Int, margin: Int) -> [Double] {
        let renderer = Renderer(width: width, height: height, psfSigma: PSFShape.preBlurSigma,
                                oversampling: oversampling, margin: margin)
        return afterPreBlur.convolve(renderer.render(grid: grid, analytic: []), width: width, height: height)
    }

    /// `image` (row-major, `height` rows of `width`) convolved with `kernel()`, zero outside.
    public func convolve(_ image: [Double], width: Int, height: Int) -> [Double] {
        precondition(image.count == width * height, "PSFShape.convolve: \(image.count) pixels for \(width)x\(height)")
        let kernel = kernel(), r = kernelRadius, side = 2 * r + 1
        var out = [Double](repeating: 0, count: width * height)
        image.withUnsafeBufferPointer { src in
            kernel.withUnsafeBufferPointer { k in
                out.withUnsafeMutableBufferPointer { dst in
                    // Scatter each source pixel's light over its neighbours.
                    for y in 0..<height {
                        for x in 0..<width {
                            let f = src[y * width + x]
                            if f == 0 { continue }
                            let j0 = max(0, r - y), j1 = min(side - 1, r + height - 1 - y)
                            let i0 = max(0, r - x), i1 = min(side - 1, r + width - 1 - x)
                            if j0 > j1 || i0 > i1 { continue }
                            for j in j0...j1 {
                                let row = (y + j - r) * width + (x - r)
                                let krow = j * side
                                for i in i0...i1 { dst[row + i] += f * k[krow + i] }
                            }
                        }
                    }
                }
            }
        }
        return out
    }
}

/// The PSF draws of one image: `nil` under TASKS.md's Gaussian (the existing renderer path),
/// a `PSFShape` per band under `varied`. The draws come from their own stream, so a
/// `varied` data set has the same scenes, FWHMs and noise draws as the `gaussian` one of
/// the same seed.
func psfShapes(_ choice: PSFChoice, seed: UInt64, index: Int, fwhmPixels: [Double]) -> [PSFShape]? {
    guard choice == .varied else { return nil }
    var random = SeededGenerator(seed: seed ^ 0x5053_465F_5641_5259, stream: UInt64(index))  // "PSF_VARY"
    return fwhmPixels.map { PSFShape.draw(fwhm: $0, random: &random) }
}
