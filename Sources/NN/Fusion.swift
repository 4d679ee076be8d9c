// The fusion pass: `fusedForInference()` rewrites an eval-mode model into inference-only
// layers, as PyTorch's `torch.jit.freeze` rewrites a graph, so the training layers keep one
// `forward` each and read like the paper.
//
// Rules (each fused type lives in its own file):
// - `Sequential`: `Conv2D → BatchNorm (→ ReLU)` and `Conv2D → ReLU` become one `FusedConv2D`
//   (batch norm folded into the weights, ReLU as the convolution's epilogue); the layers
//   folded away become `Identity` placeholders so the remaining keys do not shift.
// - `Conv2D` alone: a `FusedConv2D` without epilogue (frozen weights, packed once by oneDNN).
// - `ConvTranspose2D`: `FusedConvTranspose2D` (FusedConvolution.swift).
// - `BasicBlock`, `ResNet`: `FusedBasicBlock` (the residual sum and ReLU in the second
//   convolution), `FusedResNet` (FusedResNet.swift).
// - `UNet`: `FusedUNet`, which keeps activations in oneDNN's channel-blocked layout from the
//   first convolution to the head (FusedUNet.swift).
// - `Dense`: a copy (nothing to fold; copied so that the fused model is a snapshot).
// - Any other layer: itself (`Layer.fusedForInference()`'s default).
import Autograd

extension Conv2D {
    /// A frozen copy for inference (`FusedConv2D`, no epilogue).
    public func fusedForInference() -> any Layer { FusedConv2D(self) }
}

extension Dense {
    /// A copy in eval mode: nothing to fold, but the fused model must not share weights that
    /// training (or loading a state dict into) the original changes.
    public func fusedForInference() -> any Layer {
        let copy = Dense(inputFeatures: inputFeatures, outputFeatures: outputFeatures, useBias: bias != nil, seed: 0)
        copy.weight.assign(weight)
        if let bias { copy.bias?.assign(bias) }
        copy.eval()
        return copy
    }
}

extension ConvTranspose2D {
    /// A frozen copy for inference (`FusedConvTranspose2D`).
    public func fusedForInference() -> any Layer { FusedConvTranspose2D(self) }
}

extension Sequential {
    /// Folds each `Conv2D → BatchNorm (→ ReLU)` run into one `FusedConv2D` and fuses a ReLU
    /// straight after a convolution; every other child is fused on its own. The fused layer
    /// keeps the key of the convolution; the batch norm and ReLU become `Identity`
    /// placeholders so the remaining keys do not shift.
    public func fusedForInference() -> any Layer {
        func isReLU(_ index: Int) -> Bool {
            index < layers.count && (layers[index] as? Activation)?.function == .relu
        }
        var out: [any Layer] = []
        var i = 0
        while i < layers.count {
            guard let conv = layers[i] as? Conv2D else {
                out.append(layers[i].fusedForInference())
                i += 1
                continue
            }
            let bn = i + 1 < layers.count ? layers[i + 1] as? BatchNorm : nil
            let relu = isReLU(i + (bn == nil ? 1 : 2))
            out.append(FusedConv2D(conv, batchNorm: bn, relu: relu))
            let folded = (bn == nil ? 0 : 1) + (relu ? 1 : 0)
            out += (0..<folded).map { _ in Identity() }
            i += 1 + folded
        }
        let fused = Sequential(out)
        fused.isTraining = false
        return fused
    }
}

extension Layer {
    /// Sets the arithmetic of every fused convolution in this (fused) model: their frozen
    /// weights' `Tensor.inferencePrecision` (bfloat16 runs only where the CPU has bfloat16
    /// instructions; see `InferencePrecision`). Layers that are not fused convolutions keep
    /// float32. Returns the number of convolutions set.
    @discardableResult
    public func setInferencePrecision(_ precision: InferencePrecision) -> Int {
        var count = 0
        for (_, layer) in namedLayers() {
            if let conv = layer as? FusedConv2D {
                conv.weight.inferencePrecision = precision
            } else if let conv = layer as? FusedConvTranspose2D {
                conv.weightsForInference.forEach { $0.inferencePrecision = precision }
            } else {
                continue
            }
            count += 1
        }
        return count
    }
}
