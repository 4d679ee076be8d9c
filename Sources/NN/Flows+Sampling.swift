// The sampling path of a flow for inference: many draws per context, run through the
// inverses in cache-sized blocks of rows with FlowKernels, without autograd.
import Autograd
import Foundation

extension Flow {
    /// `count` draws for each context row, `[N · count, features]`, the draws of row `i` at
    /// `i·count ..< (i+1)·count` (`context` `[N, contextFeatures]`; nil for an unconditional
    /// flow, giving `count` draws).
    ///
    /// The normal draws come from `generator` in the same order as `sample(_:context:generator:)`
    /// with each context row repeated `count` times, so both give the same samples (to float
    /// rounding). Outside `withNoGrad`, or with a layer the fast path does not know (MAF), it
    /// is that path. Inside `withNoGrad` it is the inference sampler: each coupling layer's
    /// first conditioner layer is split into its context columns, applied once per context
    /// row (a bias per galaxy that its draws share), and its passed-feature columns; the draws
    /// of many contexts then go together through the conditioners' dense layers (one GEMM per
    /// layer per block of 256 rows) and the inverse splines, in blocks split over the workers.
    public func sample(perContext count: Int, context: Tensor?, generator: inout SeededGenerator) -> Tensor {
        precondition(count > 0, "Flow: \(count) draws per context")
        let groups = context?.shape[0] ?? 1
        if let context {
            precondition(contextFeatures > 0 && context.rank == 2 && context.shape[1] == contextFeatures,
                         "Flow: context \(context.shape) must be [N, \(contextFeatures)]")
        } else {
            precondition(contextFeatures == 0, "Flow: a flow with \(contextFeatures) context features needs a context")
        }
        guard !GradMode.isEnabled, let plan = FlowSamplingPlan(self) else {
            let rows = context.map { c in
                c.indexSelected(axis: 0, (0..<c.shape[0]).flatMap { repeatElement($0, count: count) })
            }
            return sample(groups * count, context: rows, generator: &generator)
        }
        let draws = Tensor.randomNormal([groups * count, features], generator: &generator)
        plan.invert(draws, context: context, rowsPerContext: count)
        return draws
    }
}

/// The inverses of a flow's layers (last first) as steps the inference sampler runs on raw
/// rows; nil for a flow with a layer it does not handle.
struct FlowSamplingPlan {
    /// One coupling layer: its conditioner's dense layers (ReLU between) and elementwise map.
    struct Coupling {
        let passed: [Int]
        let transformed: [Int]
        let dense: [Dense]
        let transform: ElementwiseTransform
        /// The first dense layer's passed-feature columns, transposed: `[passed, width]`.
        let passedWeight: [Float]

        init(passed: [Int], transformed: [Int], dense: [Dense], transform: ElementwiseTransform) {
            self.passed = passed; self.transformed = transformed; self.dense = dense; self.transform = transform
            let first = dense[0], width = first.outputFeatures, w = first.weight.storage.pointer
            passedWeight = (0..<(passed.count * width)).map { w[($0 % width) * first.inputFeatures + $0 / width] }
        }
    }

    enum Step {
        case coupling(Coupling)
        /// `x[order[j]] = y[j]`.
        case permutation(order: [Int])
        /// `x = (y − bias)·exp(−log s)`.
        case actNorm(logScale: Tensor, bias: Tensor)
    }

    let features: Int
    let contextFeatures: Int
    /// In the order the inverse applies them (the flow's last layer first).
    let steps: [Step]
    /// Rows per block: the dense layers' activations of a block stay in L2.
    static let blockRows = 256

    init?(_ flow: Flow) {
        features = flow.features
        contextFeatures = flow.contextFeatures
        var steps = [Step]()
        for t in flow.transforms.reversed() {
            switch t {
            case let c as CouplingTransform:
                var dense = [Dense]()
                for (i, layer) in c.conditioner.layers.enumerated() {
                    if i % 2 == 0, let d = layer as? Dense { dense.append(d); continue }
                    guard i % 2 == 1, let a = layer as? Activation, a.function == .relu else { return nil }
                }
                guard let first = dense.first, c.conditioner.layers.count == 2 * dense.count - 1,
                      first.inputFeatures == c.passedIndices.count + c.contextFeatures,
                      dense.last!.outputFeatures == c.transformedIndices.count * c.transform.parameterCount else { return nil }
                steps.append(.coupling(Coupling(passed: c.passedIndices, transformed: c.transformedIndices,
                                                dense: dense, transform: c.transform)))
            case let p as Permutation:
                steps.append(.permutation(order: p.indices))
            case let a as ActNorm:
                steps.append(.actNorm(logScale: a.logScale, bias: a.bias))
            default:
                return nil
            }
        }
        self.steps = steps
    }

