// Maximum-likelihood fits of PSF-convolved Sérsic profiles and point sources to an image.
import AstroBase
import CBLAS
import Foundation

/// One source of a fitted scene, in pixel units: a Sérsic profile or a point source (the PSF alone).
public struct FitComponent: Sendable, Equatable {
    public enum Kind: String, Sendable { case sersic, point }
    public var kind: Kind
    /// Centre, 0-based pixel coordinates (x along NAXIS1).
    public var x: Double
    public var y: Double
    /// Total flux of the untruncated profile, counts.
    public var flux: Double
    /// Circularised half-light radius, pixels (Sérsic only).
    public var halfLightRadius: Double
    public var n: Double
    public var q: Double
    /// Position angle of the major axis, radians counter-clockwise from +x.
    public var angle: Double

    public static func sersic(x: Double, y: Double, flux: Double, halfLightRadius: Double, n: Double, q: Double,
                              angle: Double) -> FitComponent {
        FitComponent(kind: .sersic, x: x, y: y, flux: flux, halfLightRadius: halfLightRadius, n: n, q: q, angle: angle)
    }

    public static func point(x: Double, y: Double, flux: Double) -> FitComponent {
        FitComponent(kind: .point, x: x, y: y, flux: flux, halfLightRadius: 0, n: 0, q: 1, angle: 0)
    }

    /// The component as the renderer draws it.
    public var sceneComponent: SceneComponent {
        switch kind {
        case .sersic:
            return .sersic(SersicProfile(n: n, halfLightRadius: halfLightRadius, flux: flux,
                                         geometry: EllipseGeometry(centerX: x, centerY: y, q: q, angle: angle)))
        case .point:
            return .gaussian(GaussianBlob(centerX: x, centerY: y, sigma: 0, flux: flux))
        }
    }
}

/// A maximum-likelihood fit of a scene (Sérsic profiles and point sources, convolved with a
/// circular Gaussian PSF and integrated over the pixels as `Renderer` draws them) to one
/// image in counts, as GALFIT and the Tractor do for blended galaxies.
///
/// The likelihood is Gaussian with per-pixel variance σ² + m / gain (sky noise plus the
/// Poisson noise of the model m, reweighted after every accepted step); non-finite pixels
/// are left out. Levenberg–Marquardt (Marquardt's diagonal scaling) on unbounded
/// parameters: per Sérsic x, y, ln flux, ln r_e, the logit of n within `sersicIndices` and
/// the ellipticity (e cos 2θ, e sin 2θ) with e = (1 - q)/(1 + q), which is smooth through
/// q = 1; per point source x, y, ln flux. Derivatives by forward differences of each
/// component's own image (the scene is a sum, so a step redraws one component; the flux
/// derivative is the image itself); each component keeps one oversampling while its
/// derivatives are taken. The damped normal equations are solved by LAPACK's `dposv`.
///
/// `drawing` chooses how a profile is drawn: on `Renderer`'s oversampled grid (`.grid`, as the
/// simulator draws it), or as the closed-form Gaussian mixture of `SersicMixture` (`.gaussianMixture`:
/// within ~1e-3 of the peak, some hundred times faster; n within `SersicMixture.indices`).
public struct SceneFit: Sendable {
    public enum Drawing: Sendable { case grid, gaussianMixture }
    public var width: Int
    public var height: Int
    /// PSF standard deviation, pixels.
    public var psfSigma: Double
    /// Sky noise σ, counts.
    public var skySigma: Double
    /// e-/count for the Poisson term (nil: sky noise only).
    public var gain: Double?
    /// Levenberg–Marquardt iterations at most.
    public var iterations = 60
    /// The largest oversampling used while fitting (the renderer's own choice, capped: speed).
    public var oversamplingLimit = 4
    public var sersicIndices: ClosedRange<Double> = 0.3...8
    /// Half-light radii allowed, pixels.
    public var radii: ClosedRange<Double> = 0.15...80
    /// The largest ellipticity e = (1 - q)/(1 + q) (0.9: q ≥ 0.053).
    public var largestEllipticity = 0.9
    /// How profiles are drawn while fitting.
    public var drawing = Drawing.grid

