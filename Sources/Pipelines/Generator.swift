import AstroBase
import Autograd
import FITS
import Foundation
import NN
import Plotting
import Preprocessing
import Training

/// A trained image generator (`task: generate`, a DCGAN generator) with its recipe: samples
/// images from seeded noise and carries them back to counts by undoing the recipe's stages.
///
///     let generator = try ImageGenerator(contentsOf: URL(fileURLWithPath: "generator.safetensors"))
///     let files = try generator.write(count: 16, seed: 1, to: URL(fileURLWithPath: "out"))
public struct ImageGenerator {
    public let network: DCGANGenerator
    public let architecture: Architecture
    public let recipe: ModelRecipe
    public let path: String
    /// The noise `generate` adds to a generator of noiseless images (architecture `noiseless`); nil otherwise.
    public let observationNoise: ObservationNoise?
    /// A class-conditional generator's class for every image (`only(className:)`); nil: drawn per image.
    public private(set) var fixedClass: Int?

    public init(contentsOf url: URL) throws {
        let model = try TrainedModel(contentsOf: url)
        guard model.recipe.task == .generate, let network = model.network as? DCGANGenerator else {
            throw PipelineError.modelFile(path: url.path, reason: "it is a '\(model.recipe.task.rawValue)' model "
                                          + "(architecture \(model.architecture.name.rawValue)), not an image generator: "
                                          + "`astrolabe generate` takes a model trained with task: generate (architecture dcgan)")
        }
        try self.init(network: network, architecture: model.architecture, recipe: model.recipe, path: url.path)
    }

    /// A generator network with the recipe it is trained with (`path` names it in messages and headers).
    public init(network: DCGANGenerator, architecture: Architecture, recipe: ModelRecipe, path: String) throws {
        try Self.checkInvertible(recipe.stages, path: path)
        guard network.classCount == 0 || recipe.classNames.count == network.classCount else {
            throw PipelineError.modelFile(path: path, reason: "the generator is conditioned on \(network.classCount) classes but its "
                                          + "recipe names \(recipe.classNames.count) (\(recipe.classNames.joined(separator: ", ")))")
        }
        self.network = network
        self.architecture = architecture
        self.recipe = recipe
        self.path = path
        observationNoise = architecture.noiseless == true ? try ObservationNoise(recipe: recipe, path: path) : nil
    }

    /// Whether the generator's output can be carried back to counts: every inference stage is
    /// undone (`counts(_:skySigma:)`); flips and quarter turns only run in training.
    public static func checkInvertible(_ stages: [Stage], path: String) throws {
        for stage in stages {
            switch stage {
            case .fillBlanks(_, appendMask: false), .scaleByNoise(.header), .scaleByNoise(.fixed), .asinh, .clip: continue
            case let .augment(random) where ["flip", "rotate90"].contains(random.augmentation.name): continue
            default:
                throw PipelineError.unsupported("\(path): a generator's images are carried back to counts, so its stages must "
                    + "be undoable (fill_blanks, scale_by_noise with a keyword or a value, asinh, clip; augmentations flip, "
                    + "rotate90); '\(stage.name)' is not")
            }
        }
    }

