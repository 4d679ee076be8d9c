// Inference-only ResNet layers made by the fusion pass.
import Autograd

/// A `BasicBlock` for inference: batch norms folded into the convolutions, and the second
/// convolution's epilogue adds the shortcut and applies the ReLU (`FusedConv2D.forward(_:adding:)`),
/// so the block is two (three with a projection) oneDNN primitives and no elementwise pass.
///
/// - `input`: `[N, inputChannels, H, W]`; returns `relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`.
/// - Keys: `conv1`, `conv2` (folded), `downsample.0` (folded projection, `downsample.1` an `Identity`).
public final class FusedBasicBlock: Layer {
    public let conv1: FusedConv2D
    /// Its epilogue: `relu(conv2(h) + bias + shortcut)`.
    public let conv2: FusedConv2D
    public let downsample: Sequential?

    public init(_ block: BasicBlock) {
        conv1 = FusedConv2D(block.conv1, batchNorm: block.bn1, relu: true)
        conv2 = FusedConv2D(block.conv2, batchNorm: block.bn2, relu: true)
        downsample = block.downsample.map { $0.fusedForInference() as! Sequential }
    }

    /// Inference only (see `FusedConv2D.isTraining`).
    public var isTraining: Bool {
        get { false }
        set { precondition(!newValue, "\(layerDescription) is inference-only; train the model it was fused from") }
    }

    public func forward(_ input: Tensor) -> Tensor {
        let shortcut = downsample.map { $0(input) } ?? input
        return conv2.forward(conv1(input), adding: shortcut)
    }

    /// Blocked in, blocked out; nil when the blocked path cannot run.
    public func forward(blocked input: BlockedFeatureMap) -> BlockedFeatureMap? {
        var shortcut = input
        if let downsample {
            guard let projection = downsample.layers.first as? FusedConv2D,
                  downsample.layers.dropFirst().allSatisfy({ $0 is Identity }),
                  let s = projection.forward(blocked: input) else { return nil }
            shortcut = s
        }
        guard let h = conv1.forward(blocked: input) else { return nil }
        return conv2.forward(blocked: h, adding: shortcut)
    }

    public var children: [(key: String, layer: any Layer)] {
        [("conv1", conv1), ("conv2", conv2)] + (downsample.map { [("downsample", $0 as any Layer)] } ?? [])
    }

    public var layerDescription: String {
        "FusedBasicBlock(\(conv1.inputChannels) → \(conv1.outputChannels), stride \(conv1.stride.height)"
            + "\(downsample == nil ? "" : ", projection shortcut"))"
    }
}

/// A `ResNet` for inference: the stem convolution with its batch norm and ReLU folded in,
/// `FusedBasicBlock` stages, then global average pooling and a copy of `fc`.
///
/// - `input`: `[N, inputChannels, H, W]`; returns logits `[N, classCount]`.
public final class FusedResNet: Layer, FeatureClassifier {
    public let configuration: ResNet.Configuration
    public let conv1: FusedConv2D
    public let maxpool: MaxPool2D?
    public let layer1: Sequential, layer2: Sequential, layer3: Sequential, layer4: Sequential
    public let fc: Dense

    public init(_ r: ResNet) {
        configuration = r.configuration
        conv1 = FusedConv2D(r.conv1, batchNorm: r.bn1, relu: true)
        maxpool = r.maxpool
        func stage(_ s: Sequential) -> Sequential { s.fusedForInference() as! Sequential }
        (layer1, layer2, layer3, layer4) = (stage(r.layer1), stage(r.layer2), stage(r.layer3), stage(r.layer4))
        fc = r.fc.fusedForInference() as! Dense
    }

    /// Inference only (see `FusedConv2D.isTraining`).
    public var isTraining: Bool {
        get { false }
        set { precondition(!newValue, "\(layerDescription) is inference-only; train the model it was fused from") }
    }

    /// The pooled features `[N, widths[3]]` before `fc` (as `ResNet.features`).
    public func features(_ input: Tensor) -> Tensor {
        precondition(input.rank == 4 && input.shape[1] == configuration.inputChannels,
                     "FusedResNet: input \(input.shape) must be [N, \(configuration.inputChannels), H, W]")
        if !GradMode.isEnabled, BlockedFeatureMap.isAvailable, let pooled = blockedFeatures(input) { return pooled }
        var x = conv1(input)
        if let maxpool { x = maxpool(x) }
        x = layer4(layer3(layer2(layer1(x))))
        return x.globalAvgPool2d().reshaped(to: [x.shape[0], x.shape[1]])
    }

    public func forward(_ input: Tensor) -> Tensor { fc(features(input)) }

    /// The features on channel-blocked maps (nChw16c; widths that are not multiples of 16 in
    /// oneDNN's zero-padded blocks) from the stem to the pooling: no reorders between layers;
    /// nil when oneDNN declines a layer.
    private func blockedFeatures(_ input: Tensor) -> Tensor? {
        guard var x = conv1.blocked(input) else { return nil }
        if let maxpool { x = x.maxPool2d(kernelSize: maxpool.kernelSize, stride: maxpool.stride, padding: maxpool.padding) }
        for stage in [layer1, layer2, layer3, layer4] {
            for layer in stage.layers {
                guard let block = layer as? FusedBasicBlock, let y = block.forward(blocked: x) else { return nil }
                x = y
            }
        }
        return x.globalAvgPool2d()
    }

    public var children: [(key: String, layer: any Layer)] {
        var c: [(key: String, layer: any Layer)] = [("conv1", conv1)]
        if let maxpool { c.append(("maxpool", maxpool)) }
        return c + [("layer1", layer1), ("layer2", layer2), ("layer3", layer3), ("layer4", layer4), ("fc", fc)]
    }

    public var layerDescription: String { "Fused" + ResNet.describe(configuration) }
}

extension BasicBlock {
    /// `FusedBasicBlock` (eval mode only).
    public func fusedForInference() -> any Layer { FusedBasicBlock(self) }
}

extension ResNet {
    /// `FusedResNet` (eval mode only).
    public func fusedForInference() -> any Layer { FusedResNet(self) }
}
