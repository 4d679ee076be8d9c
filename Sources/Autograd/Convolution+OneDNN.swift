// oneDNN (libdnnl.so.2) behind conv2d, loaded at run time when present.
//
// Why: measured on the benchmark machine (docs/benchmarks.md), im2col + OpenBLAS 0.3.21
// reaches ~70-130 GFLOP/s on 2 cores - OpenBLAS 0.3.21 does not know Zen 4/5 and runs its
// AVX2 kernels - while oneDNN's AVX-512 direct convolution reaches ~450 GFLOP/s, which is
// what PyTorch itself uses. The library is opened with dlopen, so it is optional: without
// it (or with ASTROLABE_CONV_BACKEND=im2col) the im2col path runs, with identical results
// to within float rounding. Only the C entry points below are used (oneDNN 2.x API).
import Foundation

/// Which implementation runs `conv2d` and `transposedConv2d`.
public enum ConvolutionBackend: String {
    case oneDNN, im2col

    /// The backend in use: oneDNN when libdnnl.so.2 loads, unless the environment variable
    /// `ASTROLABE_CONV_BACKEND=im2col` (or this setting) says otherwise.
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
    static let memoryDescriptorBytes = 1024, operationDescriptorBytes = 8192   // 696 and 5976 in 2.6

    let engineCreate: @convention(c) (UnsafeMutablePointer<Handle?>, Int32, Int) -> Int32
    let streamCreate: @convention(c) (UnsafeMutablePointer<Handle?>, Handle?, UInt32) -> Int32
    let streamWait: @convention(c) (Handle?) -> Int32
    let memoryDescInitByTag: @convention(c) (UnsafeMutableRawPointer, Int32, UnsafePointer<Int64>, Int32, Int32) -> Int32
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
    let reorderDescCreate: @convention(c) (UnsafeMutablePointer<Handle?>, UnsafeRawPointer, Handle?, UnsafeRawPointer, Handle?, Handle?) -> Int32
    let primitiveCreate: @convention(c) (UnsafeMutablePointer<Handle?>, Handle?) -> Int32
    let primitiveExecute: @convention(c) (Handle?, Handle?, Int32, UnsafeRawPointer) -> Int32
    let memoryCreate: @convention(c) (UnsafeMutablePointer<Handle?>, UnsafeRawPointer, Handle?, UnsafeMutableRawPointer?) -> Int32
    let memorySetDataHandle: @convention(c) (Handle?, UnsafeMutableRawPointer?) -> Int32

    let engine: Handle
    let stream: Handle
    private var cache: [ConvKey: DNNLConvolution] = [:]
    private let lock = NSLock()

    nonisolated(unsafe) static let shared: DNNL? = DNNL()

    private init?() {
        // OpenMP reads these when libgomp loads (with libdnnl, just below): use our thread count and
        // spin briefly, so idle OpenMP workers do not steal the cores from OpenBLAS and GCD workers.
        setenv("OMP_NUM_THREADS", "\(Threading.workerCount)", 0)
        setenv("GOMP_SPINCOUNT", "10000", 0)
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
              let memSet = sym("dnnl_memory_set_data_handle", type(of: self.memorySetDataHandle))
        else { return nil }
        self.engineCreate = engineCreate; self.streamCreate = streamCreate; self.streamWait = streamWait
        memoryDescInitByTag = mdInit; memoryDescEqual = mdEqual; memoryDescGetSize = mdSize
        convForwardInit = cf; convBackwardDataInit = cbd; convBackwardWeightsInit = cbw
        deconvForwardInit = df; deconvBackwardDataInit = dbd; deconvBackwardWeightsInit = dbw
        primitiveDescCreate = pdCreate; primitiveDescQueryMD = pdQuery; reorderDescCreate = reorder
        primitiveCreate = primCreate; primitiveExecute = primExec; memoryCreate = memCreate; memorySetDataHandle = memSet
        var e: Handle?, s: Handle?
        guard engineCreate(&e, 1 /* dnnl_cpu */, 0) == 0, let e,
              streamCreate(&s, e, 1 /* default flags */) == 0, let s else { return nil }
        engine = e; stream = s
    }

    /// The cached primitives for one convolution shape, or nil if oneDNN declines it.
    func convolution(_ key: ConvKey) -> DNNLConvolution? {
        lock.lock(); defer { lock.unlock() }
        if let c = cache[key] { return c }
        guard let c = DNNLConvolution(key, self) else { return nil }
        cache[key] = c
        return c
    }
}

/// Everything that identifies a convolution primitive. For a transposed convolution `input`
/// is the deconvolution's source `[N, Cin, H, W]` and `output` its destination.
struct ConvKey: Hashable {
    let transposed: Bool
    let input: [Int64], weights: [Int64], output: [Int64]
    let strides: [Int64], dilations: [Int64], padL: [Int64], padR: [Int64]
}