    public init(width: Int, height: Int, psfSigma: Double, skySigma: Double, gain: Double?) {
        precondition(width > 0 && height > 0 && psfSigma >= 0 && skySigma > 0,
                     "SceneFit: bad geometry \(width)x\(height), PSF σ \(psfSigma), sky σ \(skySigma)")
        self.width = width; self.height = height; self.psfSigma = psfSigma; self.skySigma = skySigma; self.gain = gain
    }

    /// A fit that draws its profiles as Gaussian mixtures (`Drawing.gaussianMixture`) over the
    /// Sérsic indices the mixture covers (`SersicMixture.indices`).
    public static func drawingMixtures(width: Int, height: Int, psfSigma: Double, skySigma: Double, gain: Double?) -> SceneFit {
        var fit = SceneFit(width: width, height: height, psfSigma: psfSigma, skySigma: skySigma, gain: gain)
        fit.drawing = .gaussianMixture
        fit.sersicIndices = SersicMixture.indices
        return fit
    }

    public struct Result: Sendable {
        public var components: [FitComponent]
        /// Σ (data - model)² / variance over the fitted pixels.
        public var chiSquare: Double
        /// Pixels that entered the fit.
        public var pixels: Int
        public var parameters: Int
        public var iterations: Int
        /// Whether χ² stopped falling (relative change below 1e-6) before `iterations` ran out.
        public var converged: Bool
        /// The Fisher matrix JᵀWJ (column-major, parameters × parameters) of the last iteration's
        /// Jacobian, one step before `components` (nil: no iteration ran).
        public var fisher: [Double]? = nil
        public var reducedChiSquare: Double { chiSquare / Double(max(pixels - parameters, 1)) }
    }

    /// The noiseless image of `components` (row-major, counts), drawn as the simulator draws
    /// its scenes (the renderer's own oversampling).
    public func image(_ components: [FitComponent]) -> [Double] {
        let scene = components.map(\.sceneComponent)
        return Renderer(width: width, height: height, psfSigma: psfSigma, components: scene).render(scene)
    }

