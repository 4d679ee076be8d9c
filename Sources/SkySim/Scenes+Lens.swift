// Task 2 (lens) scenes: g, r, i cubes of a lens galaxy with or without a lensed source.
import Foundation

/// Builds strong-lens cubes (NAXIS3 = 3, band order g, r, i).
enum LensScene {
    static let bands = ["G", "R", "I"]

    static func make(index: Int, seed: UInt64, settings: ObservationSettings, size: Int,
                     keepNoiseless: Bool = false, forcedLabel: Int? = nil,
                     forcedSourceOffset: (Double, Double)? = nil) -> SimulatedImage {
        var random = SimRandom(seed: seed, index: UInt64(index))
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
        var cards: [HeaderCard] = []
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
                HeaderCard("THETA_E", .real(thetaE), "SIE Einstein radius, circularised [arcsec]"),
                HeaderCard("MASS_Q", .real(massQ), "SIE axis ratio"),
                HeaderCard("MASS_PA", .real(massAngle * 180 / Double.pi), "SIE major axis from +x [deg]"),
                HeaderCard("SHEAR", .real(gamma), "external shear magnitude"),
                HeaderCard("SHEAR_PA", .real(gammaAngle * 180 / Double.pi), "external shear angle [deg]"),
                HeaderCard("SRC_RE", .real(sourceRe), "source r_e (n = 1) [arcsec]"),
                HeaderCard("SRC_DX", .real(offset.0 * settings.pixelScale), "source offset from lens, x [arcsec]"),
                HeaderCard("SRC_DY", .real(offset.1 * settings.pixelScale), "source offset from lens, y [arcsec]"),
                HeaderCard("SRC_MAGG", .real(sourceG), "unlensed source g magnitude"),
            ]
        } else if random.uniform() < 0.5 {
            let companionRe = random.uniform(0.2, 0.6)
            let distance = px(random.uniform(2, 4)), direction = random.uniform(0, 2 * Double.pi)
            second = .sersic(SersicProfile(n: 1, halfLightRadius: px(companionRe), flux: 1,
                geometry: EllipseGeometry(centerX: cx + distance * Foundation.cos(direction),
                                          centerY: cy + distance * Foundation.sin(direction), q: sourceQ, angle: sourceAngle)))
            cards = [HeaderCard("COMPANIO", .logical(true), "unlensed blue companion present"),
                     HeaderCard("COMP_RE", .real(companionRe), "companion r_e [arcsec]"),
                     HeaderCard("COMP_SEP", .real(distance * settings.pixelScale), "companion distance [arcsec]"),
                     HeaderCard("SRC_MAGG", .real(sourceG), "companion g magnitude")]
        }

        // Shapes are the same in every band: build unit-flux grids once, then scale and
        // convolve with each band's own PSF on a shared margin.
        let all: [SceneComponent] = [.sersic(lensLight)] + (second.map { [$0] } ?? [])
        let oversampling = Renderer.oversampling(for: all)
        let sigmas = fwhms.map(settings.psfSigma)
        let margin = Renderer.margin(psfSigma: sigmas.max()!)
        let base = Renderer(width: size, height: size, psfSigma: 0, oversampling: oversampling, margin: margin)
        let lensGrid = base.cells([.sersic(lensLight)])!
        let secondGrid = second.flatMap { base.cells([$0]) }
        var pixels: [Float] = []
        var clean: [Double] = []
        for band in 0..<3 {
            let grid = lensGrid.combined(settings.flux(magnitude: lensMags[band]), secondGrid,
                                         settings.flux(magnitude: sourceMags[band]))
            let renderer = Renderer(width: size, height: size, psfSigma: sigmas[band], oversampling: oversampling, margin: margin)
            let image = renderer.render(grid: grid, analytic: [])
            pixels += NoiseModel.noisy(image, skySigma: skySigmas[band], gain: settings.gain, random: &random)
            if keepNoiseless { clean += image }
        }

        var header = provenanceCards(task: .lens, seed: seed, index: index)
            + settings.commonCards(psfFWHM: fwhms.reduce(0, +) / 3, skySigma: skySigmas.reduce(0, +) / 3)
        header.append(HeaderCard("BANDS", .string("g,r,i"), "band order along NAXIS3"))
        for b in 0..<3 { header.append(HeaderCard("FWHM_\(bands[b])", .real(fwhms[b]), "\(bands[b].lowercased())-band PSF FWHM [arcsec]")) }
        for b in 0..<3 { header.append(HeaderCard("SKYSIG_\(bands[b])", .real(skySigmas[b]), "\(bands[b].lowercased())-band sky sigma [counts]")) }
        header += [
            HeaderCard("LABEL", .integer(label), "0 non_lens 1 lens"),
            HeaderCard("CLASS", .string(SimulationTask.lens.classNames[label]), "lens class"),
            HeaderCard("LENS_MAG", .real(lensI), "lens galaxy i magnitude"),
            HeaderCard("LENS_RE", .real(lensRe), "lens galaxy r_e (n = 4) [arcsec]"),
            HeaderCard("LENS_Q", .real(lensQ), "lens galaxy axis ratio"),
            HeaderCard("LENS_GR", .real(lensGR), "lens galaxy g - r"),
            HeaderCard("LENS_RI", .real(lensRI), "lens galaxy r - i"),
            HeaderCard("SRC_GR", .real(sourceGR), "source / companion g - r"),
            HeaderCard("SRC_RI", .real(sourceRI), "source / companion r - i"),
            HeaderCard("OBJ_X", .real(cx + 1), "lens centre, FITS pixel (1-based)"),
            HeaderCard("OBJ_Y", .real(cy + 1), "lens centre, FITS pixel (1-based)"),
        ] + cards
        return SimulatedImage(fileName: String(format: "lens_%06d.fits", index), pixels: pixels,
                              shape: [size, size, 3], header: header, truth: nil,
                              catalogFields: [String(label)], label: label,
                              caption: SimulationTask.lens.classNames[label], noiseless: keepNoiseless ? clean : nil)
    }
}
