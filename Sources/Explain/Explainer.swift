// Attribution methods with captum's semantics, on the training (un-fused) forward pass.
import Autograd
import Foundation
import NN

/// Input attributions of a classifier or regressor `[N, C, H, W] → [N, K]`, with the
/// semantics of captum 0.9 (Saliency, NoiseTunnel(Saliency), IntegratedGradients,
/// LayerGradCam + LayerAttribution.interpolate, Occlusion), so maps can be checked against it.
///
///     let explainer = try Explainer(model: trained.network)
///     let maps = try explainer.attribute(images, targets: [4, 1], method: .integratedGradients)
///
/// The explained output is the network's output for the target index (a logit, or a
/// standardised regression target), as captum does with the model itself. Every method
/// runs in batches of at most `batchSize` network inputs (noisy copies, path points or
/// occluded copies), so memory stays bounded whatever the number of steps or windows.
///
/// The explainer puts the model in eval mode and turns gradient tracking off on its
/// parameters (only input gradients are needed); `init` remembers and `restore()` undoes it.
public final class Explainer {
    public let model: any Layer
    private let savedRequiresGrad: [(Tensor, Bool)]

    public init(model: any Layer) {
        self.model = model
        model.eval()
        savedRequiresGrad = model.namedParameters().map { ($0.tensor, $0.tensor.requiresGrad) }
        model.setRequiresGrad(false)
    }

    /// Gives the parameters their `requiresGrad` back (for a model that is trained afterwards).
    public func restore() { for (tensor, flag) in savedRequiresGrad { tensor.requiresGrad = flag } }

    // MARK: - One entry point

    /// Any method with its options: maps `[N, C, H, W]` (Grad-CAM: `[N, 1, H, W]`) and, for
    /// integrated gradients, the completeness deltas.
    public func attribute(_ input: Tensor, targets: [Int], method: AttributionMethod,
                          options: AttributionOptions = AttributionOptions()) throws -> Attribution {
        try check(input, targets)
        switch method {
        case .saliency:
            return Attribution(method: method, maps: saliency(input, targets: targets, absolute: options.absolute,
                                                              batchSize: options.batchSize))
        case .smoothGrad:
            return Attribution(method: method, maps: try smoothGrad(input, targets: targets, options: options.smoothGrad,
                                                                    absolute: options.absolute, batchSize: options.batchSize))
        case .integratedGradients:
            let baseline = options.baseline == 0 ? nil : Tensor(repeating: options.baseline, shape: input.shape)
            if let tolerance = options.tolerance {
                let r = try adaptiveIntegratedGradients(input, targets: targets, baseline: baseline, initialSteps: options.steps,
                                                        tolerance: tolerance, maxSteps: options.maxSteps,
                                                        batchSize: options.batchSize)
                return Attribution(method: method, maps: r.maps, deltas: r.deltas, steps: r.steps, converged: r.converged)
            }
            let (maps, deltas) = try integratedGradients(input, targets: targets, baseline: baseline,
                                                         steps: options.steps, method: options.integration,
                                                         batchSize: options.batchSize)
            return Attribution(method: method, maps: maps, deltas: deltas,
                               steps: Array(repeating: options.steps, count: input.shape[0]))
        case .gradCAM:
            return Attribution(method: method, maps: try gradCAM(input, targets: targets, layer: options.layer,
                                                                 relu: options.relu, interpolation: options.interpolation,
                                                                 batchSize: options.batchSize))
        case .occlusion:
            return Attribution(method: method, maps: try occlusion(input, targets: targets, window: options.window,
                                                                   strides: options.strides, baseline: options.occlusionBaseline,
                                                                   batchSize: options.batchSize))
        }
    }

    // MARK: - Outputs and gradients

    /// The network's outputs `[N, K]` without recording, in batches.
    public func outputs(_ input: Tensor, batchSize: Int = 64) -> Tensor {
        withNoGrad {
            Tensor.concatenate(Self.chunks(input.shape[0], batchSize).map { model(input[$0]) }, axis: 0)
        }
    }

    /// ∂ output[i, targets[i]] / ∂ input[i] for a batch that fits in memory; also the outputs.
    func gradients(_ input: Tensor, targets: [Int]) -> (gradients: Tensor, outputs: Tensor) {
        let x = Tensor(shape: input.shape, data: input.scalars, requiresGrad: true)
        let y = model(x)
        let selected = (y * Tensor.oneHot(targets, classCount: y.shape[1])).sum()
        selected.backward()
        return (x.grad ?? Tensor.zeros(input.shape), y.detached())
    }

