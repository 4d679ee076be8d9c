// Small models: MLP, BENCH.md's cnn, the light-curve LSTM and GRU.
import Autograd

/// Multi-layer perceptron: `Dense`, activation, ..., `Dense` (no activation after the last).
/// Keys follow `nn.Sequential`: `0.weight`, `2.weight`, ...
///
/// - `input`: `[N, inputFeatures]`; returns `[N, widths.last]`.
public enum MLP {
    /// `widths`: the output features of each dense layer, the last one being the output;
    /// `seed`: the initial weights' (and dropout masks') seed (nil: random).
    public static func make(inputFeatures: Int, widths: [Int], activation: ActivationFunction = .relu,
                            dropout: Float = 0, seed: UInt64? = nil) -> Sequential {
        precondition(!widths.isEmpty, "MLP: needs at least one width")
        var seeds = LayerSeeds(seed)
        var layers: [any Layer] = []
        var c = inputFeatures
        for (k, w) in widths.enumerated() {
            layers.append(Dense(inputFeatures: c, outputFeatures: w, seed: seeds.next()))
            if k < widths.count - 1 {
                layers.append(Activation(activation))
                if dropout > 0 { layers.append(Dropout(probability: dropout, seed: seeds.next())) }
            }
            c = w
        }
        return Sequential(layers)
    }
}

/// BENCH.md's `cnn`: three [3×3 conv (pad 1), ReLU, max-pool 2], flatten, dense 256, ReLU,
/// dense to the classes. Keys as `reference_models.cnn`'s `nn.Sequential`: `0`, `3`, `6`
/// (convolutions), `10`, `12` (dense).
///
/// - `input`: `[N, inputChannels, imageSize, imageSize]`, `imageSize` divisible by 8
///   (64 in BENCH.md); returns `[N, classCount]`.
/// - `seed`: the initial weights' seed (nil: random).
public enum SimpleCNN {
    public static func make(inputChannels: Int = 1, classCount: Int = 5, imageSize: Int = 64, seed: UInt64? = nil) -> Sequential {
        precondition(imageSize % 8 == 0 && imageSize > 0, "SimpleCNN: imageSize \(imageSize) must be a positive multiple of 8")
        let s = imageSize / 8
        var seeds = LayerSeeds(seed)
        let layerSeeds = (0..<5).map { _ in seeds.next() }
        return Sequential {
            Conv2D(inputChannels: inputChannels, outputChannels: 32, kernelSize: 3, padding: 1, seed: layerSeeds[0])
            Activation.relu()
            MaxPool2D(kernelSize: 2)
            Conv2D(inputChannels: 32, outputChannels: 64, kernelSize: 3, padding: 1, seed: layerSeeds[1])
            Activation.relu()
            MaxPool2D(kernelSize: 2)
            Conv2D(inputChannels: 64, outputChannels: 128, kernelSize: 3, padding: 1, seed: layerSeeds[2])
            Activation.relu()
            MaxPool2D(kernelSize: 2)
            Flatten()
            Dense(inputFeatures: 128 * s * s, outputFeatures: 256, seed: layerSeeds[3])
            Activation.relu()
            Dense(inputFeatures: 256, outputFeatures: classCount, seed: layerSeeds[4])
        }
    }
}

/// A light-curve classifier: one recurrent layer, its last hidden state, a dense layer
/// (`reference_models.LightCurveLSTM` / `LightCurveGRU`). Keys: `lstm.weight_ih_l0` (or
/// `gru.…`), ..., `fc.weight`, `fc.bias`.
///
/// - `input`: `[N, T, features]` (any `T`); returns `[N, classCount]`.
public class LightCurveClassifier: Layer {
    public let recurrent: RecurrentLayer
    public let fc: Dense
    public var isTraining = true

    init(cell: RecurrentCell, features: Int, hiddenSize: Int, classCount: Int, seed: UInt64?) {
        var seeds = LayerSeeds(seed)
        let s = seeds.next()
        recurrent = cell == .lstm ? LSTM(inputFeatures: features, hiddenSize: hiddenSize, seed: s)
            : GRU(inputFeatures: features, hiddenSize: hiddenSize, seed: s)
        fc = Dense(inputFeatures: hiddenSize, outputFeatures: classCount, seed: seeds.next())
    }

    public func forward(_ input: Tensor) -> Tensor {
        let hidden = recurrent.stack.finalState(input, lengths: nil).hidden
        LayerTrace.record(recurrent, shape: [input.shape[0], input.shape[1], recurrent.hiddenSize])
        return fc(hidden)
    }

    public var children: [(key: String, layer: any Layer)] { [(recurrent.cell.rawValue, recurrent), ("fc", fc)] }

    public var layerDescription: String {
        "LightCurve\(recurrent.cell.rawValue.uppercased())(\(recurrent.inputFeatures) features, "
            + "hidden \(recurrent.hiddenSize) → \(fc.outputFeatures) classes)"
    }
}

/// BENCH.md's `lstm`: one LSTM layer, hidden 64, 2 features, 4 classes by default.
public final class LightCurveLSTM: LightCurveClassifier {
    public var lstm: LSTM { recurrent as! LSTM }

    /// - `seed`: the initial weights' seed (nil: random).
    public init(features: Int = 2, hiddenSize: Int = 64, classCount: Int = 4, seed: UInt64? = nil) {
        super.init(cell: .lstm, features: features, hiddenSize: hiddenSize, classCount: classCount, seed: seed)
    }
}

/// BENCH.md's `gru`: one GRU layer, hidden 64, 8 features, 7 classes by default.
public final class LightCurveGRU: LightCurveClassifier {
    public var gru: GRU { recurrent as! GRU }

    /// - `seed`: the initial weights' seed (nil: random).
    public init(features: Int = 8, hiddenSize: Int = 64, classCount: Int = 7, seed: UInt64? = nil) {
        super.init(cell: .gru, features: features, hiddenSize: hiddenSize, classCount: classCount, seed: seed)
    }
}
