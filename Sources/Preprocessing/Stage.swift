import Autograd
import Foundation

/// Where `scaleByNoise` gets the noise level.
public enum NoiseSource: Equatable, Sendable {
    /// A header keyword (TASKS.md's `SKYSIG`); per band `SKYSIG_G`... are tried
    /// first for multi-band images when `bandKeywords` are given.
    case header(keyword: String, bandKeywords: [String])
    /// Estimated from the image (`mad_std` of each channel).
    case measured
    /// A fixed value in counts.
    case fixed(Double)
}

/// One preprocessing step. A list of stages is what a model file records, so
/// that inference prepares its inputs exactly as training did. Stages marked
/// `isAugmentation` run only while training.
public enum Stage: Equatable, Sendable {
    case fillBlanks(BlankFill, appendMask: Bool)
    case subtractBackground
    case scaleByNoise(NoiseSource)
    case asinh(AsinhScaling)
    case normalize(ImageNormalization)
    case standardize
    case clip(min: Float, max: Float)
    case resize(height: Int, width: Int, method: ResizeMethod)
    case centerCrop(height: Int, width: Int)
    case pad(top: Int, bottom: Int, left: Int, right: Int, mode: PaddingMode)
    case augment(RandomAugmentation)
    /// Observation matching (ObservationMatching.swift): each decides from the header.
    case subtractMeshBackground(MeshBackground)
    case estimateNoise(keyword: String, bandKeywords: [String])
    case matchZeroPoint(Double)
    case matchPixelScale(Double)
    case matchPSF(fwhm: ClosedRange<Double>)
    case fitSize(height: Int, width: Int)
    /// Appends one constant channel holding a header value (e.g. `PSF_FWHM`) mapped linearly
    /// so that `range` becomes [-1, 1]: what the observation said, as an input of the model
    /// (a posterior model passes such channels to its flow's context, `Architecture.contextChannels`).
    /// A missing keyword takes the middle of `range`, recorded as an assumption. It comes after
    /// every stage that changes pixel values, so only flips and 90° rotations may follow.
    case headerChannel(keyword: String, range: ClosedRange<Double>)
    /// Masks the neighbours of a single-object cutout and fills them from the central
    /// object's point reflection (`NeighbourMasking`).
    case maskNeighbours(NeighbourMasking)

    public var isAugmentation: Bool {
        if case .augment = self { return true }
        return false
    }

    public var isHeaderChannel: Bool {
        if case .headerChannel = self { return true }
        return false
    }

    /// The stage's name as written in YAML.
    public var name: String {
        switch self {
        case .fillBlanks: return "fill_blanks"
        case .subtractBackground: return "subtract_background"
        case .scaleByNoise: return "scale_by_noise"
        case .asinh: return "asinh"
        case .normalize: return "normalize"
        case .standardize: return "standardize"
        case .clip: return "clip"
        case .resize: return "resize"
        case .centerCrop: return "center_crop"
        case .pad: return "pad"
        case let .augment(random): return random.augmentation.name
        case .subtractMeshBackground: return "subtract_mesh_background"
        case .estimateNoise: return "estimate_noise"
        case .matchZeroPoint: return "match_zero_point"
        case .matchPixelScale: return "match_pixel_scale"
        case .matchPSF: return "match_psf"
        case .fitSize: return "fit_size"
        case .headerChannel: return "header_channel"
        case .maskNeighbours: return "mask_neighbours"
        }
    }

