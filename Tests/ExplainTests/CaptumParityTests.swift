import Autograd
@testable import Explain
import NN
import TestSupport
import XCTest

/// Every attribution method against captum 0.9 on the same weights and inputs
/// (scripts/make_attribution_fixtures.py): the NNTests weight fixtures of BENCH.md's cnn and
/// the compact torchvision ResNet-18. Maps agree when `max |ours − captum| ≤ 1e-4 · max |captum|`
/// (1e-4 relative to the map's scale).
final class CaptumParityTests: XCTestCase {
    static let fixtures = try! SafetensorsFile(url: Bundle.module.url(forResource: "attributions", withExtension: "safetensors",
                                                                      subdirectory: "Fixtures")!).tensors

    func model(_ name: String) throws -> any Layer {
        let weights = repositoryRoot.appendingPathComponent("Tests/NNTests/Fixtures")
        let model: any Layer = name == "cnn" ? SimpleCNN.make(inputChannels: 1, classCount: 5, imageSize: 16, seed: 1)
            : ResNet.resnet18(inputChannels: 3, classCount: 5, widths: [8, 16, 32, 64], seed: 1)
        try model.load(contentsOf: weights.appendingPathComponent(name == "cnn" ? "cnn.weights.safetensors"
                                                                  : "resnet18_torchvision.weights.safetensors"), mode: .strict)
        return model
    }

    /// Runs `body` on both convolution backends (im2col, and oneDNN when installed).
    func everyBackend(_ body: () throws -> Void) throws {
        var failure: Error?
        forEachConvolutionBackend { _ in
            do { try body() } catch { failure = error }
        }
        if let failure { throw failure }
    }

    func fixture(_ key: String) -> Tensor { Self.fixtures[key]! }

    func assertMatches(_ actual: Tensor, _ key: String, file: StaticString = #filePath, line: UInt = #line) {
        let expected = fixture(key)
        XCTAssertEqual(actual.shape, expected.shape, key, file: file, line: line)
        let scale = expected.scalars.map(abs).max()!
        XCTAssertGreaterThan(scale, 0, key, file: file, line: line)
        let worst = zip(actual.scalars, expected.scalars).map { abs($0 - $1) }.max()!
        XCTAssertLessThanOrEqual(worst / scale, 1e-4, "\(key): max difference \(worst), map scale \(scale)", file: file, line: line)
    }

    func checkAll(_ name: String, gradCAM: [String: (layer: String, relu: Bool, mode: MapInterpolation)],
                  window: [Int], strides: [Int], occlusionBaseline: Float) throws {
        let explainer = Explainer(model: try model(name))
        let x = fixture("\(name).input")
        let targets = fixture("\(name).targets").scalars.map { Int($0) }

        assertMatches(explainer.saliency(x, targets: targets), "\(name).saliency")
        assertMatches(explainer.saliency(x, targets: targets, absolute: false, batchSize: 1), "\(name).saliency_signed")

        let smooth = try explainer.smoothGrad(x, targets: targets, options: SmoothGradOptions(samples: 4, standardDeviation: 0.3),
                                              batchSize: 3, noise: fixture("\(name).smoothgrad_noise"))
        assertMatches(smooth, "\(name).smoothgrad")

        let (ig, deltas) = try explainer.integratedGradients(x, targets: targets, steps: 16, method: .gaussLegendre, batchSize: 5)
        assertMatches(ig, "\(name).ig")
        assertClose(deltas.map(Float.init), fixture("\(name).ig_delta").scalars, accuracy: 1e-4, "\(name) ig delta")
        let (trapezoid, trapezoidDeltas) = try explainer.integratedGradients(
            x, targets: targets, baseline: fixture("\(name).baseline"), steps: 16, method: .riemannTrapezoid)
        assertMatches(trapezoid, "\(name).ig_trapezoid")
        assertClose(trapezoidDeltas.map(Float.init), fixture("\(name).ig_trapezoid_delta").scalars, accuracy: 1e-4,
                    "\(name) trapezoid delta")

        for (key, options) in gradCAM {
            let cam = try explainer.gradCAM(x, targets: targets, layer: options.layer, relu: options.relu,
                                            interpolation: options.mode, batchSize: 1)
            assertMatches(cam, "\(name).\(key)")
        }

        let occluded = try explainer.occlusion(x, targets: targets, window: window, strides: strides,
                                               baseline: occlusionBaseline, batchSize: 7)
        assertMatches(occluded, "\(name).occlusion")
    }

    func testCNNMatchesCaptum() throws {
        try everyBackend { try checkAll("cnn", gradCAM: ["gradcam_relu7": ("7", false, .nearest), "gradcam_conv3_relu_bilinear": ("3", true, .bilinear)],
                     window: [1, 4, 4], strides: [1, 3, 3], occlusionBaseline: 0) }
    }

    func testResNetMatchesCaptum() throws {
        try everyBackend { try checkAll("resnet", gradCAM: ["gradcam_layer4": ("layer4", false, .nearest),
                                         "gradcam_layer3_relu_bilinear": ("layer3", true, .bilinear),
                                         "gradcam_layer2.1.conv2": ("layer2.1.conv2", false, .nearest)],
                     window: [3, 12, 12], strides: [3, 8, 8], occlusionBaseline: 0.5) }
    }

    /// The nodes of every rule are captum's; Gauss-Legendre's integrate polynomials of degree 2n − 1 exactly.
    func testIntegrationRules() {
        let (alphas, weights) = IntegrationMethod.gaussLegendre.nodes(5)
        XCTAssertEqual(weights.reduce(0, +), 1, accuracy: 1e-14)
        let integral = zip(alphas, weights).reduce(0.0) { $0 + $1.1 * pow($1.0, 9) }
        XCTAssertEqual(integral, 0.1, accuracy: 1e-14)   // ∫₀¹ t⁹ dt
        // numpy.polynomial.legendre.leggauss(3): nodes ±√(3/5), 0; weights 5/9, 8/9, 5/9.
        let (x3, w3) = IntegrationMethod.gaussLegendre(3)
        assertClose(x3.map(Float.init), [-0.7745966692, 0, 0.7745966692], accuracy: 1e-9)
        assertClose(w3.map(Float.init), [5.0 / 9, 8.0 / 9, 5.0 / 9], accuracy: 1e-9)
        XCTAssertEqual(IntegrationMethod.riemannTrapezoid.nodes(3).weights, [1.0 / 6, 1.0 / 3, 1.0 / 6])
        XCTAssertEqual(IntegrationMethod.riemannMiddle.nodes(2).alphas, [0.25, 0.75])
        XCTAssertEqual(IntegrationMethod.riemannLeft.nodes(4).alphas, [0, 0.25, 0.5, 0.75])
        XCTAssertEqual(IntegrationMethod.riemannRight.nodes(4).alphas, [0.25, 0.5, 0.75, 1])
    }
}
