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