/// Scratch memory for oneDNN's blocked layouts, reused across calls (one op runs at a time).
private final class DNNLScratch {
    nonisolated(unsafe) static var buffers: [UnsafeMutableRawPointer?] = [nil, nil, nil, nil]
    nonisolated(unsafe) static var sizes = [0, 0, 0, 0]
    static func buffer(_ slot: Int, bytes: Int) -> UnsafeMutableRawPointer {
        if sizes[slot] < bytes {
            buffers[slot]?.deallocate()
            buffers[slot] = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
            sizes[slot] = bytes
        }
        return buffers[slot]!
    }
}

/// Forward, backward-data and backward-weights primitives for one shape, with the reorders
/// between our plain NCHW/OIHW tensors and oneDNN's preferred blocked layouts.
final class DNNLConvolution {
    typealias Handle = DNNL.Handle

    /// One argument of a primitive: plain memory on our tensor, and, when oneDNN prefers
    /// another layout, blocked memory on scratch plus the reorder between them.
    struct Port {
        let arg: Int32
        let user: Handle
        let blocked: Handle?
        let reorder: Handle?
        let bytes: Int
        let isOutput: Bool
    }

    struct Step {
        let primitive: Handle
        let ports: [Port]
    }

    let forward: Step, backwardData: Step, backwardWeights: Step
    private unowned let dnnl: DNNL

