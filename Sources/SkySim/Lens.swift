// Gravitational lensing: singular isothermal ellipsoid plus external shear, and a
// Sérsic source seen through it by ray shooting.
import Foundation

/// Singular isothermal ellipsoid (SIE) with external shear; lengths in pixels.
///
/// Convergence, in the mass frame (x along the major axis), lenstronomy's `SIE` with the
/// circularised Einstein radius θ_E:  κ = θ_E / (2 √(q x² + y²/q)).
/// Writing it as Keeton's (2001) κ = b q / (2 √(q² x² + y²)) with b = θ_E / √q, the
/// deflection (Kormann, Schneider & Bartelmann 1994; Keeton 2001 with core s → 0) is
///   α_x = θ_E √q / √(1 - q²) · atan(√(1 - q²) x / ψ),
///   α_y = θ_E √q / √(1 - q²) · atanh(√(1 - q²) y / ψ),   ψ = √(q² x² + y²),
/// which tends to the singular isothermal sphere θ_E (x, y) / r as q → 1.
/// External shear (γ₁, γ₂) adds α = (γ₁ x + γ₂ y, γ₂ x - γ₁ y) about the lens centre.
public struct SIELens: Sendable {
    public var centerX: Double
    public var centerY: Double
    public var einsteinRadius: Double
    public var q: Double
    public let angle: Double
    public var shear1: Double
    public var shear2: Double
    let cosAngle: Double
    let sinAngle: Double

    public init(centerX: Double, centerY: Double, einsteinRadius: Double, q: Double, angle: Double,
                shear1: Double = 0, shear2: Double = 0) {
        precondition(q > 0 && q <= 1, "SIELens: axis ratio must be in (0, 1], got \(q)")
        self.centerX = centerX; self.centerY = centerY; self.einsteinRadius = einsteinRadius
        self.q = q; self.angle = angle; self.shear1 = shear1; self.shear2 = shear2
        cosAngle = Foundation.cos(angle); sinAngle = Foundation.sin(angle)
    }

    /// Convergence at an image-plane point.
    public func convergence(x: Double, y: Double) -> Double {
        let dx = x - centerX, dy = y - centerY
        let c = cosAngle, s = sinAngle
        let u = c * dx + s * dy, v = -s * dx + c * dy
        return einsteinRadius / (2 * (q * u * u + v * v / q).squareRoot())
    }

    /// Deflection angle (pixels) at an image-plane point.
    @inline(__always)
    public func deflection(x: Double, y: Double) -> (x: Double, y: Double) {
        let dx = x - centerX, dy = y - centerY
        let c = cosAngle, s = sinAngle
        let u = c * dx + s * dy, v = -s * dx + c * dy
        let psi = max((q * q * u * u + v * v).squareRoot(), 1e-12)
        var au: Double, av: Double
        if 1 - q < 1e-6 {
            au = einsteinRadius * u / psi
            av = einsteinRadius * v / psi
        } else {
            let e = (1 - q * q).squareRoot()
            let amplitude = einsteinRadius * q.squareRoot() / e
            au = amplitude * Foundation.atan(e * u / psi)
            av = amplitude * Foundation.atanh(e * v / psi)
        }
        let ax = c * au - s * av + shear1 * dx + shear2 * dy
        let ay = s * au + c * av + shear2 * dx - shear1 * dy
        return (ax, ay)
    }

    /// The source-plane position β = θ - α(θ).
    @inline(__always)
    public func sourcePosition(x: Double, y: Double) -> (x: Double, y: Double) {
        let a = deflection(x: x, y: y)
        return (x - a.x, y - a.y)
    }
}

/// A Sérsic source behind a lens: its image-plane intensity is the source intensity at
/// the ray-traced position (surface brightness is conserved by lensing).
public struct LensedSource: Sendable {
    public var source: SersicProfile
    public var lens: SIELens
    public init(source: SersicProfile, lens: SIELens) { self.source = source; self.lens = lens }

    @inline(__always)
    public func intensity(x: Double, y: Double) -> Double {
        let beta = lens.sourcePosition(x: x, y: y)
        return source.intensity(x: beta.x, y: beta.y)
    }
}
