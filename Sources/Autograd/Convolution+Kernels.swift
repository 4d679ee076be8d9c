// Geometry and the im2col / col2im kernels behind convolution and transposed convolution.

/// A height/width pair (kernel size, stride, dilation); an integer literal means both.
public struct Size2: Equatable, ExpressibleByIntegerLiteral, CustomStringConvertible {
    public var height: Int
    public var width: Int
    public init(_ height: Int, _ width: Int) { self.height = height; self.width = width }
    public init(integerLiteral value: Int) { self.init(value, value) }
    public var description: String { "(\(height), \(width))" }
}

/// Convolution padding.
public enum Padding: Equatable, ExpressibleByIntegerLiteral {
    /// No padding.
    case valid
    /// Output size `ceil(input / stride)`; the odd extra pixel goes after (bottom/right), as in
    /// PyTorch (`padding="same"`, stride 1) and TensorFlow.
    case same
    /// Zero padding of `height` rows above and below and `width` columns left and right.
    case explicit(Size2)
    public init(integerLiteral value: Int) { self = .explicit(Size2(value, value)) }
}

/// Everything a 2-D convolution of one image needs: `[C, H, W]` in, `[*, OH, OW]` out.
struct ConvGeometry: CustomStringConvertible {
    let channels, height, width: Int
    let kernelH, kernelW, strideH, strideW, padTop, padLeft, dilationH, dilationW: Int
    let outH, outW: Int

    var patch: Int { channels * kernelH * kernelW }
    var outPixels: Int { outH * outW }
    var inPixels: Int { height * width }
    var isPointwise: Bool {
        kernelH == 1 && kernelW == 1 && strideH == 1 && strideW == 1 && padTop == 0 && padLeft == 0
            && outH == height && outW == width
    }
    var description: String { "[\(channels), \(height), \(width)] -> [\(outH), \(outW)]" }
    /// Padding after the image (bottom, right) that makes the last window end where it does:
    /// oneDNN takes the two sides separately.
    var padBottom: Int { (outH - 1) * strideH + dilationH * (kernelH - 1) + 1 - height - padTop }
    var padRight: Int { (outW - 1) * strideW + dilationW * (kernelW - 1) + 1 - width - padLeft }

    /// The forward geometry of a convolution over `[C, H, W]`.
    init(channels: Int, height: Int, width: Int, kernel: Size2, stride: Size2, padding: Padding,
         dilation: Size2, op: String) {
        self.channels = channels; self.height = height; self.width = width
        kernelH = kernel.height; kernelW = kernel.width
        strideH = stride.height; strideW = stride.width
        dilationH = dilation.height; dilationW = dilation.width
        precondition(strideH > 0 && strideW > 0 && dilationH > 0 && dilationW > 0,
                     "\(op): stride \(stride) and dilation \(dilation) must be positive")
        let spanH = dilationH * (kernelH - 1) + 1, spanW = dilationW * (kernelW - 1) + 1
        switch padding {
        case .valid:
            padTop = 0; padLeft = 0
            outH = (height - spanH) / strideH + 1; outW = (width - spanW) / strideW + 1
        case .explicit(let p):
            padTop = p.height; padLeft = p.width
            outH = (height + 2 * p.height - spanH) / strideH + 1
            outW = (width + 2 * p.width - spanW) / strideW + 1
        case .same:
            outH = (height + strideH - 1) / strideH; outW = (width + strideW - 1) / strideW
            padTop = Swift.max((outH - 1) * strideH + spanH - height, 0) / 2
            padLeft = Swift.max((outW - 1) * strideW + spanW - width, 0) / 2
        }
        precondition(outH > 0 && outW > 0,
                     "\(op): kernel \(kernel) with dilation \(dilation) does not fit input [\(height), \(width)] with padding \(padding)")
    }

    /// Geometry given all sizes (transposed convolution: the image is the output side).
    init(channels: Int, height: Int, width: Int, kernel: Size2, stride: Size2, padTop: Int, padLeft: Int,
         dilation: Size2, outH: Int, outW: Int) {
        self.channels = channels; self.height = height; self.width = width
        kernelH = kernel.height; kernelW = kernel.width; strideH = stride.height; strideW = stride.width
        self.padTop = padTop; self.padLeft = padLeft
        dilationH = dilation.height; dilationW = dilation.width
        self.outH = outH; self.outW = outW
    }
}

@inline(__always) private func ceilDiv(_ a: Int, _ b: Int) -> Int { a >= 0 ? (a + b - 1) / b : -((-a) / b) }

/// Valid output columns `[lo, hi)` for kernel column offset `xoff`: `0 <= ox*s + xoff < W`.
@inline(__always) private func validRange(_ xoff: Int, stride s: Int, size: Int, out: Int) -> (Int, Int) {
    let lo = Swift.min(Swift.max(ceilDiv(-xoff, s), 0), out)
    let hi = Swift.min(Swift.max(ceilDiv(size - xoff, s), lo), out)
    return (lo, hi)
}

/// Unfolds one image `[C, H, W]` into columns `[C*KH*KW, OH*OW]` (row stride `ld`), zeros
/// where the kernel overlaps padding.
func im2col(_ x: UnsafePointer<Float>, _ g: ConvGeometry, _ cols: UnsafeMutablePointer<Float>, ld: Int) {
    let (oh, ow) = (g.outH, g.outW)
    for c in 0..<g.channels { for ki in 0..<g.kernelH { for kj in 0..<g.kernelW {
        let row = cols + ((c * g.kernelH + ki) * g.kernelW + kj) * ld
        let xoff = kj * g.dilationW - g.padLeft
        let (lo, hi) = validRange(xoff, stride: g.strideW, size: g.width, out: ow)
        for oy in 0..<oh {
            let iy = oy * g.strideH - g.padTop + ki * g.dilationH
            let dst = row + oy * ow
            if iy < 0 || iy >= g.height { dst.update(repeating: 0, count: ow); continue }
            let src = x + (c * g.height + iy) * g.width + xoff
            if lo > 0 { dst.update(repeating: 0, count: lo) }
            if g.strideW == 1 {
                if hi > lo { (dst + lo).update(from: src + lo, count: hi - lo) }
            } else {
                let s = g.strideW
                for ox in lo..<hi { dst[ox] = src[ox * s] }
            }
            if hi < ow { (dst + hi).update(repeating: 0, count: ow - hi) }
        }
    } } }
}

/// The adjoint of `im2col`: adds columns back into an image `[C, H, W]` (not cleared here).
func col2im(_ cols: UnsafePointer<Float>, ld: Int, _ g: ConvGeometry, _ x: UnsafeMutablePointer<Float>) {
    let (oh, ow) = (g.outH, g.outW)
    for c in 0..<g.channels { for ki in 0..<g.kernelH { for kj in 0..<g.kernelW {
        let row = cols + ((c * g.kernelH + ki) * g.kernelW + kj) * ld
        let xoff = kj * g.dilationW - g.padLeft
        let (lo, hi) = validRange(xoff, stride: g.strideW, size: g.width, out: ow)
        for oy in 0..<oh {
            let iy = oy * g.strideH - g.padTop + ki * g.dilationH
            if iy < 0 || iy >= g.height { continue }
            let src = row + oy * ow
            let dst = x + (c * g.height + iy) * g.width + xoff
            let s = g.strideW
            if s == 1 {
                for ox in lo..<hi { dst[ox] += src[ox] }
            } else {
                for ox in lo..<hi { dst[ox * s] += src[ox] }
            }
        }
    } } }
}