    /// The network's images for noise drawn with `seed`: `[count, C, H, W]` in [-1, 1]. Image
    /// `i` depends on `seed` and `i` alone (not on `count`). A generator of noiseless images
    /// gets the observation's noise (sky noise `skySigma(seed:index:)`) unless `noiseless`.
    /// `truncation` τ (at least `smallestTruncation`): the truncation trick (Brock et al. 2019),
    /// every noise value beyond ±τ redrawn.
    public func sample(count: Int, seed: UInt64, noiseless: Bool = false, truncation: Double? = nil) -> Tensor {
        precondition(truncation.map { $0 >= Self.smallestTruncation } ?? true,
                     "ImageGenerator: truncation below \(Self.smallestTruncation) would redraw almost forever")
        network.eval()
        return withNoGrad {
            var outputs = [Tensor]()
            var start = 0
            while start < count {
                let end = min(count, start + 64)
                let noise = (start..<end).flatMap { index -> [Float] in
                    var code = latent(seed: seed, index: index, truncation: truncation)
                    if let label = classIndex(seed: seed, index: index) {
                        code += Tensor.oneHot([label], classCount: network.classCount).scalars
                    }
                    return code
                }
                var images = network(Tensor(shape: [end - start, network.inputDimension], data: noise))
                if let observationNoise, !noiseless {
                    let shape = [1] + images.shape.dropFirst()
                    let draws = (start..<end).flatMap {
                        Tensor.randomNormal(shape, seed: Self.noiseSeed(seed ^ 0x0B5E_7E0B, index: $0)).scalars
                    }
                    let sigmas = (start..<end).map { Float(skySigma(seed: seed, index: $0) ?? 1) }
                    images = observationNoise.observe(images, skySigmas: sigmas, noise: Tensor(shape: images.shape, data: draws))
                }
                outputs.append(images)
                start = end
            }
            return outputs.count == 1 ? outputs[0] : Tensor.concatenate(outputs, axis: 0)
        }
    }

    /// The smallest truncation accepted: 0.8 % of standard-normal values fall inside ±0.01, so a
    /// value takes ~125 redraws there; much below, the redrawing would not end in practice.
    public static let smallestTruncation = 0.01

    /// The noise vector of image `index`: standard normal, each value beyond ±`truncation` redrawn
    /// from further streams of the same seed until it falls inside.
    func latent(seed: UInt64, index: Int, truncation: Double?) -> [Float] {
        let size = network.latentDimension
        var z = Tensor.randomNormal([1, size], seed: Self.noiseSeed(seed, index: index)).scalars
        guard let truncation else { return z }
        let bound = Float(truncation)
        var round: UInt64 = 0
        while z.contains(where: { abs($0) > bound }) {
            round += 1
            let fresh = Tensor.randomNormal([1, size], seed: Self.noiseSeed(seed ^ (round &* 0xD1B5_4A32_D192_ED03), index: index)).scalars
            for i in z.indices where abs(z[i]) > bound { z[i] = fresh[i] }
        }
        return z
    }

    static func noiseSeed(_ seed: UInt64, index: Int) -> UInt64 {
        var mix = SplitMix64(seed: seed &+ UInt64(index) &* 0x9E37_79B9_7F4A_7C15)
        return mix.next()
    }

    /// The class of image `index` of a class-conditional generator, drawn with `seed` as often as
    /// the recipe's `classFrequencies` say (equally often without them); nil for an
    /// unconditional generator.
    public func classIndex(seed: UInt64, index: Int) -> Int? {
        let k = network.classCount
        guard k > 0 else { return nil }
        if let fixedClass { return fixedClass }
        let weights = recipe.classFrequencies.flatMap { $0.count == k && $0.reduce(0, +) > 0 ? $0 : nil }
            ?? [Double](repeating: 1, count: k)
        var random = SeededGenerator(seed: seed ^ 0xC1A5_5C1A_55C1_A55C, stream: UInt64(index))
        var u = random.uniform(0, weights.reduce(0, +))
        for (label, weight) in weights.enumerated() {
            if u < weight { return label }
            u -= weight
        }
        return k - 1
    }

    /// Makes every image of class `className` (a class-conditional generator's; refused by name
    /// otherwise, listing the classes).
    public mutating func only(className: String) throws {
        guard network.classCount > 0 else {
            throw PipelineError.unsupported("\(path) is not class-conditional (trained without input.label_column): "
                                            + "it cannot be asked for class '\(className)'")
        }
        guard let index = recipe.classNames.firstIndex(of: className) else {
            throw PipelineError.unsupported("\(path) has no class '\(className)'; its classes are "
                                            + recipe.classNames.joined(separator: ", "))
        }
        fixedClass = index
    }

    /// The sky noise (counts) given to image `index`: drawn uniformly from the recorded
    /// observation's `sky_sigma` range with `seed` (the range's middle when it is one value;
    /// nil without an observation).
    public func skySigma(seed: UInt64, index: Int) -> Double? {
        guard let range = recipe.observation?.skySigma, let low = range.first, let high = range.last else { return nil }
        var random = SeededGenerator(seed: seed, stream: UInt64(index))
        return random.uniform(low, high)
    }