    /// Plain gradients in batches of `batchSize`.
    func gradients(_ input: Tensor, targets: [Int], batchSize: Int) -> Tensor {
        let parts = Self.chunks(input.shape[0], batchSize).map { range in
            gradients(input[range], targets: Array(targets[range])).gradients
        }
        return parts.count == 1 ? parts[0] : Tensor.concatenate(parts, axis: 0)
    }

    // MARK: - Saliency

    /// captum's `Saliency`: the gradient of the target output with respect to the input,
    /// its absolute value when `absolute` (captum's default).
    public func saliency(_ input: Tensor, targets: [Int], absolute: Bool = true, batchSize: Int = 64) -> Tensor {
        let g = gradients(input, targets: targets, batchSize: batchSize)
        return absolute ? withNoGrad { g.abs() } : g
    }

    // MARK: - SmoothGrad

    /// captum's `NoiseTunnel(Saliency)`: saliency averaged over `samples` noisy copies
    /// `x + N(0, standardDeviation²)` (captum's `stdevs`, in input units), as
    /// `smoothgrad` (mean), `smoothgrad_sq` (mean of squares) or `vargrad` (variance).
    ///
    /// - `noise`: the noise itself, `[N · samples, C, H, W]` with the copies of image `i` at
    ///   rows `i · samples ..< (i + 1) · samples` (captum's `repeat_interleave` order); nil
    ///   draws it from `options.seed`.
    public func smoothGrad(_ input: Tensor, targets: [Int], options: SmoothGradOptions, absolute: Bool = true,
                           batchSize: Int = 64, noise: Tensor? = nil) throws -> Tensor {
        let n = input.shape[0], s = options.samples, size = input.count / max(n, 1)
        guard s > 0, options.standardDeviation >= 0 else {
            throw ExplainError.invalidOption(option: "smoothgrad", reason: "samples must be positive and the noise level "
                                             + "non-negative; got samples \(s), stdev \(options.standardDeviation)")
        }
        if let noise, noise.shape != [n * s] + Array(input.shape.dropFirst()) {
            throw ExplainError.shapeMismatch(what: "smoothgrad noise", received: noise.shape,
                                             expected: [n * s] + Array(input.shape.dropFirst()))
        }
        let pixels = input.scalars
        let noiseValues = noise?.scalars
        var sum = [Double](repeating: 0, count: input.count), squares = sum
        for range in Self.chunks(n * s, batchSize) {
            var batch = [Float](repeating: 0, count: range.count * size)
            var rowTargets = [Int]()
            for (row, pair) in range.enumerated() {
                let i = pair / s
                // One stream per noisy copy, so the batch size does not change the noise.
                var generator = SeededGenerator(seed: options.seed, stream: UInt64(pair))
                rowTargets.append(targets[i])
                for k in 0..<size {
                    let e = noiseValues?[pair * size + k] ?? Float(options.standardDeviation * generator.normal())
                    batch[row * size + k] = pixels[i * size + k] + e
                }
            }
            let g = gradients(Tensor(shape: [range.count] + Array(input.shape.dropFirst()), data: batch),
                              targets: rowTargets).gradients.scalars
            for (row, pair) in range.enumerated() {
                let i = pair / s
                for k in 0..<size {
                    let a = Double(absolute ? abs(g[row * size + k]) : g[row * size + k])
                    sum[i * size + k] += a
                    squares[i * size + k] += a * a
                }
            }
        }
        let values: [Float] = (0..<input.count).map { j in
            let mean = sum[j] / Double(s), meanSquare = squares[j] / Double(s)
            switch options.kind {
            case .smoothGrad: return Float(mean)
            case .smoothGradSquared: return Float(meanSquare)
            case .varGrad: return Float(meanSquare - mean * mean)
            }
        }
        return Tensor(shape: input.shape, data: values)
    }

    // MARK: - Integrated gradients

