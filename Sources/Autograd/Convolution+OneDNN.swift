// oneDNN (libdnnl.so.2) behind conv2d, loaded at run time when present.
//
// Why: measured on the benchmark machine (docs/benchmarks.md), im2col + OpenBLAS 0.3.21
// reaches ~70-130 GFLOP/s on 2 cores - OpenBLAS 0.3.21 does not know Zen 4/5 and runs its
// AVX2 kernels - while oneDNN's AVX-512 direct convolution reaches ~450 GFLOP/s, which is
// what PyTorch itself uses. The library is opened with dlopen, so it is optional: without
// it (or with ASTROLABE_CONV_BACKEND=im2col) the im2col path runs, with identical results
// to within float rounding. Only the C entry points below are used (oneDNN 2.x API).
//
// Threads: Debian's oneDNN uses OpenMP, and on a shared 2-core machine libgomp's
// wake-ups were measured to stall for whole scheduler slices (30-60 ms per call). So
// oneDNN runs single-threaded (OMP_NUM_THREADS=1) and we split the batch over our own
// workers instead, one primitive, stream and scratch set per worker - the same model as
// the im2col path.
import Foundation

/// Which implementation runs `conv2d` and `transposedConv2d`.
public enum ConvolutionBackend: String {
    case oneDNN, im2col

    /// The backend in use: oneDNN when libdnnl.so.2 loads, unless the environment variable
    /// `ASTROLABE_CONV_BACKEND=im2col` (or this setting) says otherwise.
    /// Process-wide configuration, like the environment variable it mirrors: set it before
    /// running models (the tests switch it between runs); it is not synchronised, so do not
    /// change it while convolutions run on other threads.
    nonisolated(unsafe) public static var current: ConvolutionBackend = {
        if ProcessInfo.processInfo.environment["ASTROLABE_CONV_BACKEND"] == "im2col" { return .im2col }
        return DNNL.shared != nil ? .oneDNN : .im2col
    }() {
        didSet { if current == .oneDNN && DNNL.shared == nil { current = .im2col } }
    }

    /// Whether libdnnl.so.2 could be loaded on this machine.
    public static var isOneDNNAvailable: Bool { DNNL.shared != nil }
}

/// The oneDNN C functions we call, resolved with dlsym.
final class DNNL {
    typealias Handle = OpaquePointer
    /// `dnnl_exec_arg_t`: `{ int arg; dnnl_memory_t memory; }` (16 bytes, pointer at offset 8).
    struct ExecArg { var arg: Int32; var memory: Handle? }

    // Constants of the oneDNN 2.x C API (dnnl_types.h).
    static let f32: Int32 = 3, nchw: Int32 = 5, oihw: Int32 = 5, iohw: Int32 = 24, any: Int32 = 1
    static let forwardTraining: Int32 = 64, convolutionDirect: Int32 = 1, deconvolutionDirect: Int32 = 10
    static let querySrc: Int32 = 129, queryDiffSrc: Int32 = 130, queryWeights: Int32 = 131
    static let queryDiffWeights: Int32 = 132, queryDst: Int32 = 133, queryDiffDst: Int32 = 134
    static let argSrc: Int32 = 1, argDst: Int32 = 17, argWeights: Int32 = 33
    static let argDiffSrc: Int32 = 129, argDiffDst: Int32 = 145, argDiffWeights: Int32 = 161
    static let argScratchpad: Int32 = 80, queryScratchpad: Int32 = 136, scratchpadModeUser: Int32 = 1
    static let memoryDescriptorBytes = 1024, operationDescriptorBytes = 8192   // 696 and 5976 in 2.6
    /// `sizeof(dnnl_memory_desc_t)` in oneDNN 2.x: the bytes compared when keying a layout.
    static let memoryDescriptorSize = 696
    static let forwardInference: Int32 = 96, argBias: Int32 = 41, nChw16c: Int32 = 69
    static let bf16: Int32 = 2, queryImplementationName: Int32 = 8

