import Autograd
@testable import Explain
import NN
import TestSupport
import XCTest

/// Behaviour beyond captum parity: batching, seeds, completeness, errors.
final class ExplainerTests: XCTestCase {
    func smallCNN() -> Sequential { SimpleCNN.make(inputChannels: 2, classCount: 3, imageSize: 16, seed: 4) }
    func input(_ n: Int = 3) -> Tensor { Tensor.randomNormal([n, 2, 16, 16], seed: 8) }

    /// The batch size bounds memory only: every method gives the same maps with 1 or 64 inputs per pass.
    func testBatchSizeDoesNotChangeMaps() throws {
        let explainer = Explainer(model: smallCNN())
        let x = input(), targets = [0, 2, 1]
        for method in AttributionMethod.allCases {
            var small = AttributionOptions(), large = AttributionOptions()
            for o in [\AttributionOptions.steps] { small[keyPath: o] = 8; large[keyPath: o] = 8 }
            small.smoothGrad.samples = 3; large.smoothGrad.samples = 3
            small.layer = "6"; large.layer = "6"
            small.batchSize = 1; large.batchSize = 64
            let a = try explainer.attribute(x, targets: targets, method: method, options: small).maps
            let b = try explainer.attribute(x, targets: targets, method: method, options: large).maps
            assertClose(a, b, relativeTolerance: 1e-5, absoluteTolerance: 1e-6, method.rawValue)
        }
    }

    /// SmoothGrad's noise comes from its seed: the same seed repeats the maps, another changes them,
    /// and with no noise it is the saliency.
    func testSmoothGradSeeds() throws {
        let explainer = Explainer(model: smallCNN())
        let x = input(2)
        let a = try explainer.smoothGrad(x, targets: [1, 1], options: SmoothGradOptions(samples: 4, standardDeviation: 0.5, seed: 1))
        let b = try explainer.smoothGrad(x, targets: [1, 1], options: SmoothGradOptions(samples: 4, standardDeviation: 0.5, seed: 1))
        let c = try explainer.smoothGrad(x, targets: [1, 1], options: SmoothGradOptions(samples: 4, standardDeviation: 0.5, seed: 2))
        XCTAssertEqual(a.scalars, b.scalars)
        XCTAssertNotEqual(a.scalars, c.scalars)
        let noiseless = try explainer.smoothGrad(x, targets: [1, 1], options: SmoothGradOptions(samples: 3, standardDeviation: 0))
        assertClose(noiseless, explainer.saliency(x, targets: [1, 1]), relativeTolerance: 1e-5, absoluteTolerance: 1e-7)
        let variance = try explainer.smoothGrad(x, targets: [1, 1], options: SmoothGradOptions(samples: 3, standardDeviation: 0,
                                                                                            kind: .varGrad))
        XCTAssertLessThan(variance.scalars.map(abs).max()!, 1e-9)
    }

    /// Completeness: on a smooth network the integrated-gradients delta shrinks with the steps.
    func testIntegratedGradientsCompleteness() throws {
        let model = Sequential {
            Conv2D(inputChannels: 2, outputChannels: 4, kernelSize: 3, padding: 1, seed: 1)
            Activation(.tanh)
            GlobalAvgPool()
            Dense(inputFeatures: 4, outputFeatures: 3, seed: 2)
        }
        let explainer = Explainer(model: model)
        let x = input(2)
        let out = explainer.outputs(x).scalars, zero = explainer.outputs(Tensor.zeros(x.shape)).scalars
        let change = abs(Double(out[2] - zero[2]))
        let (_, coarse) = try explainer.integratedGradients(x, targets: [2, 2], steps: 2, method: .riemannRight)
        let (maps, fine) = try explainer.integratedGradients(x, targets: [2, 2], steps: 32)
        XCTAssertLessThan(abs(fine[0]), 1e-4 * max(change, 1e-3))
        XCTAssertGreaterThan(abs(coarse[0]), abs(fine[0]))
        XCTAssertEqual(maps.scalars[0..<512].reduce(0) { $0 + Double($1) }, change * (out[2] > zero[2] ? 1 : -1), accuracy: 1e-4)
    }

    /// A ReLU network: piecewise linear along the path, so fixed quadratures converge slowly.
    func reluNetwork() -> CountingLayer {
        CountingLayer(Sequential {
            Conv2D(inputChannels: 2, outputChannels: 16, kernelSize: 3, padding: 1, seed: 1)
            Activation(.relu)
            Conv2D(inputChannels: 16, outputChannels: 16, kernelSize: 3, padding: 1, seed: 2)
            Activation(.relu)
            GlobalAvgPool()
            Dense(inputFeatures: 16, outputFeatures: 3, seed: 3)
        })
    }

