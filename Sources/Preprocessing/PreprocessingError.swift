import Foundation

/// Problems with data or configuration met while preparing samples.
public enum PreprocessingError: Error, Equatable, LocalizedError {
    /// A stage needs a header keyword the sample lacks.
    case missingHeaderKeyword(stage: String, keyword: String, sample: String)
    /// A header value a stage needs is not usable (zero or negative noise, NaN...).
    case invalidHeaderValue(stage: String, keyword: String, value: Double, sample: String)
    /// A stage cannot be applied to an image of this size.
    case imageTooSmall(stage: String, required: String, received: [Int], sample: String)
    /// An image has no finite pixel where a stage needs some.
    case noFinitePixels(stage: String, sample: String)
    /// The background has no noise to measure (every pixel but a handful has one value).
    case constantBackground(stage: String, keyword: String, sample: String)
    /// A stage that interpolates pixels cannot move a label map.
    case unsupportedWithLabels(stage: String, sample: String)

    public var errorDescription: String? {
        switch self {
        case let .missingHeaderKeyword(stage, keyword, sample):
            return "\(sample): stage '\(stage)' needs the header keyword \(keyword), which the file lacks. "
                + "Add it to the header, or give the value in the stage's parameters."
        case let .invalidHeaderValue(stage, keyword, value, sample):
            return "\(sample): stage '\(stage)' needs a positive \(keyword), but the header has \(value)."
        case let .imageTooSmall(stage, required, received, sample):
            return "\(sample): stage '\(stage)' needs an image of at least \(required), "
                + "received shape \(received) (channels, height, width)."
        case let .noFinitePixels(stage, sample):
            return "\(sample): stage '\(stage)' found no finite pixel (every pixel is blank or NaN)."
        case let .constantBackground(stage, keyword, sample):
            return "\(sample): stage '\(stage)' found no noise to measure: the image is constant but for fewer than 16 pixels. "
                + "Give the noise as \(keyword) in the header or with --set input.header_values.\(keyword)=VALUE."
        case let .unsupportedWithLabels(stage, sample):
            return "\(sample): stage '\(stage)' interpolates pixels, which would blur the label map; "
                + "for segmentation use flip, rotate90 and random_crop."
        }
    }
}