    /// Applies the stage to `sample` (augmentations only when `training`).
    public func apply(to sample: inout Sample, training: Bool, rng: inout SeededGenerator) throws {
        switch self {
        case let .fillBlanks(fill, appendMask):
            sample.image = sample.image.fillingBlanks(fill, appendingMask: appendMask)
        case .subtractBackground:
            sample.image.forEachPlane { PixelScaling.subtractBackground.apply(to: $0) }
        case let .scaleByNoise(source):
            try scaleByNoise(&sample, source)
        case let .asinh(scaling):
            sample.image.forEachPlane { scaling.apply(to: $0) }
        case let .normalize(normalization):
            sample.image.forEachPlane { normalization.apply(to: $0) }
        case .standardize:
            sample.image.forEachPlane { PixelScaling.standardize.apply(to: $0) }
        case let .clip(lo, hi):
            for i in sample.image.pixels.indices where !sample.image.pixels[i].isNaN {
                sample.image.pixels[i] = Swift.min(Swift.max(sample.image.pixels[i], lo), hi)
            }
        case let .resize(height, width, method):
            sample.image = sample.image.resized(height: height, width: width, method: method)
            sample.labels = sample.labels?.resizedNearest(height: height, width: width)
        case let .centerCrop(height, width):
            guard sample.image.height >= height, sample.image.width >= width else {
                throw PreprocessingError.imageTooSmall(stage: name, required: "\(height)×\(width)",
                                                       received: sample.image.shape, sample: sample.name)
            }
            sample.image = sample.image.centerCropped(height: height, width: width)
            sample.labels = sample.labels?.centerCropped(height: height, width: width)
        case let .pad(top, bottom, left, right, mode):
            sample.image = sample.image.padded(top: top, bottom: bottom, left: left, right: right, mode: mode)
            sample.labels = sample.labels?.padded(top: top, bottom: bottom, left: left, right: right, mode: .constant(0))
        case let .augment(random):
            guard training else { return }
            guard let labels = sample.labels, random.augmentation.isGeometric else {
                sample.image = random.applied(to: sample.image, using: &rng)
                return
            }
            // Move image and labels together: one draw, applied to both stacked.
            guard random.augmentation.keepsLabelsExact else {
                throw PreprocessingError.unsupportedWithLabels(stage: name, sample: sample.name)
            }
            let both = random.applied(to: .stacking([sample.image, labels]), using: &rng)
            let c = sample.image.channels
            sample.image = PlanarImage(channels: c, height: both.height, width: both.width,
                                       pixels: Array(both.pixels[0..<(c * both.planeSize)]))
            sample.labels = both.channel(c)
        case .subtractMeshBackground, .estimateNoise, .matchZeroPoint, .matchPixelScale, .matchPSF, .fitSize:
            try applyObservationMatching(to: &sample)
        case let .headerChannel(keyword, range):
            try appendHeaderChannel(&sample, keyword: keyword, range: range)
        case let .maskNeighbours(masking):
            try masking.apply(to: &sample)
        }
    }

    private func appendHeaderChannel(_ sample: inout Sample, keyword: String, range: ClosedRange<Double>) throws {
        let middle = (range.lowerBound + range.upperBound) / 2, half = (range.upperBound - range.lowerBound) / 2
        if let given = sample.header[keyword], !given.isFinite {
            throw PreprocessingError.invalidHeaderValue(stage: name, keyword: keyword, value: given, sample: sample.name)
        }
        let found = keyword == "PSF_FWHM" ? HeaderValues.psfFWHM(sample.header) : sample.header[keyword]
        let value: Double
        if let found {
            value = found
        } else {
            value = middle
            let why = sample.header[keyword].map { String(format: "%@ = %g in the header is not a usable value", keyword, $0) }
                ?? "no \(keyword) in the header"
            sample.assumptions.append(Assumption(subject: keyword + " input", note: String(format:
                "%@: the model's %@ input takes the middle of its training range, %g", why, keyword, middle)))
        }
        let plane = PlanarImage(channels: 1, height: sample.image.height, width: sample.image.width,
                                pixels: [Float](repeating: Float((value - middle) / half), count: sample.image.planeSize))
        sample.image = .stacking([sample.image, plane])
    }

