// Forward values and gradients against PyTorch (Fixtures/make_fixtures.py), 1e-4 relative.
import Autograd
import Foundation
import TestSupport
import XCTest

final class PyTorchFixtureTests: XCTestCase {
    static let file: SafetensorsFile = {
        let url = Bundle.module.url(forResource: "Fixtures/reference", withExtension: "safetensors")!
        return try! SafetensorsFile(url: url)
    }()

    var fx: SafetensorsFile { Self.file }

    func params(_ name: String) -> [String: Any] {
        try! JSONSerialization.jsonObject(with: Data(fx.metadata[name]!.utf8)) as! [String: Any]
    }

    func size(_ p: [String: Any], _ key: String) -> Size2 {
        let v = p[key] as! [Int]
        return Size2(v[0], v[1])
    }

    /// Runs `f` on the case's inputs (all requiring grad), backpropagates `gout`, compares `y`
    /// and `d<input>` for the listed inputs.
    func check(_ name: String, inputs: [String], gradients: [String]? = nil, absolute: Float = 1e-5,
               file: StaticString = #filePath, line: UInt = #line, _ f: ([Tensor]) -> Tensor) {
        let xs = inputs.map { fx["\(name).\($0)"].copy() }
        for (k, x) in zip(inputs, xs) where (gradients ?? inputs).contains(k) { x.requiresGrad = true }
        let y = f(xs)
        assertClose(y, fx["\(name).y"], relativeTolerance: 1e-4, absoluteTolerance: absolute, "\(name).y", file: file, line: line)
        y.backward(gradient: fx["\(name).gout"])
        for (k, x) in zip(inputs, xs) where (gradients ?? inputs).contains(k) {
            assertClose(x.grad!, fx["\(name).d\(k)"], relativeTolerance: 1e-4, absoluteTolerance: absolute,
                        "\(name).d\(k)", file: file, line: line)
        }
    }

    func testOneDNNBackendIsUsedWhenInstalled() {
        // The benchmark machine has libdnnl.so.2; elsewhere im2col runs and this is a no-op.
        if ConvolutionBackend.isOneDNNAvailable && ProcessInfo.processInfo.environment["ASTROLABE_CONV_BACKEND"] == nil {
            XCTAssertEqual(ConvolutionBackend.current, .oneDNN)
        }
    }

    func testFixtureHeaderRecordsVersions() {
        XCTAssertNotNil(fx.metadata["torch"])
        XCTAssertNotNil(fx.metadata["numpy"])
    }

    func testConv2d() { forEachConvolutionBackend { _ in
        for i in 0..<8 {
            let p = params("conv\(i)")
            let padding: Padding = (p["padding"] as? String) == "same" ? .same : .explicit(size(p, "padding"))
            let hasBias = p["bias"] as! Bool
            check("conv\(i)", inputs: hasBias ? ["x", "w", "b"] : ["x", "w"], absolute: 1e-4) { t in
                t[0].conv2d(weight: t[1], bias: hasBias ? t[2] : nil, stride: self.size(p, "stride"),
                            padding: padding, dilation: self.size(p, "dilation"))
            }
        }
    } }

    func testTransposedConv2d() { forEachConvolutionBackend { _ in
        for i in 0..<3 {
            let p = params("tconv\(i)")
            let hasBias = p["bias"] as! Bool
            check("tconv\(i)", inputs: hasBias ? ["x", "w", "b"] : ["x", "w"], absolute: 1e-4) { t in
                t[0].transposedConv2d(weight: t[1], bias: hasBias ? t[2] : nil, stride: self.size(p, "stride"),
                                      padding: self.size(p, "padding"), outputPadding: self.size(p, "output_padding"),
                                      dilation: self.size(p, "dilation"))
            }
        }
    } }

    func testPooling() {
        for i in 0..<4 {
            let p = params("pool\(i)")
            let (k, s, pad) = (size(p, "k"), size(p, "stride"), size(p, "padding"))
            check("pool\(i)", inputs: ["x"]) { t in
                p["kind"] as! String == "max" ? t[0].maxPool2d(kernelSize: k, stride: s, padding: pad)
                    : t[0].avgPool2d(kernelSize: k, stride: s, padding: pad)
            }
        }
    }

