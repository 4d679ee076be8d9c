// The label of a sample of none of a classifier's classes, shared by the simulator that writes
// it, the catalogs that read it and the loss that trains on it.

/// A sample of none of a classifier's classes (outlier exposure, Hendrycks et al. 2019): `name`
/// in catalogs (`astrolabe simulate --outside`), `label` once read; the cross-entropy's
/// `outsideWeight` trains such samples towards equal probabilities.
public enum OutsideClass {
    public static let name = "outside"
    public static let label = -1
}
