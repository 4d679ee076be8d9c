// Sérsic profiles as sums of Gaussians: PSF-convolved, pixel-integrated images in closed form.
import AstroBase
import CKernels
import Foundation

/// A Sérsic profile of half-light radius 1 and flux 1 as a mixture of concentric Gaussians
/// (Hogg & Lang 2013), for n in `indices`: 16 Gaussians, rows fitted by `scripts/sersic_mixture.py`
/// every 1 % in n and interpolated linearly in (ln amplitude, ln variance) between rows (the
/// script prints the errors: the enclosed light within a few 1e-4 of the profile's).
///
/// Convolved with a circular Gaussian PSF of variance σ², a component of variance v r_e² on
/// the circularised ellipse (covariance v r_e² R diag(1/q, q) Rᵀ) stays a Gaussian with σ² on
/// its diagonal; the pixel box adds 1/12 px² more (its second moment; the box's flatter top
/// changes the image by less than 1e-3 of the peak for σ ≥ 1.2 px). So the PSF-convolved
/// profile integrated over the pixels is a sum of Gaussians that one pass over the image draws
/// (`astro_gaussian_mixture_image`), some hundred times faster than the oversampled grid of
/// `Renderer`, to which it agrees within ~1e-3 of the peak (`SceneFit`'s `.gaussianMixture`).
public enum SersicMixture {
    /// The Sérsic indices the table covers.
    public static let indices: ClosedRange<Double> =
        firstIndex...(firstIndex * Foundation.exp(Double(rows.count / (2 * componentCount) - 1) * logIndexStep))

    /// Each component's flux fraction and variance (units of r_e²) at index `n` (clamped to `indices`).
    public static func components(n: Double) -> [(amplitude: Double, variance: Double)] {
        let rowCount = rows.count / (2 * componentCount)
        let position = Foundation.log(min(max(n, indices.lowerBound), indices.upperBound) / firstIndex) / logIndexStep
        let row = min(max(Int(position.rounded(.down)), 0), rowCount - 2)
        let t = position - Double(row)
        let a = row * 2 * componentCount, b = a + 2 * componentCount
        return (0..<componentCount).map { k in
            let lnAmplitude = (1 - t) * rows[a + k] + t * rows[b + k]
            let lnVariance = (1 - t) * rows[a + componentCount + k] + t * rows[b + componentCount + k]
            return (Foundation.exp(lnAmplitude), Foundation.exp(lnVariance))
        }
    }

    /// The Gaussians of a Sérsic profile (index `n`, circularised half-light radius in pixels,
    /// total flux, ellipse) convolved with a circular PSF of standard deviation `psfSigma` and the
    /// pixel box, six values each as `astro_gaussian_mixture_image` takes them (amplitude, centre
    /// x, y, inverse covariance a, b, c). It takes values, not a `SersicProfile`, whose
    /// normalisation a mixture does not need.
    public static func gaussians(n: Double, halfLightRadius: Double, flux: Double, geometry g: EllipseGeometry,
                                 psfSigma: Double) -> [Double] {
        let r2 = halfLightRadius * halfLightRadius
        let blur = psfSigma * psfSigma + 1.0 / 12
        let cc = g.cosAngle * g.cosAngle, ss = g.sinAngle * g.sinAngle, cs = g.cosAngle * g.sinAngle
        var out: [Double] = []
        out.reserveCapacity(6 * componentCount)
        for (amplitude, variance) in components(n: n) {
            let major = variance * r2 / g.q, minor = variance * r2 * g.q
            append(flux: flux * amplitude, x: g.centerX, y: g.centerY,
                   xx: major * cc + minor * ss + blur, xy: (major - minor) * cs, yy: major * ss + minor * cc + blur, to: &out)
        }
        return out
    }

    /// The Gaussian of a point source of `flux` at (x, y) under the PSF and the pixel box.
    public static func point(flux: Double, x: Double, y: Double, psfSigma: Double) -> [Double] {
        let blur = psfSigma * psfSigma + 1.0 / 12
        var out: [Double] = []
        append(flux: flux, x: x, y: y, xx: blur, xy: 0, yy: blur, to: &out)
        return out
    }

    /// The Gaussian of total `flux` with covariance (xx, xy, yy) in the kernel's six values.
    static func append(flux: Double, x: Double, y: Double, xx: Double, xy: Double, yy: Double, to out: inout [Double]) {
        let det = xx * yy - xy * xy
        out += [flux / (2 * Double.pi * det.squareRoot()), x, y, yy / det, -xy / det, xx / det]
    }

    /// The image (row-major, `height` rows of `width`) of `gaussians` (six values each), each
    /// drawn out to where it falls below `floor` counts (0: to 1e-19 of its peak).
    public static func image(_ gaussians: [Double], width: Int, height: Int, floor: Double = 0) -> [Float] {
        var image = [Float](repeating: 0, count: width * height)
        image.withUnsafeMutableBufferPointer { out in
            gaussians.withUnsafeBufferPointer { g in
                astro_gaussian_mixture_image(out.baseAddress!, width, height, g.baseAddress, gaussians.count / 6, floor,
                                             AVX512Kernels.enabled ? 1 : 0)
            }
        }
        return image
    }
}