    func testUpsampling() {
        for i in 0..<3 {
            let p = params("upsample\(i)")
            let scale = p["scale"] as! Int
            check("upsample\(i)", inputs: ["x"]) { t in
                p["mode"] as! String == "nearest" ? t[0].upsampledNearest(scale: scale) : t[0].upsampledBilinear(scale: scale)
            }
        }
    }

    func testBatchNorm() {
        for i in 0..<3 {
            let p = params("bn\(i)")
            let rm = fx["bn\(i).rm"].copy(), rv = fx["bn\(i).rv"].copy()
            check("bn\(i)", inputs: ["x", "gamma", "beta"], absolute: 1e-4) { t in
                t[0].batchNorm(weight: t[1], bias: t[2], runningMean: rm, runningVariance: rv, training: p["training"] as! Bool)
            }
            assertClose(rm, fx["bn\(i).rm_after"], "bn\(i) running mean")
            assertClose(rv, fx["bn\(i).rv_after"], "bn\(i) running variance")
        }
    }

    func testSoftmax() {
        for i in 0..<3 {
            let p = params("softmax\(i)")
            check("softmax\(i)", inputs: ["x"]) { t in
                p["log"] as! Bool ? t[0].logSoftmax(axis: p["axis"] as! Int) : t[0].softmax(axis: p["axis"] as! Int)
            }
        }
    }

    func testActivations() {
        let ops: [(String, (Tensor) -> Tensor)] = [
            ("gelu", { $0.gelu() }), ("elu", { $0.elu() }), ("softplus", { $0.softplus() }),
            ("sigmoid", { $0.sigmoid() }), ("tanh", { $0.tanh() }), ("leaky_relu", { $0.leakyRelu(negativeSlope: 0.1) }),
        ]
        for (name, op) in ops { check("act_\(name)", inputs: ["x"]) { op($0[0]) } }
    }

    func labels(_ name: String) -> [Int] { fx[name].scalars.map { Int($0) } }

    func testLosses() {
        check("ce_plain", inputs: ["logits"]) { Loss.crossEntropy(logits: $0[0], labels: self.labels("ce_plain.labels")) }
        check("ce_weighted", inputs: ["logits"]) {
            Loss.crossEntropy(logits: $0[0], labels: self.labels("ce_weighted.labels"),
                              classWeights: self.fx["ce_weighted.weight"], labelSmoothing: 0.1)
        }
        check("ce_outside", inputs: ["logits"]) {
            Loss.crossEntropy(logits: $0[0], labels: self.labels("ce_outside.labels"),
                              classWeights: self.fx["ce_outside.weight"], outsideWeight: 0.5)
        }
        check("ce_probs", inputs: ["logits"]) {
            Loss.crossEntropy(logits: $0[0], probabilities: self.fx["ce_probs.probs"],
                              classWeights: self.fx["ce_probs.weight"], labelSmoothing: 0.05)
        }
        check("ce_pixel", inputs: ["logits"]) {
            Loss.crossEntropy(logits: $0[0], labels: self.labels("ce_pixel.labels"),
                              classWeights: self.fx["ce_pixel.weight"], labelSmoothing: 0.1)
        }
        check("bce", inputs: ["logits"]) { Loss.binaryCrossEntropy(logits: $0[0], targets: self.fx["bce.targets"]) }
        check("bce_pw", inputs: ["logits"]) {
            Loss.binaryCrossEntropy(logits: $0[0], targets: self.fx["bce_pw.targets"], positiveWeight: 2.5)
        }
        check("mse", inputs: ["p"]) { Loss.meanSquaredError($0[0], self.fx["mse.t"]) }
        check("mae", inputs: ["p"]) { Loss.meanAbsoluteError($0[0], self.fx["mae.t"]) }
        check("huber", inputs: ["p"]) { Loss.huber($0[0], self.fx["huber.t"], delta: 0.7) }
        check("gnll", inputs: ["mu", "logvar"]) {
            Loss.gaussianNegativeLogLikelihood(mean: $0[0], logVariance: $0[1], target: self.fx["gnll.t"])
        }
    }
}
