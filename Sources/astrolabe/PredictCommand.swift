// `astrolabe predict`: run a classifier (PyTorch state dict or Astrolabe model file) on FITS images.
import ArgumentParser
import Autograd
import CFITSIO
import Foundation
import NN

/// `astrolabe predict --weights FILE.safetensors --arch resnet18|resnet34|cnn --classes N
/// --in-channels C --raw INPUT.fits... --output out.csv`
///
/// With `--raw`, pixels go to the model untouched (no scaling, NaN kept) and the CSV holds
/// `file,logit_0,...,logit_{N-1}`. A plain PyTorch `state_dict` needs `--arch`, `--classes`
/// and `--in-channels`; ResNet widths and the stem are read from the weights' shapes. A model
/// file with Astrolabe metadata needs none of them; without `--raw` its recorded
/// preprocessing is applied and the CSV holds `file,probability_0,...`.
struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Classify FITS images with a safetensors model; writes one CSV row per file.")

    enum Arch: String, ExpressibleByArgument, CaseIterable {
        case resnet18, resnet34, cnn
    }

    @Option(help: "Weights: a PyTorch state_dict or an Astrolabe model file (.safetensors).")
    var weights: String

    @Option(help: "Architecture of a plain state_dict.")
    var arch: Arch?

    @Option(help: "Number of classes (plain state_dict).")
    var classes: Int?

    @Option(name: .customLong("in-channels"), help: "Input bands (plain state_dict).")
    var inChannels: Int?

    @Flag(help: "Feed the pixels unchanged and write logits (no preprocessing, no softmax).")
    var raw = false

    @Option(help: "Images per forward pass.")
    var batchSize = 32

    @Option(help: "Output CSV path (written atomically).")
    var output: String

    @Argument(help: "FITS images: [H, W] (one band) or [C, H, W].")
    var inputs: [String]

    func run() throws {
        do {
            try predict()
        } catch let error as LocalizedError {
            FileHandle.standardError.write(Data("Error: \(error.errorDescription ?? "\(error)")\n".utf8))
            throw ExitCode.failure
        }
    }

    private func predict() throws {
        guard batchSize > 0 else { throw PredictError.usage("--batch-size must be positive") }
        guard !inputs.isEmpty else { throw PredictError.usage("no input images: give one or more FITS files") }
        let file = try Safetensors(contentsOf: URL(fileURLWithPath: weights))
        let images = try inputs.map { try RawFITSImage.read(path: $0) }
        let (model, architecture, preprocessing) = try buildModel(file, imageShape: images.first?.shape)
        if !raw && preprocessing == nil && file.metadata[ModelFile.architectureKey] == nil {
            throw PredictError.usage("'\(weights)' is a plain state_dict with no recorded preprocessing: add --raw "
                + "to feed the pixels unchanged and write logits")
        }
        for (path, image) in zip(inputs, images) where image.shape[0] != architecture.inChannels {
            throw PredictError.usage("'\(path)' has \(image.shape[0]) band(s), the model takes \(architecture.inChannels)")
        }

        // Inference fast path: batch norm folded into the convolutions, ReLU fused.
        model.eval()
        let fast = model.fusedForInference()
        var rows = ["file," + (0..<architecture.classes).map { (raw ? "logit_" : "probability_") + "\($0)" }.joined(separator: ",")]
        var start = 0
        while start < images.count {
            // A batch of consecutive images with the same shape.
            var end = start + 1
            while end < images.count && end - start < batchSize && images[end].shape == images[start].shape { end += 1 }
            var batch = Tensor.stack(Array(images[start..<end]), axis: 0)
            if !raw { batch = try applyRecordedPreprocessing(preprocessing, to: batch) }
            var out = withNoGrad { fast(batch) }
            if !raw { out = withNoGrad { out.softmax(axis: 1) } }
            let values = out.scalars, n = architecture.classes
            for i in 0..<(end - start) {
                let row = (0..<n).map { "\(values[i * n + $0])" }
                rows.append(csvField(inputs[start + i]) + "," + row.joined(separator: ","))
            }
            start = end
        }
        do {
            try Data((rows.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: output), options: .atomic)
        } catch {
            throw PredictError.usage("cannot write '\(output)': \(error.localizedDescription)")
        }
    }

    /// The model from the file's metadata, or from `--arch/--classes/--in-channels` for a plain
    /// state dict (ResNet widths and stem read from the tensor shapes), loaded strictly.
    private func buildModel(_ file: Safetensors, imageShape: [Int]?) throws -> (any Layer, Architecture, String?) {
        if file.metadata[ModelFile.architectureKey] != nil {
            let m = try ModelFile(contentsOf: URL(fileURLWithPath: weights))
            guard ["resnet18", "resnet34", "cnn", "mlp"].contains(m.architecture.name) else {
                throw PredictError.usage("'\(weights)' holds a \(m.architecture.name); predict runs classifiers (resnet18, resnet34, cnn)")
            }
            // Options given anyway must agree with the file rather than be silently ignored.
            if let classes, classes != m.architecture.classes {
                throw PredictError.usage("--classes \(classes), but '\(weights)' records \(m.architecture.classes) classes")
            }
            if let inChannels, inChannels != m.architecture.inChannels {
                throw PredictError.usage("--in-channels \(inChannels), but '\(weights)' records \(m.architecture.inChannels) bands")
            }
            if let arch, arch.rawValue != m.architecture.name {
                throw PredictError.usage("--arch \(arch.rawValue), but '\(weights)' records a \(m.architecture.name)")
            }
            return (m.model, m.architecture, m.preprocessing)
        }
        guard let arch, let classes, let inChannels else {
            throw PredictError.usage("'\(weights)' has no Astrolabe metadata (a plain PyTorch state_dict): "
                + "give --arch, --classes and --in-channels")
        }
        let architecture: Architecture
        switch arch {
        case .resnet18, .resnet34:
            let widths = (1...4).map { file.tensors["layer\($0).0.conv1.weight"]?.shape.first ?? [64, 128, 256, 512][$0 - 1] }
            let stem = file.tensors["conv1.weight"]?.shape.last == 3
            architecture = Architecture(name: arch == .resnet18 ? .resnet18 : .resnet34, inChannels: inChannels, classes: classes,
                                        widths: widths, smallImageStem: stem)
        case .cnn:
            architecture = Architecture(name: .cnn, inChannels: inChannels, classes: classes, imageSize: imageShape?.last ?? 64)
        }
        let model = try architecture.makeModel()
        try model.load(stateDict: file.tensors, mode: .strict)
        return (model, architecture, nil)
    }

    /// Applies the preprocessing JSON recorded in a model file.
    /// TODO(lead): hand this to the preprocessing module once it is merged; until then only an
    /// empty stage list is understood.
    private func applyRecordedPreprocessing(_ json: String?, to batch: Tensor) throws -> Tensor {
        let trimmed = (json ?? "[]").filter { !$0.isWhitespace }
        guard trimmed == "[]" || trimmed == "{}" || trimmed == "{\"stages\":[]}" else {
            throw PredictError.usage("the model file records preprocessing \(json!), which this build cannot apply yet "
                + "(the preprocessing module is not part of it); use --raw with already-preprocessed images")
        }
        return batch
    }

    private func csvField(_ s: String) -> String {
        s.contains(",") || s.contains("\"") || s.contains("\n") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }
}