    /// Fits `initial` to `pixels` (row-major `height × width`, counts).
    public func fit(_ pixels: [Float], from initial: [FitComponent]) -> Result {
        precondition(pixels.count == width * height, "SceneFit: \(pixels.count) pixels for \(width) × \(height)")
        let data = pixels.map(Double.init)
        let used = data.map(\.isFinite)
        let count = used.filter { $0 }.count
        var theta = initial.map { parameters(of: clamped($0)) }
        let sizes = theta.map(\.count)
        let total = sizes.reduce(0, +)
        var sampling = initial.map { oversampling(for: clamped($0)) }
        var images = renderAll(theta.indices.map { component(theta[$0], kind: initial[$0].kind) }, sampling)
        func chiSquare(_ model: [Double], _ w: [Double]) -> Double {
            var sum = 0.0
            for i in model.indices where w[i] > 0 { let r = data[i] - model[i]; sum += w[i] * r * r }
            return sum
        }

        var model = modelImage(images)
        var w = weights(model, pixels: pixels)
        var chi = chiSquare(model, w)
        var lambda = 1e-3
        var converged = false
        var done = 0
        guard total > 0, count > total else {
            return Result(components: initial, chiSquare: chi, pixels: count, parameters: total, iterations: 0, converged: true)
        }
        let pixelCount = width * height
        var lastFisher: [Double]?
        while done < iterations && !converged {
            done += 1
            // The images of the last accepted step, redrawn where a component's oversampling changed.
            let resampled = theta.indices.map { oversampling(for: component(theta[$0], kind: initial[$0].kind)) }
            if resampled != sampling {
                sampling = resampled
                images = renderAll(theta.indices.map { component(theta[$0], kind: initial[$0].kind) }, sampling)
            }
            model = modelImage(images)
            w = weights(model, pixels: pixels)
            chi = chiSquare(model, w)
            let jacobian = self.jacobian(theta, kinds: initial.map(\.kind), sampling: sampling, images: images)
            // Normal equations JᵀWJ δ = JᵀW r.
            let (normal, weighted) = Self.fisher(jacobian, w, parameters: total)
            lastFisher = normal
            var gradient = [Double](repeating: 0, count: total)
            let residual = (0..<pixelCount).map { used[$0] ? data[$0] - model[$0] : 0 }
            cblas_dgemv(CblasColMajor, CblasTrans, Int32(pixelCount), Int32(total), 1, weighted, Int32(pixelCount),
                        residual, 1, 0, &gradient, 1)
            var accepted = false
            while !accepted && lambda < 1e12 {
                var damped = normal
                for c in 0..<total { damped[c * total + c] += lambda * max(normal[c * total + c], 1e-12) }
                guard let delta = Self.solve(damped, gradient, total) else { lambda *= 10; continue }
                var trial = theta
                var offset = 0
                for k in theta.indices {
                    for j in 0..<sizes[k] { trial[k][j] += delta[offset + j] }
                    trial[k] = parameters(of: clamped(component(trial[k], kind: initial[k].kind)))
                    offset += sizes[k]
                }
                let trialImages = renderAll(trial.indices.map { component(trial[$0], kind: initial[$0].kind) }, sampling)
                let trialModel = modelImage(trialImages)
                let trialChi = chiSquare(trialModel, w)
                if trialChi < chi {
                    accepted = true
                    converged = (chi - trialChi) < 1e-6 * chi
                    theta = trial
                    images = trialImages
                    lambda = max(lambda / 3, 1e-9)
                } else {
                    lambda *= 4
                }
            }
            if !accepted { converged = true }
        }
        let components = theta.indices.map { component(theta[$0], kind: initial[$0].kind) }
        let final = modelImage(components.indices.map { render(components[$0], oversampling(for: components[$0])) })
        return Result(components: components, chiSquare: chiSquare(final, weights(final, pixels: pixels)), pixels: count,
                      parameters: total, iterations: done, converged: converged, fisher: lastFisher)
    }

    /// ∂ image / ∂ parameter, column-major (pixel, parameter), each component at its own
    /// oversampling; the columns are independent renders, drawn in parallel (`each`).
    func jacobian(_ theta: [[Double]], kinds: [FitComponent.Kind], sampling: [Int], images: [[Double]]) -> [Double] {
        let pixelCount = width * height
        var columns: [(component: Int, parameter: Int)] = []
        for k in theta.indices { for j in theta[k].indices { columns.append((k, j)) } }
        var jacobian = [Double](repeating: 0, count: pixelCount * columns.count)
        jacobian.withUnsafeMutableBufferPointer { out in
            let base = out.baseAddress!
            each(columns.count) { column in
                let (k, j) = columns[column]
                let target = base + column * pixelCount
                if j == 2 {
                    for i in 0..<pixelCount { target[i] = images[k][i] }
                } else {
                    var stepped = theta[k]
                    let h = Self.step[j]
                    stepped[j] += h
                    let moved = render(component(stepped, kind: kinds[k]), sampling[k])
                    for i in 0..<pixelCount { target[i] = (moved[i] - images[k][i]) / h }
                }
            }
        }
        return jacobian
    }

