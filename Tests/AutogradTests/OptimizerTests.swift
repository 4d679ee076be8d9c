// The optimiser suite: every optimiser against torch.optim (5 and 20 steps), state round
// trips, gradient clipping, and end-to-end training of tiny models.
import Autograd
import Foundation
import TestSupport
import XCTest

final class OptimizerTests: XCTestCase {
    /// 20-step torch.optim trajectories (Fixtures/make_optimizer_fixtures.py).
    static let fixture: [String: Any] = {
        let url = Bundle.module.url(forResource: "optimizers", withExtension: "json", subdirectory: "Fixtures")!
        return try! JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    }()

    /// Five steps on f(p) = sum(c p^2) + sum(p), compared with torch.optim (Fixtures/make_fixtures.py).
    func testOptimisersMatchPyTorch() {
        let fx = PyTorchFixtureTests.file
        let c = fx["opt.c"]
        let cases: [(String, (Tensor) -> Optimizer)] = [
            ("sgd", { ModelOptimizer(.sgd(), tensors: [$0], learningRate: 0.1) }),
            ("sgd_momentum", { ModelOptimizer(.sgd(momentum: 0.9, weightDecay: 0.01), tensors: [$0], learningRate: 0.05) }),
            ("sgd_nesterov", { ModelOptimizer(.sgd(momentum: 0.9, nesterov: true), tensors: [$0], learningRate: 0.05) }),
            ("adam", { ModelOptimizer(.adam(), tensors: [$0], learningRate: 0.1) }),
            ("adam_l2", { ModelOptimizer(.adam(beta1: 0.8, beta2: 0.95, epsilon: 1e-6, weightDecay: 0.1), tensors: [$0], learningRate: 0.05) }),
            ("adamw", { ModelOptimizer(.adamW(weightDecay: 0.1), tensors: [$0], learningRate: 0.05) }),
        ]
        for (name, make) in cases {
            let p = fx["opt.p0"].copy()
            p.requiresGrad = true
            let optimizer = make(p)
            for _ in 0..<5 {
                optimizer.zeroGrad()
                (c * p * p + p).sum().backward()
                optimizer.step()
            }
            assertClose(p, fx["opt.\(name)"], relativeTolerance: 1e-4, absoluteTolerance: 1e-5, name)
        }
    }

    /// Linear regression y = 3x - 2 with Adam converges.
    func testAdamFitsALine() {
        let x = Tensor.randomUniform([64, 1], lower: -1, upper: 1, seed: 1)
        let y = x * 3 - 2
        let w = Tensor.zeros([1, 1], requiresGrad: true), b = Tensor.zeros([1], requiresGrad: true)
        let adam = ModelOptimizer(.adam(), tensors: [w, b], learningRate: 0.1)
        for _ in 0..<300 {
            adam.zeroGrad()
            Loss.meanSquaredError(x.matmul(w) + b, y).backward()
            adam.step()
        }
        XCTAssertEqual(w.item, 3, accuracy: 1e-2)
        XCTAssertEqual(b.item, -2, accuracy: 1e-2)
    }

    /// A tiny CNN (conv, batch norm, ReLU, max-pool, dense, cross-entropy, Adam) learns to tell
    /// whether the bright blob is in the left or the right half of an 8x8 image.
    func testTinyCNNLearns() {
        var rng = SeededGenerator(seed: 42)
        let n = 32
        var images = [Float](repeating: 0, count: n * 64), labels = [Int]()
        for i in 0..<n {
            let label = i % 2
            labels.append(label)
            let cx = label == 0 ? 1 + Int(rng.next() % 2) : 5 + Int(rng.next() % 2), cy = 1 + Int(rng.next() % 5)
            for y in 0..<8 { for x in 0..<8 {
                let d2 = Float((x - cx) * (x - cx) + (y - cy) * (y - cy))
                images[i * 64 + y * 8 + x] = Foundation.exp(-d2 / 2) + 0.1 * rng.nextNormal()
            } }
        }
        let input = Tensor(shape: [n, 1, 8, 8], data: images)
        let conv = Tensor.randomNormal([4, 1, 3, 3], standardDeviation: 0.5, seed: 1, requiresGrad: true)
        let gamma = Tensor.ones([4], requiresGrad: true), beta = Tensor.zeros([4], requiresGrad: true)
        let runningMean = Tensor.zeros([4]), runningVariance = Tensor.ones([4])
        let dense = Tensor.randomNormal([64, 2], standardDeviation: 0.1, seed: 2, requiresGrad: true)
        let bias = Tensor.zeros([2], requiresGrad: true)
        let adam = ModelOptimizer(.adam(), tensors: [conv, gamma, beta, dense, bias], learningRate: 0.05)
        func logits(training: Bool) -> Tensor {
            let h = input.conv2d(weight: conv, padding: .same)
                .batchNorm(weight: gamma, bias: beta, runningMean: runningMean, runningVariance: runningVariance,
                           training: training)
                .relu().maxPool2d(kernelSize: 2)
            return h.flattened().matmul(dense) + bias
        }
        var losses: [Float] = []
        for _ in 0..<40 {
            adam.zeroGrad()
            let loss = Loss.crossEntropy(logits: logits(training: true), labels: labels)
            loss.backward()
            adam.step()
            losses.append(loss.item)
        }
        XCTAssertLessThan(losses.last!, 0.1 * losses.first!)
        let predicted = withNoGrad { logits(training: false).argmaxIndices(axis: 1) }
        XCTAssertEqual(zip(predicted, labels).filter { $0 == $1 }.count, n)
    }