    /// captum's `IntegratedGradients`: `(x − x') · Σ_k w_k ∂f(x' + α_k (x − x'))/∂x` with the
    /// nodes and weights of `method` (Gauss-Legendre by default, as captum), and per image the
    /// completeness delta `Σ attributions − (f(x) − f(x'))` (captum's convergence delta).
    ///
    /// - `baseline`: `x'`, one image `[C, H, W]`, one per input `[N, C, H, W]`, or nil for zeros.
    /// - `batchSize`: path points per pass (captum's `internal_batch_size`).
    public func integratedGradients(_ input: Tensor, targets: [Int], baseline: Tensor? = nil, steps: Int = 50,
                                    method: IntegrationMethod = .gaussLegendre,
                                    batchSize: Int = 64) throws -> (maps: Tensor, deltas: [Double]) {
        let n = input.shape[0], size = input.count / max(n, 1)
        guard steps >= method.minimumSteps else {
            throw ExplainError.invalidOption(option: "steps", reason: "\(method.rawValue) needs at least "
                                             + "\(method.minimumSteps) steps; got \(steps)")
        }
        let base = try baselineValues(baseline, like: input)
        let pixels = input.scalars
        let (alphas, weights) = method.nodes(steps)
        var total = [Double](repeating: 0, count: input.count)
        // Rows are (image, step) pairs, step-major within an image.
        for range in Self.chunks(n * steps, batchSize) {
            var batch = [Float](repeating: 0, count: range.count * size)
            var rowTargets = [Int]()
            for (row, pair) in range.enumerated() {
                let i = pair / steps, alpha = Float(alphas[pair % steps])
                rowTargets.append(targets[i])
                for k in 0..<size {
                    let b = base[i * size + k]
                    batch[row * size + k] = b + alpha * (pixels[i * size + k] - b)
                }
            }
            let g = gradients(Tensor(shape: [range.count] + Array(input.shape.dropFirst()), data: batch),
                              targets: rowTargets).gradients.scalars
            for (row, pair) in range.enumerated() {
                let i = pair / steps, w = weights[pair % steps]
                for k in 0..<size { total[i * size + k] += w * Double(g[row * size + k]) }
            }
        }
        let maps = (0..<input.count).map { j in Float(total[j]) * (pixels[j] - base[j]) }
        let atInput = outputs(input, batchSize: batchSize).scalars
        let atBaseline = outputs(Tensor(shape: input.shape, data: base), batchSize: batchSize).scalars
        let classes = atInput.count / max(n, 1)
        let deltas = (0..<n).map { i in
            maps[(i * size)..<((i + 1) * size)].reduce(0.0) { $0 + Double($1) }
                - Double(atInput[i * classes + targets[i]] - atBaseline[i * classes + targets[i]])
        }
        return (Tensor(shape: input.shape, data: maps), deltas)
    }