    /// The covariance (column-major, parameters × parameters) of the fit's parameters at
    /// `components` (per Sérsic x, y, ln flux, ln r_e, logit n, e1, e2; per point source x, y,
    /// ln flux; every parameter of every component free): the inverse of the Fisher matrix
    /// JᵀWJ with the fit's noise model; nil when the matrix is singular.
    public func covariance(_ pixels: [Float], at components: [FitComponent]) -> [Double]? {
        let theta = components.map { parameters(of: clamped($0)) }
        let sampling = components.map { oversampling(for: clamped($0)) }
        let images = renderAll(theta.indices.map { component(theta[$0], kind: components[$0].kind) }, sampling)
        let total = theta.reduce(0) { $0 + $1.count }
        let jacobian = self.jacobian(theta, kinds: components.map(\.kind), sampling: sampling, images: images)
        return Self.inverse(Self.fisher(jacobian, weights(modelImage(images), pixels: pixels), parameters: total).matrix, total)
    }

    /// The inverse of the symmetric positive-definite `fisher` (`total` × `total`, column-major); nil when it is singular.
    static func inverse(_ fisher: [Double], _ total: Int) -> [Double]? {
        var covariance = [Double](repeating: 0, count: total * total)
        for c in 0..<total {
            var unit = [Double](repeating: 0, count: total)
            unit[c] = 1
            guard let column = Self.solve(fisher, unit, total), column[c] > 0 else { return nil }
            for r in 0..<total { covariance[c * total + r] = column[r] }
        }
        return covariance
    }

    /// The standard error of each component's ln flux (≈ its magnitude's error / 1.0857) from
    /// `covariance(_:at:)`; nil when the Fisher matrix is singular.
    public func fluxErrors(_ pixels: [Float], at components: [FitComponent]) -> [Double]? {
        guard let covariance = covariance(pixels, at: components) else { return nil }
        let total = components.reduce(0) { $0 + parameters(of: clamped($1)).count }
        var errors: [Double] = []
        var offset = 0
        for c in components {
            errors.append(covariance[(offset + 2) * total + offset + 2].squareRoot())
            offset += parameters(of: clamped(c)).count
        }
        return errors
    }