    /// One generated image (`pixels` of one sample, `[C, H, W]`) in counts: the stages undone
    /// in reverse order (clip: kept; asinh: `softening · sinh(y / scale)`; scale_by_noise:
    /// times the keyword's value `skySigma`, or the fixed value).
    public func counts(_ pixels: [Float], skySigma: Double?) -> [Float] {
        var values = pixels
        for stage in recipe.stages.reversed() {
            switch stage {
            case let .asinh(scaling):
                for i in values.indices { values[i] = scaling.inverse(values[i]) }
            case let .scaleByNoise(source):
                let sigma: Double
                switch source {
                case let .fixed(value): sigma = value
                default: sigma = skySigma ?? 1
                }
                let s = Float(sigma)
                for i in values.indices { values[i] *= s }
            default: continue
            }
        }
        return values
    }

    /// `count` images for noise drawn with `seed`, in counts, each with the header value its
    /// recipe's `scale_by_noise` reads (the sky noise drawn from the observation's range).
    public func countSamples(count: Int, seed: UInt64, noiseless: Bool = false, truncation: Double? = nil) -> [Sample] {
        let images = sample(count: count, seed: seed, noiseless: noiseless, truncation: truncation)
        let (c, h, w) = (images.shape[1], images.shape[2], images.shape[3])
        let all = images.scalars, plane = c * h * w
        return (0..<count).map { index in
            let sigma = skySigma(seed: seed, index: index)
            let pixels = counts(Array(all[(index * plane)..<((index + 1) * plane)]), skySigma: sigma)
            var header = [String: Double]()
            if let keyword = noiseKeyword { header[keyword] = sigma ?? 1 }
            return Sample(image: PlanarImage(channels: c, height: h, width: w, pixels: pixels),
                          name: String(format: "generated_%06d", index), header: header)
        }
    }

    /// The keyword whose value a `scale_by_noise` stage reads (nil when none does).
    public var noiseKeyword: String? {
        for stage in recipe.stages { if case let .scaleByNoise(.header(keyword, _)) = stage { return keyword } }
        return nil
    }

