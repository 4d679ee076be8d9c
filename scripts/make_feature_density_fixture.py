"""Reference Mahalanobis distances for Tests/TrainingTests/FeatureDensityTests.swift.

Class-conditional Gaussians with one shared covariance (Lee et al. 2018): class means, the
within-class covariance pooled over the classes (divided by n - K), shrunk toward the mean
variance, S = (1 - s) C + s (tr C / d) I; the score of a vector is min over the classes of
(f - mu_k)^T S^-1 (f - mu_k), with S^-1 from numpy.linalg.inv (not the eigen-decomposition
FeatureDensity uses). Seeded random features with correlated dimensions and shifted class
means; the query vectors include far-away ones. Writes Tests/TrainingTests/Fixtures/feature_density.json.

    python3 scripts/make_feature_density_fixture.py
"""
import json
import pathlib

import numpy as np


def fit_and_score(features, labels, queries, shrinkage):
    classes = sorted(set(labels.tolist()))
    means = {c: features[labels == c].mean(0) for c in classes}
    centred = np.stack([f - means[c] for f, c in zip(features, labels)])
    cov = centred.T @ centred / (len(features) - len(classes))
    d = cov.shape[0]
    cov = (1 - shrinkage) * cov + shrinkage * np.trace(cov) / d * np.eye(d)
    precision = np.linalg.inv(cov)
    return [float(min((q - means[c]) @ precision @ (q - means[c]) for c in classes)) for q in queries]


def main():
    rng = np.random.default_rng(2018)
    cases = []
    for name, (n, d, k, shrinkage) in {"three_classes": (240, 6, 3, 0.01), "no_shrinkage": (150, 4, 2, 0.0),
                                       "few_samples": (12, 10, 2, 0.1)}.items():
        mix = rng.normal(size=(d, d))
        labels = rng.integers(0, k, size=n)
        centres = rng.normal(size=(k, d)) * 3
        features = (rng.normal(size=(n, d)) @ mix + centres[labels]).round(6)
        queries = np.concatenate([rng.normal(size=(4, d)) @ mix + centres[rng.integers(0, k, size=4)],
                                  rng.normal(size=(2, d)) * 10]).round(6)
        cases.append({"name": name, "features": features.tolist(), "labels": labels.tolist(),
                      "queries": queries.tolist(), "shrinkage": shrinkage,
                      "distances": fit_and_score(features, labels, queries, shrinkage)})
    out = pathlib.Path(__file__).resolve().parent.parent / "Tests/TrainingTests/Fixtures/feature_density.json"
    out.write_text(json.dumps({"cases": cases}))
    for c in cases:
        print(c["name"], [round(x, 4) for x in c["distances"]])


if __name__ == "__main__":
    main()