    /// Runs the inverses on `values` (`[rows, features]`, the base draws) in place; row `r`
    /// uses context row `r / rowsPerContext`.
    func invert(_ values: Tensor, context: Tensor?, rowsPerContext: Int) {
        let rows = values.shape[0], f = features
        let groups = context?.shape[0] ?? 1
        // Per coupling layer: the first dense layer's bias plus its context columns applied to
        // every context row, `[groups, width]`.
        let contextBiases: [Tensor?] = steps.map { step -> Tensor? in
            guard case let .coupling(c) = step else { return nil }
            let first = c.dense[0], width = first.outputFeatures, passed = c.passed.count
            let out = Tensor.zeros([groups, width])
            if let context {
                FlowKernels.dense(rows: groups, input: context.storage.pointer, inputStride: contextFeatures,
                                  inputFeatures: contextFeatures, weight: first.weight.storage.pointer + passed,
                                  weightStride: first.inputFeatures, outputFeatures: width,
                                  bias: first.bias?.storage.pointer, relu: false,
                                  output: out.storage.pointer, outputStride: width)
            } else {
                FlowKernels.dense(rows: 1, input: out.storage.pointer, inputStride: 0, inputFeatures: 0,
                                  weight: first.weight.storage.pointer, weightStride: first.inputFeatures,
                                  outputFeatures: width, bias: first.bias?.storage.pointer, relu: false,
                                  output: out.storage.pointer, outputStride: width)
            }
            return out
        }
        let widest = steps.reduce(f) { w, step in
            guard case let .coupling(c) = step else { return w }
            return c.dense.reduce(w) { Swift.max($0, $1.outputFeatures) }
        }
        let block = Self.blockRows
        let blocks = (rows + block - 1) / block
        let x = values.storage.pointer
        withExtendedLifetime((contextBiases, values)) {
            Threading.parallelChunks(blocks, costPerItem: block * 10_000) { _, range in
                // Per worker: two activation buffers and one for gathered values.
                let scratch = UnsafeMutablePointer<Float>.allocate(capacity: block * (2 * widest + f))
                defer { scratch.deallocate() }
                let a = scratch, b = scratch + block * widest, gathered = scratch + 2 * block * widest
                for blockIndex in range {
                    let first = blockIndex * block, n = Swift.min(block, rows - first)
                    let xb = x + first * f
                    for (s, step) in steps.enumerated() {
                        switch step {
                        case let .coupling(c):
                            invert(c, rows: n, firstRow: first, values: xb, contextBias: contextBiases[s]!,
                                   rowsPerContext: rowsPerContext, a: a, b: b, gathered: gathered)
                        case let .permutation(order):
                            for r in 0..<n {
                                let row = xb + r * f
                                gathered.update(from: row, count: f)
                                for j in 0..<f { row[order[j]] = gathered[j] }
                            }
                        case let .actNorm(logScale, bias):
                            let ls = logScale.storage.pointer, bp = bias.storage.pointer
                            for j in 0..<f { gathered[j] = Foundation.exp(-ls[j]) }
                            for r in 0..<n {
                                let row = xb + r * f
                                for j in 0..<f { row[j] = (row[j] - bp[j]) * gathered[j] }
                            }
                        }
                    }
                }
            }
        }
    }

    /// One coupling layer's inverse on `rows` rows at `values`: conditioner on the passed
    /// features (the context's share from `contextBias`), then the inverse map of the
    /// transformed features.
    private func invert(_ c: Coupling, rows n: Int, firstRow: Int, values xb: UnsafeMutablePointer<Float>,
                        contextBias: Tensor, rowsPerContext: Int, a: UnsafeMutablePointer<Float>,
                        b: UnsafeMutablePointer<Float>, gathered: UnsafeMutablePointer<Float>) {
        let f = features
        let first = c.dense[0]
        var width = first.outputFeatures
        // The context's share, row by row from its context's bias.
        let cb = contextBias.storage.pointer
        let perContext = contextBias.shape[0] > 1
        for r in 0..<n {
            let g = perContext ? (firstRow + r) / rowsPerContext : 0
            (a + r * width).update(from: cb + g * width, count: width)
        }
        // The passed features' share.
        let p = c.passed.count
        for r in 0..<n { for (i, column) in c.passed.enumerated() { gathered[r * p + i] = xb[r * f + column] } }
        if p > 0 {
            c.passedWeight.withUnsafeBufferPointer {
                FlowKernels.addProducts(rows: n, input: gathered, inputStride: p, inputFeatures: p, weightTransposed: $0.baseAddress!,
                                        outputFeatures: width, relu: c.dense.count > 1, output: a, outputStride: width)
            }
        } else if c.dense.count > 1 {
            for i in 0..<(n * width) { a[i] = Swift.max(a[i], 0) }
        }
        var input = a, output = b
        for (l, layer) in c.dense.enumerated().dropFirst() {
            FlowKernels.dense(rows: n, input: input, inputStride: width, inputFeatures: width,
                              weight: layer.weight.storage.pointer, weightStride: layer.inputFeatures,
                              outputFeatures: layer.outputFeatures, bias: layer.bias?.storage.pointer,
                              relu: l < c.dense.count - 1, output: output, outputStride: layer.outputFeatures)
            width = layer.outputFeatures
            swap(&input, &output)
        }
        // `input` now holds the parameters `[n, T, P]`; the transformed values in the same order.
        let t = c.transformed.count, parameters = c.transform.parameterCount
        for r in 0..<n { for (i, column) in c.transformed.enumerated() { gathered[r * t + i] = xb[r * f + column] } }
        switch c.transform {
        case let .affine(bound):
            FlowKernels.affineInverse(gathered, count: n * t, parameters: input, parameterStride: parameters,
                                      logScaleBound: bound)
        case let .rationalQuadraticSpline(bins, tailBound):
            FlowKernels.rationalQuadraticSplineInverse(
                gathered, count: n * t, parameters: input, parameterStride: parameters, bins: bins, tailBound: tailBound,
                minimumWidth: ElementwiseTransform.minimumBinWidth, minimumHeight: ElementwiseTransform.minimumBinHeight,
                minimumDerivative: ElementwiseTransform.minimumDerivative)
        }
        for r in 0..<n { for (i, column) in c.transformed.enumerated() { xb[r * f + column] = gathered[r * t + i] } }
    }
}
