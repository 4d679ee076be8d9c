// Task 2 (lens) scenes: g, r, i cubes of a lens galaxy with or without a lensed source.
import AstroBase
import FITS
import Foundation

/// Builds strong-lens cubes (NAXIS3 = 3, band order g, r, i).
enum LensScene {
    static let bands = ["G", "R", "I"]

    static func make(index: Int, seed: UInt64, settings: ObservationSettings, size: Int,
                     keepNoiseless: Bool = false, keepArc: Bool = false, forcedLabel: Int? = nil,
                     forcedSourceOffset: (Double, Double)? = nil) -> SimulatedImage {
        var random = SeededGenerator(seed: seed, stream: UInt64(index))
        let drawnLabel = random.uniform() < 0.5 ? 1 : 0
        let label = forcedLabel ?? drawnLabel
        let fwhms = (0..<3).map { _ in random.uniform(settings.psfFWHM) }
        let skySigmas = (0..<3).map { _ in random.uniform(settings.skySigma) }
        let px = settings.pixels
        let cx = Double(size - 1) / 2 + random.uniform(-2, 2)
        let cy = Double(size - 1) / 2 + random.uniform(-2, 2)

        // Lens galaxy: n = 4, i-band magnitude, red colours.
        let lensRe = random.uniform(0.8, 1.6), lensQ = random.uniform(0.6, 1.0), lensAngle = random.positionAngle()
        let lensI = random.uniform(settings.galaxyMagnitudes ?? 18...20)
        let lensGR = random.plusMinus(0.8, 0.1), lensRI = random.plusMinus(0.4, 0.1)
        let lensMags = [lensI + lensRI + lensGR, lensI + lensRI, lensI]
        let lensLight = SersicProfile(n: 4, halfLightRadius: px(lensRe), flux: 1,
                                      geometry: EllipseGeometry(centerX: cx, centerY: cy, q: lensQ, angle: lensAngle))

        // Blue source population (lensed source or companion).
        let sourceG = random.uniform(settings.sourceMagnitudes)
        let sourceGR = random.plusMinus(0.2, 0.1), sourceRI = random.plusMinus(0.1, 0.1)
        let sourceMags = [sourceG, sourceG - sourceGR, sourceG - sourceGR - sourceRI]
        let sourceQ = random.uniform(0.4, 1.0), sourceAngle = random.positionAngle()
        var cards: [HeaderRecord] = []
        var second: SceneComponent? = nil
        if label == 1 {
            let thetaE = random.uniform(0.8, 2.5), massQ = random.uniform(0.6, 1.0), massAngle = random.positionAngle()
            let gamma = random.uniform(0, 0.05), gammaAngle = random.positionAngle()
            let sourceRe = random.uniform(0.1, 0.4)
            // Uniform by area within 0.5 θ_E of the lens centre.
            let radius = 0.5 * px(thetaE) * random.uniform().squareRoot(), direction = random.uniform(0, 2 * Double.pi)
            var offset = (radius * Foundation.cos(direction), radius * Foundation.sin(direction))
            if let forced = forcedSourceOffset { offset = forced }
            let lens = SIELens(centerX: cx, centerY: cy, einsteinRadius: px(thetaE), q: massQ, angle: massAngle,
                               shear1: gamma * Foundation.cos(2 * gammaAngle), shear2: gamma * Foundation.sin(2 * gammaAngle))
            let source = SersicProfile(n: 1, halfLightRadius: px(sourceRe), flux: 1,
                                       geometry: EllipseGeometry(centerX: cx + offset.0, centerY: cy + offset.1,
                                                                 q: sourceQ, angle: sourceAngle))
            second = .lensed(LensedSource(source: source, lens: lens))
            cards = [
                HeaderRecord("THETA_E", .float(thetaE), comment: "SIE Einstein radius, circularised [arcsec]"),
                HeaderRecord("MASS_Q", .float(massQ), comment: "SIE axis ratio"),
                HeaderRecord("MASS_PA", .float(massAngle * 180 / Double.pi), comment: "SIE major axis from +x [deg]"),
                HeaderRecord("SHEAR", .float(gamma), comment: "external shear magnitude"),
                HeaderRecord("SHEAR_PA", .float(gammaAngle * 180 / Double.pi), comment: "external shear angle [deg]"),
                HeaderRecord("SRC_RE", .float(sourceRe), comment: "source r_e (n = 1) [arcsec]"),
                HeaderRecord("SRC_DX", .float(offset.0 * settings.pixelScale), comment: "source offset from lens, x [arcsec]"),
                HeaderRecord("SRC_DY", .float(offset.1 * settings.pixelScale), comment: "source offset from lens, y [arcsec]"),
                HeaderRecord("SRC_MAGG", .float(sourceG), comment: "unlensed source g magnitude"),
            ]
        } else if random.uniform() < 0.5 {
            let companionRe = random.uniform(0.2, 0.6)
            let distance = px(random.uniform(2, 4)), direction = random.uniform(0, 2 * Double.pi)
            second = .sersic(SersicProfile(n: 1, halfLightRadius: px(companionRe), flux: 1,
                geometry: EllipseGeometry(centerX: cx + distance * Foundation.cos(direction),
                                          centerY: cy + distance * Foundation.sin(direction), q: sourceQ, angle: sourceAngle)))
            cards = [HeaderRecord("COMPANIO", .logical(true), comment: "unlensed blue companion present"),
                     HeaderRecord("COMP_RE", .float(companionRe), comment: "companion r_e [arcsec]"),
                     HeaderRecord("COMP_SEP", .float(distance * settings.pixelScale), comment: "companion distance [arcsec]"),
                     HeaderRecord("SRC_MAGG", .float(sourceG), comment: "companion g magnitude")]
        }

        // Shapes are the same in every band: build unit-flux grids once, then scale and
        // convolve with each band's own PSF on a shared margin.
        let all: [SceneComponent] = [.sersic(lensLight)] + (second.map { [$0] } ?? [])
        let oversampling = Renderer.oversampling(for: all)
        let sigmas = fwhms.map(settings.psfSigma)
        let margin = Renderer.margin(psfSigma: sigmas.max()!)
        let psfs = psfShapes(settings.psf, seed: seed, index: index, fwhmPixels: fwhms.map(settings.pixels))
        let base = Renderer(width: size, height: size, psfSigma: 0, oversampling: oversampling, margin: margin)
        let lensGrid = base.cells([.sersic(lensLight)])!
        let secondGrid = second.flatMap { base.cells([$0]) }
        var pixels: [Float] = []
        var clean: [Double] = []
        // The lensed source alone, noiseless, summed over the bands (lenses only).
        var arc: [Double]? = keepArc && label == 1 ? [Double](repeating: 0, count: size * size) : nil
        for band in 0..<3 {
            let grid = lensGrid.combined(settings.flux(magnitude: lensMags[band]), secondGrid,
                                         settings.flux(magnitude: sourceMags[band]))
            let renderer = Renderer(width: size, height: size, psfSigma: sigmas[band], oversampling: oversampling, margin: margin)
            func draw(_ grid: CellGrid) -> [Double] {
                psfs?[band].render(grid: grid, width: size, height: size, oversampling: oversampling, margin: margin)
                    ?? renderer.render(grid: grid, analytic: [])
            }
            let image = draw(grid)
            pixels += NoiseModel.noisy(image, skySigma: skySigmas[band], gain: settings.gain, random: &random)
            if keepNoiseless { clean += image }
            if arc != nil, let secondGrid {
                let alone = draw(secondGrid.scaled(settings.flux(magnitude: sourceMags[band])))
                for i in alone.indices { arc![i] += alone[i] }
            }
        }

        var header = provenanceCards(task: .lens, seed: seed, index: index)
            + settings.commonCards(psfFWHM: fwhms.reduce(0, +) / 3, skySigma: skySigmas.reduce(0, +) / 3)
        header.append(HeaderRecord("BANDS", .string("g,r,i"), comment: "band order along NAXIS3"))
        for b in 0..<3 { header.append(HeaderRecord("FWHM_\(bands[b])", .float(fwhms[b]), comment: "\(bands[b].lowercased())-band PSF FWHM [arcsec]")) }
        if let psfs { for b in 0..<3 { header += psfs[b].cards(suffix: bands[b]) } }
        for b in 0..<3 { header.append(HeaderRecord("SKYSIG_\(bands[b])", .float(skySigmas[b]), comment: "\(bands[b].lowercased())-band sky sigma [counts]")) }
        header += [
            HeaderRecord("LABEL", .integer(label), comment: "0 non_lens 1 lens"),
            HeaderRecord("CLASS", .string(SimulationTask.lens.classNames[label]), comment: "lens class"),
            HeaderRecord("LENS_MAG", .float(lensI), comment: "lens galaxy i magnitude"),
            HeaderRecord("LENS_RE", .float(lensRe), comment: "lens galaxy r_e (n = 4) [arcsec]"),
            HeaderRecord("LENS_Q", .float(lensQ), comment: "lens galaxy axis ratio"),
            HeaderRecord("LENS_GR", .float(lensGR), comment: "lens galaxy g - r"),
            HeaderRecord("LENS_RI", .float(lensRI), comment: "lens galaxy r - i"),
            HeaderRecord("SRC_GR", .float(sourceGR), comment: "source / companion g - r"),
            HeaderRecord("SRC_RI", .float(sourceRI), comment: "source / companion r - i"),
            HeaderRecord("OBJ_X", .float(cx + 1), comment: "lens centre, FITS pixel (1-based)"),
            HeaderRecord("OBJ_Y", .float(cy + 1), comment: "lens centre, FITS pixel (1-based)"),
        ] + cards
        var image = SimulatedImage(fileName: String(format: "lens_%06d.fits", index), pixels: pixels,
                                   shape: [size, size, 3], header: header, truth: nil,
                                   catalogFields: [String(label)], label: label,
                                   caption: SimulationTask.lens.classNames[label], noiseless: keepNoiseless ? clean : nil)
        image.arc = arc.map { $0.map(Float.init) }
        return image
    }
}