    let engineCreate: @convention(c) (UnsafeMutablePointer<Handle?>, Int32, Int) -> Int32
    let streamCreate: @convention(c) (UnsafeMutablePointer<Handle?>, Handle?, UInt32) -> Int32
    let streamWait: @convention(c) (Handle?) -> Int32
    let memoryDescInitByTag: @convention(c) (UnsafeMutableRawPointer, Int32, UnsafePointer<Int64>, Int32, Int32) -> Int32
    /// `dnnl_memory_desc_init_by_strides` (nil if missing: no channel-split convolutions then).
    let memoryDescInitByStrides: (@convention(c) (UnsafeMutableRawPointer, Int32, UnsafePointer<Int64>, Int32, UnsafePointer<Int64>) -> Int32)?
    let memoryDescEqual: @convention(c) (UnsafeRawPointer, UnsafeRawPointer) -> Int32
    let memoryDescGetSize: @convention(c) (UnsafeRawPointer) -> Int
    typealias ForwardInit = @convention(c) (UnsafeMutableRawPointer, Int32, Int32, UnsafeRawPointer, UnsafeRawPointer,
                                            UnsafeRawPointer?, UnsafeRawPointer, UnsafePointer<Int64>, UnsafePointer<Int64>,
                                            UnsafePointer<Int64>, UnsafePointer<Int64>) -> Int32
    typealias BackwardDataInit = @convention(c) (UnsafeMutableRawPointer, Int32, UnsafeRawPointer, UnsafeRawPointer,
                                                 UnsafeRawPointer, UnsafePointer<Int64>, UnsafePointer<Int64>,
                                                 UnsafePointer<Int64>, UnsafePointer<Int64>) -> Int32
    typealias BackwardWeightsInit = @convention(c) (UnsafeMutableRawPointer, Int32, UnsafeRawPointer, UnsafeRawPointer,
                                                    UnsafeRawPointer?, UnsafeRawPointer, UnsafePointer<Int64>,
                                                    UnsafePointer<Int64>, UnsafePointer<Int64>, UnsafePointer<Int64>) -> Int32
    let convForwardInit: ForwardInit, convBackwardDataInit: BackwardDataInit, convBackwardWeightsInit: BackwardWeightsInit
    let deconvForwardInit: ForwardInit, deconvBackwardDataInit: BackwardDataInit, deconvBackwardWeightsInit: BackwardWeightsInit
    let primitiveDescCreate: @convention(c) (UnsafeMutablePointer<Handle?>, UnsafeRawPointer, Handle?, Handle?, Handle?) -> Int32
    let primitiveDescQueryMD: @convention(c) (Handle?, Int32, Int32) -> UnsafeRawPointer?
    /// `dnnl_primitive_desc_query` (nil if missing: no bfloat16 inference then).
    let primitiveDescQuery: (@convention(c) (Handle?, Int32, Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>) -> Int32)?
    let reorderDescCreate: @convention(c) (UnsafeMutablePointer<Handle?>, UnsafeRawPointer, Handle?, UnsafeRawPointer, Handle?, Handle?) -> Int32
    let primitiveCreate: @convention(c) (UnsafeMutablePointer<Handle?>, Handle?) -> Int32
    let primitiveExecute: @convention(c) (Handle?, Handle?, Int32, UnsafeRawPointer) -> Int32
    let memoryCreate: @convention(c) (UnsafeMutablePointer<Handle?>, UnsafeRawPointer, Handle?, UnsafeMutableRawPointer?) -> Int32
    let memorySetDataHandle: @convention(c) (Handle?, UnsafeMutableRawPointer?) -> Int32
    /// Primitive attributes asking for a user-provided scratchpad: with the library's own
    /// (global) scratchpad, two workers running primitives at once crashed.
    let attributes: Handle
    /// Post-op entry points for the inference primitives (nil if this build lacks them).
    let postOps: PostOpFunctions?
    struct PostOpFunctions {
        let attrClone: @convention(c) (UnsafeMutablePointer<Handle?>, Handle?) -> Int32
        let postOpsCreate: @convention(c) (UnsafeMutablePointer<Handle?>) -> Int32
        let appendSum: @convention(c) (Handle?, Float) -> Int32
        let appendEltwise: @convention(c) (Handle?, Float, Int32, Float, Float) -> Int32
        let attrSetPostOps: @convention(c) (Handle?, Handle?) -> Int32
    }

    let engine: Handle
    /// One stream per worker: a stream must not be used by two threads at once.
    let streams: [Handle]
    private var cache: [ConvKey: DNNLConvolution] = [:]
    private var inferenceCache: [ConvKey: DNNLInferenceConvolution] = [:]
    /// Guards the primitive caches and the packed-weight tables of frozen tensors.
    let lock = NSLock()

    /// The one oneDNN engine of the process, created lazily (thread-safe, as every Swift
    /// global) on first use. `nonisolated(unsafe)` only because `DNNL` holds C handles and so
    /// is not `Sendable`; its mutable parts (primitive caches, packed weights) are guarded by
    /// `lock`, and each stream is used by one worker.
    nonisolated(unsafe) static let shared: DNNL? = DNNL()

