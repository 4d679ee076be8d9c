import Foundation

/// How the learning rate changes over training. Each case computes the rate
/// for a step (or epoch) index in closed form, matching PyTorch's schedulers
/// (`StepLR`, `ExponentialLR`, `LinearLR` + `CosineAnnealingLR` in a
/// `SequentialLR`, `OneCycleLR`); `ReduceOnPlateau` is stateful and lives in
/// its own type.
public enum LearningRateSchedule: Equatable, Sendable {
    case constant
    /// Multiply by `gamma` every `stepSize` epochs.
    case step(stepSize: Int, gamma: Double)
    /// Multiply by `gamma` every epoch.
    case exponential(gamma: Double)
    /// Linear warm-up from `warmupStartFactor · base` over `warmupSteps`, then a
    /// cosine decay to `minimum` over the remaining `totalSteps - warmupSteps`.
    case cosine(totalSteps: Int, warmupSteps: Int = 0, warmupStartFactor: Double = 0.1, minimum: Double = 0)
    /// Leslie Smith's one-cycle policy (PyTorch `OneCycleLR`, two phases, cosine
    /// annealing): from `maxRate / divFactor` up to `maxRate` over
    /// `pctStart · totalSteps`, then down to `maxRate / (divFactor · finalDivFactor)`.
    case oneCycle(maxRate: Double, totalSteps: Int, pctStart: Double = 0.3, divFactor: Double = 25,
                  finalDivFactor: Double = 1e4)

    /// The rate at step `t` (0-based) for a base rate `base`.
    public func rate(at t: Int, base: Double) -> Double {
        switch self {
        case .constant:
            return base
        case let .step(stepSize, gamma):
            return base * Foundation.pow(gamma, Double(t / Swift.max(1, stepSize)))
        case let .exponential(gamma):
            return base * Foundation.pow(gamma, Double(t))
        case let .cosine(total, warmup, startFactor, minimum):
            if t < warmup {
                // LinearLR(start_factor, end_factor=1, total_iters=warmup)
                return base * (startFactor + (1 - startFactor) * Double(t) / Double(warmup))
            }
            let span = Swift.max(1, total - warmup)
            let s = Double(Swift.min(t - warmup, span))
            return minimum + (base - minimum) * (1 + Foundation.cos(Double.pi * s / Double(span))) / 2
        case let .oneCycle(maxRate, total, pctStart, divFactor, finalDiv):
            let initial = maxRate / divFactor, final = initial / finalDiv
            let peakStep = pctStart * Double(total) - 1
            let endStep = Double(total) - 1
            func annealCos(_ start: Double, _ end: Double, _ pct: Double) -> Double {
                end + (start - end) / 2 * (Foundation.cos(Double.pi * pct) + 1)
            }
            let step = Double(t)
            if step <= peakStep {
                return annealCos(initial, maxRate, step / peakStep)
            }
            return annealCos(maxRate, final, (step - peakStep) / (endStep - peakStep))
        }
    }
}

/// Reduce the rate by `factor` when a monitored value has stopped improving for
/// `patience` epochs (PyTorch `ReduceLROnPlateau`, relative threshold mode).
public struct ReduceOnPlateau: Equatable, Sendable {
    public enum Mode: String, Sendable { case min, max }
    public var mode: Mode
    public var factor: Double
    public var patience: Int
    public var threshold: Double
    public var cooldown: Int
    public var minimumRate: Double
    public private(set) var best: Double
    public private(set) var badEpochs = 0
    public private(set) var cooldownLeft = 0

    public init(mode: Mode = .min, factor: Double = 0.1, patience: Int = 10, threshold: Double = 1e-4,
                cooldown: Int = 0, minimumRate: Double = 0) {
        precondition(factor < 1, "ReduceOnPlateau: factor must be below 1, got \(factor)")
        self.mode = mode
        self.factor = factor
        self.patience = patience
        self.threshold = threshold
        self.cooldown = cooldown
        self.minimumRate = minimumRate
        best = mode == .min ? .infinity : -.infinity
    }

    func isBetter(_ value: Double) -> Bool {
        mode == .min ? value < best * (1 - threshold) : value > best * (1 + threshold)
    }

    /// Records the epoch's `value` and returns the rate to use next.
    public mutating func step(_ value: Double, rate: Double) -> Double {
        if isBetter(value) { best = value; badEpochs = 0 } else { badEpochs += 1 }
        if cooldownLeft > 0 { cooldownLeft -= 1; badEpochs = 0 }
        guard badEpochs > patience else { return rate }
        cooldownLeft = cooldown
        badEpochs = 0
        let reduced = Swift.max(rate * factor, minimumRate)
        // PyTorch ignores reductions smaller than eps = 1e-8.
        return rate - reduced > 1e-8 ? reduced : rate
    }
}