    /// `|Σ attributions − (f(x) − f(0))| / |f(x) − f(0)|` of image `i`, from the maps and the outputs.
    func relativeDelta(_ explainer: Explainer, _ x: Tensor, _ maps: Tensor, image i: Int, target: Int) -> Double {
        let size = x.count / x.shape[0]
        let out = explainer.outputs(x).scalars, zero = explainer.outputs(Tensor.zeros(x.shape)).scalars
        let classes = out.count / x.shape[0]
        let change = Double(out[i * classes + target] - zero[i * classes + target])
        let sum = maps.scalars[(i * size)..<((i + 1) * size)].reduce(0) { $0 + Double($1) }
        return abs(sum - change) / abs(change)
    }

    /// With a tolerance, integrated gradients refine the path until the completeness delta is
    /// within it, on a ReLU network where 64 fixed Gauss-Legendre steps are ten times off; the
    /// recorded steps are the gradient evaluations made.
    func testAdaptiveIntegratedGradientsMeetTheTolerance() throws {
        let network = reluNetwork()
        let explainer = Explainer(model: network)
        let x = input(2), targets = [0, 2]
        let (fixedMaps, _) = try explainer.integratedGradients(x, targets: targets, steps: 64)
        let fixed = (0..<2).map { relativeDelta(explainer, x, fixedMaps, image: $0, target: targets[$0]) }
        XCTAssertGreaterThan(fixed.min()!, 1e-4, "the network must have kinks that 64 fixed steps miss")
        let tolerance = fixed.min()! / 10
        network.gradientRows = 0
        let r = try explainer.adaptiveIntegratedGradients(x, targets: targets, initialSteps: 16, tolerance: tolerance,
                                                          maxSteps: 2048, batchSize: 32)
        XCTAssertEqual(r.converged, [true, true])
        XCTAssertEqual(r.steps.reduce(0, +), network.gradientRows)
        for i in 0..<2 {
            XCTAssertGreaterThan(r.steps[i], 16)
            XCTAssertLessThanOrEqual(r.steps[i], 2048)
            let reached = relativeDelta(explainer, x, r.maps, image: i, target: targets[i])
            XCTAssertLessThanOrEqual(reached, tolerance * 1.001, "image \(i): \(r.steps[i]) steps")
            XCTAssertEqual(abs(r.deltas[i]), reached * abs(Double(explainer.outputs(x).scalars[i * 3 + targets[i]]
                - explainer.outputs(Tensor.zeros(x.shape)).scalars[i * 3 + targets[i]])), accuracy: 1e-5)
        }
        // The same through `attribute`: the options carry the tolerance and the steps come back.
        var options = AttributionOptions()
        options.steps = 16; options.tolerance = tolerance; options.maxSteps = 2048; options.batchSize = 32
        let a = try explainer.attribute(x, targets: targets, method: .integratedGradients, options: options)
        XCTAssertEqual(a.steps, r.steps)
        XCTAssertEqual(a.maps.scalars, r.maps.scalars)
    }

    /// Without refinement (max_steps = steps) the rule is the trapezoid on captum's
    /// `riemann_trapezoid` grid; at the cap it stops with the tolerance not met; bad options are
    /// typed errors.
    func testAdaptiveIntegratedGradientsStartAndCap() throws {
        let network = reluNetwork()
        let explainer = Explainer(model: network)
        let x = input(2), targets = [1, 1]
        let loose = try explainer.adaptiveIntegratedGradients(x, targets: targets, initialSteps: 8, tolerance: 0.01, maxSteps: 8)
        let (captum, _) = try explainer.integratedGradients(x, targets: targets, steps: 8, method: .riemannTrapezoid)
        XCTAssertEqual(loose.steps, [8, 8])
        // captum's riemann_trapezoid weights are 1/n (summing to (n − 1)/n) on the grid k/(n − 1):
        // its maps are 7/8 of the trapezoid rule's on the same 8 points.
        assertClose(loose.maps, Tensor(shape: captum.shape, data: captum.scalars.map { $0 * 8 / 7 }),
                    relativeTolerance: 1e-5, absoluteTolerance: 1e-7)
        network.gradientRows = 0
        let capped = try explainer.adaptiveIntegratedGradients(x, targets: targets, initialSteps: 4, tolerance: 1e-7,
                                                               maxSteps: 11, batchSize: 2)
        XCTAssertEqual(capped.steps, [11, 11])
        XCTAssertEqual(capped.converged, [false, false])
        XCTAssertEqual(network.gradientRows, 22)
        XCTAssertThrowsError(try explainer.adaptiveIntegratedGradients(x, targets: targets, initialSteps: 16, tolerance: 0.01,
                                                                       maxSteps: 8)) { error in
            XCTAssertTrue(error.localizedDescription.contains("max_steps"), error.localizedDescription)
        }
        XCTAssertThrowsError(try explainer.adaptiveIntegratedGradients(x, targets: targets, tolerance: 0)) { error in
            XCTAssertTrue(error.localizedDescription.contains("tolerance"), error.localizedDescription)
        }
    }