    /// `count` draws of one Sérsic `galaxy` (alone in `pixels`, at its maximum-likelihood fit)
    /// from an approximation of its likelihood in the fit's parameters θ = (x, y, ln flux,
    /// ln r_e, logit n, e1, e2): Laplace's Gaussian with `covariance(_:at:)` (or the Fisher
    /// matrix a `fit` lends: its last iteration's), made skew along each principal axis of that
    /// covariance by a split normal (Gibbons & Mylroie 1973), whose two widths come from χ² at
    /// ±`probe` standard deviations along the axis (σ± = probe σ / √Δχ²±, within ½–2 σ): a faint
    /// galaxy's likelihood has a longer tail towards larger n, r_e and flux (its wings are lost
    /// in the noise), which Laplace's Gaussian alone, centred on the mode, misses. Draws come in
    /// antithetic pairs (opposite sides of every axis). Each comes with ln |∂(ln flux, r_e, n, q,
    /// angle) / ∂(ln flux, ln r_e, logit n, e1, e2)| = ln(r_e (n - n₀)(n₁ - n) / (n₁ - n₀)) -
    /// ln(e (1 + e)²), n₀…n₁ the fit's `sersicIndices`: the weight that turns a prior flat in θ
    /// into one flat in magnitude, r_e, n, q and angle. nil when the Fisher matrix is singular.
    public func laplaceDraws(_ pixels: [Float], at galaxy: FitComponent, fit: Result? = nil, count: Int, probe: Double = 2,
                             generator: inout SeededGenerator) -> [(galaxy: FitComponent, logVolume: Double)]? {
        let lent = fit?.fisher.flatMap { $0.count == 49 ? Self.inverse($0, 7) : nil }
        guard galaxy.kind == .sersic, let covariance = lent ?? covariance(pixels, at: [galaxy]),
              case let .success((values, vectors)) = SymmetricEigen.decompose(covariance, 7), values[0] > 0 else { return nil }
        let k = 7
        let centre = parameters(of: clamped(galaxy))
        let sampling = oversampling(for: clamped(galaxy))
        let data = pixels.map(Double.init)
        let modeImage = render(component(centre, kind: .sersic), sampling)
        let w = weights(modeImage, pixels: pixels)
        func chiSquare(_ theta: [Double]) -> Double {
            let model = render(component(theta, kind: .sersic), sampling)
            var sum = 0.0
            for i in model.indices where w[i] > 0 { let r = data[i] - model[i]; sum += w[i] * r * r }
            return sum
        }
        let atMode = chiSquare(centre)
        // Per principal axis: its direction scaled to one standard deviation, and the widths below and above the mode.
        let axes: [(step: [Double], below: Double, above: Double)] = (0..<k).map { a in
            let step = (0..<k).map { vectors[a * k + $0] * values[a].squareRoot() }
            func width(_ sign: Double) -> Double {
                let rise = chiSquare(zip(centre, step).map { $0 + sign * probe * $1 }) - atMode
                return rise > 0 ? min(max(probe / rise.squareRoot(), 0.5), 2) : 2
            }
            return (step, width(-1), width(1))
        }
        let (n0, n1) = (sersicIndices.lowerBound, sersicIndices.upperBound)
        // Antithetic pairs: the second draw of a pair takes the other side of every axis (u → 1 - u)
        // at the same distances, so the pair's mean sits on the mode when the axes are symmetric.
        var offsets: [[Double]] = []
        offsets.reserveCapacity(count)
        while offsets.count < count {
            let z = axes.map { _ in abs(generator.normal()) }, u = axes.map { _ in generator.uniform() }
            for flip in [false, true] where offsets.count < count {
                var offset = [Double](repeating: 0, count: k)
                for (a, axis) in axes.enumerated() {
                    let v = flip ? 1 - u[a] : u[a]
                    let side = v * (axis.below + axis.above) < axis.below ? -axis.below : axis.above
                    for j in 0..<k { offset[j] += side * z[a] * axis.step[j] }
                }
                offsets.append(offset)
            }
        }
        return offsets.map { offset in
            let theta = zip(centre, offset).map { $0 + $1 }
            let e = (theta[5] * theta[5] + theta[6] * theta[6]).squareRoot()
            let drawn = component(theta, kind: .sersic)
            let logVolume = Foundation.log(drawn.halfLightRadius * max((drawn.n - n0) * (n1 - drawn.n), 1e-300) / (n1 - n0))
                - Foundation.log(max(e, 1e-300) * (1 + e) * (1 + e))
            return (drawn, logVolume)
        }
    }

    /// The pixel-wise sum of component images (the scene's model image).
    func modelImage(_ images: [[Double]]) -> [Double] {
        var total = [Double](repeating: 0, count: width * height)
        for image in images { for i in total.indices { total[i] += image[i] } }
        return total
    }

