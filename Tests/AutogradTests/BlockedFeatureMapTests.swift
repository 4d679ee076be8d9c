// Channel-blocked inference (nChw16c): each operation against its NCHW tensor counterpart.
import Autograd
import TestSupport
import XCTest

final class BlockedFeatureMapTests: XCTestCase {
    func testRoundTripKeepsEveryValue() {
        let x = Tensor.randomNormal([3, 32, 5, 7], seed: 1)
        let blocked = BlockedFeatureMap(x)
        XCTAssertEqual(blocked.shape, x.shape)
        XCTAssertEqual(blocked.plain().scalars, x.scalars)
        XCTAssertTrue(BlockedFeatureMap.supports(channels: 48))
        XCTAssertFalse(BlockedFeatureMap.supports(channels: 3))
    }

    func testMaxPoolConcatenationAndGlobalPoolMatchTensorOps() {
        var values = Tensor.randomNormal([2, 16, 9, 10], seed: 2).scalars
        values[17] = .nan
        let x = Tensor(shape: [2, 16, 9, 10], data: values)
        let b = BlockedFeatureMap(x)
        for (k, s, p) in [(2, 2, 0), (3, 2, 1), (3, 1, 1)] {
            let expected = withNoGrad { x.maxPool2d(kernelSize: Size2(k, k), stride: Size2(s, s), padding: Size2(p, p)) }
            let actual = b.maxPool2d(kernelSize: Size2(k, k), stride: Size2(s, s), padding: Size2(p, p)).plain()
            XCTAssertEqual(actual.shape, expected.shape)
            for (i, (a, e)) in zip(actual.scalars, expected.scalars).enumerated() where !(a == e || (a.isNaN && e.isNaN)) {
                XCTFail("maxPool k \(k) s \(s) p \(p): element \(i) is \(a), expected \(e)"); break
            }
        }
        let y = Tensor.randomNormal([2, 32, 9, 10], seed: 3)
        let joined = b.concatenated(with: BlockedFeatureMap(y)).plain()
        XCTAssertEqual(joined.shape, [2, 48, 9, 10])
        XCTAssertTrue(joined.scalars.elementsEqual(Tensor.concatenate([x, y], axis: 1).scalars) { $0 == $1 || ($0.isNaN && $1.isNaN) },
                      "concatenation")
        let finite = Tensor.randomNormal([2, 32, 4, 6], seed: 4)
        assertClose(BlockedFeatureMap(finite).globalAvgPool2d(), finite.globalAvgPool2d(), "global average pool")
    }

    func testConvolutionChainMatchesTensorPath() { forEachConvolutionBackend { backend in
        let x = Tensor.randomNormal([3, 1, 12, 12], seed: 5)
        let w1 = Tensor.randomNormal([16, 1, 3, 3], seed: 6), b1 = Tensor.randomNormal([16], seed: 7)
        let w2 = Tensor.randomNormal([32, 16, 3, 3], seed: 8)
        let w3 = Tensor.randomNormal([32, 32, 3, 3], seed: 9)
        let w4 = Tensor.randomNormal([3, 32, 1, 1], seed: 10), b4 = Tensor.randomNormal([3], seed: 11)
        let expected = withNoGrad { () -> Tensor in
            let a = x.conv2d(weight: w1, bias: b1, padding: 1).relu()
            let c = a.conv2d(weight: w2, stride: 2, padding: 1).relu()
            let d = (c.conv2d(weight: w3, padding: 1) + c).relu()
            return d.conv2d(weight: w4, bias: b4)
        }
        let actual = withNoGrad { () -> Tensor? in
            guard let a = BlockedFeatureMap.conv2d(x, weight: w1, bias: b1, padding: 1, relu: true),
                  let c = a.conv2d(weight: w2, stride: 2, padding: 1, relu: true),
                  let d = c.conv2d(weight: w3, padding: 1, adding: c, relu: true) else { return nil }
            return d.conv2dToPlain(weight: w4, bias: b4)
        }
        if backend == .oneDNN {
            guard let actual else { return XCTFail("oneDNN declined the blocked chain") }
            assertClose(actual, expected, relativeTolerance: 1e-4, absoluteTolerance: 1e-3, "blocked chain")
        } else {
            XCTAssertNil(actual, "the im2col backend has no blocked path")
        }
    } }

    func testUpsamplingMatchesTransposedConvolution() { forEachConvolutionBackend { backend in
        guard backend == .oneDNN else { return }
        let x = Tensor.randomNormal([3, 32, 5, 6], seed: 12)
        let w = Tensor.randomNormal([32, 16, 2, 2], seed: 13), b = Tensor.randomNormal([16], seed: 14)
        let expected = withNoGrad { x.transposedConv2d(weight: w, bias: b, stride: 2) }
        let blocked = BlockedFeatureMap(x)
        assertClose(blocked.transposedConv2d(weight: w, bias: b, stride: 2)!.plain(), expected,
                    relativeTolerance: 1e-4, absoluteTolerance: 1e-4, "deconvolution")
        // The same as a 1x1 convolution to 4 Cout channels and a pixel shuffle.
        let source = w.scalars
        var rows = [Float](repeating: 0, count: 4 * 16 * 32)
        for q in 0..<4 { for co in 0..<16 { for ci in 0..<32 { rows[(q * 16 + co) * 32 + ci] = source[(ci * 16 + co) * 4 + q] } } }
        let pointwise = Tensor(shape: [64, 32, 1, 1], data: rows)
        let bias4 = Tensor(Array(repeating: b.scalars, count: 4).flatMap { $0 })
        assertClose(withNoGrad { blocked.upsampled2x2(pointwiseWeight: pointwise, pointwiseBias: bias4)!.plain() }, expected,
                    relativeTolerance: 1e-4, absoluteTolerance: 1e-4, "pixel shuffle")
    } }

    func testDeclinesShapesItCannotBlock() { forEachConvolutionBackend { backend in
        guard backend == .oneDNN else { return }
        let b = BlockedFeatureMap(Tensor.randomNormal([2, 16, 6, 6], seed: 15))
        // Weights for 8 input channels on a 16-channel map; 3 output channels cannot stay blocked.
        XCTAssertNil(b.conv2d(weight: Tensor.randomNormal([16, 8, 3, 3], seed: 16), padding: 1))
        XCTAssertNil(b.conv2d(weight: Tensor.randomNormal([3, 16, 3, 3], seed: 17), padding: 1))
        XCTAssertNotNil(b.conv2dToPlain(weight: Tensor.randomNormal([3, 16, 3, 3], seed: 17), padding: 1))
        // A bias of the wrong length, and a residual of the wrong shape.
        XCTAssertNil(b.conv2d(weight: Tensor.randomNormal([16, 16, 3, 3], seed: 18), bias: Tensor([1, 2]), padding: 1))
        XCTAssertNil(b.conv2d(weight: Tensor.randomNormal([16, 16, 3, 3], seed: 18), padding: 0, adding: b))
    } }
}