    /// Writes `count` images as `DIR/generated_NNNNNN.fits` (float32 counts; header: generator,
    /// seed, index, the observation imitated, the sky sigma drawn, whether noise was added) and
    /// `DIR/contact-sheet.png` (the first 64). Returns the FITS files and the assumptions made
    /// (once per run). `noiseless`: a noiseless generator's images without the observation's noise
    /// (refused, before anything is written, for a generator that draws its own noise);
    /// `truncation`: as in `sample` (recorded in GENTRUNC).
    public func write(count: Int, seed: UInt64, to directory: URL, columns: Int = 8,
                      noiseless: Bool = false, truncation: Double? = nil) throws -> (files: [URL], assumptions: [String]) {
        if noiseless && observationNoise == nil {
            throw PipelineError.unsupported("\(path) makes its images with their noise (it was not trained with "
                                            + "observe_noise): there are no noiseless images to write; leave out --noiseless.")
        }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var assumptions = [String]()
        if noiseKeyword != nil && recipe.observation == nil {
            assumptions.append("the model records no observation: the images are in units of the sky noise (SKYSIG = 1)")
        }
        let images = countSamples(count: count, seed: seed, noiseless: noiseless, truncation: truncation)
        var sheet = ContactSheet(columns: columns, cellSize: 96, title: "ASTROLABE GENERATE: SEED \(seed)")
        var files = [URL]()
        let name = URL(fileURLWithPath: path).lastPathComponent
        for (index, image) in images.enumerated() {
            let (c, h, w) = (image.image.channels, image.image.height, image.image.width)
            let sigma = skySigma(seed: seed, index: index)
            let counts = image.image.pixels
            var header = FITSHeader()
            header.set("ORIGIN", .string("astrolabe"), comment: "astrolabe generate")
            header.set("GENERATR", .string(String(name.prefix(68))), comment: "generator model file")
            header.set("GENARCH", .string(architecture.name.rawValue), comment: "generator architecture")
            header.set("GENSEED", .string(String(seed)), comment: "noise seed")
            header.set("GENINDEX", .integer(index), comment: "image index for the seed")
            if let label = classIndex(seed: seed, index: index) {
                header.set("GENCLASS", .string(recipe.classNames[label]), comment: "class the generator was asked for")
            }
            if let truncation { header.set("GENTRUNC", .float(truncation), comment: "noise values beyond +-GENTRUNC redrawn") }
            header.set("BUNIT", .string("count"), comment: "sky-subtracted counts (ADU)")
            if let observation = recipe.observation {
                header.set("PIXSCALE", .float(observation.pixelScale), comment: "pixel scale imitated [arcsec/pixel]")
                header.set("MAGZERO", .float(observation.zeroPoint), comment: "magnitude zero point imitated")
                if observation.psfFWHM.count == 2 {
                    header.set("PSFRANGE", .string(observation.psfFWHM.map { String(format: "%g", $0) }.joined(separator: "-")),
                               comment: "training PSF FWHM range [arcsec]")
                }
                if !observation.bands.isEmpty { header.set("FILTER", .string(observation.bands.joined(separator: ",")), comment: "band") }
            }
            if observationNoise != nil {
                header.set("OBSNOISE", .logical(!noiseless), comment: noiseless ? "noiseless: no observation noise added"
                           : "sky and Poisson noise added to the generator's image")
            }
            if let keyword = noiseKeyword {
                header.set(keyword, .float(sigma ?? 1), comment: sigma == nil ? "sky noise: unknown, images in noise units"
                           : "sky noise drawn from the observation's range [counts]")
            }
            let url = directory.appendingPathComponent(String(format: "generated_%06d.fits", index))
            let writer = try FITSWriter(path: url.path, overwrite: true)
            try writer.appendImage(counts, shape: c == 1 ? [w, h] : [w, h, c], header: header)
            try writer.commit()
            files.append(url)
            if index < 64 {
                let band = Array(counts[0..<(h * w)])
                sheet.add(gray: ImageNormalization.display(for: band).bytes(band), width: w, height: h, label: "#\(index)")
            }
        }
        try sheet.write(to: directory.appendingPathComponent("contact-sheet.png"))
        return (files, assumptions)
    }
}

/// TASKS.md's noise model applied to a generator's noiseless images (`model.train.adversarial.
/// observe_noise`, architecture `noiseless: true`; AmbientGAN, Bora et al. 2018): Gaussian sky
/// noise of `SKYSIG` counts plus the sources' Poisson noise (variance = the noiseless counts).
/// The generator's images `y` are in the recipe's units, so the stages after `scale_by_noise`
/// are undone (asinh; clip kept) to reach units of the sky noise `x`, then
/// `x + sqrt(1 + max(x, 0) / SKYSIG) · ε` (ε ~ N(0, 1)) is brought back through them. Tensor
/// operations throughout: in training the generator's gradient flows through the noise, and
/// `generate` draws its images' noise with the same code.
public struct ObservationNoise {
    /// The stages after `scale_by_noise` that act on pixels (asinh, clip), in order.
    let stages: [Stage]
    /// The observation's sky-noise range [counts], from which training draws each image's `SKYSIG`.
    public let skySigmaRange: ClosedRange<Double>

    /// Throws, naming `path`, when the recipe has no `scale_by_noise` by a header keyword (the
    /// noise's unit) or the observation no `sky_sigma`.
    public init(recipe: ModelRecipe, path: String) throws {
        guard let start = recipe.stages.firstIndex(where: { if case .scaleByNoise(.header) = $0 { return true }; return false }) else {
            throw PipelineError.unsupported("\(path): a generator observed with noise (observe_noise) needs a scale_by_noise stage "
                                            + "that reads each image's sky noise from a header keyword: its images are in units of it")
        }
        guard let range = recipe.observation?.skySigma, let low = range.first, let high = range.last, low > 0, high >= low else {
            throw PipelineError.unsupported("\(path): a generator observed with noise (observe_noise) draws each image's sky noise "
                                            + "from the observation's sky_sigma range; the pipeline gives none (observation: "
                                            + "{sky_sigma: [low, high]})")
        }
        stages = recipe.stages[(start + 1)...].filter {
            switch $0 { case .asinh, .clip: return true; default: return false }
        }
        skySigmaRange = low...high
    }

