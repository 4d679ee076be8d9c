// Feature maps in oneDNN's channel-blocked layout, for chains of inference convolutions.
//
// Why: oneDNN's AVX-512 convolutions work on nChw16c ([N][C/16][H][W][16]). With plain NCHW
// tensors between layers every convolution reorders its input to that layout and its output
// back; in the U-Net's inference those reorders were ~25% of the time (DNNL_VERBOSE,
// docs/benchmarks.md). A fused model's inference keeps its activations in this layout from
// the first convolution to the last, and does the few other operations it needs (max
// pooling, channel concatenation, global average pooling) directly on it.
import Foundation

/// An inference-only feature map `[N, C, H, W]` stored as nChw16c: `C` rounded up to whole
/// blocks of 16 channels, the lanes past `C` zero (oneDNN's padded layout, which its
/// convolutions read and write as such).
/// Not a `Tensor`: nothing records gradients through it, and no NCHW kernel can misread it.
public final class BlockedFeatureMap {
    /// Channels per block.
    public static let block = 16
    /// The logical shape `[N, C, H, W]`.
    public let shape: [Int]
    let storage: TensorStorage

    /// Whether blocked inference can run here (the oneDNN backend with post-op support).
    public static var isAvailable: Bool {
        ConvolutionBackend.current == .oneDNN && DNNL.shared?.postOps != nil
    }

    /// Whether `channels` fill whole blocks (no padding lanes): what the layers that move
    /// whole blocks (concatenation, pixel shuffles) need.
    public static func supports(channels: Int) -> Bool { channels > 0 && channels % block == 0 }

    /// Channels stored per image: `channels` rounded up to whole blocks.
    static func storedChannels(_ channels: Int) -> Int { (channels + block - 1) / block * block }

    /// Elements stored for `shape` (the padding lanes included).
    static func storedCount(_ shape: [Int]) -> Int { shape[0] * storedChannels(shape[1]) * shape[2] * shape[3] }

    /// A map over `storage` (holding `shape` in nChw16c, padding lanes zero).
    init(shape: [Int], storage: TensorStorage) {
        precondition(shape.count == 4 && shape[1] > 0 && storage.count == BlockedFeatureMap.storedCount(shape),
                     "BlockedFeatureMap: shape \(shape) must be [N, C, H, W] over \(BlockedFeatureMap.block)-channel blocks")
        self.shape = shape
        self.storage = storage
    }

    convenience init(uninitializedShape shape: [Int]) {
        self.init(shape: shape, storage: TensorStorage(uninitializedCount: BlockedFeatureMap.storedCount(shape)))
    }

    /// Blocks per image.
    var blocks: Int { BlockedFeatureMap.storedChannels(shape[1]) / BlockedFeatureMap.block }

    /// The blocked copy of an NCHW tensor `[N, C, H, W]`.
    public convenience init(_ tensor: Tensor) {
        self.init(uninitializedShape: tensor.shape)
        let (n, c, hw, blocks) = (shape[0], shape[1], shape[2] * shape[3], self.blocks)
        let x = tensor.storage.pointer, y = storage.pointer
        Threading.parallelChunks(n * blocks, costPerItem: 16 * hw) { _, range in
            for nb in range {   // (image, channel block)
                let (image, first) = (nb / blocks, 16 * (nb % blocks))
                let lanes = Swift.min(16, c - first)
                let src = x + (image * c + first) * hw, dst = y + nb * 16 * hw
                for p in 0..<hw {
                    for lane in 0..<lanes { dst[p * 16 + lane] = src[lane * hw + p] }
                    for lane in lanes..<16 { dst[p * 16 + lane] = 0 }
                }
            }
        }
    }

    /// The NCHW tensor with the same values.
    public func plain() -> Tensor {
        let out = Tensor(uninitializedShape: shape)
        let (n, c, hw, blocks) = (shape[0], shape[1], shape[2] * shape[3], self.blocks)
        let x = storage.pointer, y = out.storage.pointer
        Threading.parallelChunks(n * blocks, costPerItem: 16 * hw) { _, range in
            for nb in range {
                let (image, first) = (nb / blocks, 16 * (nb % blocks))
                let src = x + nb * 16 * hw, dst = y + (image * c + first) * hw
                for lane in 0..<Swift.min(16, c - first) { for p in 0..<hw { dst[lane * hw + p] = src[p * 16 + lane] } }
            }
        }
        return out
    }