    /// Integrated gradients to a completeness tolerance: per image, the trapezoid rule on an
    /// adaptively refined grid of the path `x' + α (x − x')`, starting from `initialSteps`
    /// equally spaced points (the grid of captum's `riemann_trapezoid`, whose weights 1/n sum
    /// to (n − 1)/n; here they are the trapezoid's and sum to 1) and bisecting the intervals
    /// whose local completeness error is largest until `|Σ attributions − (f(x) − f(x'))|
    /// ≤ tolerance · |f(x) − f(x')|` or `maxSteps` gradient evaluations are spent.
    ///
    /// Each interval `[a, b]` has an exact local error: the trapezoid of the path derivative
    /// `(x − x')·∇f` minus `f(b) − f(a)` (the fundamental theorem of calculus; the outputs come
    /// with the gradient evaluations), and the local errors add up to the completeness delta.
    /// With ReLU networks the integrand is piecewise constant, so intervals without a kink are
    /// exact and the evaluations go where the gradient jumps. Every evaluation is kept: a
    /// bisection costs one new point. Each round evaluates up to `batchSize` new points.
    ///
    /// Returns the maps, the deltas, the gradient evaluations used and whether the tolerance
    /// was met, per image. Memory: the gradients of up to `maxSteps` points of one image.
    public func adaptiveIntegratedGradients(_ input: Tensor, targets: [Int], baseline: Tensor? = nil, initialSteps: Int = 32,
                                            tolerance: Double, maxSteps: Int = 1024, batchSize: Int = 64) throws
        -> (maps: Tensor, deltas: [Double], steps: [Int], converged: [Bool]) {
        guard initialSteps >= 2 else {
            throw ExplainError.invalidOption(option: "steps", reason: "the adaptive rule starts from at least 2 points; got \(initialSteps)")
        }
        guard tolerance > 0, tolerance.isFinite else {
            throw ExplainError.invalidOption(option: "tolerance", reason: "must be a positive fraction (0.01 = 1 %); got \(tolerance)")
        }
        guard maxSteps >= initialSteps else {
            throw ExplainError.invalidOption(option: "max_steps", reason: "must be at least steps (\(initialSteps)); got \(maxSteps)")
        }
        let n = input.shape[0], size = input.count / max(n, 1), imageShape = Array(input.shape.dropFirst())
        let base = try baselineValues(baseline, like: input)
        let pixels = input.scalars
        var maps = [Float](repeating: 0, count: input.count)
        var deltas = [Double](), used = [Int](), converged = [Bool]()
        for i in 0..<n {
            let x = Array(pixels[(i * size)..<((i + 1) * size)]), b = Array(base[(i * size)..<((i + 1) * size)])
            let difference = (0..<size).map { x[$0] - b[$0] }
            // Points of the path: α, the gradient, the output and the path derivative (x − x')·∇f.
            var alphas = [Double](), pathGradients = [[Float]](), pathOutputs = [Double](), slopes = [Double]()
            func evaluate(_ new: [Double]) {
                for range in Self.chunks(new.count, batchSize) {
                    var batch = [Float](repeating: 0, count: range.count * size)
                    for (row, k) in range.enumerated() {
                        let alpha = Float(new[k])
                        for j in 0..<size { batch[row * size + j] = b[j] + alpha * difference[j] }
                    }
                    let (g, y) = self.gradients(Tensor(shape: [range.count] + imageShape, data: batch),
                                           targets: Array(repeating: targets[i], count: range.count))
                    let gs = g.scalars, ys = y.scalars, classes = y.shape[1]
                    for (row, k) in range.enumerated() {
                        let point = Array(gs[(row * size)..<((row + 1) * size)])
                        var slope = 0.0
                        for j in 0..<size { slope += Double(difference[j]) * Double(point[j]) }
                        alphas.append(new[k]); pathGradients.append(point)
                        pathOutputs.append(Double(ys[row * classes + targets[i]])); slopes.append(slope)
                    }
                }
            }
            evaluate((0..<initialSteps).map { Double($0) / Double(initialSteps - 1) })
            var met = false
            while true {
                let order = alphas.indices.sorted { alphas[$0] < alphas[$1] }
                let local: [Double] = (1..<order.count).map { k in
                    let p = order[k - 1], q = order[k]
                    return 0.5 * (alphas[q] - alphas[p]) * (slopes[p] + slopes[q]) - (pathOutputs[q] - pathOutputs[p])
                }
                let change = abs(pathOutputs[order.last!] - pathOutputs[order[0]])
                if abs(local.reduce(0, +)) <= tolerance * change { met = true; break }
                let budget = min(batchSize, maxSteps - alphas.count)
                if budget <= 0 { break }
                // Bisect the worst intervals until the rest's absolute errors are within half the tolerance.
                let worst = local.indices.sorted { abs(local[$0]) > abs(local[$1]) }
                var rest = local.reduce(0) { $0 + abs($1) }, chosen = [Double]()
                for k in worst where chosen.count < budget && (chosen.isEmpty || rest > 0.5 * tolerance * change) {
                    let a = alphas[order[k]], c = alphas[order[k + 1]]
                    guard c - a > 1e-12 else { continue }
                    chosen.append(0.5 * (a + c))
                    rest -= abs(local[k])
                }
                if chosen.isEmpty { break }
                evaluate(chosen)
            }
            // Trapezoid weights on the final grid: half of each neighbouring interval.
            let order = alphas.indices.sorted { alphas[$0] < alphas[$1] }
            var total = [Double](repeating: 0, count: size)
            for (k, p) in order.enumerated() {
                let left = k > 0 ? alphas[p] - alphas[order[k - 1]] : 0
                let right = k + 1 < order.count ? alphas[order[k + 1]] - alphas[p] : 0
                let w = 0.5 * (left + right), g = pathGradients[p]
                for j in 0..<size { total[j] += w * Double(g[j]) }
            }
            var sum = 0.0
            for j in 0..<size {
                let a = Float(total[j]) * difference[j]
                maps[i * size + j] = a
                sum += Double(a)
            }
            let atInput = self.outputs(Tensor(shape: [1] + imageShape, data: x)).scalars[targets[i]]
            let atBaseline = self.outputs(Tensor(shape: [1] + imageShape, data: b)).scalars[targets[i]]
            let delta = sum - Double(atInput - atBaseline)
            deltas.append(delta)
            used.append(alphas.count)
            // The reported delta (float32 maps and outputs) decides, as users read it.
            converged.append(met && abs(delta) <= tolerance * Double(abs(atInput - atBaseline)) * (1 + 1e-3))
        }
        return (Tensor(shape: input.shape, data: maps), deltas, used, converged)
    }

