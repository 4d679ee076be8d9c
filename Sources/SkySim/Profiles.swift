// Surface-brightness profiles, in pixel units: Sérsic, spiral disk, Gaussian blobs.
import AstroBase
import Foundation

/// Centre, axis ratio and orientation of an elliptical component.
///
/// Coordinates are 0-based pixel centres: pixel (i, j) covers [i - 0.5, i + 0.5] x
/// [j - 0.5, j + 0.5], with x along NAXIS1. `angle` is the position angle of the major axis,
/// counter-clockwise from +x, in radians.
public struct EllipseGeometry: Sendable {
    public let centerX: Double
    public let centerY: Double
    public let q: Double
    public let angle: Double
    let cosAngle: Double
    let sinAngle: Double

    public init(centerX: Double, centerY: Double, q: Double = 1, angle: Double = 0) {
        precondition(q > 0 && q <= 1, "EllipseGeometry: axis ratio must be in (0, 1], got \(q)")
        self.centerX = centerX; self.centerY = centerY; self.q = q; self.angle = angle
        cosAngle = Foundation.cos(angle); sinAngle = Foundation.sin(angle)
    }

    /// The same ellipse moved by (dx, dy) pixels.
    public func shifted(dx: Double, dy: Double) -> EllipseGeometry {
        EllipseGeometry(centerX: centerX + dx, centerY: centerY + dy, q: q, angle: angle)
    }

    /// (major, minor) coordinates of a point relative to the centre.
    @inline(__always)
    public func frame(_ x: Double, _ y: Double) -> (u: Double, v: Double) {
        let dx = x - centerX, dy = y - centerY
        return (cosAngle * dx + sinAngle * dy, -sinAngle * dx + cosAngle * dy)
    }

    /// Squared circularised radius q u² + v²/q: the ellipse through the point has semi-axes
    /// r/√q and r√q, so its geometric-mean radius is r (GalSim's `shear(q=...)` convention).
    @inline(__always)
    public func circularRadiusSquared(u: Double, v: Double) -> Double { q * u * u + v * v / q }
}

/// Sérsic profile I(r) = I_e exp(-b_n ((r / r_e)^(1/n) - 1)), r the circularised radius.
///
/// `flux` is the total of the untruncated profile, 2π n e^{b_n} b_n^{-2n} Γ(2n) I_e r_e²
/// (the area element of the circularised ellipse equals that of a circle, since a·b = r_e²).
public struct SersicProfile: Sendable {
    public let n: Double
    /// Circularised half-light radius, pixels.
    public let halfLightRadius: Double
    public let flux: Double
    public let geometry: EllipseGeometry
    public let b: Double
    /// ln of the central intensity (counts / pixel²).
    let logCentral: Double
    let inverseTwoN: Double
    let inverseRadiusSquared: Double

    public init(n: Double, halfLightRadius: Double, flux: Double, geometry: EllipseGeometry) {
        precondition(n > 0 && halfLightRadius > 0, "SersicProfile: n and r_e must be positive")
        self.n = n; self.halfLightRadius = halfLightRadius; self.flux = flux; self.geometry = geometry
        b = SpecialFunctions.sersicB(n: n)
        let logNorm = Foundation.log(2 * Double.pi * n) + b - 2 * n * Foundation.log(b)
            + SpecialFunctions.logGamma(2 * n) + 2 * Foundation.log(halfLightRadius)
        logCentral = Foundation.log(max(flux, 1e-300)) - logNorm + b
        inverseTwoN = 0.5 / n
        inverseRadiusSquared = 1 / (halfLightRadius * halfLightRadius)
    }

    /// Intensity (counts / pixel²) at squared circularised radius `r2` (pixels²).
    @inline(__always)
    public func intensity(circularRadiusSquared r2: Double) -> Double {
        let t = r2 * inverseRadiusSquared
        if t <= 0 { return Foundation.exp(logCentral) }
        return Foundation.exp(logCentral - b * Foundation.exp(inverseTwoN * Foundation.log(t)))
    }

    /// Intensity at a point in pixel coordinates.
    @inline(__always)
    public func intensity(x: Double, y: Double) -> Double {
        let (u, v) = geometry.frame(x, y)
        return intensity(circularRadiusSquared: geometry.circularRadiusSquared(u: u, v: v))
    }

    /// Fraction of the total flux inside circularised radius r: P(2n, b (r/r_e)^{1/n}).
    public func enclosedFraction(radius r: Double) -> Double {
        SpecialFunctions.regularizedGammaP(2 * n, b * Foundation.pow(r / halfLightRadius, 1 / n))
    }

