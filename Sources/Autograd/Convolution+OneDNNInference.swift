// Inference convolutions on oneDNN: the forward-inference primitive with the bias, a residual
// sum and ReLU fused in as post-ops, and the weights of frozen tensors (a model fused for
// inference) reordered to oneDNN's blocked layout once instead of on every call.
//
// Why (profile of resnet18 inference, docs/benchmarks.md): the training primitives spent
// ~10% of the convolution time reordering the same weights on every call, and the ReLU,
// bias and residual passes that followed each convolution were separate sweeps over the
// activations (the fused ReLU, a single-threaded loop, was 17% of resnet18's and 26% of
// unet's inference time).
import Foundation

extension TensorStorage {
    /// Called before the public API writes the contents: cached layouts of a frozen storage
    /// (weights loaded into a fused model after all) would be stale, so they are dropped.
    func contentsWillChange() {
        guard isFrozen else { return }
        let lock = DNNL.shared?.lock
        lock?.lock(); defer { lock?.unlock() }
        for p in derived.values { p.deallocate() }
        derived.removeAll()
    }

    /// A derived layout of frozen contents (oneDNN's blocked weights), keyed by the layout's
    /// memory descriptor; made once under `DNNL.lock`, freed with the storage.
    func derivedLayout(_ key: Data, bytes: Int, make: (UnsafeMutableRawPointer) -> Void) -> UnsafeMutableRawPointer {
        if let p = derived[key] { return p }
        let p = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        make(p)
        derived[key] = p
        return p
    }
}

/// The arithmetic of an inference convolution (`Tensor.inferencePrecision` of its weights).
///
/// - `float32`: products and sums in float32 (the default; what training computes).
/// - `bfloat16`: the input and the weights rounded to bfloat16 (8 bits of mantissa), products
///   summed in float32, the bias, residual and output in float32: ~2x the throughput where the
///   CPU has bfloat16 dot products (AVX512_BF16, AMX), at a relative error of ~0.4 % per
///   rounded value. Used only where oneDNN runs it on such instructions; elsewhere (no oneDNN,
///   no bfloat16 instructions, im2col backend) the convolution runs in float32.
/// Either way each image's output does not depend on the others in its batch.
public enum InferencePrecision: String, CaseIterable, Sendable {
    case float32, bfloat16

    /// Whether inference convolutions run in this precision on this machine: float32
    /// always; bfloat16 with the oneDNN backend on a CPU with bfloat16 instructions.
    public var runsHere: Bool {
        self == .float32 || (ConvolutionBackend.current == .oneDNN && !Self.bfloat16SwitchedOff && DNNL.nativeBFloat16)
    }

    /// The environment variable `ASTROLABE_BFLOAT16=off`: float32 everywhere, as on a CPU
    /// without bfloat16 instructions.
    public static let bfloat16SwitchedOff = ProcessInfo.processInfo.environment["ASTROLABE_BFLOAT16"] == "off"
}

extension Tensor {
    /// Marks this tensor's contents as never changing again, so kernels may cache derived
    /// layouts of it (oneDNN's blocked weights). `fusedForInference()` freezes the weights of
    /// the snapshot it builds. Writes through `withUnsafeMutableBufferPointer` or `assign`
    /// (state-dict loading) drop the cached layouts; writes through the raw storage pointer
    /// (kernels) do not, so kernels never write to frozen tensors.
    public func freeze() { storage.isFrozen = true }

    /// Whether `freeze()` was called on this tensor (or on one sharing its storage).
    public var isFrozen: Bool { storage.isFrozen }

    /// The arithmetic of the inference convolutions that use this frozen tensor as their
    /// weights (`InferencePrecision`); float32 unless set. Setting it requires `freeze()` first.
    public var inferencePrecision: InferencePrecision {
        get { storage.inferencePrecision }
        set {
            precondition(isFrozen, "inferencePrecision: freeze() the weights first")
            storage.inferencePrecision = newValue
        }
    }

