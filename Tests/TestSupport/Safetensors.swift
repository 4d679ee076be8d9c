// A minimal safetensors reader for test fixtures (F32 tensors only).
import Autograd
import Foundation

/// The tensors and metadata of a `.safetensors` file: an 8-byte little-endian header
/// length, a JSON header (`name: {dtype, shape, data_offsets}`, optional `__metadata__`),
/// then raw little-endian data.
public struct SafetensorsFile {
    public let tensors: [String: Tensor]
    public let metadata: [String: String]

    public enum ReadError: Error, CustomStringConvertible {
        case malformed(String)
        public var description: String { switch self { case .malformed(let m): return "safetensors: \(m)" } }
    }

    public init(url: URL) throws {
        let data = try Data(contentsOf: url)
        guard data.count >= 8 else { throw ReadError.malformed("\(url.path) shorter than 8 bytes") }
        let headerLength = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        guard 8 + headerLength <= data.count,
              let header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + headerLength))) as? [String: Any]
        else { throw ReadError.malformed("\(url.path): bad header") }
        let body = data.subdata(in: (8 + headerLength)..<data.count)
        var tensors: [String: Tensor] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in header {
            if name == "__metadata__" { metadata = value as? [String: String] ?? [:]; continue }
            guard let entry = value as? [String: Any], entry["dtype"] as? String == "F32",
                  let shape = entry["shape"] as? [Int], let offsets = entry["data_offsets"] as? [Int], offsets.count == 2
            else { throw ReadError.malformed("\(url.path): tensor '\(name)' is not F32 or lacks shape/offsets") }
            let count = shape.reduce(1, *)
            guard offsets[1] - offsets[0] == count * 4, offsets[1] <= body.count
            else { throw ReadError.malformed("\(url.path): tensor '\(name)' offsets \(offsets) for shape \(shape)") }
            var floats = [Float](repeating: 0, count: count)
            floats.withUnsafeMutableBytes { dst in
                body.copyBytes(to: dst, from: offsets[0]..<offsets[1])
            }
            // The format is little-endian; so is every platform we build on.
            tensors[name] = Tensor(shape: shape, data: floats)
        }
        self.tensors = tensors
        self.metadata = metadata
    }

    /// The tensor named `name`, failing the test with the file's names if absent.
    public subscript(name: String) -> Tensor {
        guard let t = tensors[name] else { preconditionFailure("safetensors: no tensor '\(name)' (have \(tensors.keys.sorted()))") }
        return t
    }
}
