// The DCGAN pair against PyTorch's DCGAN example (Tests/NNTests/Fixtures/make_dcgan_fixtures.py).
import Autograd
import Foundation
import TestSupport
import XCTest
@testable import NN

final class DCGANTests: XCTestCase {
    func testForwardMatchesPyTorchInTrainingMode() throws {
        let url = Bundle.module.url(forResource: "dcgan", withExtension: "safetensors", subdirectory: "Fixtures")!
        let fx = try Safetensors(contentsOf: url).tensors
        func part(_ prefix: String) -> [String: Tensor] {
            Dictionary(uniqueKeysWithValues: fx.filter { $0.key.hasPrefix(prefix) }.map { (String($0.key.dropFirst(prefix.count)), $0.value) })
        }
        let g = DCGANGenerator(latentDimension: 8, outputChannels: 1, widths: [16, 8], seed: 1)
        let d = DCGANDiscriminator(inputChannels: 1, widths: [8, 16], seed: 2)
        try g.load(stateDict: part("g."), mode: .strict)
        try d.load(stateDict: part("d."), mode: .strict)
        XCTAssertEqual(g.imageSize, 16)
        let image = g(fx["z"]!)
        assertClose(image, fx["image"]!, relativeTolerance: 1e-4, absoluteTolerance: 2e-5, "generator")
        assertClose(d(image), fx["logits"]!, relativeTolerance: 1e-4, absoluteTolerance: 5e-5, "discriminator")
    }

    func testDefaultsAreTheDCGANExample() {
        // PyTorch's DCGAN example for 3 bands: 3,576,704 and 2,765,568 parameters.
        XCTAssertEqual(DCGANGenerator(outputChannels: 3, seed: 1).parameterCount, 3_576_704)
        XCTAssertEqual(DCGANDiscriminator(inputChannels: 3, seed: 1).parameterCount, 2_765_568)
        XCTAssertEqual(DCGANGenerator.widths(imageSize: 64, width: 16), [128, 64, 32, 16])
        XCTAssertEqual(DCGANGenerator.widths(imageSize: 32, width: 8), [32, 16, 8])
        let g = DCGANGenerator(latentDimension: 4, widths: [8, 4], seed: 3)
        let out = withNoGrad { g(Tensor.randomNormal([2, 4], seed: 1)) }
        XCTAssertEqual(out.shape, [2, 1, 16, 16])
        XCTAssert(out.scalars.allSatisfy { abs($0) <= 1 }, "tanh output in [-1, 1]")
        let sn = DCGANDiscriminator(inputChannels: 1, widths: [4, 8], spectralNorm: true, seed: 1)
        XCTAssert(sn.stateDict().keys.contains("net.0.parametrizations.weight.original"))
        // SNGAN's layout: no batch norm; the middle convolution at net.2 carries a bias.
        XCTAssertFalse(sn.stateDict().keys.contains { $0.contains("running_mean") }, "\(sn.stateDict().keys.sorted())")
        XCTAssertEqual(sn.stateDict()["net.2.bias"]?.shape, [8])
        XCTAssertEqual(sn.parameterCount, 4 * 16 + 8 * 4 * 16 + 8 + 8 * 16)
        XCTAssertEqual(withNoGrad { sn(Tensor.zeros([3, 1, 16, 16])) }.shape, [3, 1])
    }