    /// Inference convolution with fused epilogue: `relu?(conv2d(self) + bias + residual)`.
    ///
    /// With gradient recording off and oneDNN available, one primitive does it all (bias,
    /// residual `sum` and ReLU as oneDNN post-ops); otherwise the same result is composed from
    /// recorded ops (`conv2d`, `+`, `relu`), so it may be used in training too.
    /// - `residual`: `nil` or a tensor of the output's shape `[N, F, H', W']`.
    public func conv2d(weight: Tensor, bias: Tensor? = nil, stride: Size2 = 1, padding: Padding = .valid,
                       dilation: Size2 = 1, adding residual: Tensor?, relu: Bool) -> Tensor {
        if !GradMode.isEnabled, rank == 4, weight.rank == 4, weight.shape[1] == shape[1] {
            let g = ConvGeometry(channels: shape[1], height: shape[2], width: shape[3],
                                 kernel: Size2(weight.shape[2], weight.shape[3]), stride: stride,
                                 padding: padding, dilation: dilation, op: "conv2d")
            let outputShape = [shape[0], weight.shape[0], g.outH, g.outW]
            if let residual {
                precondition(residual.shape == outputShape,
                             "conv2d: residual \(residual.shape) must match the output \(outputShape)")
            }
            if bias == nil || bias!.shape == [weight.shape[0]],
               let out = convolvedForInference(transposed: false, weight: weight, bias: bias, outputShape: outputShape,
                                               stride: stride, dilation: dilation, padBefore: Size2(g.padTop, g.padLeft),
                                               padAfter: Size2(g.padBottom, g.padRight), residual: residual, relu: relu) {
                return out
            }
        }
        var y = conv2d(weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation)
        if let residual { y = y + residual }
        return relu ? y.relu() : y
    }

    /// The oneDNN inference path (gradient recording off): nil when the backend is im2col,
    /// oneDNN lacks post-ops or declines the shape. Batch split into one chunk per worker.
    func convolvedForInference(transposed: Bool, weight: Tensor, bias: Tensor?, outputShape: [Int], stride: Size2,
                               dilation: Size2, padBefore: Size2, padAfter: Size2,
                               residual: Tensor? = nil, relu: Bool = false) -> Tensor? {
        let out = Tensor(uninitializedShape: outputShape)
        let done = withExtendedLifetime(residual) {
            Tensor.inferenceConvolution(transposed: transposed, input: storage.pointer, inputShape: shape, inputBlocked: false,
                                        weight: weight, bias: bias, output: out.storage.pointer, outputShape: outputShape,
                                        outputBlocked: false, stride: stride, dilation: dilation, padBefore: padBefore,
                                        padAfter: padAfter, residual: residual?.storage.pointer, relu: relu)
        }
        return done ? out : nil
    }