    private init?() {
        // OpenMP reads this when libgomp loads (with libdnnl, just below): one OpenMP thread,
        // as parallelism comes from our workers (see the file comment).
        setenv("OMP_NUM_THREADS", "1", 1)
        guard let lib = dlopen("libdnnl.so.2", RTLD_NOW | RTLD_LOCAL) else { return nil }
        func sym<T>(_ name: String, _: T.Type) -> T? {
            dlsym(lib, name).map { unsafeBitCast($0, to: T.self) }
        }
        guard let engineCreate = sym("dnnl_engine_create", type(of: self.engineCreate)),
              let streamCreate = sym("dnnl_stream_create", type(of: self.streamCreate)),
              let streamWait = sym("dnnl_stream_wait", type(of: self.streamWait)),
              let mdInit = sym("dnnl_memory_desc_init_by_tag", type(of: self.memoryDescInitByTag)),
              let mdEqual = sym("dnnl_memory_desc_equal", type(of: self.memoryDescEqual)),
              let mdSize = sym("dnnl_memory_desc_get_size", type(of: self.memoryDescGetSize)),
              let cf = sym("dnnl_dilated_convolution_forward_desc_init", ForwardInit.self),
              let cbd = sym("dnnl_dilated_convolution_backward_data_desc_init", BackwardDataInit.self),
              let cbw = sym("dnnl_dilated_convolution_backward_weights_desc_init", BackwardWeightsInit.self),
              let df = sym("dnnl_dilated_deconvolution_forward_desc_init", ForwardInit.self),
              let dbd = sym("dnnl_dilated_deconvolution_backward_data_desc_init", BackwardDataInit.self),
              let dbw = sym("dnnl_dilated_deconvolution_backward_weights_desc_init", BackwardWeightsInit.self),
              let pdCreate = sym("dnnl_primitive_desc_create", type(of: self.primitiveDescCreate)),
              let pdQuery = sym("dnnl_primitive_desc_query_md", type(of: self.primitiveDescQueryMD)),
              let reorder = sym("dnnl_reorder_primitive_desc_create", type(of: self.reorderDescCreate)),
              let primCreate = sym("dnnl_primitive_create", type(of: self.primitiveCreate)),
              let primExec = sym("dnnl_primitive_execute", type(of: self.primitiveExecute)),
              let memCreate = sym("dnnl_memory_create", type(of: self.memoryCreate)),
              let memSet = sym("dnnl_memory_set_data_handle", type(of: self.memorySetDataHandle)),
              let attrCreate = sym("dnnl_primitive_attr_create", (@convention(c) (UnsafeMutablePointer<Handle?>) -> Int32).self),
              let attrScratchpad = sym("dnnl_primitive_attr_set_scratchpad_mode", (@convention(c) (Handle?, Int32) -> Int32).self)
        else { return nil }
        var attr: Handle?
        guard attrCreate(&attr) == 0, let attr, attrScratchpad(attr, DNNL.scratchpadModeUser) == 0 else { return nil }
        attributes = attr
        if let clone = sym("dnnl_primitive_attr_clone", (@convention(c) (UnsafeMutablePointer<Handle?>, Handle?) -> Int32).self),
           let create = sym("dnnl_post_ops_create", (@convention(c) (UnsafeMutablePointer<Handle?>) -> Int32).self),
           let sum = sym("dnnl_post_ops_append_sum", (@convention(c) (Handle?, Float) -> Int32).self),
           let eltwise = sym("dnnl_post_ops_append_eltwise", (@convention(c) (Handle?, Float, Int32, Float, Float) -> Int32).self),
           let set = sym("dnnl_primitive_attr_set_post_ops", (@convention(c) (Handle?, Handle?) -> Int32).self) {
            postOps = PostOpFunctions(attrClone: clone, postOpsCreate: create, appendSum: sum, appendEltwise: eltwise,
                                      attrSetPostOps: set)
        } else {
            postOps = nil
        }
        self.engineCreate = engineCreate; self.streamCreate = streamCreate; self.streamWait = streamWait
        memoryDescInitByTag = mdInit; memoryDescEqual = mdEqual; memoryDescGetSize = mdSize
        memoryDescInitByStrides = sym("dnnl_memory_desc_init_by_strides",
                                      (@convention(c) (UnsafeMutableRawPointer, Int32, UnsafePointer<Int64>, Int32, UnsafePointer<Int64>) -> Int32).self)
        convForwardInit = cf; convBackwardDataInit = cbd; convBackwardWeightsInit = cbw
        deconvForwardInit = df; deconvBackwardDataInit = dbd; deconvBackwardWeightsInit = dbw
        primitiveDescCreate = pdCreate; primitiveDescQueryMD = pdQuery; reorderDescCreate = reorder
        primitiveDescQuery = sym("dnnl_primitive_desc_query",
                                 (@convention(c) (Handle?, Int32, Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>) -> Int32).self)
        primitiveCreate = primCreate; primitiveExecute = primExec; memoryCreate = memCreate; memorySetDataHandle = memSet
        var e: Handle?
        guard engineCreate(&e, 1 /* dnnl_cpu */, 0) == 0, let e else { return nil }
        var streams: [Handle] = []
        for _ in 0..<16 {
            var s: Handle?
            guard streamCreate(&s, e, 1 /* default flags */) == 0, let s else { return nil }
            streams.append(s)
        }
        engine = e; self.streams = streams
    }

    /// The cached primitives for one convolution shape, or nil if oneDNN declines it.
    func convolution(_ key: ConvKey) -> DNNLConvolution? {
        lock.lock(); defer { lock.unlock() }
        if let c = cache[key] { return c }
        guard let c = DNNLConvolution(key, self) else { return nil }
        cache[key] = c
        return c
    }

    /// The cached inference primitive for one shape and fusion, or nil if oneDNN declines it.
    /// A bfloat16 key that oneDNN cannot run on bfloat16 instructions gets the float32 primitive.
    func inferenceConvolution(_ key: ConvKey) -> DNNLInferenceConvolution? {
        lock.lock(); defer { lock.unlock() }
        if let c = inferenceCache[key] { return c }
        var made = DNNLInferenceConvolution(key, self)
        if made == nil && key.bf16 {
            var float32 = key
            float32.bf16 = false
            made = DNNLInferenceConvolution(float32, self)
        }
        guard let c = made else { return nil }
        inferenceCache[key] = c
        return c
    }

