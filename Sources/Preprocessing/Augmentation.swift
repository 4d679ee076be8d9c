import Autograd
import Foundation

/// A random transformation for training only. Each draws its parameters from
/// the generator it is given, so a seed fixes every augmented image.
///
/// Ranges follow TASKS.md's observation model where they mean something
/// physical: noise in counts, PSF FWHM in pixels, fluxes as factors.
public enum Augmentation: Equatable, Sendable {
    /// Adds Gaussian noise with sigma drawn uniformly from the range (counts).
    case gaussianNoise(sigma: ClosedRange<Double>)
    /// Redraws positive pixels as Poisson counts at `gain` electrons per count:
    /// the shot noise of brighter sources.
    case poissonNoise(gain: Double)
    /// Adds a constant sky offset drawn from the range (counts).
    case skyJitter(ClosedRange<Double>)
    /// Blurs with a Gaussian PSF whose FWHM (pixels) is drawn from the range.
    case psfBlur(fwhm: ClosedRange<Double>)
    /// Mirrors left-right and/or top-bottom, each with probability 1/2.
    case flip
    /// Rotates by a random multiple of 90°.
    case rotate90
    /// Rotates by an angle drawn from the range (degrees), bilinear.
    case rotate(degrees: ClosedRange<Double>)
    /// Shifts by up to `maxPixels` along each axis (bilinear, zero-filled).
    case shift(maxPixels: Double)
    /// Crops a random `size × size` window.
    case randomCrop(size: Int)
    /// Multiplies by a factor drawn from the range.
    case fluxScale(ClosedRange<Double>)

    // Survey artefacts. Amplitudes are in units of each channel's noise, measured on the
    // image itself (`mad_std` of its finite pixels; 1 count when that is zero or undefined),
    // so they mean the same before or after `scale_by_noise`.

    /// A residual sky pedestal per channel: a constant of `level` × noise plus a plane
    /// tilted in a random direction whose change from one edge to the opposite one is
    /// `gradient` × noise (both drawn per channel).
    case pedestal(level: ClosedRange<Double>, gradient: ClosedRange<Double>)
    /// Cosmic-ray hits, `count` per image, each in one channel: a single pixel or a
    /// straight track of up to `length` pixels in a random direction, at `amplitude` ×
    /// noise (drawn per hit), sharp (not blurred by the PSF).
    case cosmicRays(count: ClosedRange<Double>, length: ClosedRange<Double>, amplitude: ClosedRange<Double>)
    /// Blanks (NaN) what real cutouts lose: `columns` bad columns or rows (each in one
    /// channel), `spots` masked discs of radius 1–4 pixels (all channels), and a strip
    /// `edge` pixels wide along one random side (all channels: a cutout that runs off its
    /// image). Put it before `fill_blanks`, so training fills them as inference does.
    case maskPixels(columns: ClosedRange<Double>, spots: ClosedRange<Double>, edge: ClosedRange<Double>)
    /// Adds spatially correlated Gaussian noise, as resampling and coadding leave: white
    /// noise convolved with a Gaussian of standard deviation `length` pixels, scaled so
    /// that each pixel's standard deviation is `sigma` × noise.
    case correlatedNoise(sigma: ClosedRange<Double>, length: ClosedRange<Double>)