    init?(_ key: ConvKey, _ dnnl: DNNL) {
        self.dnnl = dnnl
        func md(_ dims: [Int64], _ tag: Int32) -> UnsafeMutableRawPointer? {
            let p = UnsafeMutableRawPointer.allocate(byteCount: DNNL.memoryDescriptorBytes, alignment: 64)
            p.initializeMemory(as: UInt8.self, repeating: 0, count: DNNL.memoryDescriptorBytes)
            return dims.withUnsafeBufferPointer {
                dnnl.memoryDescInitByTag(p, Int32(dims.count), $0.baseAddress!, DNNL.f32, tag) == 0 ? p : nil
            }
        }
        let weightTag = key.transposed ? DNNL.iohw : DNNL.oihw
        guard let srcUser = md(key.input, DNNL.nchw), let wUser = md(key.weights, weightTag),
              let dstUser = md(key.output, DNNL.nchw), let srcAny = md(key.input, DNNL.any),
              let wAny = md(key.weights, DNNL.any), let dstAny = md(key.output, DNNL.any) else { return nil }
        let opDesc = UnsafeMutableRawPointer.allocate(byteCount: DNNL.operationDescriptorBytes, alignment: 64)
        let s = key.strides, d = key.dilations, l = key.padL, r = key.padR
        let alg = key.transposed ? DNNL.deconvolutionDirect : DNNL.convolutionDirect

        func primitiveDesc(hint: Handle?) -> Handle? {
            var pd: Handle?
            return dnnl.primitiveDescCreate(&pd, opDesc, nil, dnnl.engine, hint) == 0 ? pd : nil
        }
        func port(_ pd: Handle, _ query: Int32, arg: Int32, user: UnsafeRawPointer, isOutput: Bool) -> Port? {
            guard let preferred = dnnl.primitiveDescQueryMD(pd, query, 0) else { return nil }
            var userMemory: Handle?
            guard dnnl.memoryCreate(&userMemory, user, dnnl.engine, nil) == 0, let userMemory else { return nil }
            if dnnl.memoryDescEqual(user, preferred) != 0 {
                return Port(arg: arg, user: userMemory, blocked: nil, reorder: nil, bytes: 0, isOutput: isOutput)
            }
            var blocked: Handle?, reorderPD: Handle?, reorder: Handle?
            guard dnnl.memoryCreate(&blocked, preferred, dnnl.engine, nil) == 0,
                  (isOutput ? dnnl.reorderDescCreate(&reorderPD, preferred, dnnl.engine, user, dnnl.engine, nil)
                            : dnnl.reorderDescCreate(&reorderPD, user, dnnl.engine, preferred, dnnl.engine, nil)) == 0,
                  dnnl.primitiveCreate(&reorder, reorderPD) == 0 else { return nil }
            return Port(arg: arg, user: userMemory, blocked: blocked, reorder: reorder,
                        bytes: dnnl.memoryDescGetSize(preferred), isOutput: isOutput)
        }
        func step(_ pd: Handle, _ specs: [(Int32, Int32, UnsafeMutableRawPointer, Bool)]) -> Step? {
            var prim: Handle?
            guard dnnl.primitiveCreate(&prim, pd) == 0, let prim else { return nil }
            let ports = specs.compactMap { port(pd, $0.0, arg: $0.1, user: $0.2, isOutput: $0.3) }
            return ports.count == specs.count ? Step(primitive: prim, ports: ports) : nil
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

    /// Runs one step on raw tensor pointers given in port order (inputs..., output).
    func run(_ step: Step, _ pointers: [UnsafeMutablePointer<Float>]) {
        var args: [DNNL.ExecArg] = []
        for (slot, (port, pointer)) in zip(step.ports, pointers).enumerated() {
            _ = dnnl.memorySetDataHandle(port.user, pointer)
            guard let blocked = port.blocked else { args.append(.init(arg: port.arg, memory: port.user)); continue }
            _ = dnnl.memorySetDataHandle(blocked, DNNLScratch.buffer(slot, bytes: port.bytes))
            if !port.isOutput { execute(port.reorder!, from: port.user, to: blocked) }
            args.append(.init(arg: port.arg, memory: blocked))
        }
        let status = args.withUnsafeBufferPointer { dnnl.primitiveExecute(step.primitive, dnnl.stream, Int32($0.count), UnsafeRawPointer($0.baseAddress!)) }
        precondition(status == 0, "conv2d: oneDNN primitive failed with status \(status)")
        for port in step.ports where port.isOutput && port.blocked != nil {
            execute(port.reorder!, from: port.blocked!, to: port.user)
        }
        _ = dnnl.streamWait(dnnl.stream)
    }

    private func execute(_ reorder: Handle, from: Handle, to: Handle) {
        let args = [DNNL.ExecArg(arg: 1 /* FROM */, memory: from), DNNL.ExecArg(arg: 17 /* TO */, memory: to)]
        let status = args.withUnsafeBufferPointer { dnnl.primitiveExecute(reorder, dnnl.stream, 2, UnsafeRawPointer($0.baseAddress!)) }
        precondition(status == 0, "conv2d: oneDNN reorder failed with status \(status)")
    }
}

extension Tensor {
    /// conv2d / transposedConv2d through oneDNN, recorded with its fused backward; nil when
    /// the backend is im2col or oneDNN declines the shape (the caller then runs im2col).
    func convolvedWithOneDNN(transposed: Bool, weight: Tensor, bias: Tensor?, outputShape: [Int], stride: Size2,
                             dilation: Size2, padBefore: Size2, padAfter: Size2) -> Tensor? {
        guard ConvolutionBackend.current == .oneDNN, let dnnl = DNNL.shared else { return nil }
        // oneDNN's deconvolution weights are [OC, IC, KH, KW] stored as "iohw": PyTorch's layout.
        let weightDims = transposed ? [weight.shape[1], weight.shape[0], weight.shape[2], weight.shape[3]] : weight.shape
        let key = ConvKey(transposed: transposed, input: shape.map(Int64.init), weights: weightDims.map(Int64.init),
                          output: outputShape.map(Int64.init),
                          strides: [Int64(stride.height), Int64(stride.width)],
                          dilations: [Int64(dilation.height - 1), Int64(dilation.width - 1)],
                          padL: [Int64(padBefore.height), Int64(padBefore.width)],
                          padR: [Int64(padAfter.height), Int64(padAfter.width)])
        guard let conv = dnnl.convolution(key) else { return nil }
        let out = Tensor(uninitializedShape: outputShape)
        conv.run(conv.forward, [storage.pointer, weight.storage.pointer, out.storage.pointer])
        let channels = outputShape[1], plane = outputShape[2] * outputShape[3]
        if let bias {
            let o = out.storage.pointer, b = bias.storage.pointer
            Threading.parallelChunks(outputShape[0] * channels, costPerItem: plane) { _, r in
                for i in r { let row = o + i * plane, v = b[i % channels]; for p in 0..<plane { row[p] += v } }
            }
        }
        let inputs = bias.map { [self, weight, $0] } ?? [self, weight]
        return Tensor.record(transposed ? "transposedConv2d" : "conv2d", inputs, out) { [self] g in
            var dx: Tensor? = nil, dw: Tensor? = nil
            if self.tracksGradient {
                dx = Tensor(uninitializedShape: self.shape)
                conv.run(conv.backwardData, [g.storage.pointer, weight.storage.pointer, dx!.storage.pointer])
            }
            if weight.tracksGradient {
                dw = Tensor(uninitializedShape: weight.shape)
                conv.run(conv.backwardWeights, [self.storage.pointer, g.storage.pointer, dw!.storage.pointer])
            }
            var grads: [Tensor?] = [dx, dw]
            if let bias { grads.append(bias.tracksGradient ? g.sum(axes: [0, 2, 3]) : nil) }
            return grads
        }
    }
}