    /// Whether oneDNN runs a bfloat16 convolution on bfloat16 instructions here (tried once).
    static let nativeBFloat16: Bool = {
        guard let dnnl = shared, dnnl.postOps != nil else { return false }
        var key = ConvKey(worker: 0, transposed: false, input: [1, 16, 8, 8], weights: [16, 16, 3, 3], output: [1, 16, 8, 8],
                          stride: 1, dilation: 1, padBefore: 1, padAfter: 1)
        key.bf16 = true
        return DNNLInferenceConvolution(key, dnnl) != nil
    }()

    /// The implementation oneDNN chose for a primitive descriptor (e.g. `jit_bf16:avx512_core_bf16`).
    func implementation(of pd: Handle) -> String? {
        var name: UnsafePointer<CChar>?
        guard let query = primitiveDescQuery, query(pd, DNNL.queryImplementationName, 0, &name) == 0, let name else { return nil }
        return String(cString: name)
    }
}

/// Everything that identifies a convolution primitive. For a transposed convolution `input`
/// is the deconvolution's source `[N, Cin, H, W]` and `output` its destination.
struct ConvKey: Hashable {
    /// The worker that owns these primitives' memory objects (and so may run them).
    var worker = 0
    let transposed: Bool
    let input: [Int64], weights: [Int64], output: [Int64]
    let strides: [Int64], dilations: [Int64], padL: [Int64], padR: [Int64]
    /// Inference primitives only: bias, accumulation into the destination (`sum` post-op)
    /// and ReLU (`eltwise` post-op) fused into the convolution.
    var hasBias = false, accumulates = false, relu = false
    /// Inference primitives only: the source and weights in bfloat16 (`InferencePrecision.bfloat16`).
    var bf16 = false
    /// Inference primitives only: the layouts of the source and destination memory we hand
    /// over (plain NCHW, or nChw16c for `BlockedFeatureMap`).
    var sourceTag = DNNL.nchw, destinationTag = DNNL.nchw
    /// Training primitives split by channels: element strides of the user memory when it is a
    /// channel slice of the whole tensor (nil: dense).
    var inputStrides: [Int64]? = nil, weightStrides: [Int64]? = nil, outputStrides: [Int64]? = nil

    init(worker: Int, transposed: Bool, input: [Int], weights: [Int], output: [Int], stride: Size2,
         dilation: Size2, padBefore: Size2, padAfter: Size2) {
        self.worker = worker; self.transposed = transposed
        self.input = input.map(Int64.init); self.weights = weights.map(Int64.init); self.output = output.map(Int64.init)
        strides = [Int64(stride.height), Int64(stride.width)]
        dilations = [Int64(dilation.height - 1), Int64(dilation.width - 1)]   // oneDNN counts from 0
        padL = [Int64(padBefore.height), Int64(padBefore.width)]
        padR = [Int64(padAfter.height), Int64(padAfter.width)]
    }
}

// MARK: - Descriptors, ports and reorders shared by the training and inference primitives

extension DNNL {
    /// One argument of a primitive: plain memory on our tensor, and, when oneDNN prefers
    /// another layout, blocked memory on scratch plus the reorder between them.
    struct Port {
        let arg: Int32
        let user: Handle
        let blocked: Handle?
        let reorder: Handle?
        let bytes: Int
        let isOutput: Bool
        let reorderScratchpad: Scratchpad?
        /// The blocked layout's descriptor (nil when the user layout is used directly).
        var blockedDescriptor: UnsafeRawPointer? = nil
    }

    /// A primitive's user-provided scratchpad: memory object and size (handle set per run).
    struct Scratchpad {
        let memory: Handle
        let bytes: Int
    }

    /// A memory descriptor (kept for the primitive's lifetime) for `dims` in format `tag`, or
    /// with explicit element `strides` (a channel slice of a larger NCHW / OIHW tensor).
    func memoryDescriptor(_ dims: [Int64], _ tag: Int32, strides: [Int64]? = nil, dataType: Int32 = DNNL.f32) -> UnsafeMutableRawPointer? {
        let p = UnsafeMutableRawPointer.allocate(byteCount: DNNL.memoryDescriptorBytes, alignment: 64)
        p.initializeMemory(as: UInt8.self, repeating: 0, count: DNNL.memoryDescriptorBytes)
        if let strides {
            guard let byStrides = memoryDescInitByStrides else { return nil }
            return dims.withUnsafeBufferPointer { d in strides.withUnsafeBufferPointer { st in
                byStrides(p, Int32(dims.count), d.baseAddress!, dataType, st.baseAddress!) == 0 ? p : nil
            } }
        }
        return dims.withUnsafeBufferPointer {
            memoryDescInitByTag(p, Int32(dims.count), $0.baseAddress!, dataType, tag) == 0 ? p : nil
        }
    }

    /// The user scratchpad a primitive asks for: `.some(nil)` when it needs none, nil on failure.
    func scratchpad(of pd: Handle) -> Scratchpad?? {
        guard let md = primitiveDescQueryMD(pd, DNNL.queryScratchpad, 0) else { return .some(nil) }
        let bytes = memoryDescGetSize(md)
        if bytes == 0 { return .some(nil) }
        var memory: Handle?
        guard memoryCreate(&memory, md, engine, nil) == 0, let memory else { return nil }
        return Scratchpad(memory: memory, bytes: bytes)
    }