enum PredictError: Error, LocalizedError {
    case usage(String)
    case fits(path: String, operation: String, status: Int32, message: String)

    var errorDescription: String? {
        switch self {
        case .usage(let m): return m
        case .fits(let path, let operation, let status, let message):
            return "FITS: \(operation) failed for '\(path)': \(message) (cfitsio status \(status))"
        }
    }
}

// MARK: - Temporary FITS reader
// TODO(lead): replace with the FITS module once merged (branch `fits`). A private, minimal
// reader so that `predict` works now: first image HDU, any BITPIX, read as Float32 with
// undefined pixels as NaN, [H, W] -> [1, H, W], [C, H, W] kept.

private enum RawFITSImage {
    static func read(path: String) throws -> Tensor {
        var fptr: UnsafeMutablePointer<fitsfile>?
        var status: Int32 = 0
        func check(_ operation: String) throws {
            guard status != 0 else { return }
            var text = [CChar](repeating: 0, count: 31)
            ffgerr(status, &text)
            throw PredictError.fits(path: path, operation: operation, status: status,
                                    message: String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        ffiopn(&fptr, path, READONLY, &status)   // fits_open_image: first HDU with an image
        try check("open")
        defer { var s: Int32 = 0; ffclos(fptr, &s) }
        var bitpix: Int32 = 0, naxis: Int32 = 0
        var dims = [Int64](repeating: 0, count: 3)
        ffgiprll(fptr, 3, &bitpix, &naxis, &dims, &status)   // fits_get_img_param
        try check("read image size")
        guard naxis == 2 || naxis == 3, dims.prefix(Int(naxis)).allSatisfy({ $0 > 0 }) else {
            throw PredictError.usage("'\(path)': the image has \(naxis) axes \(dims.prefix(Int(naxis))); predict needs 2 (H, W) or 3 (C, H, W)")
        }
        let (w, h, c) = (Int(dims[0]), Int(dims[1]), naxis == 3 ? Int(dims[2]) : 1)
        var pixels = [Float](repeating: 0, count: c * h * w)
        var first = [Int](repeating: 1, count: Int(naxis))
        var null = Float.nan
        var anyNull: Int32 = 0
        ffgpxv(fptr, TFLOAT, &first, Int64(pixels.count), &null, &pixels, &anyNull, &status)   // fits_read_pix
        try check("read pixels")
        return Tensor(shape: [c, h, w], data: pixels)
    }
}
