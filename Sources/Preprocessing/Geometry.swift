import Foundation

/// How `resized` computes new pixels.
public enum ResizeMethod: String, Equatable, Sendable, CaseIterable {
    /// PyTorch's `interpolate(mode="bilinear", align_corners=False)`: sample at
    /// `(i + 0.5)·in/out - 0.5`, clamped at the edges. Fine for enlarging.
    case bilinear
    /// PyTorch's `interpolate(mode="area")` (adaptive average pooling): each output
    /// pixel is the mean over the input pixels its footprint touches. Use it for
    /// shrinking: it conserves mean flux and does not alias noise.
    case area
}

/// Where new border pixels come from in `padded`.
public enum PaddingMode: Equatable, Sendable {
    case constant(Float)
    /// Mirror without repeating the edge pixel (numpy's "reflect").
    case reflect
    /// Repeat the edge pixel.
    case edge
}

extension PlanarImage {
    // MARK: - Resizing

    /// The image resampled to `height × width` (each channel independently).
    public func resized(height newHeight: Int, width newWidth: Int,
                        method: ResizeMethod = .bilinear) -> PlanarImage {
        precondition(newHeight > 0 && newWidth > 0, "resized: target \(newHeight)×\(newWidth) must be positive")
        var out = PlanarImage(channels: channels, height: newHeight, width: newWidth)
        switch method {
        case .bilinear:
            let ys = Self.bilinearTaps(input: height, output: newHeight)
            let xs = Self.bilinearTaps(input: width, output: newWidth)
            for c in 0..<channels {
                for (oy, ty) in ys.enumerated() {
                    for (ox, tx) in xs.enumerated() {
                        let top = self[c, ty.0, tx.0] * (1 - tx.2) + self[c, ty.0, tx.1] * tx.2
                        let bottom = self[c, ty.1, tx.0] * (1 - tx.2) + self[c, ty.1, tx.1] * tx.2
                        out[c, oy, ox] = top * (1 - ty.2) + bottom * ty.2
                    }
                }
            }
        case .area:
            for c in 0..<channels {
                for oy in 0..<newHeight {
                    let y0 = oy * height / newHeight, y1 = ((oy + 1) * height + newHeight - 1) / newHeight
                    for ox in 0..<newWidth {
                        let x0 = ox * width / newWidth, x1 = ((ox + 1) * width + newWidth - 1) / newWidth
                        var sum: Float = 0
                        for y in y0..<y1 { for x in x0..<x1 { sum += self[c, y, x] } }
                        out[c, oy, ox] = sum / Float((y1 - y0) * (x1 - x0))
                    }
                }
            }
        }
        return out
    }

    /// Nearest-neighbour resampling (for label maps, whose values must stay classes).
    public func resizedNearest(height newHeight: Int, width newWidth: Int) -> PlanarImage {
        var out = PlanarImage(channels: channels, height: newHeight, width: newWidth)
        for c in 0..<channels {
            for y in 0..<newHeight {
                let sy = Swift.min(height - 1, y * height / newHeight)
                for x in 0..<newWidth { out[c, y, x] = self[c, sy, Swift.min(width - 1, x * width / newWidth)] }
            }
        }
        return out
    }

    /// For each output index: the two input indices and the weight of the second.
    static func bilinearTaps(input: Int, output: Int) -> [(Int, Int, Float)] {
        let scale = Double(input) / Double(output)
        return (0..<output).map { i in
            let source = Swift.max(0, (Double(i) + 0.5) * scale - 0.5)
            let i0 = Swift.min(Int(source), input - 1)
            let i1 = Swift.min(i0 + 1, input - 1)
            return (i0, i1, Float(source - Double(i0)))
        }
    }

    // MARK: - Cropping and padding

    /// The region `rows × columns`; regions outside the image come from `fill`
    /// (so a crop near an edge keeps its size).
    public func cropped(y: Int, x: Int, height h: Int, width w: Int, fill: Float = 0) -> PlanarImage {
        precondition(h > 0 && w > 0, "cropped: size \(h)×\(w) must be positive")
        var out = PlanarImage(channels: channels, height: h, width: w, repeating: fill)
        let yLo = Swift.max(0, y), yHi = Swift.min(height, y + h)
        let xLo = Swift.max(0, x), xHi = Swift.min(width, x + w)
        guard yLo < yHi && xLo < xHi else { return out }
        for c in 0..<channels {
            for sy in yLo..<yHi {
                let src = (c * height + sy) * width
                let dst = (c * h + (sy - y)) * w - x
                for sx in xLo..<xHi { out.pixels[dst + sx] = pixels[src + sx] }
            }
        }
        return out
    }