    /// Runs a convolution (or deconvolution) for inference on raw NCHW or nChw16c memory
    /// (`inputBlocked` / `outputBlocked`), split over the workers by image, or, for a single
    /// image (a map segmented as one tile), by blocks of 16 output channels; false when oneDNN
    /// is not in use or declines the shape (nothing written then).
    static func inferenceConvolution(transposed: Bool, input x: UnsafeMutablePointer<Float>, inputShape: [Int],
                                     inputBlocked: Bool, weight: Tensor, bias: Tensor?, output o: UnsafeMutablePointer<Float>,
                                     outputShape: [Int], outputBlocked: Bool, stride: Size2, dilation: Size2,
                                     padBefore: Size2, padAfter: Size2, residual r: UnsafeMutablePointer<Float>?,
                                     relu: Bool) -> Bool {
        guard ConvolutionBackend.current == .oneDNN, let dnnl = DNNL.shared, dnnl.postOps != nil else { return false }
        let (n, filters) = (inputShape[0], outputShape[1])
        let plane = outputShape[2] * outputShape[3], filter = weight.count / weight.shape[0]
        let weightDims = transposed ? [weight.shape[1], weight.shape[0], weight.shape[2], weight.shape[3]] : weight.shape
        // Each worker's images and output channels. Channels split only for one image, in
        // blocks of 16: then a worker's channels are one contiguous run of the output (and of
        // the residual) in NCHW and nChw16c alike, and of the OIHW weights.
        let blocks = filters / 16
        let channelWorkers = Swift.min(Threading.workerCount, blocks, 16)
        let splitChannels = n == 1 && !transposed && filters % 16 == 0 && channelWorkers > 1
            && plane * filters * filter >= minimumChannelSplitWork
        let workers = splitChannels ? channelWorkers : Swift.max(1, Swift.min(Threading.workerCount, n, 16))
        let parts: [(images: Range<Int>, channels: Range<Int>)] = (0..<workers).map { k in
            splitChannels ? (0..<1, (16 * (blocks * k / workers))..<(16 * (blocks * (k + 1) / workers)))
                          : ((n * k / workers)..<(n * (k + 1) / workers), 0..<filters)
        }
        var convs: [DNNLInferenceConvolution] = []
        for (worker, part) in parts.enumerated() {
            var key = ConvKey(worker: worker, transposed: transposed,
                              input: [part.images.count] + inputShape.dropFirst(),
                              weights: splitChannels ? [part.channels.count] + weightDims.dropFirst() : weightDims,
                              output: [part.images.count, part.channels.count] + outputShape.dropFirst(2),
                              stride: stride, dilation: dilation, padBefore: padBefore, padAfter: padAfter)
            key.hasBias = bias != nil
            key.accumulates = r != nil
            key.relu = relu
            key.bf16 = weight.storage.inferencePrecision == .bfloat16 && !InferencePrecision.bfloat16SwitchedOff
            key.sourceTag = inputBlocked ? DNNL.nChw16c : DNNL.nchw
            key.destinationTag = outputBlocked ? DNNL.nChw16c : DNNL.nchw
            guard let conv = dnnl.inferenceConvolution(key) else { return false }
            convs.append(conv)
        }
        // Per image: a blocked map stores its channels rounded up to whole blocks (zero lanes).
        let inStride = (inputBlocked ? BlockedFeatureMap.storedChannels(inputShape[1]) : inputShape[1]) * inputShape[2] * inputShape[3]
        let outStride = (outputBlocked ? BlockedFeatureMap.storedChannels(filters) : filters) * plane
        let b = bias?.storage.pointer
        func run(_ k: Int) {
            let (image, channel) = (parts[k].images.lowerBound, parts[k].channels.lowerBound)
            let outOffset = image * outStride + channel * plane
            convs[k].run(source: x + image * inStride, weight: weight.storage, weightOffset: channel * filter,
                         bias: b.map { $0 + channel }, residual: r.map { $0 + outOffset }, destination: o + outOffset)
        }
        if workers == 1 { run(0) } else { DispatchQueue.concurrentPerform(iterations: workers, execute: run) }
        return true
    }

    /// Multiply-adds below which a single image's convolution stays on one worker: splitting
    /// costs a dispatch and a second copy of the input's reorder.
    public static var minimumChannelSplitWork = 1 << 22
}

/// A forward-inference convolution (or deconvolution) primitive for one shape, with its
/// fused post-ops and the reorders between our plain NCHW tensors and the blocked layouts.
final class DNNLInferenceConvolution {
    typealias Handle = DNNL.Handle
    let primitive: Handle
    let source: DNNL.Port, weights: DNNL.Port, destination: DNNL.Port
    /// Bias memory (plain `[F]`), when the key has a bias.
    let bias: Handle?
    /// For a residual sum into a blocked destination: the reorder of the residual into it.
    let residualReorder: DNNL.Port?
    let scratchpad: DNNL.Scratchpad?
    /// The blocked weight layout's descriptor bytes: the key of frozen weights' packed copy.
    let weightLayoutKey: Data?
    /// Floats in this chunk's output as we hold it (with the zero lanes of a padded blocked layout).
    let outputCount: Int
    private unowned let dnnl: DNNL
    private let worker: Int

