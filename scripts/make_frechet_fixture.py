"""Reference Fréchet distances for Tests/TrainingTests/FrechetDistanceTests.swift.

FD = |mu1 - mu2|^2 + Tr(S1 + S2 - 2 sqrtm(S1 S2)) with numpy's unbiased covariances and
scipy.linalg.sqrtm of the product (the pytorch-fid computation), on seeded random feature sets
with correlated dimensions. Writes Tests/TrainingTests/Fixtures/frechet.json.

    python3 scripts/make_frechet_fixture.py
"""
import json
import pathlib

import numpy as np
from scipy import linalg


def frechet(a, b):
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = np.real(linalg.sqrtm(s1 @ s2))
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * root))


def main():
    rng = np.random.default_rng(18)
    cases = []
    for name, (n1, n2, d, shift) in {"same_law": (300, 250, 6, 0.0), "shifted": (120, 90, 5, 0.7),
                                     "rank_deficient": (8, 7, 10, 0.3)}.items():
        mix = rng.normal(size=(d, d))
        a = rng.normal(size=(n1, d)) @ mix
        b = (rng.normal(size=(n2, d)) * 1.3 + shift) @ mix
        cases.append({"name": name, "a": a.round(6).tolist(), "b": b.round(6).tolist()})
        cases[-1]["frechet"] = frechet(np.array(cases[-1]["a"]), np.array(cases[-1]["b"]))
    out = pathlib.Path(__file__).resolve().parent.parent / "Tests/TrainingTests/Fixtures/frechet.json"
    out.write_text(json.dumps({"cases": cases}, indent=None))
    for c in cases:
        print(c["name"], c["frechet"])


if __name__ == "__main__":
    main()
