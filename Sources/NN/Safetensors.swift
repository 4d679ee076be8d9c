// Reading and writing the safetensors format (Hugging Face, PyTorch `safetensors.torch`).
import Autograd
import Foundation

/// Errors of weight files and state dicts, with what was expected and what was found.
public enum WeightsError: Error, LocalizedError, Equatable {
    /// The file cannot be read at all.
    case unreadable(path: String, reason: String)
    /// The bytes are not a safetensors file (bad length prefix or header).
    case notSafetensors(path: String, reason: String)
    /// The header promises more data than the file holds.
    case truncated(path: String, tensor: String, needed: Int, available: Int)
    /// A tensor has a dtype this reader does not convert.
    case unsupportedDType(path: String, tensor: String, dtype: String)
    /// Keys or shapes differ from the model's: all problems at once.
    case stateDictMismatch(missing: [String], unexpected: [String], shapeMismatches: [ShapeMismatch])
    /// The file carries no (or an unusable) `astrolabe.architecture` entry.
    case architecture(path: String, reason: String)
    /// The file cannot be written.
    case unwritable(path: String, reason: String)
    /// An option string of the architecture (`name`, `activation`) that is not one of `choices`.
    case unknownChoice(path: String, option: String, value: String, choices: [String])

    public struct ShapeMismatch: Equatable, Sendable, CustomStringConvertible {
        public let key: String
        public let expected: [Int]
        public let found: [Int]
        public var description: String { "\(key): model \(shapeText(expected)), file \(shapeText(found))" }
    }

    public var errorDescription: String? {
        switch self {
        case .unreadable(let path, let reason):
            return "Cannot read weights file '\(path)': \(reason)."
        case .notSafetensors(let path, let reason):
            return "'\(path)' is not a safetensors file: \(reason). Expected an 8-byte little-endian header "
                + "length, a JSON header and the tensor data (as written by safetensors.torch.save_file)."
        case .truncated(let path, let tensor, let needed, let available):
            return "'\(path)' is truncated: tensor '\(tensor)' needs bytes up to \(needed) of the data section, "
                + "which has \(available). The file was cut short; copy or save it again."
        case .unsupportedDType(let path, let tensor, let dtype):
            return "'\(path)': tensor '\(tensor)' has dtype \(dtype); supported: F32, F16, BF16, F64 (and I64 for "
                + "num_batches_tracked). Convert it with tensor.float() before saving."
        case .stateDictMismatch(let missing, let unexpected, let shapes):
            var lines = ["The weights do not fit the model:"]
            if !missing.isEmpty { lines.append("  missing from the file (\(missing.count)): \(listed(missing))") }
            if !unexpected.isEmpty { lines.append("  unexpected in the file (\(unexpected.count)): \(listed(unexpected))") }
            if !shapes.isEmpty {
                lines.append("  shape mismatches (\(shapes.count)): " + shapes.prefix(8).map(\.description).joined(separator: "; ")
                             + (shapes.count > 8 ? "; …" : ""))
            }
            lines.append("Check the architecture options (classes, input bands, widths), or load with .partial to keep "
                         + "the model's own values where the file does not fit (e.g. a new head for fine-tuning).")
            return lines.joined(separator: "\n")
        case .architecture(let path, let reason):
            return "'\(path)': \(reason)"
        case .unwritable(let path, let reason):
            return "Cannot write weights file '\(path)': \(reason)."
        case .unknownChoice(let path, let option, let value, let choices):
            return (path.isEmpty ? "" : "'\(path)': ") + "unknown \(option) '\(value)'; valid: \(choices.joined(separator: ", "))."
        }
    }
}

private func listed(_ keys: [String]) -> String {
    keys.prefix(10).joined(separator: ", ") + (keys.count > 10 ? ", … (\(keys.count - 10) more)" : "")
}

/// The contents of a safetensors file: named tensors (converted to Float32) and string metadata.
public struct Safetensors {
    public var tensors: [String: Tensor]
    public var metadata: [String: String]

    public init(tensors: [String: Tensor], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
    }

