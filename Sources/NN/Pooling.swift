// Pooling, flattening and up-sampling layers (no parameters).
import Autograd

/// Max pooling, as PyTorch's `nn.MaxPool2d` (padding with -infinity).
///
/// - `input`: `[N, C, H, W]`; returns `[N, C, (H + 2p - k) / s + 1, ...]`.
public final class MaxPool2D: Layer {
    public let kernelSize: Size2
    public let stride: Size2
    public let padding: Size2
    public var isTraining = true

    /// `stride` defaults to `kernelSize`, as in PyTorch.
    public init(kernelSize: Size2, stride: Size2? = nil, padding: Size2 = 0) {
        self.kernelSize = kernelSize
        self.stride = stride ?? kernelSize
        self.padding = padding
    }

    public func forward(_ input: Tensor) -> Tensor {
        input.maxPool2d(kernelSize: kernelSize, stride: stride, padding: padding)
    }

    public var layerDescription: String {
        "MaxPool2D(kernel \(kernelSize.height)×\(kernelSize.width), stride \(stride.height), padding \(padding.height))"
    }
}

/// Average pooling, as PyTorch's `nn.AvgPool2d` (padding counted in the average).
///
/// - `input`: `[N, C, H, W]`; returns `[N, C, (H + 2p - k) / s + 1, ...]`.
public final class AvgPool2D: Layer {
    public let kernelSize: Size2
    public let stride: Size2
    public let padding: Size2
    public var isTraining = true

    public init(kernelSize: Size2, stride: Size2? = nil, padding: Size2 = 0) {
        self.kernelSize = kernelSize
        self.stride = stride ?? kernelSize
        self.padding = padding
    }

    public func forward(_ input: Tensor) -> Tensor {
        input.avgPool2d(kernelSize: kernelSize, stride: stride, padding: padding)
    }

    public var layerDescription: String {
        "AvgPool2D(kernel \(kernelSize.height)×\(kernelSize.width), stride \(stride.height), padding \(padding.height))"
    }
}

/// Global average pooling followed by flattening (torchvision's `avgpool` + `flatten`).
///
/// - `input`: `[N, C, H, W]`; returns `[N, C]`.
public final class GlobalAvgPool: Layer {
    public var isTraining = true
    public init() {}
    public func forward(_ input: Tensor) -> Tensor {
        precondition(input.rank == 4, "GlobalAvgPool: input \(input.shape) must be [N, C, H, W]")
        return input.globalAvgPool2d().reshaped(to: [input.shape[0], input.shape[1]])
    }
    public var layerDescription: String { "GlobalAvgPool()" }
}

/// Flattens every axis from `startAxis` on, as PyTorch's `nn.Flatten`.
///
/// - `input`: `[N, d1, d2, ...]`; returns `[N, d1 * d2 * ...]` (for `startAxis` 1).
public final class Flatten: Layer {
    public let startAxis: Int
    public var isTraining = true
    public init(startAxis: Int = 1) { self.startAxis = startAxis }
    public func forward(_ input: Tensor) -> Tensor { input.flattened(startAxis: startAxis) }
    public var layerDescription: String { "Flatten(from axis \(startAxis))" }
}

/// Up-sampling by an integer factor, as PyTorch's `nn.Upsample`
/// (`mode="nearest"`, or `mode="bilinear", align_corners=False`).
///
/// - `input`: `[N, C, H, W]`; returns `[N, C, H * scale, W * scale]`.
public final class Upsample: Layer {
    public enum Mode: String, Sendable { case nearest, bilinear }
    public let scale: Int
    public let mode: Mode
    public var isTraining = true

    public init(scale: Int, mode: Mode = .nearest) {
        precondition(scale >= 1, "Upsample: scale must be at least 1, got \(scale)")
        self.scale = scale
        self.mode = mode
    }

    public func forward(_ input: Tensor) -> Tensor {
        switch mode {
        case .nearest: return input.upsampledNearest(scale: scale)
        case .bilinear: return input.upsampledBilinear(scale: scale)
        }
    }

    public var layerDescription: String { "Upsample(×\(scale), \(mode.rawValue))" }
}
