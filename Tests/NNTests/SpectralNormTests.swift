// SpectralNorm against torch.nn.utils.parametrizations.spectral_norm (scripts/make_gan_fixtures.py),
// its gradient numerically, and the PatchGAN discriminator's shape and keys.
import Autograd
import Foundation
import NN
import TestSupport
import XCTest

final class SpectralNormTests: XCTestCase {
    let fx = Fixtures.file("spectral_norm.safetensors").tensors

    func layer(_ name: String) -> SpectralNorm {
        let inner: any Layer = name == "conv"
            ? Conv2D(inputChannels: 4, outputChannels: 6, kernelSize: 3, padding: 1, seed: 1)
            : Dense(inputFeatures: 7, outputFeatures: 5, seed: 1)
        let sn = SpectralNorm(inner, seed: 2)
        let state = ["parametrizations.weight.original": fx["\(name).original"]!, "bias": fx["\(name).bias"]!,
                     "parametrizations.weight.0._u": fx["\(name).u0"]!, "parametrizations.weight.0._v": fx["\(name).v0"]!]
        XCTAssertEqual(Set(sn.stateDict().keys), Set(state.keys), "PyTorch's state-dict keys")
        try! sn.load(stateDict: state)
        return sn
    }

    func testMatchesPyTorchInTrainingAndInference() {
        for name in ["conv", "dense"] {
            let sn = layer(name)
            sn.train()
            let x = fx["\(name).x"]!.copy()
            x.requiresGrad = true
            let y = sn(x)
            assertMatches(y, fx["\(name).y_train"]!, relative: 1e-4, "\(name): training-mode output")
            assertMatches(sn.u, fx["\(name).u1"]!, relative: 1e-4, "\(name): u after one power iteration")
            assertMatches(sn.v, fx["\(name).v1"]!, relative: 1e-4, "\(name): v after one power iteration")
            y.backward(gradient: fx["\(name).g"]!)
            assertMatches(sn.weight.grad!, fx["\(name).grad_original"]!, relative: 1e-3, "\(name): weight gradient")
            assertMatches(x.grad!, fx["\(name).grad_x"]!, relative: 1e-3, "\(name): input gradient")
            sn.eval()
            let u = sn.u.scalars
            assertMatches(withNoGrad { sn(fx["\(name).x"]!) }, fx["\(name).y_eval"]!, relative: 1e-4, "\(name): eval output")
            XCTAssertEqual(sn.u.scalars, u, "\(name): inference leaves u alone")
        }
    }

    func testPowerIterationConvergesToTheLargestSingularValue() {
        for name in ["conv", "dense"] {
            let sn = layer(name)
            sn.powerIterate(200)
            XCTAssertEqual(sn.sigma().scalars[0], fx["\(name).sigma_exact"]!.scalars[0], accuracy: 1e-4 * fx["\(name).sigma_exact"]!.scalars[0])
            // The normalised weight has spectral norm 1: σ(W / σ) = 1.
            let normalized = Dense(inputFeatures: sn.weight.count / sn.weight.shape[0], outputFeatures: sn.weight.shape[0], seed: 3)
            sn.eval()
            normalized.weight.assign(withNoGrad { sn.normalizedWeight() })
            let check = SpectralNorm(normalized, seed: 4)
            check.powerIterate(200)
            XCTAssertEqual(check.sigma().scalars[0], 1, accuracy: 1e-4)
        }
    }

    func testGradientIsCheckedNumerically() {
        for name in ["conv", "dense"] {
            let sn = layer(name)
            sn.eval()  // u and v fixed, so that the function being differentiated does not move
            let x = fx["\(name).x"]!.copy()
            assertGradientsMatch([x, sn.weight], epsilon: 1e-2, relativeTolerance: 2e-2, absoluteTolerance: 2e-3) { inputs in
                sn(inputs[0])
            }
        }
    }

    func testPatchDiscriminatorHasPyTorchsShapesAndKeys() {
        let d = PatchDiscriminator(seed: 1)
        // 64 → 32 → 16 → 15 → 14 (PyTorch gives [3, 1, 14, 14]; the docstring in reference_models.py says 6 × 6).
        XCTAssertEqual(withNoGrad { d(Tensor.zeros([3, 2, 64, 64])) }.shape, [3, 1, 14, 14])
        // reference_models.PatchDiscriminator(): 662,337 parameters.
        XCTAssertEqual(d.parameterCount, 662_337)
        let keys = d.namedParameters().map(\.key)
        XCTAssertEqual(keys, ["net.0.weight", "net.0.bias", "net.2.weight", "net.3.weight", "net.3.bias",
                              "net.5.weight", "net.6.weight", "net.6.bias", "net.8.weight", "net.8.bias"])
        let sn = PatchDiscriminator(width: 8, spectralNorm: true, seed: 1)
        XCTAssert(sn.stateDict().keys.contains("net.0.parametrizations.weight.original"))
        XCTAssertEqual(withNoGrad { sn(Tensor.zeros([1, 2, 32, 32])) }.shape, [1, 1, 6, 6])
    }
}