    /// JᵀWJ (`parameters` × `parameters`, column-major) of the column-major (pixel, parameter)
    /// `jacobian` under pixel weights `w`, and WJ (for JᵀW r).
    static func fisher(_ jacobian: [Double], _ w: [Double], parameters total: Int) -> (matrix: [Double], weighted: [Double]) {
        let pixelCount = w.count
        var weighted = jacobian
        for c in 0..<total { for i in 0..<pixelCount { weighted[c * pixelCount + i] *= w[i] } }
        var matrix = [Double](repeating: 0, count: total * total)
        cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, Int32(total), Int32(total), Int32(pixelCount), 1,
                    jacobian, Int32(pixelCount), weighted, Int32(pixelCount), 0, &matrix, Int32(total))
        return (matrix, weighted)
    }

    /// Finite-difference steps per parameter (x, y, ln flux (analytic), ln r_e, logit n, e1, e2).
    static let step: [Double] = [0.02, 0.02, 0, 0.01, 0.02, 0.01, 0.01]

    /// 1 / variance per pixel under `model`: sky σ² plus the model's Poisson variance at `gain`; 0
    /// where `pixels` is not finite (left out of the fit).
    func weights(_ model: [Double], pixels: [Float]) -> [Double] {
        (0..<model.count).map { i in
            guard pixels[i].isFinite else { return 0 }
            return 1 / (skySigma * skySigma + (gain.map { max(model[i], 0) / $0 } ?? 0))
        }
    }

    /// `body` for 0..<count: in parallel for the grid's renders; in this thread for the mixture's,
    /// which take tens of microseconds (a run fits its galaxies in parallel already).
    func each(_ count: Int, _ body: (Int) -> Void) {
        if drawing == .grid { DispatchQueue.concurrentPerform(iterations: count, execute: body) } else { (0..<count).forEach(body) }
    }

    /// Each component's image at its oversampling, drawn in parallel (`each`).
    func renderAll(_ components: [FitComponent], _ sampling: [Int]) -> [[Double]] {
        var images = [[Double]](repeating: [], count: components.count)
        images.withUnsafeMutableBufferPointer { out in
            let base = out.baseAddress!
            each(components.count) { k in base[k] = render(components[k], sampling[k]) }
        }
        return images
    }

    func oversampling(for c: FitComponent) -> Int {
        min(Renderer.oversampling(for: [c.sceneComponent]), oversamplingLimit)
    }

    func render(_ c: FitComponent, _ oversampling: Int) -> [Double] {
        if drawing == .gaussianMixture {
            let gaussians = c.kind == .point
                ? SersicMixture.point(flux: c.flux, x: c.x, y: c.y, psfSigma: psfSigma)
                : SersicMixture.gaussians(n: c.n, halfLightRadius: c.halfLightRadius, flux: c.flux,
                                          geometry: EllipseGeometry(centerX: c.x, centerY: c.y, q: c.q, angle: c.angle),
                                          psfSigma: psfSigma)
            return SersicMixture.image(gaussians, width: width, height: height, floor: 1e-4 * skySigma).map(Double.init)
        }
        let scene = c.sceneComponent
        if case .gaussian = scene {
            return Renderer(width: width, height: height, psfSigma: psfSigma, oversampling: 1).render([scene])
        }
        var renderer = Renderer(width: width, height: height, psfSigma: psfSigma, oversampling: oversampling)
        renderer.intensityFloor = 1e-4 * skySigma
        return renderer.render([scene])
    }

    /// The component inside the fit's bounds: centre within the image and a margin of its
    /// size, flux positive, radius, index and ellipticity within their ranges.
    func clamped(_ c: FitComponent) -> FitComponent {
        var c = c
        let reach = 2.0 * max(Double(width), Double(height))
        c.x = min(max(c.x, -reach), Double(width) + reach)
        c.y = min(max(c.y, -reach), Double(height) + reach)
        c.flux = min(max(c.flux, 1e-3), 1e12)
        guard c.kind == .sersic else { return c }
        c.halfLightRadius = min(max(c.halfLightRadius, radii.lowerBound), radii.upperBound)
        c.n = min(max(c.n, sersicIndices.lowerBound), sersicIndices.upperBound)
        let largestQ = 1.0, smallestQ = (1 - largestEllipticity) / (1 + largestEllipticity)
        c.q = min(max(c.q, smallestQ), largestQ)
        return c
    }

    func parameters(of c: FitComponent) -> [Double] {
        switch c.kind {
        case .point: return [c.x, c.y, Foundation.log(c.flux)]
        case .sersic:
            let span = sersicIndices.upperBound - sersicIndices.lowerBound
            let u = min(max((c.n - sersicIndices.lowerBound) / span, 1e-6), 1 - 1e-6)
            let e = (1 - c.q) / (1 + c.q)
            return [c.x, c.y, Foundation.log(c.flux), Foundation.log(c.halfLightRadius), Foundation.log(u / (1 - u)),
                    e * Foundation.cos(2 * c.angle), e * Foundation.sin(2 * c.angle)]
        }
    }

    func component(_ p: [Double], kind: FitComponent.Kind) -> FitComponent {
        switch kind {
        case .point: return .point(x: p[0], y: p[1], flux: Foundation.exp(min(p[2], 27.6)))
        case .sersic:
            let span = sersicIndices.upperBound - sersicIndices.lowerBound
            let e = min((p[5] * p[5] + p[6] * p[6]).squareRoot(), largestEllipticity)
            let n = sersicIndices.lowerBound + span / (1 + Foundation.exp(-p[4]))
            let radius = Foundation.exp(min(max(p[3], Foundation.log(radii.lowerBound)), Foundation.log(radii.upperBound)))
            return .sersic(x: p[0], y: p[1], flux: Foundation.exp(min(p[2], 27.6)), halfLightRadius: radius,
                           n: min(max(n, sersicIndices.lowerBound), sersicIndices.upperBound),
                           q: (1 - e) / (1 + e), angle: 0.5 * Foundation.atan2(p[6], p[5]))
        }
    }

    /// Solves the symmetric positive-definite system `a x = b` (n × n) by Cholesky; nil when it is not.
    static func solve(_ a: [Double], _ b: [Double], _ n: Int) -> [Double]? {
        var matrix = a, rhs = b
        var size = Int32(n), lda = Int32(n), ldb = Int32(n), columns: Int32 = 1, info: Int32 = 0
        var uplo: CChar = 85  // 'U'
        dposv_(&uplo, &size, &columns, &matrix, &lda, &rhs, &ldb, &info)
        return info == 0 && rhs.allSatisfy(\.isFinite) ? rhs : nil
    }
}