    /// The transformed image.
    public func applied(to image: PlanarImage, using rng: inout SeededGenerator) -> PlanarImage {
        switch self {
        case let .gaussianNoise(range):
            let sigma = Float(rng.uniform(range))
            var out = image
            for i in out.pixels.indices { out.pixels[i] += sigma * Float(rng.normal()) }
            return out
        case let .poissonNoise(gain):
            precondition(gain > 0, "Augmentation.poissonNoise: gain must be positive, got \(gain)")
            var out = image
            for i in out.pixels.indices where out.pixels[i] > 0 {
                let electrons = Double(out.pixels[i]) * gain
                out.pixels[i] = Float(rng.poisson(electrons) / gain)
            }
            return out
        case let .skyJitter(range):
            let offset = Float(rng.uniform(range))
            var out = image
            for i in out.pixels.indices { out.pixels[i] += offset }
            return out
        case let .psfBlur(range):
            return image.gaussianBlurred(fwhm: rng.uniform(range))
        case .flip:
            var out = image
            if rng.uniform() < 0.5 { out = out.flipped(horizontal: true) }
            if rng.uniform() < 0.5 { out = out.flipped(horizontal: false) }
            return out
        case .rotate90:
            return image.rotated(quarterTurns: Int(rng.next() % 4))
        case let .rotate(range):
            return image.rotated(degrees: rng.uniform(range))
        case let .shift(maxPixels):
            return image.rotated(degrees: 0, shiftX: rng.uniform(-maxPixels...maxPixels),
                                 shiftY: rng.uniform(-maxPixels...maxPixels))
        case let .randomCrop(size):
            precondition(size <= image.height && size <= image.width,
                         "Augmentation.randomCrop: \(size) exceeds the image \(image.height)×\(image.width)")
            let y = Int(rng.next() % UInt64(image.height - size + 1))
            let x = Int(rng.next() % UInt64(image.width - size + 1))
            return image.cropped(y: y, x: x, height: size, width: size)
        case let .fluxScale(range):
            let factor = Float(rng.uniform(range))
            var out = image
            for i in out.pixels.indices { out.pixels[i] *= factor }
            return out
        case let .pedestal(level, gradient):
            return image.addingPedestal(level: level, gradient: gradient, using: &rng)
        case let .cosmicRays(count, length, amplitude):
            return image.addingCosmicRays(count: count, length: length, amplitude: amplitude, using: &rng)
        case let .maskPixels(columns, spots, edge):
            return image.maskingPixels(columns: columns, spots: spots, edge: edge, using: &rng)
        case let .correlatedNoise(sigma, length):
            return image.addingCorrelatedNoise(sigma: sigma, length: length, using: &rng)
        }
    }
}

extension SeededGenerator {
    /// An integer uniform in `Int(range.lowerBound)...Int(range.upperBound)`.
    mutating func count(_ range: ClosedRange<Double>) -> Int {
        integer(Int(range.lowerBound.rounded(.down))...Int(range.upperBound.rounded(.down)))
    }
}

extension PlanarImage {
    /// The noise of each channel in counts: `mad_std` of its finite pixels, or 1 where
    /// that is zero or undefined (a noiseless or blank channel).
    public var channelNoise: [Float] {
        (0..<channels).map { c in
            let sigma = pixels[c * planeSize..<(c + 1) * planeSize].withUnsafeBufferPointer(PixelStatistics.madStd)
            return sigma.isFinite && sigma > 0 ? Float(sigma) : 1
        }
    }

    fileprivate func addingPedestal(level: ClosedRange<Double>, gradient: ClosedRange<Double>,
                                    using rng: inout SeededGenerator) -> PlanarImage {
        let noise = channelNoise
        var out = self
        let cy = Double(height - 1) / 2, cx = Double(width - 1) / 2
        for c in 0..<channels {
            let offset = rng.uniform(level) * Double(noise[c])
            let change = rng.uniform(gradient) * Double(noise[c])
            let angle = rng.uniform(0, 2 * Double.pi)
            // The plane's slope per pixel along (cos, sin): `change` over the extent of the image in that direction.
            let extent = Swift.max(1, abs(Foundation.cos(angle)) * Double(width - 1) + abs(Foundation.sin(angle)) * Double(height - 1))
            let gx = change / extent * Foundation.cos(angle), gy = change / extent * Foundation.sin(angle)
            for y in 0..<height {
                for x in 0..<width {
                    out[c, y, x] += Float(offset + gx * (Double(x) - cx) + gy * (Double(y) - cy))
                }
            }
        }
        return out
    }

    fileprivate func addingCosmicRays(count: ClosedRange<Double>, length: ClosedRange<Double>,
                                      amplitude: ClosedRange<Double>, using rng: inout SeededGenerator) -> PlanarImage {
        let noise = channelNoise
        var out = self
        for _ in 0..<rng.count(count) {
            let c = rng.integer(0...(channels - 1))
            let peak = Float(rng.uniform(amplitude)) * noise[c]
            let steps = Swift.max(1, Int(rng.uniform(length).rounded()))
            let angle = rng.uniform(0, 2 * Double.pi)
            var y = rng.uniform(0, Double(height)), x = rng.uniform(0, Double(width))
            var last = (-1, -1)
            // One pixel per unit step along the track; a pixel is hit once.
            for _ in 0..<steps {
                let (iy, ix) = (Int(y.rounded(.down)), Int(x.rounded(.down)))
                if iy >= 0, iy < height, ix >= 0, ix < width, (iy, ix) != last {
                    out[c, iy, ix] += peak
                    last = (iy, ix)
                }
                y += Foundation.sin(angle)
                x += Foundation.cos(angle)
            }
        }
        return out
    }

