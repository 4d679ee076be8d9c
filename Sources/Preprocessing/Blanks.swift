import Foundation

/// What to do with NaN (blank) pixels before a network sees them.
public enum BlankFill: String, Equatable, Sendable, CaseIterable {
    /// Leave NaN in place (a later stage must handle it).
    case keep
    /// Zero: the sky level of a background-subtracted image.
    case zero
    /// The median of the finite pixels of the same channel.
    case median
    /// The median of the finite pixels in the 5×5 neighbourhood, growing the
    /// window until one is found (falls back to the channel median).
    case localMedian = "local_median"
}

extension PlanarImage {
    /// 1 where any channel is NaN or infinite, else 0 (one plane).
    public var blankMask: PlanarImage {
        var mask = PlanarImage(height: height, width: width)
        for c in 0..<channels {
            for p in 0..<planeSize where !pixels[c * planeSize + p].isFinite { mask.pixels[p] = 1 }
        }
        return mask
    }

    /// The number of non-finite pixels over all channels.
    public var blankCount: Int { pixels.reduce(0) { $0 + ($1.isFinite ? 0 : 1) } }

    /// The image with non-finite pixels replaced per `fill`; with `appendingMask`
    /// the mask of what was blank becomes an extra last channel, so a network can
    /// tell filled pixels from measured ones.
    public func fillingBlanks(_ fill: BlankFill, appendingMask: Bool = false) -> PlanarImage {
        let mask = appendingMask ? blankMask : nil
        var out = self
        if fill != .keep {
            for c in 0..<channels {
                let base = c * planeSize
                var channelMedian: Float?
                func medianOfChannel() -> Float {
                    if let channelMedian { return channelMedian }
                    let finite = pixels[base..<base + planeSize].filter { $0.isFinite }.map(Double.init)
                    let m = finite.isEmpty ? 0 : Float(PixelStatistics.median(finite))
                    channelMedian = m
                    return m
                }
                for y in 0..<height {
                    for x in 0..<width where !self[c, y, x].isFinite {
                        switch fill {
                        case .keep: break
                        case .zero: out[c, y, x] = 0
                        case .median: out[c, y, x] = medianOfChannel()
                        case .localMedian: out[c, y, x] = localMedian(c, y, x) ?? medianOfChannel()
                        }
                    }
                }
            }
        }
        if let mask { out = .stacking([out, mask]) }
        return out
    }

    private func localMedian(_ c: Int, _ y: Int, _ x: Int) -> Float? {
        var radius = 2
        while radius <= Swift.max(height, width) {
            var values = [Double]()
            for yy in Swift.max(0, y - radius)...Swift.min(height - 1, y + radius) {
                for xx in Swift.max(0, x - radius)...Swift.min(width - 1, x + radius) {
                    let v = self[c, yy, xx]
                    if v.isFinite { values.append(Double(v)) }
                }
            }
            if !values.isEmpty { return Float(PixelStatistics.median(values)) }
            radius *= 2
        }
        return nil
    }
}