    // MARK: - Convolutions

    /// A convolution of this map for inference: `relu?(conv2d(self) + bias + residual)`, the
    /// output blocked (`conv2dToPlain` for NCHW). nil when oneDNN declines (the caller falls
    /// back to the NCHW path).
    public func conv2d(weight: Tensor, bias: Tensor? = nil, stride: Size2 = 1, padding: Padding = .valid,
                       dilation: Size2 = 1, adding residual: BlockedFeatureMap? = nil, relu: Bool = false) -> BlockedFeatureMap? {
        BlockedFeatureMap.convolve(input: storage.pointer, inputShape: shape, inputBlocked: true, weight: weight, bias: bias,
                                   stride: stride, padding: padding, dilation: dilation, residual: residual, relu: relu)
            .map { BlockedFeatureMap(shape: $0.shape, storage: $0.storage) }
    }

    /// As `conv2d`, with the output in NCHW (no residual).
    public func conv2dToPlain(weight: Tensor, bias: Tensor? = nil, stride: Size2 = 1, padding: Padding = .valid,
                              dilation: Size2 = 1, relu: Bool = false) -> Tensor? {
        BlockedFeatureMap.convolve(input: storage.pointer, inputShape: shape, inputBlocked: true, weight: weight, bias: bias,
                                   stride: stride, padding: padding, dilation: dilation, residual: nil, relu: relu,
                                   plainOutput: true)
            .map { Tensor(shape: $0.shape, storage: $0.storage) }
    }

    /// The first convolution of a blocked chain: an NCHW input to a blocked output (any
    /// channel counts).
    public static func conv2d(_ input: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Size2 = 1,
                              padding: Padding = .valid, dilation: Size2 = 1, relu: Bool = false) -> BlockedFeatureMap? {
        withExtendedLifetime(input) {
            convolve(input: input.storage.pointer, inputShape: input.shape, inputBlocked: false, weight: weight, bias: bias,
                     stride: stride, padding: padding, dilation: dilation, residual: nil, relu: relu)
                .map { BlockedFeatureMap(shape: $0.shape, storage: $0.storage) }
        }
    }

    private static func convolve(input: UnsafeMutablePointer<Float>, inputShape: [Int], inputBlocked: Bool, weight: Tensor,
                                 bias: Tensor?, stride: Size2, padding: Padding, dilation: Size2,
                                 residual: BlockedFeatureMap?, relu: Bool,
                                 plainOutput: Bool = false) -> (shape: [Int], storage: TensorStorage)? {
        guard isAvailable, weight.rank == 4, weight.shape[1] == inputShape[1] else { return nil }
        if let bias, bias.shape != [weight.shape[0]] { return nil }
        let g = ConvGeometry(channels: inputShape[1], height: inputShape[2], width: inputShape[3],
                             kernel: Size2(weight.shape[2], weight.shape[3]), stride: stride, padding: padding,
                             dilation: dilation, op: "conv2d")
        let outputShape = [inputShape[0], weight.shape[0], g.outH, g.outW]
        guard residual.map({ $0.shape == outputShape }) ?? true else { return nil }
        let out = TensorStorage(uninitializedCount: plainOutput ? outputShape.reduce(1, *) : storedCount(outputShape))
        let done = withExtendedLifetime(residual) {
            Tensor.inferenceConvolution(transposed: false, input: input, inputShape: inputShape, inputBlocked: inputBlocked,
                                        weight: weight, bias: bias, output: out.pointer, outputShape: outputShape,
                                        outputBlocked: !plainOutput, stride: stride, dilation: dilation,
                                        padBefore: Size2(g.padTop, g.padLeft), padAfter: Size2(g.padBottom, g.padRight),
                                        residual: residual?.storage.pointer, relu: relu)
        }
        return done ? (outputShape, out) : nil
    }

