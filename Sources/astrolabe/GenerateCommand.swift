import ArgumentParser
import Foundation
import Pipelines
import Preprocessing

/// `astrolabe generate`: images from a trained generator, optionally compared with real ones.
struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sample a trained image generator (task generate): FITS images in counts and a contact sheet.",
        discussion: """
        Writes OUTPUT/generated_NNNNNN.fits (float32 counts; the header records the generator, \
        the seed, the image index and the observation imitated, with the sky noise drawn from its \
        range) and OUTPUT/contact-sheet.png. A class-conditional generator (trained with \
        input.label_column) draws each image's class as often as its training data held it, or \
        makes them all of --class, and writes the class in GENCLASS. The same seed gives the same images; image i depends \
        on the seed and i only. A generator of noiseless images (trained with observe_noise) \
        gets the observation's noise (the sky noise drawn and the sources' Poisson noise) unless \
        --noiseless asks for the images it makes.

        With --compare-to DIR (FITS images in counts, e.g. simulated ones) it also reports the \
        Fréchet distance between the generated and DIR's images in the features of --classifier's \
        penultimate layer, with --floor DIR2 the same distance between DIR and DIR2 (another set \
        drawn with a different seed: the floor sampling noise gives), and the class mix the \
        classifier assigns to each set; written to OUTPUT/comparison.json.

        Example:
          astrolabe generate --weights samples/models/generator.safetensors --count 64 --output gen/ --seed 1
          astrolabe generate --weights samples/models/generator.safetensors --count 1000 --output gen/ \\
            --compare-to sim-a/ --floor sim-b/ --classifier samples/models/morphology.safetensors
        """)

    @Option(help: "The generator's model file (trained with task: generate).") var weights: String
    @Option(help: "Number of images.") var count: Int
    @Option(help: "Output folder.") var output: String
    @Option(help: "Noise seed (non-negative integer).") var seed: UInt64 = 0
    @Option(name: .customLong("compare-to"), help: "A folder or catalog of reference FITS images (counts) to compare with.")
    var compareTo: String?
    @Option(help: "A second reference set (another seed) for the Fréchet distance floor.") var floor: String?
    @Option(help: "The classifier whose penultimate features the Fréchet distance uses.")
    var classifier: String = "samples/models/morphology.safetensors"
    @Flag(help: "Write a noiseless generator's images without the observation's noise.") var noiseless = false
    @Option(name: .customLong("class"), help: "A class-conditional generator: make every image of this class (default: classes drawn as often as in its training data).")
    var className: String?
    @Option(help: "The truncation trick: noise values beyond ±T are redrawn (fidelity for variety; T ≥ 0.01, e.g. 1.5).")
    var truncation: Double?

    func validate() throws {
        guard count > 0 else { throw ValidationError("--count must be positive, got \(count).") }
        if let truncation, !(truncation >= ImageGenerator.smallestTruncation && truncation.isFinite) {
            throw ValidationError("--truncation must be a number of at least \(ImageGenerator.smallestTruncation) "
                                  + "(noise values beyond ±T are redrawn), got \(truncation).")
        }
        if floor != nil && compareTo == nil { throw ValidationError("--floor needs --compare-to (the reference set it is compared with).") }
        if compareTo != nil && count < 2 { throw ValidationError("--compare-to needs --count of at least 2 (a covariance).") }
        if noiseless && compareTo != nil {
            throw ValidationError("--noiseless images are not comparable with observed ones: leave out --noiseless or --compare-to.")
        }
    }

    func run() throws {
        try runReportingErrors {
            var generator = try ImageGenerator(contentsOf: URL(fileURLWithPath: weights))
            if let className { try generator.only(className: className) }
            // What the comparison needs is checked before any image is written.
            let features = try compareTo.map { _ in try ClassifierFeatures(contentsOf: URL(fileURLWithPath: classifier)) }
            for set in [compareTo, floor].compactMap({ $0 }) { _ = try Catalog.resolve(set) }
            let folder = URL(fileURLWithPath: output)
            let (files, assumptions) = try generator.write(count: count, seed: seed, to: folder, noiseless: noiseless, truncation: truncation)
            for assumption in assumptions { FileHandle.standardError.write(Data("note: \(assumption)\n".utf8)) }
            print("wrote \(files.count) images and contact-sheet.png to \(output)")
            guard let compareTo, let features else { return }
            let comparison = try GeneratorComparison(generated: output, reference: compareTo, floorReference: floor,
                                                     features: features)
            try comparison.json().write(to: folder.appendingPathComponent("comparison.json"))
            for line in comparison.lines { print(line) }
        }
    }
}

/// `astrolabe compare-images`: the Fréchet distance and class mix of images already made.
struct CompareImages: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare-images",
        abstract: "Fréchet distance between two sets of FITS images (counts) in a classifier's features, with the class mix.",
        discussion: """
        Scores images made elsewhere (another generator, another simulator, a post-processed set) \
        as `generate --compare-to` scores its own: the Fréchet distance between IMAGES and \
        --compare-to in the penultimate features of --classifier, with --floor the distance \
        between --compare-to and a second reference set, and the class mix the classifier assigns. \
        With --output FILE the numbers are also written as JSON.

        Example:
          astrolabe compare-images other-gan/ --compare-to sim-a/ --floor sim-b/ \\
            --classifier samples/models/morphology.safetensors
        """)

    @Argument(help: "A folder or catalog of FITS images (counts) to score.") var images: String
    @Option(name: .customLong("compare-to"), help: "A folder or catalog of reference FITS images (counts).")
    var compareTo: String
    @Option(help: "A second reference set (another seed) for the Fréchet distance floor.") var floor: String?
    @Option(help: "The classifier whose penultimate features the Fréchet distance uses.")
    var classifier: String = "samples/models/morphology.safetensors"
    @Option(help: "Write the numbers to this JSON file.") var output: String?

    func run() throws {
        try runReportingErrors {
            let comparison = try GeneratorComparison(generated: images, reference: compareTo, floorReference: floor,
                                                     classifier: URL(fileURLWithPath: classifier))
            if let output { try comparison.json().write(to: URL(fileURLWithPath: output), options: .atomic) }
            for line in comparison.lines { print(line) }
        }
    }
}