    /// Reads F32, F16, BF16 and F64 tensors as Float32; I64/I32 tensors (PyTorch's
    /// `num_batches_tracked`) are converted to Float32 as well.
    public init(contentsOf url: URL) throws {
        let path = url.path
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw WeightsError.unreadable(path: path, reason: error.localizedDescription)
        }
        try self.init(data: data, path: path)
    }

    public init(data: Data, path: String = "<memory>") throws {
        guard data.count >= 8 else {
            throw WeightsError.notSafetensors(path: path, reason: "it has \(data.count) bytes, fewer than the 8-byte header length")
        }
        let headerLength = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard headerLength >= 2, headerLength <= UInt64(data.count - 8) else {
            throw WeightsError.notSafetensors(path: path, reason: "the header length \(headerLength) does not fit a file of \(data.count) bytes")
        }
        let start = data.startIndex
        let headerData = data.subdata(in: (start + 8)..<(start + 8 + Int(headerLength)))
        guard let json = try? JSONSerialization.jsonObject(with: headerData), let header = json as? [String: Any] else {
            throw WeightsError.notSafetensors(path: path, reason: "the header is not a JSON object")
        }
        let bodyStart = start + 8 + Int(headerLength)
        let available = data.count - 8 - Int(headerLength)
        var tensors: [String: Tensor] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in header {
            if name == "__metadata__" {
                guard let m = value as? [String: Any] else {
                    throw WeightsError.notSafetensors(path: path, reason: "__metadata__ is not an object")
                }
                for (k, v) in m { metadata[k] = v as? String ?? "\(v)" }
                continue
            }
            guard let entry = value as? [String: Any], let dtype = entry["dtype"] as? String,
                  let shape = entry["shape"] as? [Int], shape.allSatisfy({ $0 >= 0 }),
                  let offsets = entry["data_offsets"] as? [Int], offsets.count == 2, offsets[0] >= 0, offsets[1] >= offsets[0]
            else { throw WeightsError.notSafetensors(path: path, reason: "entry '\(name)' lacks dtype, shape or data_offsets") }
            let width: Int
            switch dtype {
            case "F32", "I32": width = 4
            case "F16", "BF16": width = 2
            case "F64", "I64": width = 8
            default: throw WeightsError.unsupportedDType(path: path, tensor: name, dtype: dtype)
            }
            let count = shape.reduce(1, *)
            guard offsets[1] - offsets[0] == count * width else {
                throw WeightsError.notSafetensors(path: path, reason: "tensor '\(name)': data_offsets \(offsets) hold "
                    + "\(offsets[1] - offsets[0]) bytes, shape \(shape) of \(dtype) needs \(count * width)")
            }
            guard offsets[1] <= available else {
                throw WeightsError.truncated(path: path, tensor: name, needed: offsets[1], available: available)
            }
            var floats = [Float](repeating: 0, count: count)
            data.withUnsafeBytes { raw in
                let base = raw.baseAddress!.advanced(by: bodyStart - start + offsets[0])
                floats.withUnsafeMutableBufferPointer { out in
                    // The format is little-endian, as is every platform we build for; loads are
                    // unaligned because offsets need not be multiples of the element size.
                    for i in 0..<count {
                        let p = base.advanced(by: i * width)
                        switch dtype {
                        case "F32": out[i] = Float(bitPattern: p.loadUnaligned(as: UInt32.self))
                        case "F64": out[i] = Float(Double(bitPattern: p.loadUnaligned(as: UInt64.self)))
                        case "F16": out[i] = Float(Float16(bitPattern: p.loadUnaligned(as: UInt16.self)))
                        case "BF16": out[i] = Float(bitPattern: UInt32(p.loadUnaligned(as: UInt16.self)) << 16)
                        case "I64": out[i] = Float(p.loadUnaligned(as: Int64.self))
                        default: out[i] = Float(p.loadUnaligned(as: Int32.self))
                        }
                    }
                }
            }
            tensors[name] = Tensor(shape: shape, data: floats)
        }
        self.tensors = tensors
        self.metadata = metadata
    }

    /// The file's bytes: F32 tensors in sorted key order, 8-byte aligned header.
    public func serialized() throws -> Data {
        var header: [String: Any] = [:]
        var offset = 0
        let names = tensors.keys.sorted()
        for name in names {
            let t = tensors[name]!
            header[name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + 4 * t.count]] as [String: Any]
            offset += 4 * t.count
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        // Pad with spaces so the data section starts 8-byte aligned (as the reference writer does).
        while json.count % 8 != 0 { json.append(0x20) }
        var out = Data(capacity: 8 + json.count + offset)
        var length = UInt64(json.count).littleEndian
        withUnsafeBytes(of: &length) { out.append(contentsOf: $0) }
        out.append(json)
        for name in names {
            let t = tensors[name]!
            t.withUnsafeMutableBufferPointer { out.append(UnsafeBufferPointer($0)) }
        }
        return out
    }

    /// Writes the file atomically: a temporary file in the same directory, then a rename, so
    /// an existing file is never left half-written.
    public func write(to url: URL) throws {
        let bytes: Data
        do { bytes = try serialized() } catch {
            throw WeightsError.unwritable(path: url.path, reason: "metadata is not valid JSON (\(error.localizedDescription))")
        }
        do { try bytes.write(to: url, options: .atomic) } catch {
            throw WeightsError.unwritable(path: url.path, reason: error.localizedDescription)
        }
    }
}
