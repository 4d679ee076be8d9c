// Channel-blocked inference (nChw16c): each operation against its NCHW tensor counterpart.
@testable import Autograd
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
        // Weights for 8 input channels on a 16-channel map.
        XCTAssertNil(b.conv2d(weight: Tensor.randomNormal([16, 8, 3, 3], seed: 16), padding: 1))
        // A bias of the wrong length, and a residual of the wrong shape.
        XCTAssertNil(b.conv2d(weight: Tensor.randomNormal([16, 16, 3, 3], seed: 18), bias: Tensor([1, 2]), padding: 1))
        XCTAssertNil(b.conv2d(weight: Tensor.randomNormal([16, 16, 3, 3], seed: 18), padding: 0, adding: b))
    } }

    /// The lanes past `C` in the last block of every pixel (all zero in a valid map).
    func paddingLanes(_ map: BlockedFeatureMap) -> [Float] {
        let (c, hw) = (map.shape[1], map.shape[2] * map.shape[3])
        let blocks = BlockedFeatureMap.storedChannels(c) / 16
        guard c % 16 != 0 else { return [] }
        return (0..<(map.count / 16)).filter { ($0 / hw) % blocks == blocks - 1 }.flatMap { v in
            (c % 16..<16).map { map.storage.pointer[16 * v + $0] }
        }
    }

    /// Channel counts that are not multiples of 16 run in oneDNN's zero-padded blocks: every
    /// operation matches its tensor counterpart and the padding lanes stay zero.
    func testChannelsThatDoNotFillABlockArePadded() { forEachConvolutionBackend { backend in
        let x24 = Tensor.randomNormal([3, 24, 5, 7], seed: 20)
        let m24 = BlockedFeatureMap(x24)
        XCTAssertEqual(m24.count, 3 * 32 * 5 * 7, "24 channels stored as two blocks")
        XCTAssertEqual(m24.plain().scalars, x24.scalars)
        XCTAssertEqual(Set(paddingLanes(m24)), [0], "padding lanes zero")
        let x3 = Tensor.randomNormal([2, 3, 4, 4], seed: 21)
        XCTAssertEqual(BlockedFeatureMap(x3).plain().scalars, x3.scalars, "3 channels in one block")
        assertClose(m24.globalAvgPool2d(), x24.globalAvgPool2d(), "global average pool over a padded map")
        XCTAssertEqual(m24.maxPool2d(kernelSize: 3, stride: 2, padding: 1).plain().scalars,
                       withNoGrad { x24.maxPool2d(kernelSize: 3, stride: 2, padding: 1) }.scalars, "max pool")
        guard backend == .oneDNN else { return }
        // ResNet-like chains: 2 → c (stem), c → c with the residual, c → d at stride 2, d → 3.
        // Few channels (8) make oneDNN read plain sources and reorder them from the blocks.
        for (c, d) in [(24, 40), (8, 16)] {
            let x = Tensor.randomNormal([3, 2, 16, 16], seed: 22)
            let w1 = Tensor.randomNormal([c, 2, 3, 3], seed: 23), b1 = Tensor.randomNormal([c], seed: 24)
            let w2 = Tensor.randomNormal([c, c, 3, 3], seed: 25), b2 = Tensor.randomNormal([c], seed: 26)
            let w3 = Tensor.randomNormal([d, c, 3, 3], seed: 27), w4 = Tensor.randomNormal([3, d, 1, 1], seed: 28)
            let expected = withNoGrad { () -> (Tensor, Tensor) in
                let a = x.conv2d(weight: w1, bias: b1, padding: 1).relu()
                let e = (a.conv2d(weight: w2, bias: b2, padding: 1) + a).relu()
                let f = e.conv2d(weight: w3, stride: 2, padding: 1).relu()
                return (f, f.conv2d(weight: w4))
            }
            let actual = withNoGrad { () -> (BlockedFeatureMap, Tensor)? in
                guard let a = BlockedFeatureMap.conv2d(x, weight: w1, bias: b1, padding: 1, relu: true),
                      let e = a.conv2d(weight: w2, bias: b2, padding: 1, adding: a, relu: true),
                      let f = e.conv2d(weight: w3, stride: 2, padding: 1, relu: true),
                      let g = f.conv2dToPlain(weight: w4) else { return nil }
                XCTAssertEqual(Set(paddingLanes(a) + paddingLanes(e) + paddingLanes(f)), c % 16 == 0 && d % 16 == 0 ? [] : [0],
                               "\(c) channels: convolutions leave the padding zero")
                return (f, g)
            }
            guard let actual else { return XCTFail("oneDNN declined the padded chain of \(c) channels") }
            XCTAssertEqual(actual.0.shape, [3, d, 8, 8])
            assertClose(actual.0.plain(), expected.0, relativeTolerance: 1e-4, absoluteTolerance: 1e-3, "\(c) channels: chain")
            assertClose(actual.0.globalAvgPool2d(), expected.0.globalAvgPool2d(), relativeTolerance: 1e-4, absoluteTolerance: 1e-4,
                        "\(c) channels: pooled")
            assertClose(actual.1, expected.1, relativeTolerance: 1e-4, absoluteTolerance: 1e-3, "\(c) channels: to a plain output")
        }
        let x = Tensor.randomNormal([3, 2, 16, 16], seed: 22), w3 = Tensor.randomNormal([40, 24, 3, 3], seed: 27)
        // A single image gives the rows it has in its batch (40 filters: per-image split).
        let one = withNoGrad { BlockedFeatureMap.conv2d(x.sliced(axis: 0, 1..<2), weight: w3.sliced(axis: 1, 0..<2), padding: 1) }
        XCTAssertEqual(one?.plain().scalars,
                       withNoGrad { BlockedFeatureMap.conv2d(x, weight: w3.sliced(axis: 1, 0..<2), padding: 1) }?.plain()
                        .sliced(axis: 0, 1..<2).scalars, "one image alone and in its batch")
    } }
}
