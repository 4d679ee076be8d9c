// Activation layers.
import Autograd

/// An elementwise non-linearity.
public enum ActivationFunction: Equatable, Sendable, Codable {
    case relu
    case leakyReLU(negativeSlope: Float)
    case elu(alpha: Float)
    case gelu
    case sigmoid
    case tanh
    case softplus
    case identity

    /// Applies the function (recorded by autograd).
    public func apply(_ x: Tensor) -> Tensor {
        switch self {
        case .relu: return x.relu()
        case .leakyReLU(let s): return x.leakyRelu(negativeSlope: s)
        case .elu(let a): return x.elu(alpha: a)
        case .gelu: return x.gelu()
        case .sigmoid: return x.sigmoid()
        case .tanh: return x.tanh()
        case .softplus: return x.softplus()
        case .identity: return x
        }
    }

    var name: String {
        switch self {
        case .relu: return "ReLU"
        case .leakyReLU(let s): return "LeakyReLU(negative slope \(s))"
        case .elu(let a): return "ELU(alpha \(a))"
        case .gelu: return "GELU"
        case .sigmoid: return "Sigmoid"
        case .tanh: return "Tanh"
        case .softplus: return "Softplus"
        case .identity: return "Identity"
        }
    }
}

/// The activations a model file or configuration names by string (`"gelu"`), with PyTorch's
/// default parameters for the parameterised ones; decoded once, at that boundary.
public enum ActivationName: String, CaseIterable, Sendable {
    case relu, gelu, sigmoid, tanh, softplus, identity
    /// Negative slope 0.01, as `nn.LeakyReLU()`.
    case leakyReLU = "leaky_relu"
    /// Alpha 1, as `nn.ELU()`.
    case elu

    /// The name of `value`, or `WeightsError.unknownChoice` naming it and listing the valid names.
    public init(decoding value: String) throws {
        guard let name = ActivationName(rawValue: value) else {
            throw WeightsError.unknownChoice(path: "", option: "activation", value: value,
                                             choices: ActivationName.allCases.map(\.rawValue))
        }
        self = name
    }

    public var function: ActivationFunction {
        switch self {
        case .relu: return .relu
        case .gelu: return .gelu
        case .sigmoid: return .sigmoid
        case .tanh: return .tanh
        case .softplus: return .softplus
        case .identity: return .identity
        case .leakyReLU: return .leakyReLU(negativeSlope: 0.01)
        case .elu: return .elu(alpha: 1)
        }
    }
}

/// An activation as a layer (PyTorch's `nn.ReLU`, `nn.GELU`, ...).
///
/// - `input`: any shape; returns the same shape.
public final class Activation: Layer {
    public let function: ActivationFunction
    public var isTraining = true
    public init(_ function: ActivationFunction) { self.function = function }
    public func forward(_ input: Tensor) -> Tensor { function.apply(input) }
    public var layerDescription: String { function.name.contains("(") ? function.name : function.name + "()" }

    public static func relu() -> Activation { Activation(.relu) }
    public static func gelu() -> Activation { Activation(.gelu) }
    public static func sigmoid() -> Activation { Activation(.sigmoid) }
    public static func tanh() -> Activation { Activation(.tanh) }
}
