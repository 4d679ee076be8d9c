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
        }
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
