// Multi-band photometry against time (light curves).
import Foundation

extension LinePlot {
    /// The colours of bands g, r, i (and further bands in turn).
    public static let bandColors: [Color] = [.blue, .green, .red, .yellow]

    /// Flux against time with error bars, one series per band: point `k` is in band
    /// `band[k]`, an index into `bandNames`.
    public static func bands(title: String, mjd: [Double], flux: [Double], errors: [Double], band: [Int],
                             bandNames: [String]) -> LinePlot {
        precondition(mjd.count == flux.count && flux.count == errors.count && errors.count == band.count,
                     "LinePlot.bands: \(mjd.count) times, \(flux.count) fluxes, \(errors.count) errors, \(band.count) bands")
        var plot = LinePlot(title: title, xLabel: "mjd [d]", yLabel: "flux")
        for (b, name) in bandNames.enumerated() {
            let picked = band.indices.filter { band[$0] == b }
            if picked.isEmpty { continue }
            plot.addPoints(x: picked.map { mjd[$0] }, y: picked.map { flux[$0] }, errors: picked.map { errors[$0] },
                           label: name, color: bandColors[b % bandColors.count])
        }
        return plot
    }
}