    /// A transposed convolution (PyTorch's `conv_transpose2d`, weight `[Cin, Cout, KH, KW]`)
    /// from and to the blocked layout; nil when oneDNN declines or `Cout` does not block.
    public func transposedConv2d(weight: Tensor, bias: Tensor? = nil, stride: Size2 = 1, padding: Size2 = 0,
                                 outputPadding: Size2 = 0) -> BlockedFeatureMap? {
        guard BlockedFeatureMap.isAvailable, weight.rank == 4, weight.shape[0] == shape[1],
              BlockedFeatureMap.supports(channels: weight.shape[1]) else { return nil }
        if let bias, bias.shape != [weight.shape[1]] { return nil }
        let oh = (shape[2] - 1) * stride.height - 2 * padding.height + weight.shape[2] + outputPadding.height
        let ow = (shape[3] - 1) * stride.width - 2 * padding.width + weight.shape[3] + outputPadding.width
        guard oh > 0, ow > 0 else { return nil }
        let out = BlockedFeatureMap(uninitializedShape: [shape[0], weight.shape[1], oh, ow])
        let done = Tensor.inferenceConvolution(
            transposed: true, input: storage.pointer, inputShape: shape, inputBlocked: true, weight: weight, bias: bias,
            output: out.storage.pointer, outputShape: out.shape, outputBlocked: true, stride: stride, dilation: 1,
            padBefore: padding, padAfter: Size2(padding.height - outputPadding.height, padding.width - outputPadding.width),
            residual: nil, relu: false)
        return done ? out : nil
    }

    /// A 2×2 stride-2 transposed convolution done as a 1×1 convolution to `4 Cout` channels
    /// followed by a pixel shuffle: `pointwiseWeight` is `[4 Cout, Cin, 1, 1]` with row
    /// `(2i + j) Cout + co` = `weight[:, co, i, j]`, `pointwiseBias` the bias repeated 4 times.
    /// oneDNN's own deconvolution kernel for this shape ran at a small fraction of its 1×1
    /// convolution's speed (U-Net inference, docs/benchmarks.md).
    public func upsampled2x2(pointwiseWeight: Tensor, pointwiseBias: Tensor?) -> BlockedFeatureMap? {
        let cout = pointwiseWeight.shape[0] / 4
        guard BlockedFeatureMap.supports(channels: cout), pointwiseWeight.shape == [4 * cout, shape[1], 1, 1],
              let t = conv2d(weight: pointwiseWeight, bias: pointwiseBias) else { return nil }
        let (n, h, w, blocks) = (shape[0], shape[2], shape[3], cout / 16)
        let out = BlockedFeatureMap(uninitializedShape: [n, cout, 2 * h, 2 * w])
        let src = UnsafeRawPointer(t.storage.pointer), dst = UnsafeMutableRawPointer(out.storage.pointer)
        Threading.parallelChunks(n * blocks, costPerItem: 64 * h * w) { _, range in
            for plane in range {
                let (image, cb) = (plane / blocks, plane % blocks)
                let target = dst + 64 * plane * 4 * h * w
                for q in 0..<4 {
                    let (i, j) = (q / 2, q % 2)
                    let source = src + 64 * (image * 4 * blocks + q * blocks + cb) * h * w
                    for y in 0..<h {
                        for x in 0..<w {
                            let v = source.loadUnaligned(fromByteOffset: 64 * (y * w + x), as: SIMD16<Float>.self)
                            target.storeBytes(of: v, toByteOffset: 64 * ((2 * y + i) * 2 * w + 2 * x + j), as: SIMD16<Float>.self)
                        }
                    }
                }
            }
        }
        return out
    }

    // MARK: - Other layers