    /// Resize-convolutions: each doubling is Upsample ×2 (nearest) + 3×3 convolution, keys as documented.
    func testNearestUpsamplingGeneratorIsResizeConvolutions() throws {
        let g = DCGANGenerator(latentDimension: 4, widths: [8, 4], upsampling: .nearest, seed: 3)
        let keys = Set(g.stateDict().keys.filter { $0.hasSuffix(".weight") && !$0.hasPrefix("net.1.") && !$0.hasPrefix("net.5.") })
        XCTAssertEqual(keys, ["net.0.weight", "net.4.weight", "net.8.weight"], "\(keys.sorted())")
        XCTAssertEqual(g.stateDict()["net.4.weight"]?.shape, [4, 8, 3, 3])
        XCTAssertEqual(g.stateDict()["net.8.weight"]?.shape, [1, 4, 3, 3])
        // 4·8·16 (projection) + 8·4·9 + 4·1·9 convolution weights, batch norms 2·(8 + 4).
        XCTAssertEqual(g.parameterCount, 4 * 8 * 16 + 8 * 4 * 9 + 4 * 9 + 2 * 12)
        let out = withNoGrad { g(Tensor.randomNormal([2, 4], seed: 1)) }
        XCTAssertEqual(out.shape, [2, 1, 16, 16])
        XCTAssert(out.scalars.allSatisfy { abs($0) <= 1 })
        // Through its model file: the same network and images.
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        g.eval()
        let url = dir.appendingPathComponent("g.safetensors")
        try ModelFile(model: g, architecture: Architecture(name: .dcgan, inChannels: 4, classes: 1, widths: [8, 4],
                                                           upsample: "nearest")).write(to: url)
        let loaded = try XCTUnwrap(try ModelFile(contentsOf: url).model as? DCGANGenerator)
        XCTAssertEqual(loaded.upsampling, .nearest)
        let z = Tensor.randomNormal([3, 4], seed: 2)
        XCTAssertEqual(withNoGrad { loaded(z) }.scalars, withNoGrad { g(z) }.scalars)
        let bad = Architecture(name: .dcgan, inChannels: 4, classes: 1, widths: [8, 4], upsample: "bilinear")
        XCTAssertThrowsError(try bad.makeModel()) { XCTAssert("\($0)".contains("bilinear") && "\($0)".contains("nearest"), "\($0)") }
    }

