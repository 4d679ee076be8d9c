import Autograd
import Foundation
import XCTest
@testable import Training

/// Every optimiser against torch.optim over 20 steps (fixtures by Fixtures/make_fixtures.py).
final class OptimizerTests: XCTestCase {
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
        let cases = MetricsAndScheduleTests.fixture["optimizers"] as! [[String: Any]]
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