    /// The argument `arg` of primitive `pd` (queried with `query`) on user memory of layout
    /// `user`, with the reorder to or from the primitive's preferred layout when they differ.
    func port(_ pd: Handle, _ query: Int32, arg: Int32, user: UnsafeRawPointer, isOutput: Bool) -> Port? {
        guard let preferred = primitiveDescQueryMD(pd, query, 0) else { return nil }
        var userMemory: Handle?
        guard memoryCreate(&userMemory, user, engine, nil) == 0, let userMemory else { return nil }
        if memoryDescEqual(user, preferred) != 0 {
            return Port(arg: arg, user: userMemory, blocked: nil, reorder: nil, bytes: 0, isOutput: isOutput,
                        reorderScratchpad: nil)
        }
        var blocked: Handle?, reorderPD: Handle?, reorder: Handle?
        guard memoryCreate(&blocked, preferred, engine, nil) == 0,
              (isOutput ? reorderDescCreate(&reorderPD, preferred, engine, user, engine, attributes)
                        : reorderDescCreate(&reorderPD, user, engine, preferred, engine, attributes)) == 0,
              primitiveCreate(&reorder, reorderPD) == 0, let reorderScratchpad = scratchpad(of: reorderPD!) else { return nil }
        return Port(arg: arg, user: userMemory, blocked: blocked, reorder: reorder,
                    bytes: memoryDescGetSize(preferred), isOutput: isOutput, reorderScratchpad: reorderScratchpad,
                    blockedDescriptor: preferred)
    }

    /// Runs `port`'s reorder from memory `from` to memory `to` on `worker`'s stream.
    func reorder(_ port: Port, from: Handle, to: Handle, worker: Int, stream: Handle) {
        var args = [DNNL.ExecArg(arg: 1 /* FROM */, memory: from), DNNL.ExecArg(arg: 17 /* TO */, memory: to)]
        if let pad = port.reorderScratchpad {
            _ = memorySetDataHandle(pad.memory, DNNLScratch.buffer(worker: worker, slot: 4, bytes: pad.bytes))
            args.append(.init(arg: DNNL.argScratchpad, memory: pad.memory))
        }
        let status = args.withUnsafeBufferPointer { primitiveExecute(port.reorder!, stream, Int32($0.count), UnsafeRawPointer($0.baseAddress!)) }
        precondition(status == 0, "conv2d: oneDNN reorder failed with status \(status)")
    }
}

/// Scratch memory for oneDNN's blocked layouts, reused across calls (one op runs at a time).
final class DNNLScratch {
    // Raw tables, not arrays: workers write their own slots concurrently.
    static let buffers: UnsafeMutablePointer<UnsafeMutableRawPointer?> = {
        let p = UnsafeMutablePointer<UnsafeMutableRawPointer?>.allocate(capacity: 128)
        p.initialize(repeating: nil, count: 128)
        return p
    }()
    static let sizes: UnsafeMutablePointer<Int> = {
        let p = UnsafeMutablePointer<Int>.allocate(capacity: 128)
        p.initialize(repeating: 0, count: 128)
        return p
    }()

    /// Bytes held by all slots (for `TensorMemory`; read without synchronisation).
    static var totalBytes: Int { (0..<128).reduce(0) { $0 + sizes[$1] } }

    /// The most bytes of one argument a training convolution hands oneDNN per call: larger
    /// batches are run a few images at a time. Every blocked copy of an argument lives in these
    /// per-worker slots for the rest of the process, so they would otherwise grow to the largest
    /// layer's whole share of the batch (BENCH.md's unet: ~80 MB per worker instead of ~20).
    static let argumentBytesPerCall = 4 << 20

    /// Slot `slot` (< 8: 0-2 arguments, 3 scratchpad, 4 reorder scratchpad) of worker `worker`
    /// (< 16), at least `bytes` long.
    static func buffer(worker: Int, slot: Int, bytes: Int) -> UnsafeMutableRawPointer {
        let i = worker * 8 + slot
        if sizes[i] < bytes {
            buffers[i]?.deallocate()
            buffers[i] = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
            sizes[i] = bytes
        }
        return buffers[i]!
    }
}

/// Forward, backward-data and backward-weights primitives for one shape, with the reorders
/// between our plain NCHW/OIHW tensors and oneDNN's preferred blocked layouts.
final class DNNLConvolution {
    typealias Handle = DNNL.Handle

    typealias Port = DNNL.Port
    typealias Scratchpad = DNNL.Scratchpad

    struct Step {
        let primitive: Handle
        let ports: [Port]
        let scratchpad: Scratchpad?
    }

    let forward: Step, backwardData: Step, backwardWeights: Step
    private unowned let dnnl: DNNL
    private let worker: Int