extension FitComponent {
    /// A starting guess from the light of `members` (indices into row-major `pixels`, counts,
    /// `width` wide; only positive values count): the flux-weighted centroid, the summed flux,
    /// and the second moments with the PSF's σ² taken off, as a Gaussian's (half-light radius
    /// 1.1774 σ, circularised; axis ratio and angle from the eigenvectors). A source whose
    /// moments are within `pointSize` px² of the PSF's is a point source; a Sérsic start takes
    /// n = `index`. nil when the members hold no positive light.
    public static func measured(_ pixels: [Double], members: [Int], width: Int, psfSigma: Double,
                                pointSize: Double = 0.5, index: Double = 1.5) -> FitComponent? {
        var sw = 0.0, sx = 0.0, sy = 0.0
        for p in members where pixels[p] > 0 {
            let v = pixels[p]
            sw += v; sx += v * Double(p % width); sy += v * Double(p / width)
        }
        guard sw > 0 else { return nil }
        let mx = sx / sw, my = sy / sw
        var mxx = 0.0, myy = 0.0, mxy = 0.0
        for p in members where pixels[p] > 0 {
            let v = pixels[p], dx = Double(p % width) - mx, dy = Double(p / width) - my
            mxx += v * dx * dx; myy += v * dy * dy; mxy += v * dx * dy
        }
        mxx /= sw; myy /= sw; mxy /= sw
        let psf2 = psfSigma * psfSigma + 1.0 / 12
        let a = max(mxx - psf2, 0.05), c = max(myy - psf2, 0.05)
        let root = (0.25 * (a - c) * (a - c) + mxy * mxy).squareRoot()
        let major = 0.5 * (a + c) + root, minor = max(0.5 * (a + c) - root, 0.05)
        if (major * minor).squareRoot() < pointSize { return .point(x: mx, y: my, flux: sw) }
        return .sersic(x: mx, y: my, flux: sw, halfLightRadius: 1.1774 * Foundation.pow(major * minor, 0.25), n: index,
                       q: min(max((minor / major).squareRoot(), 0.1), 1), angle: 0.5 * Foundation.atan2(2 * mxy, a - c))
    }
}