    /// The baseline's pixels for every input image.
    func baselineValues(_ baseline: Tensor?, like input: Tensor) throws -> [Float] {
        guard let baseline else { return [Float](repeating: 0, count: input.count) }
        if baseline.shape == input.shape { return baseline.scalars }
        if baseline.shape == Array(input.shape.dropFirst()) {
            return Array([[Float]](repeating: baseline.scalars, count: input.shape[0]).joined())
        }
        throw ExplainError.shapeMismatch(what: "baseline", received: baseline.shape, expected: input.shape)
    }

    // MARK: - Grad-CAM

    /// captum's `LayerGradCam` followed by `LayerAttribution.interpolate`: the layer's
    /// activations `A` `[N, C, h, w]` weighted by the spatial mean of the target's gradient
    /// with respect to them, summed over channels (ReLU when `relu`), then resampled to the
    /// input's `H × W` (`nearest`, captum's default, or `bilinear`). Returns `[N, 1, H, W]`.
    ///
    /// - `layer`: the layer's key path (`layer4`, `layer3.1.conv2`, `6` in a `Sequential`).
    public func gradCAM(_ input: Tensor, targets: [Int], layer name: String, relu: Bool = false,
                        interpolation: MapInterpolation = .nearest, batchSize: Int = 64) throws -> Tensor {
        let layer = try Self.layer(named: name, in: model)
        let height = input.shape[2], width = input.shape[3]
        var maps = [Float]()
        for range in Self.chunks(input.shape[0], batchSize) {
            let tap = LayerTap(layer) { output in
                let leaf = output.detached()
                leaf.requiresGrad = true
                return leaf
            }
            let y = tap.run { model(input[range]) }
            guard let activations = tap.output, activations.rank == 4 else {
                throw ExplainError.layerNotSpatial(layer: name, shape: tap.output?.shape ?? [])
            }
            (y * Tensor.oneHot(Array(targets[range]), classCount: y.shape[1])).sum().backward()
            let a = activations.scalars
            let g = activations.grad?.scalars ?? [Float](repeating: 0, count: a.count)
            let (c, h, w) = (activations.shape[1], activations.shape[2], activations.shape[3])
            for image in 0..<range.count {
                var cam = [Float](repeating: 0, count: h * w)
                for channel in 0..<c {
                    let offset = (image * c + channel) * h * w
                    let weight = g[offset..<(offset + h * w)].reduce(0, +) / Float(h * w)
                    for p in 0..<(h * w) { cam[p] += weight * a[offset + p] }
                }
                if relu { cam = cam.map { max($0, 0) } }
                maps += interpolation.resample(cam, height: h, width: w, toHeight: height, toWidth: width)
            }
        }
        return Tensor(shape: [input.shape[0], 1, height, width], data: maps)
    }

    /// The layer at a key path, or a typed error listing every valid path.
    public static func layer(named name: String, in model: any Layer) throws -> any Layer {
        let layers = model.namedLayers().filter { !$0.path.isEmpty }
        guard let match = layers.first(where: { $0.path == name }) else {
            throw ExplainError.unknownLayer(layer: name, valid: layers.map(\.path))
        }
        return match.layer
    }

    // MARK: - Occlusion