    func testModelFileRebuildsTheGenerator() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let g = DCGANGenerator(latentDimension: 6, outputChannels: 1, widths: [8, 4], seed: 5)
        g.eval()
        let url = dir.appendingPathComponent("g.safetensors")
        try ModelFile(model: g, architecture: Architecture(name: .dcgan, inChannels: 6, classes: 1, widths: [8, 4])).write(to: url)
        let loaded = try ModelFile(contentsOf: url)
        XCTAssert(loaded.model is DCGANGenerator)
        let z = Tensor.randomNormal([3, 6], seed: 2)
        XCTAssertEqual(withNoGrad { loaded.model(z) }.scalars, withNoGrad { g(z) }.scalars)
    }

    /// StyleGAN2-ADA's MinibatchStdLayer (make_dcgan_fixtures.py): values and input gradients
    /// for groups of 4 (8 images) and of 3 (6 images: the largest divisor not above 4).
    func testMinibatchStdDevMatchesPyTorch() throws {
        let url = Bundle.module.url(forResource: "minibatch_stddev", withExtension: "safetensors", subdirectory: "Fixtures")!
        let fx = try Safetensors(contentsOf: url).tensors
        for n in [8, 6] {
            let x = fx["x\(n)"]!
            x.requiresGrad = true
            let y = MinibatchStdDev(groupSize: 4)(x)
            XCTAssertEqual(y.shape, [n, 4, 4, 4])
            assertClose(y, fx["y\(n)"]!, relativeTolerance: 1e-5, absoluteTolerance: 1e-6, "output, \(n) images")
            y.backward(gradient: fx["g\(n)"]!)
            assertClose(x.grad!, fx["grad\(n)"]!, relativeTolerance: 1e-4, absoluteTolerance: 1e-5, "gradient, \(n) images")
        }
    }

    func testMinibatchStdDevGradientAndGroups() {
        let x = Tensor.randomNormal([6, 2, 3, 3], seed: 3)
        assertGradientsMatch([x]) { MinibatchStdDev(groupSize: 2)($0[0]) }
        // The extra channel is constant over a subgroup's images and pixels: images n and n + M share it.
        let y = MinibatchStdDev(groupSize: 2)(x).scalars
        let plane = 9, image = 3 * plane
        func channel(_ n: Int) -> [Float] { Array(y[(n * image + 2 * plane)..<((n + 1) * image)]) }
        for n in 0..<3 {
            XCTAssertEqual(channel(n), channel(n + 3), "image \(n) and \(n + 3) are one subgroup")
            XCTAssertEqual(Set(channel(n)).count, 1)
        }
        XCTAssertNotEqual(channel(0), channel(1))
        // One image: nothing to compare with, the channel is sqrt(epsilon).
        let single = MinibatchStdDev()(Tensor.randomNormal([1, 2, 3, 3], seed: 4)).scalars
        XCTAssertEqual(Double(single[2 * plane]), 1e-4, accuracy: 1e-7)
    }

    func testDiscriminatorWithMinibatchStdDev() {
        let d = DCGANDiscriminator(inputChannels: 1, widths: [8, 16], minibatchStdDevGroup: 4, seed: 2)
        let plain = DCGANDiscriminator(inputChannels: 1, widths: [8, 16], seed: 2)
        XCTAssertEqual(d.parameterCount - plain.parameterCount, 16, "the last 4x4 convolution reads one more channel")
        XCTAssertTrue(d.description.contains("MinibatchStdDev(group 4)"))
        let logits = d(Tensor.randomNormal([8, 1, 16, 16], seed: 5))
        XCTAssertEqual(logits.shape, [8, 1])
        // A batch of one image repeated: zero spread, so the logits differ from those of a varied batch.
        let same = Tensor.concatenate(Array(repeating: Tensor.randomNormal([1, 1, 16, 16], seed: 6), count: 4), axis: 0)
        d.eval()
        let a = d(same).scalars[0]
        let mixed = Tensor.concatenate([same.sliced(axis: 0, 0..<1), Tensor.randomNormal([3, 1, 16, 16], seed: 7)], axis: 0)
        XCTAssertNotEqual(a, d(mixed).scalars[0], "the first image's logit depends on the rest of its group")
    }

    /// Scale k of a multi-scale discriminator is a DCGAN discriminator (one width fewer per
    /// scale) on the image's 2^k × 2^k means, computed here by loops; input gradients check.
    func testMultiScaleDiscriminatorJudgesPooledImages() {
        let d = MultiScaleDiscriminator(inputChannels: 1, widths: [4, 8, 16], scaleCount: 3, seed: 3)
        d.eval()
        XCTAssertEqual(d.scales.map(\.widths), [[4, 8, 16], [4, 8], [4]])
        XCTAssertEqual(d.scales.map(\.imageSize), [32, 16, 8])
        XCTAssertEqual(d.namedTensors().first?.key, "d0.net.0.weight")
        let x = Tensor.randomNormal([2, 1, 32, 32], seed: 4)
        let logits = d(x)
        XCTAssertEqual(logits.shape, [2, 3])
        let pixels = x.scalars
        for k in 0..<3 {
            let block = 1 << k, side = 32 / block
            var pooled = [Float](repeating: 0, count: 2 * side * side)
            for n in 0..<2 { for y in 0..<side { for xx in 0..<side {
                var sum: Float = 0
                for dy in 0..<block { for dx in 0..<block { sum += pixels[n * 1024 + (y * block + dy) * 32 + xx * block + dx] } }
                pooled[(n * side + y) * side + xx] = sum / Float(block * block)
            } } }
            let alone = d.scales[k](Tensor(shape: [2, 1, side, side], data: pooled)).scalars
            for n in 0..<2 { XCTAssertEqual(logits.scalars[n * 3 + k], alone[n], accuracy: 1e-4, "scale \(k), image \(n)") }
        }
        let small = MultiScaleDiscriminator(inputChannels: 1, widths: [2, 3], scaleCount: 2, seed: 5)
        small.eval()
        assertGradientsMatch([Tensor.randomNormal([2, 1, 16, 16], seed: 6)]) { small($0[0]) }
    }
}