    /// Occlusion of a window the network cannot see changes nothing.
    func testOcclusionOfIgnoredPixelsIsZero() throws {
        // A model that reads the top-left 8×8 corner only (a crop by a strided pooling).
        final class Corner: Layer {
            var isTraining = false
            let dense = Dense(inputFeatures: 2 * 64, outputFeatures: 2, seed: 3)
            func forward(_ x: Tensor) -> Tensor {
                dense(x.sliced(axis: 2, 0..<8).sliced(axis: 3, 0..<8).reshaped(to: [x.shape[0], 128]))
            }
            var children: [(key: String, layer: any Layer)] { [("dense", dense)] }
            var layerDescription: String { "Corner" }
        }
        let maps = try Explainer(model: Corner()).occlusion(input(1), targets: [1], window: [4], strides: [4])
        let values = maps.scalars
        // Zero up to the rounding of the matrix product, which BLAS may order differently for the
        // occluded batch than for the original (one ulp on some CPUs).
        let largest = values.map(abs).max()!
        XCTAssertGreaterThan(largest, 0)
        for c in 0..<2 { for y in 0..<16 { for x in 0..<16 where y >= 8 || x >= 8 {
            XCTAssertEqual(values[(c * 16 + y) * 16 + x], 0, accuracy: 1e-6 * max(1, largest))
        } } }
    }

    func testTypedErrorsNameTheValidChoices() throws {
        let explainer = Explainer(model: smallCNN())
        XCTAssertThrowsError(try explainer.gradCAM(input(1), targets: [0], layer: "layer4")) { error in
            guard case let ExplainError.unknownLayer(layer, valid) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(layer, "layer4")
            XCTAssertTrue(valid.contains("6"), "\(valid)")
            XCTAssertTrue(error.localizedDescription.contains("Valid layers: 0, 1, 2"), error.localizedDescription)
        }
        XCTAssertThrowsError(try explainer.gradCAM(input(1), targets: [0], layer: "11")) { error in
            XCTAssertEqual(error as? ExplainError, .layerNotSpatial(layer: "11", shape: [1, 256]))
        }
        XCTAssertThrowsError(try AttributionMethod.named("gradcamm", option: "method")) { error in
            XCTAssertEqual(error as? ExplainError, .unknownChoice(option: "method", value: "gradcamm",
                                                                  valid: AttributionMethod.allCases.map(\.rawValue)))
            XCTAssertTrue(error.localizedDescription.contains("saliency, smoothgrad, integrated_gradients, gradcam, occlusion"))
        }
        XCTAssertThrowsError(try explainer.attribute(input(1), targets: [3], method: .saliency)) { error in
            XCTAssertEqual(error as? ExplainError, .targetOutOfRange(target: 3, outputs: 3))
        }
        XCTAssertThrowsError(try explainer.occlusion(input(1), targets: [0], window: [20], strides: [4])) { error in
            guard case ExplainError.invalidOption(option: "window", _) = error else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try explainer.integratedGradients(input(1), targets: [0], steps: 1, method: .riemannTrapezoid))
    }

    /// The tap leaves the forward pass unchanged and restores nothing global afterwards.
    func testLayerTapCapturesWithoutChangingOutputs() throws {
        let model = smallCNN()
        model.eval()
        let x = input(2)
        let plain = withNoGrad { model(x) }
        let tap = LayerTap(model.layers[3])
        let tapped = withNoGrad { tap.run { model(x) } }
        XCTAssertEqual(plain.scalars, tapped.scalars)
        XCTAssertEqual(tap.output?.shape, [2, 64, 8, 8])
        let after = LayerTap(model.layers[3])
        _ = withNoGrad { model(x) }
        XCTAssertNil(after.output)
    }
}

/// A layer that counts the rows of the inputs it sees with gradient tracking (gradient evaluations).
final class CountingLayer: Layer {
    let inner: any Layer
    var gradientRows = 0
    var isTraining = false
    init(_ inner: any Layer) { self.inner = inner }
    func forward(_ input: Tensor) -> Tensor {
        if input.requiresGrad { gradientRows += input.shape[0] }
        return inner(input)
    }
    var children: [(key: String, layer: any Layer)] { [("inner", inner)] }
    var layerDescription: String { "Counting" }
}
