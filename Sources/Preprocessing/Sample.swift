/// One input to a model: its pixels, where it came from, and the header values
/// that stages may need (`SKYSIG`, `GAIN`, `PSF_FWHM`, `PIXSCALE`, ...).
public struct Sample: Equatable, Sendable {
    public var image: PlanarImage
    /// The file name (or another identifier) of the sample, for outputs and errors.
    public var name: String
    /// Numeric header keywords, by upper-case name.
    public var header: [String: Double]

    public init(image: PlanarImage, name: String = "", header: [String: Double] = [:]) {
        self.image = image
        self.name = name
        self.header = header
    }
}