    private func scaleByNoise(_ sample: inout Sample, _ source: NoiseSource) throws {
        let channels = sample.image.channels
        var sigmas = [Double](repeating: 0, count: channels)
        switch source {
        case let .fixed(sigma):
            sigmas = [Double](repeating: sigma, count: channels)
        case .measured:
            for c in 0..<channels {
                sigmas[c] = sample.image.channel(c).pixels.withUnsafeBufferPointer(PixelStatistics.madStd)
            }
        case let .header(keyword, bandKeywords):
            for c in 0..<channels {
                let perBand = (channels > 1 && c < bandKeywords.count) ? bandKeywords[c] : nil
                let key = perBand.flatMap { sample.header[$0] != nil ? $0 : nil } ?? keyword
                guard let value = sample.header[key] else {
                    throw PreprocessingError.missingHeaderKeyword(stage: name, keyword: key, sample: sample.name)
                }
                sigmas[c] = value
            }
        }
        for (c, sigma) in sigmas.enumerated() {
            guard sigma.isFinite, sigma > 0 else {
                let key: String = { if case let .header(k, _) = source { return k } else { return "noise" } }()
                throw PreprocessingError.invalidHeaderValue(stage: name, keyword: key, value: sigma,
                                                            sample: sample.name)
            }
            let inverse = Float(1 / sigma)
            let plane = sample.image.planeSize
            for i in c * plane..<(c + 1) * plane { sample.image.pixels[i] *= inverse }
        }
    }
}

extension Augmentation {
    /// Whether the augmentation moves pixels (and so must move label maps too).
    public var isGeometric: Bool {
        switch self {
        case .flip, .rotate90, .rotate, .shift, .randomCrop: return true
        default: return false
        }
    }

    /// Geometric augmentations that move whole pixels, so labels stay exact integers.
    var keepsLabelsExact: Bool {
        switch self {
        case .flip, .rotate90, .randomCrop: return true
        default: return false
        }
    }

    /// The augmentation's name as written in YAML.
    public var name: String {
        switch self {
        case .gaussianNoise: return "gaussian_noise"
        case .poissonNoise: return "poisson_noise"
        case .skyJitter: return "sky_jitter"
        case .psfBlur: return "psf_blur"
        case .flip: return "flip"
        case .rotate90: return "rotate90"
        case .rotate: return "rotate"
        case .shift: return "shift"
        case .randomCrop: return "random_crop"
        case .fluxScale: return "flux_scale"
        case .pedestal: return "pedestal"
        case .cosmicRays: return "cosmic_rays"
        case .maskPixels: return "mask_pixels"
        case .correlatedNoise: return "correlated_noise"
        }
    }
}

/// An ordered list of stages: how a model's inputs are prepared.
public struct Preparation: Equatable, Sendable {
    /// Why `stages` place a `header_channel` wrongly (nil when they do not): its constant plane
    /// must not be rescaled, noised or reshaped, so only flips, 90° rotations and more
    /// `header_channel` stages may follow it.
    public static func headerChannelOrderProblem(_ stages: [Stage]) -> String? {
        guard let first = stages.firstIndex(where: \.isHeaderChannel) else { return nil }
        for stage in stages[first...] {
            switch stage {
            case .headerChannel: continue
            case let .augment(random) where [.flip, .rotate90].contains(random.augmentation): continue
            default:
                return "'\(stage.name)' follows 'header_channel': put header_channel stages after every other stage "
                    + "(only flip and rotate90 may follow them), so their constant planes keep the header's values."
            }
        }
        return nil
    }

    public var stages: [Stage]
    /// The seed of the augmentations; each sample draws from its own stream
    /// (seed, epoch, index), so threads and order do not change the result.
    public var seed: UInt64

    public init(_ stages: [Stage] = [], seed: UInt64 = 0) {
        self.stages = stages
        self.seed = seed
    }

    /// The stages that run at inference (augmentations removed).
    public var inferenceStages: [Stage] { stages.filter { !$0.isAugmentation } }

    /// Runs every stage on `sample`.
    public func prepare(_ sample: Sample, training: Bool, epoch: Int = 0, index: Int = 0) throws -> Sample {
        var rng = SeededGenerator(seed: seed &+ UInt64(truncatingIfNeeded: epoch) &* 0x9E37_79B9,
                                  stream: UInt64(truncatingIfNeeded: index))
        var out = sample
        for stage in stages { try stage.apply(to: &out, training: training, rng: &rng) }
        return out
    }
}
