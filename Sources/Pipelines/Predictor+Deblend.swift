import Autograd
import FITS
import Foundation
import NN
import Preprocessing

extension Predictor {
    /// Whether `stage` maps each pixel to `a · x + b` with `a`, `b` fixed by the header
    /// (so a deblender's output can be carried back to counts): blank filling, noise
    /// scaling by a header keyword or a fixed value, and noise estimation (a header value).
    static func isAffineInCounts(_ stage: Stage) -> Bool {
        switch stage {
        case .fillBlanks(_, appendMask: false), .estimateNoise, .scaleByNoise(.header), .scaleByNoise(.fixed): return true
        default: return false
        }
    }

    /// Deblends the blend of `entry` into `url`: the blend read the recipe's way, prepared,
    /// run through the generator (one image in, one out), and the output carried back to the
    /// input's counts by undoing the stages' per-band scale and offset (measured by preparing
    /// an image of zeros and one of ones with the blend's header, after the stages that read
    /// the data have set it). The file is float32 in the primary HDU, with every header card
    /// of the input but the structural ones (its WCS among them), the domain verdict
    /// (`INDOMAIN`, `OUTDOMAI`) and the assumptions as `COMMENT` cards. With `profileFitting`
    /// the image written is the central galaxy of a scene fitted from the network's image, with
    /// the fit's `FIT_*` cards (`fittedCentral`). Returns the assumptions the stages and the fit made.
    @discardableResult
    public func deblend(_ entry: CatalogEntry, to url: URL) throws -> [Assumption] {
        if let stage = preparation.stages.first(where: { !Self.isAffineInCounts($0) }) {
            throw PipelineError.unsupported("\(path): a deblend model's output is carried back to counts, so its stages "
                                            + "must scale pixels by header values (fill_blanks, scale_by_noise with a keyword "
                                            + "or a value); '\(stage.name)' is not such a stage")
        }
        let sample = try read(entry)
        let prepared = try prepare(sample, file: entry.name)
        try checkShape(prepared.image.shape, file: entry.name)
        guard architecture.classes == prepared.image.channels else {
            throw PipelineError.modelFile(path: path, reason: "a deblender gives one image per input band; it gives "
                                          + "\(architecture.classes) for \(prepared.image.channels) input bands")
        }
        let (c, h, w) = (prepared.image.channels, prepared.image.height, prepared.image.width)
        // The stages' affine map y = a x + b per band, under the header the data set.
        let probeStages = Preparation(preparation.stages.filter { if case .estimateNoise = $0 { return false } else { return true } })
        let zero = try probeStages.prepare(Sample(image: PlanarImage(channels: c, height: 1, width: 1, repeating: 0),
                                                  name: entry.name, header: prepared.header), training: false).image.pixels
        let one = try probeStages.prepare(Sample(image: PlanarImage(channels: c, height: 1, width: 1, repeating: 1),
                                                 name: entry.name, header: prepared.header), training: false).image.pixels
        let output = withNoGrad { network(Tensor(shape: [1, c, h, w], data: prepared.image.pixels)) }
        guard output.shape == [1, c, h, w] else {
            throw PipelineError.modelFile(path: path, reason: "its network gives an output of shape \(output.shape) for an "
                                          + "input of shape \([1, c, h, w]); a deblender gives an image of the input's shape")
        }
        var counts = output.scalars
        for band in 0..<c {
            let scale = one[band] - zero[band], offset = zero[band]
            guard scale.isFinite, scale != 0, offset.isFinite else {
                throw PipelineError.unsupported("\(entry.name): the stages scale band \(band) by \(scale): its output "
                                                + "cannot be carried back to counts")
            }
            for i in (band * h * w)..<((band + 1) * h * w) { counts[i] = (counts[i] - offset) / scale }
        }
        var assumptions = prepared.assumptions, cards: [HeaderRecord] = []
        if let profileFitting {
            // The input's counts under the header the stages completed (a measured SKYSIG among it).
            var observed = sample
            observed.header.merge(prepared.header) { _, completed in completed }
            if let fitted = try fittedCentral(observed, central: counts, fitting: profileFitting) {
                counts = fitted.image; cards = fitted.cards; assumptions += fitted.assumptions
            } else {
                cards = [HeaderRecord("FIT_NSRC", .integer(0), comment: "no fit: the network's image holds no light")]
            }
        }
        var header = FITSHeader(try FITSFile(path: entry.url.path).header(input.hdu).derivedImageRecords)
        header.set("BUNIT", .string("count"), comment: "the input's counts")
        for card in cards { header.set(card.keyword, card.value, comment: card.comment) }
        header.annotate(domain: recipe?.observation.map { DomainCheck($0, prepared) }, assumptions: assumptions)
        header.set("ORIGIN", .string("astrolabe"), comment: "deblend-galaxies pipeline")
        let writer = try FITSWriter(path: url.path, overwrite: true)
        try writer.appendImage(counts, shape: c == 1 ? [w, h] : [w, h, c], header: header)
        try writer.commit()
        return assumptions
    }
}