    init?(_ key: ConvKey, _ dnnl: DNNL) {
        guard let post = dnnl.postOps else { return nil }
        self.dnnl = dnnl
        worker = key.worker
        let md = { (dims: [Int64], tag: Int32) in dnnl.memoryDescriptor(dims, tag) }
        let weightTag = key.transposed ? DNNL.iohw : DNNL.oihw
        guard let srcUser = md(key.input, key.sourceTag), let wUser = md(key.weights, weightTag),
              let dstUser = md(key.output, key.destinationTag),
              let srcAny = dnnl.memoryDescriptor(key.input, DNNL.any, dataType: key.bf16 ? DNNL.bf16 : DNNL.f32),
              let wAny = dnnl.memoryDescriptor(key.weights, DNNL.any, dataType: key.bf16 ? DNNL.bf16 : DNNL.f32),
              let dstAny = md(key.output, DNNL.any) else { return nil }
        let biasMD = key.hasBias ? md([key.weights[0]], 2 /* dnnl_a */) : nil
        if key.hasBias && biasMD == nil { return nil }

        var attr: Handle?
        guard post.attrClone(&attr, dnnl.attributes) == 0, let attr else { return nil }
        if key.accumulates || key.relu {
            var ops: Handle?
            guard post.postOpsCreate(&ops) == 0, let ops else { return nil }
            if key.accumulates { guard post.appendSum(ops, 1) == 0 else { return nil } }
            if key.relu { guard post.appendEltwise(ops, 1, 0x1f /* dnnl_eltwise_relu */, 0, 0) == 0 else { return nil } }
            guard post.attrSetPostOps(attr, ops) == 0 else { return nil }
        }
        let opDesc = UnsafeMutableRawPointer.allocate(byteCount: DNNL.operationDescriptorBytes, alignment: 64)
        // Propagation kind "training", not "inference": for inference oneDNN 2.6 picks its brgconv
        // kernels on NHWC here, measured ~1.4x slower on resnet18 than the direct AVX-512 kernels
        // on nChw16c that it picks for training (same post-ops, no workspace needed either way).
        let alg = key.transposed ? DNNL.deconvolutionDirect : DNNL.convolutionDirect
        let initForward = key.transposed ? dnnl.deconvForwardInit : dnnl.convForwardInit
        var pd: Handle?, prim: Handle?
        guard initForward(opDesc, DNNL.forwardTraining, alg, srcAny, wAny, biasMD.map { UnsafeRawPointer($0) }, dstAny,
                          key.strides, key.dilations, key.padL, key.padR) == 0,
              dnnl.primitiveDescCreate(&pd, opDesc, attr, dnnl.engine, nil) == 0, let pd,
              // bfloat16 only on bfloat16 instructions: oneDNN also offers reference and emulated
              // kernels, slower than float32 (the destination stays float32 either way).
              !key.bf16 || dnnl.implementation(of: pd).map({ $0.contains("avx512_core_bf16") || $0.contains("amx") }) == true,
              dnnl.primitiveCreate(&prim, pd) == 0, let prim, let pad = dnnl.scratchpad(of: pd),
              let src = dnnl.port(pd, DNNL.querySrc, arg: DNNL.argSrc, user: srcUser, isOutput: false),
              let w = dnnl.port(pd, DNNL.queryWeights, arg: DNNL.argWeights, user: wUser, isOutput: false),
              let dst = dnnl.port(pd, DNNL.queryDst, arg: DNNL.argDst, user: dstUser, isOutput: true) else { return nil }
        primitive = prim; scratchpad = pad; source = src; weights = w; destination = dst
        outputCount = dnnl.memoryDescGetSize(dstUser) / MemoryLayout<Float>.size   // a padded blocked layout's lanes too
        weightLayoutKey = w.blockedDescriptor.map { Data(bytes: $0, count: DNNL.memoryDescriptorSize) }
        if let biasMD {
            var m: Handle?
            guard dnnl.memoryCreate(&m, biasMD, dnnl.engine, nil) == 0, let m else { return nil }
            bias = m
        } else {
            bias = nil
        }
        if key.accumulates, dst.blocked != nil {
            guard let r = dnnl.port(pd, DNNL.queryDst, arg: DNNL.argDst, user: dstUser, isOutput: false) else { return nil }
            residualReorder = r
        } else {
            residualReorder = nil
        }
    }

