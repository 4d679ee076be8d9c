// Keras-style model summary: layer, output shape, parameters.
import Autograd

extension Layer {
    /// A table of layers (key path and description), their output shapes for one input of
    /// `inputShape` (without the batch axis; batch 1 is used) and their parameter counts,
    /// then the totals. Runs one forward pass under `withNoGrad` in eval mode and restores
    /// the mode afterwards. `depth` limits how deep into containers rows go.
    public func summary(inputShape: [Int], depth: Int = 2) -> String {
        let wasTraining = isTraining
        eval()
        let trace = LayerTrace()
        let output = LayerTrace.$current.withValue(trace) { withNoGrad { self(Tensor.zeros([1] + inputShape)) } }
        let shapes = trace.shapes
        setTraining(wasTraining)

        var rows: [(String, String, String)] = [("Layer", "Output shape", "Parameters")]
        for (path, layer) in namedLayers() where !path.isEmpty {
            let level = path.split(separator: ".").count
            guard level <= depth else { continue }
            let params = layer.parameterCount
            let name = String(repeating: "  ", count: level - 1) + path + "  " + layer.layerDescription
            // A container the model never calls as a whole (U-Net's `down`, `up`) has no shape of its own.
            let shape = shapes[ObjectIdentifier(layer)].map(shapeText) ?? (layer.children.isEmpty ? "-" : "(per child)")
            rows.append((name, shape, "\(params)"))
        }
        let w0 = rows.map(\.0.count).max()!, w1 = rows.map(\.1.count).max()!, w2 = rows.map(\.2.count).max()!
        func pad(_ s: String, _ w: Int) -> String { s + String(repeating: " ", count: w - s.count) }
        let rule = String(repeating: "─", count: w0 + w1 + w2 + 6)
        var lines = [layerDescription, rule]
        for (k, r) in rows.enumerated() {
            lines.append(pad(r.0, w0) + "   " + pad(r.1, w1) + "   " + String(repeating: " ", count: w2 - r.2.count) + r.2)
            if k == 0 { lines.append(rule) }
        }
        lines.append(rule)
        lines.append("Input: \(shapeText([1] + inputShape))  Output: \(shapeText(output.shape))")
        lines.append("Trainable parameters: \(parameterCount)")
        lines.append("Non-trainable (buffers): \(bufferCount)")
        return lines.joined(separator: "\n")
    }
}