    // MARK: - 20 steps against torch.optim, state, clipping

    func kind(_ name: String, _ o: [String: Any]) -> (OptimizerKind, Float) {
        let lr = Float(o["lr"] as! Double)
        let wd = Float(o["weight_decay"] as? Double ?? -1)
        switch name {
        case "sgd":
            return (.sgd(momentum: Float(o["momentum"] as? Double ?? 0), nesterov: o["nesterov"] as? Bool ?? false,
                         weightDecay: max(wd, 0)), lr)
        case "adam":
            return (.adam(weightDecay: max(wd, 0)), lr)
        case "adamw":
            let betas = (o["betas"] as? [Double]) ?? [0.9, 0.999]
            return (.adamW(beta1: Float(betas[0]), beta2: Float(betas[1]), weightDecay: wd < 0 ? 0.01 : wd), lr)
        default:
            return (.rmsprop(momentum: Float(o["momentum"] as? Double ?? 0), weightDecay: max(wd, 0)), lr)
        }
    }

    func testOptimizersMatchTorchOverTwentySteps() {
        let cases = Self.fixture["optimizers"] as! [[String: Any]]
        XCTAssertEqual(cases.count, 9)
        for c in cases {
            let (k, lr) = kind(c["name"] as! String, c["options"] as! [String: Any])
            let p = Tensor((c["start"] as! [Double]).map(Float.init), requiresGrad: true)
            let target = (c["target"] as! [Double]).map(Float.init)
            let optimizer = ModelOptimizer(k, parameters: [TrainableParameter(name: "p", tensor: p)], learningRate: lr)
            for (step, expected) in (c["trajectory"] as! [[Double]]).enumerated() {
                let values = p.scalars
                p.grad = Tensor(zip(values, target).map { 2 * ($0 - $1) + 0.3 * Foundation.sin(3 * $0) })
                optimizer.step()
                for (a, b) in zip(p.scalars, expected) {
                    XCTAssertEqual(Double(a), b, accuracy: 1e-6 * max(1, abs(b)) + 1e-6,
                                   "\(c["name"]!) \(c["options"]!) step \(step + 1)")
                }
            }
        }
    }

    func testStateRoundTripContinuesIdentically() {
        func run(_ steps: Int, restoreAt: Int?) -> [Float] {
            var p = Tensor([1, -2, 3], requiresGrad: true)
            var optimizer = ModelOptimizer(.adam(), parameters: [TrainableParameter(name: "w", tensor: p)], learningRate: 0.1)
            for s in 0..<steps {
                if s == restoreAt {
                    let saved = optimizer.stateTensors(), weights = p.copy()
                    p = weights
                    p.requiresGrad = true
                    optimizer = ModelOptimizer(.adam(), parameters: [TrainableParameter(name: "w", tensor: p)], learningRate: 0.1)
                    optimizer.loadState(saved)
                }
                p.grad = Tensor(p.scalars.map { 2 * $0 })
                optimizer.step()
            }
            return p.scalars
        }
        XCTAssertEqual(run(10, restoreAt: nil), run(10, restoreAt: 4))
    }

    func testGradientClippingScalesToTheNorm() {
        let a = Tensor([3, 0], requiresGrad: true), b = Tensor([0, 4], requiresGrad: true)
        a.grad = Tensor([3, 0]); b.grad = Tensor([0, 4])
        XCTAssertEqual(clipGradientNorm([a, b], maxNorm: 1), 5, accuracy: 1e-6)
        XCTAssertEqual(a.grad!.scalars[0], 0.6, accuracy: 1e-5)
        XCTAssertEqual(b.grad!.scalars[1], 0.8, accuracy: 1e-5)
        XCTAssertEqual(clipGradientNorm([a, b], maxNorm: 10), 1, accuracy: 1e-5)
        XCTAssertEqual(a.grad!.scalars[0], 0.6, accuracy: 1e-5, "below the limit nothing changes")
    }
}