    init?(_ key: ConvKey, _ dnnl: DNNL) {
        self.dnnl = dnnl
        worker = key.worker
        let md = { (dims: [Int64], tag: Int32) in dnnl.memoryDescriptor(dims, tag) }
        let weightTag = key.transposed ? DNNL.iohw : DNNL.oihw
        guard let srcUser = dnnl.memoryDescriptor(key.input, DNNL.nchw, strides: key.inputStrides),
              let wUser = dnnl.memoryDescriptor(key.weights, weightTag, strides: key.weightStrides),
              let dstUser = dnnl.memoryDescriptor(key.output, DNNL.nchw, strides: key.outputStrides),
              let srcAny = md(key.input, DNNL.any),
              let wAny = md(key.weights, DNNL.any), let dstAny = md(key.output, DNNL.any) else { return nil }
        let opDesc = UnsafeMutableRawPointer.allocate(byteCount: DNNL.operationDescriptorBytes, alignment: 64)
        let s = key.strides, d = key.dilations, l = key.padL, r = key.padR
        let alg = key.transposed ? DNNL.deconvolutionDirect : DNNL.convolutionDirect

        func primitiveDesc(hint: Handle?) -> Handle? {
            var pd: Handle?
            return dnnl.primitiveDescCreate(&pd, opDesc, dnnl.attributes, dnnl.engine, hint) == 0 ? pd : nil
        }
        func step(_ pd: Handle, _ specs: [(Int32, Int32, UnsafeMutableRawPointer, Bool)]) -> Step? {
            var prim: Handle?
            guard dnnl.primitiveCreate(&prim, pd) == 0, let prim, let pad = dnnl.scratchpad(of: pd) else { return nil }
            let ports = specs.compactMap { dnnl.port(pd, $0.0, arg: $0.1, user: $0.2, isOutput: $0.3) }
            return ports.count == specs.count ? Step(primitive: prim, ports: ports, scratchpad: pad) : nil
        }

        let fwdInit = key.transposed ? dnnl.deconvForwardInit : dnnl.convForwardInit
        guard fwdInit(opDesc, DNNL.forwardTraining, alg, srcAny, wAny, nil, dstAny, s, d, l, r) == 0,
              let fpd = primitiveDesc(hint: nil),
              let f = step(fpd, [(DNNL.querySrc, DNNL.argSrc, srcUser, false), (DNNL.queryWeights, DNNL.argWeights, wUser, false),
                                 (DNNL.queryDst, DNNL.argDst, dstUser, true)]) else { return nil }
        let bdInit = key.transposed ? dnnl.deconvBackwardDataInit : dnnl.convBackwardDataInit
        guard bdInit(opDesc, alg, srcAny, wAny, dstAny, s, d, l, r) == 0, let bpd = primitiveDesc(hint: fpd),
              let b = step(bpd, [(DNNL.queryDiffDst, DNNL.argDiffDst, dstUser, false), (DNNL.queryWeights, DNNL.argWeights, wUser, false),
                                 (DNNL.queryDiffSrc, DNNL.argDiffSrc, srcUser, true)]) else { return nil }
        let bwInit = key.transposed ? dnnl.deconvBackwardWeightsInit : dnnl.convBackwardWeightsInit
        guard bwInit(opDesc, alg, srcAny, wAny, nil, dstAny, s, d, l, r) == 0, let wpd = primitiveDesc(hint: fpd),
              let w = step(wpd, [(DNNL.querySrc, DNNL.argSrc, srcUser, false), (DNNL.queryDiffDst, DNNL.argDiffDst, dstUser, false),
                                 (DNNL.queryDiffWeights, DNNL.argDiffWeights, wUser, true)]) else { return nil }
        forward = f; backwardData = b; backwardWeights = w
    }

    /// Runs one step on raw tensor pointers given in port order (inputs..., output), on this
    /// object's worker's stream and scratch (only that worker may call it).
    func run(_ step: Step, _ pointers: [UnsafeMutablePointer<Float>]) {
        let stream = dnnl.streams[worker]
        var args: [DNNL.ExecArg] = []
        for (slot, (port, pointer)) in zip(step.ports, pointers).enumerated() {
            _ = dnnl.memorySetDataHandle(port.user, pointer)
            guard let blocked = port.blocked else { args.append(.init(arg: port.arg, memory: port.user)); continue }
            _ = dnnl.memorySetDataHandle(blocked, DNNLScratch.buffer(worker: worker, slot: slot, bytes: port.bytes))
            if !port.isOutput { execute(port, from: port.user, to: blocked, stream) }
            args.append(.init(arg: port.arg, memory: blocked))
        }
        if let pad = step.scratchpad {
            _ = dnnl.memorySetDataHandle(pad.memory, DNNLScratch.buffer(worker: worker, slot: 3, bytes: pad.bytes))
            args.append(.init(arg: DNNL.argScratchpad, memory: pad.memory))
        }
        let status = args.withUnsafeBufferPointer { dnnl.primitiveExecute(step.primitive, stream, Int32($0.count), UnsafeRawPointer($0.baseAddress!)) }
        precondition(status == 0, "conv2d: oneDNN primitive failed with status \(status)")
        for port in step.ports where port.isOutput && port.blocked != nil {
            execute(port, from: port.blocked!, to: port.user, stream)
        }
        _ = dnnl.streamWait(stream)
    }

    private func execute(_ port: Port, from: Handle, to: Handle, _ stream: Handle) {
        dnnl.reorder(port, from: from, to: to, worker: worker, stream: stream)
    }
}