    /// Max pooling (same semantics as `Tensor.maxPool2d`: a NaN wins, padding never does),
    /// 16 channels at a time.
    public func maxPool2d(kernelSize: Size2, stride: Size2? = nil, padding: Size2 = 0) -> BlockedFeatureMap {
        let s = stride ?? kernelSize
        let (h, w) = (shape[2], shape[3])
        let oh = Tensor.pooledSize(h, kernelSize.height, s.height, padding.height, op: "maxPool2d")
        let ow = Tensor.pooledSize(w, kernelSize.width, s.width, padding.width, op: "maxPool2d")
        let out = BlockedFeatureMap(uninitializedShape: [shape[0], shape[1], oh, ow])
        let x = storage.pointer, y = out.storage.pointer
        let planes = shape[0] * blocks
        Threading.parallelChunks(planes, costPerItem: 16 * oh * ow * kernelSize.height * kernelSize.width) { _, range in
            for plane in range {
                let src = UnsafeRawPointer(x + plane * 16 * h * w), dst = UnsafeMutableRawPointer(y + plane * 16 * oh * ow)
                for oy in 0..<oh {
                    let y0 = oy * s.height - padding.height
                    let ky0 = Swift.max(0, -y0), ky1 = Swift.min(kernelSize.height, h - y0)
                    for ox in 0..<ow {
                        let x0 = ox * s.width - padding.width
                        let kx0 = Swift.max(0, -x0), kx1 = Swift.min(kernelSize.width, w - x0)
                        var best = src.loadUnaligned(fromByteOffset: 64 * ((y0 + ky0) * w + x0 + kx0), as: SIMD16<Float>.self)
                        for ky in ky0..<ky1 { for kx in kx0..<kx1 {
                            let v = src.loadUnaligned(fromByteOffset: 64 * ((y0 + ky) * w + x0 + kx), as: SIMD16<Float>.self)
                            best.replace(with: v, where: (v .> best) .| (v .!= v))
                        } }
                        dst.storeBytes(of: best, toByteOffset: 64 * (oy * ow + ox), as: SIMD16<Float>.self)
                    }
                }
            }
        }
        return out
    }

    /// Concatenation along channels (`[self, other]`): with whole channel blocks in `self` this
    /// is, per image, one copy of each map's image after the other.
    public func concatenated(with other: BlockedFeatureMap) -> BlockedFeatureMap {
        precondition(other.shape[0] == shape[0] && other.shape[2] == shape[2] && other.shape[3] == shape[3],
                     "concatenated: shapes \(shape) and \(other.shape) differ outside the channel axis")
        precondition(BlockedFeatureMap.supports(channels: shape[1]),
                     "concatenated: the first map's \(shape[1]) channels must fill whole blocks of \(BlockedFeatureMap.block)")
        let out = BlockedFeatureMap(uninitializedShape: [shape[0], shape[1] + other.shape[1], shape[2], shape[3]])
        let a = count / shape[0], b = other.count / shape[0]
        let x = storage.pointer, z = other.storage.pointer, y = out.storage.pointer
        Threading.parallelChunks(shape[0], costPerItem: a + b) { _, images in
            for i in images {
                (y + i * (a + b)).update(from: x + i * a, count: a)
                (y + i * (a + b) + a).update(from: z + i * b, count: b)
            }
        }
        return out
    }

    /// Mean over H and W: `[N, C]` (NCHW-independent, so a plain tensor).
    public func globalAvgPool2d() -> Tensor {
        let (n, c, hw, blocks) = (shape[0], shape[1], shape[2] * shape[3], self.blocks)
        let out = Tensor(uninitializedShape: [n, c])
        let x = UnsafeRawPointer(storage.pointer), y = out.storage.pointer
        let scale = 1 / Float(hw)
        for nb in 0..<(n * blocks) {
            var sum = SIMD16<Float>()
            for p in 0..<hw { sum += x.loadUnaligned(fromByteOffset: 64 * (nb * hw + p), as: SIMD16<Float>.self) }
            let v = sum * scale
            let (image, first) = (nb / blocks, 16 * (nb % blocks))
            for lane in 0..<Swift.min(16, c - first) { y[image * c + first + lane] = v[lane] }
        }
        return out
    }

    /// Elements stored (`N * C' * H * W`, `C'` the channels rounded up to whole blocks).
    public var count: Int { storage.count }
}