    /// Circularised radius where the intensity drops to `level` counts / pixel².
    public func radius(atIntensity level: Double) -> Double {
        let x = (logCentral - Foundation.log(max(level, 1e-300))) / b
        return x <= 0 ? 0 : halfLightRadius * Foundation.pow(x, n)
    }
}

/// Exponential disk modulated by logarithmic spiral arms (TASKS.md `spiral`):
/// I = D(R) [1 - c T(R) + c T(R) S(R, φ) / ⟨S⟩_φ].
///
/// R, φ are deprojected disk-plane coordinates (R = r_circ / √q), the arms follow
/// φ = ln(R) / tan(pitch) + const, S = ((1 + cos(m (φ - ln R / tan p) - φ₀)) / 2)^k with
/// ⟨S⟩_φ = C(2k, k) / 4^k, and T(R) = 1 - exp(-(R / R_t)²) fades the arms at the centre.
/// Because S/⟨S⟩ averages to 1 on every ring, the total flux is exactly the disk's, and
/// c = armFraction / ⟨T⟩_D makes the arm term hold `armFraction` of it.
public struct SpiralDisk: Sendable {
    public let disk: SersicProfile
    public let armCount: Int
    public let pitch: Double
    public let phase: Double
    public let sharpness: Int
    public let armFraction: Double
    public let transitionRadius: Double
    let strength: Double
    let inverseMeanS: Double

    public init(disk: SersicProfile, armCount: Int, pitch: Double, phase: Double,
                sharpness: Int, armFraction: Double, transitionRadius: Double) {
        self.disk = disk; self.armCount = armCount; self.pitch = pitch; self.phase = phase
        self.sharpness = sharpness; self.armFraction = armFraction; self.transitionRadius = transitionRadius
        var binomial = 1.0
        for i in 0..<sharpness { binomial *= Double(2 * sharpness - i) / Double(i + 1) }
        inverseMeanS = Foundation.pow(4, Double(sharpness)) / binomial
        // ⟨T⟩_D on the deprojected (circular) disk, whose half-light radius is r_e/√q.
        let scale = disk.halfLightRadius / disk.geometry.q.squareRoot()
        var weighted = 0.0, total = 0.0
        let step = scale / 200
        for i in 0..<4000 {
            let r = (Double(i) + 0.5) * step
            let d = r * Foundation.exp(-disk.b * r / scale)
            total += d
            weighted += d * (1 - Foundation.exp(-(r * r) / (transitionRadius * transitionRadius)))
        }
        strength = armFraction / (weighted / total)
        precondition(strength <= 1, "SpiralDisk: arm fraction \(armFraction) too large for the transition radius")
    }

    @inline(__always)
    public func intensity(x: Double, y: Double) -> Double {
        let g = disk.geometry
        let (u, v) = g.frame(x, y)
        let base = disk.intensity(circularRadiusSquared: g.circularRadiusSquared(u: u, v: v))
        let w = v / g.q
        let r2 = u * u + w * w
        if r2 < 1e-12 { return base }
        let fade = 1 - Foundation.exp(-r2 / (transitionRadius * transitionRadius))
        let phi = Foundation.atan2(w, u)
        let theta = Double(armCount) * (phi - 0.5 * Foundation.log(r2) / Foundation.tan(pitch)) - phase
        var s = 0.5 * (1 + Foundation.cos(theta))
        var power = 1.0
        for _ in 0..<sharpness { power *= s }
        s = power * inverseMeanS
        return base * (1 - strength * fade + strength * fade * s)
    }
}

/// A circular Gaussian blob or, with `sigma` = 0, a point source; pixel units.
///
/// Rendered analytically: its convolution with the Gaussian PSF is a Gaussian of width
/// √(σ² + σ_PSF²), integrated exactly over each pixel with erf.
public struct GaussianBlob: Sendable {
    public var centerX: Double
    public var centerY: Double
    public var sigma: Double
    public var flux: Double
    public init(centerX: Double, centerY: Double, sigma: Double, flux: Double) {
        self.centerX = centerX; self.centerY = centerY; self.sigma = sigma; self.flux = flux
    }
}

/// One ingredient of a scene.
public enum SceneComponent: Sendable {
    case sersic(SersicProfile)
    case spiral(SpiralDisk)
    case gaussian(GaussianBlob)
    case lensed(LensedSource)

    /// Smallest length (pixels) the supersampled grid must resolve.
    var resolutionScale: Double {
        switch self {
        case .sersic(let p): return p.halfLightRadius * p.geometry.q.squareRoot()
        case .spiral(let s): return min(s.disk.halfLightRadius * s.disk.geometry.q.squareRoot(), s.transitionRadius)
        case .gaussian: return .infinity
        case .lensed(let l): return l.source.halfLightRadius * l.source.geometry.q.squareRoot()
        }
    }
}