extension Tensor {
    /// conv2d / transposedConv2d through oneDNN, recorded with its fused backward; nil when
    /// the backend is im2col or oneDNN declines the shape (the caller then runs im2col).
    /// The batch is split into one contiguous chunk per worker.
    func convolvedWithOneDNN(transposed: Bool, weight: Tensor, bias: Tensor?, outputShape: [Int], stride: Size2,
                             dilation: Size2, padBefore: Size2, padAfter: Size2) -> Tensor? {
        guard ConvolutionBackend.current == .oneDNN, let dnnl = DNNL.shared else { return nil }
        // Nothing to record: the inference primitive (bias fused, frozen weights pre-packed).
        if !GradMode.isEnabled,
           let out = convolvedForInference(transposed: transposed, weight: weight, bias: bias, outputShape: outputShape,
                                           stride: stride, dilation: dilation, padBefore: padBefore, padAfter: padAfter) {
            return out
        }
        if !transposed, let out = channelSplitConvolution(dnnl, weight: weight, bias: bias, outputShape: outputShape,
                                                          stride: stride, dilation: dilation, padBefore: padBefore,
                                                          padAfter: padAfter) {
            return out
        }
        let n = shape[0]
        let workers = Swift.max(1, Swift.min(Threading.workerCount, n, 16))
        let chunks = (0..<workers).map { (n * $0 / workers)..<(n * ($0 + 1) / workers) }
        // Each worker runs its images in calls of at most `perCall`, so that oneDNN's blocked
        // copies of the arguments (per-worker scratch, kept between calls) cover that many
        // images, not the worker's whole share (see `DNNLScratch.argumentBytesPerCall`).
        let inStride = count / n, outStride = outputShape.reduce(1, *) / n
        let perCall = Swift.max(1, DNNLScratch.argumentBytesPerCall / (4 * Swift.max(inStride, outStride)))
        func pieces(_ chunk: Range<Int>) -> [Range<Int>] {
            Swift.stride(from: chunk.lowerBound, to: chunk.upperBound, by: perCall).map { $0..<Swift.min($0 + perCall, chunk.upperBound) }
        }
        // oneDNN's deconvolution weights are [OC, IC, KH, KW] stored as "iohw": PyTorch's layout.
        let weightDims = transposed ? [weight.shape[1], weight.shape[0], weight.shape[2], weight.shape[3]] : weight.shape
        // Per worker, the primitives by the number of images per call.
        var convs: [[Int: DNNLConvolution]] = []
        for (worker, chunk) in chunks.enumerated() {
            var byCount: [Int: DNNLConvolution] = [:]
            for images in Set(pieces(chunk).map(\.count)) {
                let key = ConvKey(worker: worker, transposed: transposed,
                                  input: [images] + shape.dropFirst(),
                                  weights: weightDims,
                                  output: [images] + outputShape.dropFirst(),
                                  stride: stride, dilation: dilation, padBefore: padBefore, padAfter: padAfter)
                guard let conv = dnnl.convolution(key) else { return nil }
                byCount[images] = conv
            }
            convs.append(byCount)
        }
        /// Runs `body(worker, conv, images)` on every worker at once, each over its calls in order.
        func perWorker(_ body: (Int, DNNLConvolution, Range<Int>) -> Void) {
            func calls(_ k: Int) { for piece in pieces(chunks[k]) { body(k, convs[k][piece.count]!, piece) } }
            if workers == 1 { calls(0); return }
            DispatchQueue.concurrentPerform(iterations: workers) { calls($0) }
        }
        let out = Tensor(uninitializedShape: outputShape)
        let x = storage.pointer, w = weight.storage.pointer, o = out.storage.pointer
        perWorker { _, conv, images in
            conv.run(conv.forward, [x + images.lowerBound * inStride, w, o + images.lowerBound * outStride])
        }
        if let bias { out.addChannelBias(bias) }
        let inputs = bias.map { [self, weight, $0] } ?? [self, weight]
        let (saved, inShape, needsInputGradient) = (savedForBackward, shape, tracksGradient)
        return Tensor.record(transposed ? "transposedConv2d" : "conv2d", inputs, out) { g in
            let input = saved.values()
            defer { withExtendedLifetime(input) {} }
            let x = input.storage.pointer
            let dx = needsInputGradient ? Tensor(uninitializedShape: inShape) : nil
            // One weight gradient per worker, summed afterwards; a worker with several calls adds
            // each later call's gradient (computed into `partials[k]`) to its first.
            let dws = weight.tracksGradient ? (0..<workers).map { _ in Tensor(uninitializedShape: weight.shape) } : []
            let partials = weight.tracksGradient && chunks.contains(where: { pieces($0).count > 1 })
                ? (0..<workers).map { _ in Tensor(uninitializedShape: weight.shape) } : []
            let gp = g.storage.pointer
            perWorker { k, conv, images in
                if let dx {
                    conv.run(conv.backwardData, [gp + images.lowerBound * outStride, w,
                                                 dx.storage.pointer + images.lowerBound * inStride])
                }
                if !dws.isEmpty {
                    let first = images.lowerBound == chunks[k].lowerBound
                    let target = first ? dws[k].storage.pointer : partials[k].storage.pointer
                    conv.run(conv.backwardWeights, [x + images.lowerBound * inStride, gp + images.lowerBound * outStride, target])
                    if !first {
                        let p = dws[k].storage.pointer
                        for i in 0..<weight.count { p[i] += target[i] }
                    }
                }
            }
            var dw: Tensor? = nil
            if let first = dws.first {
                let p = first.storage.pointer
                let parts = dws.dropFirst().map { $0.storage.pointer }
                withExtendedLifetime(dws) {   // raw pointers into them below
                    Threading.parallelChunks(weight.count, costPerItem: parts.count) { _, r in
                        for q in parts { for i in r { p[i] += q[i] } }
                    }
                }
                dw = first
            }
            var grads: [Tensor?] = [dx, dw]
            if let bias { grads.append(bias.tracksGradient ? g.sum(axes: [0, 2, 3]) : nil) }
            return grads
        }
    }

