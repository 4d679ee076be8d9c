/// One input to a model: its pixels, where it came from, and the header values
/// that stages may need (`SKYSIG`, `GAIN`, `PSF_FWHM`, `PIXSCALE`, ...).
public struct Sample: Equatable, Sendable {
    public var image: PlanarImage
    /// The file name (or another identifier) of the sample, for outputs and errors.
    public var name: String
    /// Numeric header keywords, by upper-case name.
    public var header: [String: Double]
    /// Per-pixel class labels (segmentation truth) as one plane of small integers.
    /// Geometric stages (flips, 90° turns, crops, padding, resizing) move them with
    /// the image; photometric ones leave them alone.
    public var labels: PlanarImage?
    /// What stages filled in that the header did not say (see `Assumption`).
    public var assumptions: [Assumption] = []

    public init(image: PlanarImage, name: String = "", header: [String: Double] = [:], labels: PlanarImage? = nil) {
        self.image = image
        self.name = name
        self.header = header
        self.labels = labels
    }
}