    /// `images` `[N, C, H, W]` observed: image `i` with sky noise `skySigmas[i]` (counts) and
    /// the standard normal draws `noise` (`images`' shape).
    public func observe(_ images: Tensor, skySigmas: [Float], noise: Tensor) -> Tensor {
        precondition(images.rank == 4 && skySigmas.count == images.shape[0] && noise.shape == images.shape,
                     "ObservationNoise: images \(images.shape), \(skySigmas.count) sky sigmas, noise \(noise.shape)")
        var x = images
        for stage in stages.reversed() {
            if case let .asinh(scaling) = stage { x = (x * Float(1 / scaling.scale)).sinh() * Float(scaling.softening) }
        }
        let inverseSigma = Tensor(shape: [skySigmas.count, 1, 1, 1], data: skySigmas.map { 1 / $0 })
        x = x + (x.relu() * inverseSigma + 1).sqrt() * noise
        for stage in stages {
            switch stage {
            case let .asinh(scaling): x = (x * Float(1 / scaling.softening)).asinh() * Float(scaling.scale)
            case let .clip(lower, upper): x = x.clamped(min: lower, max: upper)
            default: continue
            }
        }
        return x
    }

    /// Training's measurement (`GAN.measurement`): each image's sky noise drawn uniformly from
    /// the observation's range and its ε, both from `seed`.
    public func measurement(_ images: Tensor, seed: UInt64) -> Tensor {
        var random = SeededGenerator(seed: seed, stream: 0x0B5E)
        let sigmas = (0..<images.shape[0]).map { _ in Float(random.uniform(skySigmaRange.lowerBound, skySigmaRange.upperBound)) }
        return observe(images, skySigmas: sigmas, noise: Tensor.randomNormal(images.shape, seed: seed))
    }
}

/// Features and classes of images from a ResNet classifier (the shipped morphology model), or
/// the features of a regression's ResNet (a posterior model's encoder): each image is read and
/// prepared the model's way (`Predictor.prepared`: observation matching, its stages), then
/// `Predictor.outputAndFeatures` gives the pooled penultimate layer and the output (averaged
/// over the model's `views`), whose argmax is a classifier's class.
public struct ClassifierFeatures {
    public let predictor: Predictor
    public var classNames: [String] { predictor.classNames }

    /// An image classifier's model file (task classify).
    public init(contentsOf url: URL) throws {
        let model = try TrainedModel(contentsOf: url)
        guard model.recipe.task == .classify, model.network is any FeatureClassifier else {
            throw PipelineError.modelFile(path: url.path, reason: "features for the Fréchet distance come from an image classifier "
                                          + "(task classify, a ResNet); this is a '\(model.recipe.task.rawValue)' model "
                                          + "(\(model.architecture.name.rawValue))")
        }
        try self.init(predictor: Predictor(network: model.network, architecture: model.architecture, recipe: model.recipe,
                                           path: model.path))
    }

    /// The features of a predictor's network (a ResNet, or a posterior model with a ResNet encoder).
    public init(predictor: Predictor) throws {
        guard predictor.featureExtractor != nil else {
            throw PipelineError.modelFile(path: predictor.path, reason: "its network (\(predictor.architecture.name.rawValue)) "
                                          + "has no pooled penultimate features (a ResNet has)")
        }
        self.predictor = predictor
    }

    /// Penultimate features (`[images][width]`) and predicted class indices of the FITS files of `catalog`.
    public func features(_ catalog: Catalog, batchSize: Int = 64) throws -> (features: [[Double]], classes: [Int]) {
        try features(count: catalog.count, batchSize: batchSize) { range in try catalog.entries[range].map { try predictor.prepared($0).image } }
    }