    /// Training convolution split over the workers by channels instead of images, for layers
    /// whose weights outweigh a worker's share of the activations (ResNet's last stages: 2x2
    /// and 4x4 maps, 2.4 M weights per layer). With the batch split, every worker reordered the
    /// whole weight tensor three times per step and computed a whole weight gradient that was
    /// then summed: ~30% of a resnet18 step's CPU time went to the 512-channel layers alone.
    /// Here worker `k` computes output channels `k` (forward, weight gradient: its own slice of
    /// `dW`, no sum) and input channels `k` (data gradient) for the whole batch, on channel
    /// slices described to oneDNN by strides. nil when the split does not apply.
    func channelSplitConvolution(_ dnnl: DNNL, weight: Tensor, bias: Tensor?, outputShape: [Int], stride: Size2,
                                 dilation: Size2, padBefore: Size2, padAfter: Size2) -> Tensor? {
        let workers = Swift.min(Threading.workerCount, 16)
        let (n, ic, h, w) = (shape[0], shape[1], shape[2], shape[3])
        let (oc, oh, ow) = (outputShape[1], outputShape[2], outputShape[3])
        let (kh, kw) = (weight.shape[2], weight.shape[3])
        guard workers > 1, dnnl.memoryDescInitByStrides != nil, oc % (16 * workers) == 0, ic % (16 * workers) == 0,
              weight.count > count / workers else { return nil }
        let ocPart = oc / workers, icPart = ic / workers
        func key(_ worker: Int, splitOutput: Bool) -> ConvKey {
            var k = ConvKey(worker: worker, transposed: false,
                            input: [n, splitOutput ? ic : icPart, h, w],
                            weights: [oc / (splitOutput ? workers : 1), splitOutput ? ic : icPart, kh, kw],
                            output: [n, splitOutput ? ocPart : oc, oh, ow],
                            stride: stride, dilation: dilation, padBefore: padBefore, padAfter: padAfter)
            if splitOutput {
                k.outputStrides = [oc * oh * ow, oh * ow, ow, 1].map(Int64.init)
            } else {
                k.inputStrides = [ic * h * w, h * w, w, 1].map(Int64.init)
                k.weightStrides = [ic * kh * kw, kh * kw, kw, 1].map(Int64.init)
            }
            return k
        }
        var byOutput: [DNNLConvolution] = [], byInput: [DNNLConvolution] = []
        for k in 0..<workers {
            guard let a = dnnl.convolution(key(k, splitOutput: true)),
                  let b = dnnl.convolution(key(k, splitOutput: false)) else { return nil }
            byOutput.append(a); byInput.append(b)
        }
        let out = Tensor(uninitializedShape: outputShape)
        let x = storage.pointer, wp = weight.storage.pointer, o = out.storage.pointer
        let plane = oh * ow, filter = ic * kh * kw
        DispatchQueue.concurrentPerform(iterations: workers) { k in
            byOutput[k].run(byOutput[k].forward, [x, wp + k * ocPart * filter, o + k * ocPart * plane])
        }
        if let bias { out.addChannelBias(bias) }
        let inputs = bias.map { [self, weight, $0] } ?? [self, weight]
        let (saved, inShape, needsInputGradient) = (savedForBackward, shape, tracksGradient)
        return Tensor.record("conv2d", inputs, out) { g in
            let input = saved.values()
            defer { withExtendedLifetime(input) {} }
            let x = input.storage.pointer
            let dx = needsInputGradient ? Tensor(uninitializedShape: inShape) : nil
            let dw = weight.tracksGradient ? Tensor(uninitializedShape: weight.shape) : nil
            let gp = g.storage.pointer
            DispatchQueue.concurrentPerform(iterations: workers) { k in
                if let dx {
                    byInput[k].run(byInput[k].backwardData, [gp, wp + k * icPart * kh * kw,
                                                             dx.storage.pointer + k * icPart * h * w])
                }
                if let dw {
                    byOutput[k].run(byOutput[k].backwardWeights, [x, gp + k * ocPart * plane,
                                                                  dw.storage.pointer + k * ocPart * filter])
                }
            }
            var grads: [Tensor?] = [dx, dw]
            if let bias { grads.append(bias.tracksGradient ? g.sum(axes: [0, 2, 3]) : nil) }
            return grads
        }
    }

    /// Adds `bias[c]` to every pixel of channel `c` of this `[N, C, H, W]` tensor, in place
    /// (the training primitives leave the bias out; the inference ones fuse it).
    func addChannelBias(_ bias: Tensor) {
        let (channels, plane) = (shape[1], shape[2] * shape[3])
        let o = storage.pointer, b = bias.storage.pointer
        Threading.parallelChunks(shape[0] * channels, costPerItem: plane) { _, r in
            for i in r { let row = o + i * plane, v = b[i % channels]; for p in 0..<plane { row[p] += v } }
        }
    }
}
