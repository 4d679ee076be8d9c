import Foundation

/// TASKS.md task 6's image metrics of a predicted image against the truth (row-major pixels
/// of one `width × height` image), computed in Double.
public enum ImageQuality {
    /// `10 log10(max(truth)² / MSE)` over all pixels (infinite for a perfect prediction).
    public static func psnr(_ prediction: [Float], truth: [Float]) -> Double {
        precondition(prediction.count == truth.count && !truth.isEmpty, "psnr: \(prediction.count) pixels against \(truth.count)")
        var squared = 0.0
        for i in truth.indices {
            let d = Double(prediction[i]) - Double(truth[i])
            squared += d * d
        }
        let peak = Double(truth.max()!)
        return 10 * Foundation.log10(peak * peak / (squared / Double(truth.count)))
    }

    /// The mean structural similarity as scikit-image's `structural_similarity` with
    /// `gaussian_weights=True`, `sigma`, `use_sample_covariance=False` and `data_range`
    /// (default `max(truth) - min(truth)`): local means, variances and covariance under an
    /// 11-tap Gaussian (radius ⌊3.5 σ + 0.5⌋, borders reflected half-sample as
    /// `scipy.ndimage`'s `reflect`), averaged over the pixels at least the radius from the edge.
    public static func ssim(_ prediction: [Float], truth: [Float], width: Int, height: Int, dataRange: Double? = nil,
                            sigma: Double = 1.5) -> Double {
        precondition(prediction.count == width * height && truth.count == width * height,
                     "ssim: \(prediction.count) and \(truth.count) pixels for \(width) × \(height)")
        let radius = Int(3.5 * sigma + 0.5)
        precondition(width > 2 * radius && height > 2 * radius, "ssim: \(width) × \(height) is smaller than the window")
        var kernel = (-radius...radius).map { Foundation.exp(-0.5 * Double($0 * $0) / (sigma * sigma)) }
        let total = kernel.reduce(0, +)
        kernel = kernel.map { $0 / total }
        let x = prediction.map(Double.init), y = truth.map(Double.init)
        let range = dataRange ?? Double(truth.max()! - truth.min()!)
        func reflect(_ i: Int, _ n: Int) -> Int {
            var j = i
            while j < 0 || j >= n { j = j < 0 ? -j - 1 : 2 * n - j - 1 }
            return j
        }
        func filter(_ image: [Double]) -> [Double] {
            var rows = [Double](repeating: 0, count: image.count)
            for r in 0..<height {
                for c in 0..<width {
                    var s = 0.0
                    for k in -radius...radius { s += kernel[k + radius] * image[r * width + reflect(c + k, width)] }
                    rows[r * width + c] = s
                }
            }
            var out = [Double](repeating: 0, count: image.count)
            for r in 0..<height {
                for c in 0..<width {
                    var s = 0.0
                    for k in -radius...radius { s += kernel[k + radius] * rows[reflect(r + k, height) * width + c] }
                    out[r * width + c] = s
                }
            }
            return out
        }
        let ux = filter(x), uy = filter(y)
        let uxx = filter(x.map { $0 * $0 }), uyy = filter(y.map { $0 * $0 }), uxy = filter(zip(x, y).map { $0 * $1 })
        let c1 = (0.01 * range) * (0.01 * range), c2 = (0.03 * range) * (0.03 * range)
        var sum = 0.0, count = 0
        for r in radius..<(height - radius) {
            for c in radius..<(width - radius) {
                let i = r * width + c
                let vx = uxx[i] - ux[i] * ux[i], vy = uyy[i] - uy[i] * uy[i], vxy = uxy[i] - ux[i] * uy[i]
                sum += (2 * ux[i] * uy[i] + c1) * (2 * vxy + c2) / ((ux[i] * ux[i] + uy[i] * uy[i] + c1) * (vx + vy + c2))
                count += 1
            }
        }
        return sum / Double(count)
    }

    /// The flux error in magnitudes, `-2.5 log10(Σ prediction / Σ truth)` over the stamp; nil
    /// when either sum is not positive (no magnitude exists).
    public static func fluxError(_ prediction: [Float], truth: [Float]) -> Double? {
        let p = prediction.reduce(0.0) { $0 + Double($1) }, t = truth.reduce(0.0) { $0 + Double($1) }
        guard p > 0, t > 0 else { return nil }
        return -2.5 * Foundation.log10(p / t)
    }
}