    /// The same for images in memory (counts, with the header values the classifier's stages read).
    public func features(_ samples: [Sample], batchSize: Int = 64) throws -> (features: [[Double]], classes: [Int]) {
        try features(count: samples.count, batchSize: batchSize) { range in
            try samples[range].map { sample in
                let image = try predictor.prepare(sample, file: sample.name).image
                try predictor.checkShape(image.shape, file: sample.name)
                return image
            }
        }
    }

    func features(count: Int, batchSize: Int, prepared: (Range<Int>) throws -> [PlanarImage]) throws
        -> (features: [[Double]], classes: [Int]) {
        var features = [[Double]](), classes = [Int]()
        var start = 0
        while start < count {
            let images = try prepared(start..<min(count, start + batchSize))
            let shape = [images.count] + images[0].shape
            let (logits, f) = predictor.outputAndFeatures(Tensor(shape: shape, data: images.flatMap(\.pixels)), features: true)
            features += Predictor.rows(f!).map { $0.map(Double.init) }
            classes += Predictor.rows(logits).map { row in row.indices.max { row[$0] < row[$1] }! }
            start += batchSize
        }
        return (features, classes)
    }
}

/// How close a generator's images are to a reference set: the Fréchet distance of their
/// classifier features, the floor (the same distance between two reference sets drawn with
/// different seeds: what sampling noise alone gives at these sizes), and the class mix the
/// classifier assigns to each set.
public struct GeneratorComparison: Codable, Equatable, Sendable {
    public var frechetDistance: Double
    public var floor: Double?
    public var generatedCount: Int
    public var referenceCount: Int
    public var floorCount: Int?
    /// Fraction of each set's images per class, by class name.
    public var generatedClassMix: [String: Double]
    public var referenceClassMix: [String: Double]
    public var classifier: String

    enum CodingKeys: String, CodingKey {
        case frechetDistance = "frechet_distance", floor = "frechet_floor", generatedCount = "generated_count"
        case referenceCount = "reference_count", floorCount = "floor_count", generatedClassMix = "generated_class_mix"
        case referenceClassMix = "reference_class_mix", classifier
    }

    /// - `generated`, `reference`, `floorReference`: folders (or catalogs) of FITS images in counts.
    public init(generated: String, reference: String, floorReference: String?, classifier url: URL) throws {
        try self.init(generated: generated, reference: reference, floorReference: floorReference,
                      features: try ClassifierFeatures(contentsOf: url))
    }

    /// The same with the classifier already loaded (`generate` loads it, and checks the
    /// reference sets, before it writes any image).
    public init(generated: String, reference: String, floorReference: String?, features: ClassifierFeatures) throws {
        let g = try features.features(try Catalog.resolve(generated))
        let r = try features.features(try Catalog.resolve(reference))
        frechetDistance = try FrechetDistance.distance(g.features, r.features)
        if let floorReference {
            let b = try features.features(try Catalog.resolve(floorReference))
            floor = try FrechetDistance.distance(r.features, b.features)
            floorCount = b.features.count
        }
        func mix(_ classes: [Int]) -> [String: Double] {
            var result = [String: Double]()
            for (k, name) in features.classNames.enumerated() {
                result[name] = Double(classes.filter { $0 == k }.count) / Double(max(1, classes.count))
            }
            return result
        }
        generatedCount = g.features.count
        referenceCount = r.features.count
        generatedClassMix = mix(g.classes)
        referenceClassMix = mix(r.classes)
        classifier = URL(fileURLWithPath: features.predictor.path).lastPathComponent
    }

    /// The numbers as pretty-printed JSON with sorted keys (`comparison.json`).
    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }

    public var lines: [String] {
        var lines = [String(format: "Fréchet distance (generated %d vs reference %d): %.3f", generatedCount, referenceCount, frechetDistance)]
        if let floor, let floorCount {
            lines.append(String(format: "floor (reference %d vs another reference set %d): %.3f; ratio %.2f", referenceCount, floorCount,
                                floor, frechetDistance / floor))
        }
        lines.append("class mix (\(classifier)):   generated   reference")
        for name in generatedClassMix.keys.sorted() {
            lines.append(String(format: "  %-12@ %9.3f   %9.3f", name, generatedClassMix[name]!, referenceClassMix[name] ?? 0))
        }
        return lines
    }
}