    /// Runs the primitive on one worker's chunk: `destination = relu?(conv(source) + bias + residual)`,
    /// with the filters that start `weightOffset` elements into `weight`.
    func run(source x: UnsafeMutablePointer<Float>, weight: TensorStorage, weightOffset: Int, bias b: UnsafeMutablePointer<Float>?,
             residual: UnsafeMutablePointer<Float>?, destination o: UnsafeMutablePointer<Float>) {
        let stream = dnnl.streams[worker]
        var args: [DNNL.ExecArg] = []
        args.reserveCapacity(5)
        // Source.
        _ = dnnl.memorySetDataHandle(source.user, x)
        if let blocked = source.blocked {
            _ = dnnl.memorySetDataHandle(blocked, DNNLScratch.buffer(worker: worker, slot: 0, bytes: source.bytes))
            dnnl.reorder(source, from: source.user, to: blocked, worker: worker, stream: stream)
            args.append(.init(arg: DNNL.argSrc, memory: blocked))
        } else {
            args.append(.init(arg: DNNL.argSrc, memory: source.user))
        }
        // Weights: a frozen tensor's blocked copy is made once; others are reordered per call.
        _ = dnnl.memorySetDataHandle(weights.user, weight.pointer + weightOffset)
        if let blocked = weights.blocked {
            if weight.isFrozen, var layoutKey = weightLayoutKey {
                withUnsafeBytes(of: weightOffset) { layoutKey.append(contentsOf: $0) }   // each worker's filters apart
                dnnl.lock.lock()
                let packed = weight.derivedLayout(layoutKey, bytes: weights.bytes) { p in
                    _ = dnnl.memorySetDataHandle(blocked, p)
                    dnnl.reorder(weights, from: weights.user, to: blocked, worker: worker, stream: stream)
                    _ = dnnl.streamWait(stream)
                }
                dnnl.lock.unlock()
                _ = dnnl.memorySetDataHandle(blocked, packed)
            } else {
                _ = dnnl.memorySetDataHandle(blocked, DNNLScratch.buffer(worker: worker, slot: 1, bytes: weights.bytes))
                dnnl.reorder(weights, from: weights.user, to: blocked, worker: worker, stream: stream)
            }
            args.append(.init(arg: DNNL.argWeights, memory: blocked))
        } else {
            args.append(.init(arg: DNNL.argWeights, memory: weights.user))
        }
        if let bias, let b {
            _ = dnnl.memorySetDataHandle(bias, b)
            args.append(.init(arg: DNNL.argBias, memory: bias))
        }
        // Destination, holding the residual first when the sum post-op accumulates into it.
        if let blocked = destination.blocked {
            _ = dnnl.memorySetDataHandle(blocked, DNNLScratch.buffer(worker: worker, slot: 2, bytes: destination.bytes))
            if let residual, let reorder = residualReorder {
                _ = dnnl.memorySetDataHandle(reorder.user, residual)
                _ = dnnl.memorySetDataHandle(reorder.blocked, DNNLScratch.buffer(worker: worker, slot: 2, bytes: destination.bytes))
                dnnl.reorder(reorder, from: reorder.user, to: reorder.blocked!, worker: worker, stream: stream)
            }
            args.append(.init(arg: DNNL.argDst, memory: blocked))
        } else {
            if let residual { o.update(from: residual, count: outputCount) }
            _ = dnnl.memorySetDataHandle(destination.user, o)
            args.append(.init(arg: DNNL.argDst, memory: destination.user))
        }
        if let pad = scratchpad {
            _ = dnnl.memorySetDataHandle(pad.memory, DNNLScratch.buffer(worker: worker, slot: 3, bytes: pad.bytes))
            args.append(.init(arg: DNNL.argScratchpad, memory: pad.memory))
        }
        let status = args.withUnsafeBufferPointer {
            dnnl.primitiveExecute(primitive, stream, Int32($0.count), UnsafeRawPointer($0.baseAddress!))
        }
        precondition(status == 0, "conv2d: oneDNN inference primitive failed with status \(status)")
        if let blocked = destination.blocked {
            _ = dnnl.memorySetDataHandle(destination.user, o)
            dnnl.reorder(destination, from: blocked, to: destination.user, worker: worker, stream: stream)
        }
        _ = dnnl.streamWait(stream)
    }
}