    fileprivate func maskingPixels(columns: ClosedRange<Double>, spots: ClosedRange<Double>,
                                   edge: ClosedRange<Double>, using rng: inout SeededGenerator) -> PlanarImage {
        var out = self
        for _ in 0..<rng.count(columns) {
            let c = rng.integer(0...(channels - 1))
            if rng.uniform() < 0.5 {
                let x = rng.integer(0...(width - 1))
                for y in 0..<height { out[c, y, x] = .nan }
            } else {
                let y = rng.integer(0...(height - 1))
                for x in 0..<width { out[c, y, x] = .nan }
            }
        }
        for _ in 0..<rng.count(spots) {
            let radius = rng.uniform(1, 4)
            let sy = rng.uniform(0, Double(height)), sx = rng.uniform(0, Double(width))
            for y in 0..<height {
                for x in 0..<width {
                    let dy = Double(y) + 0.5 - sy, dx = Double(x) + 0.5 - sx
                    guard dy * dy + dx * dx <= radius * radius else { continue }
                    for c in 0..<channels { out[c, y, x] = .nan }
                }
            }
        }
        let strip = rng.count(edge)
        let side = rng.integer(0...3)
        if strip > 0 {
            for y in 0..<height {
                for x in 0..<width {
                    let inside: Bool
                    switch side {
                    case 0: inside = y < strip
                    case 1: inside = y >= height - strip
                    case 2: inside = x < strip
                    default: inside = x >= width - strip
                    }
                    if inside { for c in 0..<channels { out[c, y, x] = .nan } }
                }
            }
        }
        return out
    }

    fileprivate func addingCorrelatedNoise(sigma: ClosedRange<Double>, length: ClosedRange<Double>,
                                           using rng: inout SeededGenerator) -> PlanarImage {
        let noise = channelNoise
        let scale = rng.uniform(length)
        let radius = Swift.max(1, Int(Foundation.ceil(4 * scale)))
        // A kernel with unit sum of squares per axis keeps the white noise's variance.
        var kernel = (-radius...radius).map { Foundation.exp(-0.5 * Double($0 * $0) / Swift.max(scale * scale, 1e-12)) }
        let norm = kernel.reduce(0) { $0 + $1 * $1 }.squareRoot()
        kernel = kernel.map { $0 / norm }
        let ph = height + 2 * radius, pw = width + 2 * radius
        var out = self
        for c in 0..<channels {
            let amplitude = rng.uniform(sigma) * Double(noise[c])
            var white = [Double](repeating: 0, count: ph * pw)
            for i in white.indices { white[i] = rng.normal() }
            var rows = [Double](repeating: 0, count: ph * width)
            for y in 0..<ph {
                for x in 0..<width {
                    var sum = 0.0
                    for k in 0...(2 * radius) { sum += kernel[k] * white[y * pw + x + k] }
                    rows[y * width + x] = sum
                }
            }
            for y in 0..<height {
                for x in 0..<width {
                    var sum = 0.0
                    for k in 0...(2 * radius) { sum += kernel[k] * rows[(y + k) * width + x] }
                    out[c, y, x] += Float(amplitude * sum)
                }
            }
        }
        return out
    }
}

/// An augmentation applied with a probability.
public struct RandomAugmentation: Equatable, Sendable {
    public var augmentation: Augmentation
    public var probability: Double
    public init(_ augmentation: Augmentation, probability: Double = 1) {
        precondition((0...1).contains(probability),
                     "RandomAugmentation: probability \(probability) must be in [0, 1]")
        self.augmentation = augmentation
        self.probability = probability
    }

    public func applied(to image: PlanarImage, using rng: inout SeededGenerator) -> PlanarImage {
        // The coin is always drawn, so the stream stays aligned whatever the outcome.
        let coin = rng.uniform()
        return coin < probability ? augmentation.applied(to: image, using: &rng) : image
    }
}
