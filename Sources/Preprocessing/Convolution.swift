import AstroBase
import Foundation

extension PlanarImage {
    /// The image convolved with a circular Gaussian of `fwhm` pixels (separable,
    /// kernel truncated at 4 sigma, normalised to unit sum). Near the edges the
    /// kernel is renormalised over the pixels inside the image, so a flat image
    /// stays flat and no flux leaks in from outside.
    public func gaussianBlurred(fwhm: Double) -> PlanarImage {
        guard fwhm > 0 else { return self }
        let sigma = fwhm / SpecialFunctions.fwhmPerSigma
        let radius = Swift.max(1, Int(Foundation.ceil(4 * sigma)))
        let kernel: [Float] = (-radius...radius).map {
            Float(Foundation.exp(-0.5 * Double($0 * $0) / (sigma * sigma)))
        }
        var horizontal = self
        for c in 0..<channels {
            for y in 0..<height {
                for x in 0..<width {
                    var sum: Float = 0, norm: Float = 0
                    for k in -radius...radius where x + k >= 0 && x + k < width {
                        let weight = kernel[k + radius]
                        sum += weight * self[c, y, x + k]
                        norm += weight
                    }
                    horizontal[c, y, x] = sum / norm
                }
            }
        }
        var out = horizontal
        for c in 0..<channels {
            for y in 0..<height {
                for x in 0..<width {
                    var sum: Float = 0, norm: Float = 0
                    for k in -radius...radius where y + k >= 0 && y + k < height {
                        let weight = kernel[k + radius]
                        sum += weight * horizontal[c, y + k, x]
                        norm += weight
                    }
                    out[c, y, x] = sum / norm
                }
            }
        }
        return out
    }
}