    /// The central `height × width` region (torchvision's `center_crop` rounding).
    public func centerCropped(height h: Int, width w: Int) -> PlanarImage {
        let top = Int((Double(height - h) / 2).rounded()), left = Int((Double(width - w) / 2).rounded())
        return cropped(y: top, x: left, height: h, width: w)
    }

    /// The image with `top/bottom/left/right` pixels added.
    public func padded(top: Int, bottom: Int, left: Int, right: Int,
                       mode: PaddingMode = .constant(0)) -> PlanarImage {
        precondition(top >= 0 && bottom >= 0 && left >= 0 && right >= 0, "padded: negative padding")
        let h = height + top + bottom, w = width + left + right
        var out = PlanarImage(channels: channels, height: h, width: w)
        func source(_ i: Int, _ n: Int) -> Int? {
            if i >= 0 && i < n { return i }
            switch mode {
            case .constant: return nil
            case .edge: return Swift.min(Swift.max(i, 0), n - 1)
            case .reflect:
                if n == 1 { return 0 }
                let period = 2 * (n - 1)
                var j = i % period
                if j < 0 { j += period }
                return j < n ? j : period - j
            }
        }
        let fill: Float = { if case let .constant(v) = mode { return v } else { return 0 } }()
        for c in 0..<channels {
            for y in 0..<h {
                let sy = source(y - top, height)
                for x in 0..<w {
                    if let sy, let sx = source(x - left, width) {
                        out[c, y, x] = self[c, sy, sx]
                    } else {
                        out[c, y, x] = fill
                    }
                }
            }
        }
        return out
    }

    // MARK: - Flips and rotations

    /// Mirrored left-right (`horizontal`) or top-bottom.
    public func flipped(horizontal: Bool) -> PlanarImage {
        var out = self
        for c in 0..<channels {
            for y in 0..<height {
                for x in 0..<width {
                    out[c, y, x] = horizontal ? self[c, y, width - 1 - x] : self[c, height - 1 - y, x]
                }
            }
        }
        return out
    }

    /// Rotated by `quarterTurns × 90°` counter-clockwise, as `numpy.rot90` on each plane.
    public func rotated(quarterTurns: Int) -> PlanarImage {
        let k = ((quarterTurns % 4) + 4) % 4
        if k == 0 { return self }
        let (h, w) = k == 2 ? (height, width) : (width, height)
        var out = PlanarImage(channels: channels, height: h, width: w)
        for c in 0..<channels {
            for y in 0..<h {
                for x in 0..<w {
                    switch k {
                    case 1: out[c, y, x] = self[c, x, width - 1 - y]
                    case 2: out[c, y, x] = self[c, height - 1 - y, width - 1 - x]
                    default: out[c, y, x] = self[c, height - 1 - x, y]
                    }
                }
            }
        }
        return out
    }

    /// Rotated by `degrees` counter-clockwise about the image centre with bilinear
    /// interpolation, and shifted by `(dx, dy)` pixels; pixels that come from
    /// outside the image are `fill`.
    public func rotated(degrees: Double, shiftX dx: Double = 0, shiftY dy: Double = 0,
                        fill: Float = 0) -> PlanarImage {
        let angle = degrees * .pi / 180
        let cosA = Foundation.cos(angle), sinA = Foundation.sin(angle)
        let cx = Double(width - 1) / 2, cy = Double(height - 1) / 2
        var out = PlanarImage(channels: channels, height: height, width: width, repeating: fill)
        for y in 0..<height {
            for x in 0..<width {
                // Inverse map, output → input: the content turns counter-clockwise as
                // displayed with row 0 at the bottom (FITS convention, origin='lower').
                let u = Double(x) - cx - dx, v = Double(y) - cy - dy
                let sx = cosA * u - sinA * v + cx
                let sy = sinA * u + cosA * v + cy
                let x0 = Int(Foundation.floor(sx)), y0 = Int(Foundation.floor(sy))
                guard x0 >= -1, y0 >= -1, x0 < width, y0 < height else { continue }
                let fx = Float(sx - Double(x0)), fy = Float(sy - Double(y0))
                for c in 0..<channels {
                    func at(_ yy: Int, _ xx: Int) -> Float {
                        (yy >= 0 && yy < height && xx >= 0 && xx < width) ? self[c, yy, xx] : fill
                    }
                    let top = at(y0, x0) * (1 - fx) + at(y0, x0 + 1) * fx
                    let bottom = at(y0 + 1, x0) * (1 - fx) + at(y0 + 1, x0 + 1) * fx
                    out[c, y, x] = top * (1 - fy) + bottom * fy
                }
            }
        }
        return out
    }
}