    /// captum's `Occlusion`: a `window` `[c, h, w]` slides over the input by `strides`
    /// (`ceil((size − window) / stride) + 1` positions per axis, the last ones cut at the
    /// edge); each position is replaced by `baseline`, and every covered element gets the
    /// drop `f(x) − f(occluded)` of the target output, averaged over the windows covering it.
    ///
    /// - `batchSize`: occluded copies per pass (captum's `perturbations_per_eval`).
    public func occlusion(_ input: Tensor, targets: [Int], window: [Int], strides: [Int], baseline: Float = 0,
                          batchSize: Int = 64) throws -> Tensor {
        let shape = Array(input.shape.dropFirst())
        let window = try Self.fullShape(window, like: shape, option: "window")
        let strides = try Self.fullShape(strides, like: shape, option: "stride")
        for axis in 0..<3 where window[axis] > shape[axis] || strides[axis] > window[axis] || strides[axis] < 1 || window[axis] < 1 {
            throw ExplainError.invalidOption(option: "window", reason: "window \(window) must fit in the input \(shape) "
                                             + "and each stride \(strides) must be between 1 and the window")
        }
        let counts = (0..<3).map { axis in
            Int((Double(shape[axis] - window[axis]) / Double(strides[axis])).rounded(.up)) + 1
        }
        let positions = counts.reduce(1, *)
        let (channels, height, width) = (shape[0], shape[1], shape[2])
        let size = channels * height * width
        let pixels = input.scalars
        let reference = outputs(input, batchSize: batchSize).scalars
        let classes = reference.count / max(input.shape[0], 1)
        var maps = [Float]()
        // The windows' boxes in captum's order: the first axis varies fastest.
        let boxes: [[Range<Int>]] = (0..<positions).map { p in
            var rest = p
            return (0..<3).map { axis in
                let start = (rest % counts[axis]) * strides[axis]
                rest /= counts[axis]
                return start..<min(start + window[axis], shape[axis])
            }
        }
        for image in 0..<input.shape[0] {
            var total = [Float](repeating: 0, count: size)
            var covered = [Float](repeating: 0, count: size)
            let original = pixels[(image * size)..<((image + 1) * size)]
            let f0 = reference[image * classes + targets[image]]
            for range in Self.chunks(positions, batchSize) {
                var batch = [Float]()
                batch.reserveCapacity(range.count * size)
                for p in range {
                    var copy = Array(original)
                    Self.forEach(in: boxes[p], height: height, width: width) { copy[$0] = baseline }
                    batch += copy
                }
                let y = withNoGrad { model(Tensor(shape: [range.count] + shape, data: batch)) }.scalars
                for (row, p) in range.enumerated() {
                    let drop = f0 - y[row * classes + targets[image]]
                    Self.forEach(in: boxes[p], height: height, width: width) { total[$0] += drop; covered[$0] += 1 }
                }
            }
            maps += zip(total, covered).map { $0 / $1 }
        }
        return Tensor(shape: input.shape, data: maps)
    }

    /// A window or stride given as `[c, h, w]`, `[h, w]` (all channels) or one number (`[C, n, n]`).
    static func fullShape(_ values: [Int], like shape: [Int], option: String) throws -> [Int] {
        switch values.count {
        case 3: return values
        case 2: return option == "window" ? [shape[0]] + values : [1] + values
        case 1: return option == "window" ? [shape[0], values[0], values[0]] : [1, values[0], values[0]]
        default:
            throw ExplainError.invalidOption(option: option, reason: "give [channels, height, width], [height, width] "
                                             + "or one size; got \(values)")
        }
    }

    static func forEach(in box: [Range<Int>], height: Int, width: Int, _ body: (Int) -> Void) {
        for c in box[0] { for y in box[1] { for x in box[2] { body((c * height + y) * width + x) } } }
    }

    // MARK: - Helpers

    func check(_ input: Tensor, _ targets: [Int]) throws {
        guard input.rank == 4 else {
            throw ExplainError.shapeMismatch(what: "input", received: input.shape, expected: [-1, -1, -1, -1])
        }
        guard targets.count == input.shape[0] else {
            throw ExplainError.invalidOption(option: "target", reason: "one target per image: \(input.shape[0]) images, "
                                             + "\(targets.count) targets")
        }
        let classes = withNoGrad { model(input[0..<1]) }.shape[1]
        if let bad = targets.first(where: { $0 < 0 || $0 >= classes }) {
            throw ExplainError.targetOutOfRange(target: bad, outputs: classes)
        }
    }

    static func chunks(_ count: Int, _ size: Int) -> [Range<Int>] {
        let size = max(size, 1)
        return stride(from: 0, to: count, by: size).map { $0..<min($0 + size, count) }
    }
}
