#!/usr/bin/env python3
"""Reference values for the observation-matching stages (Preprocessing tests).

- Mesh background: photutils.background.Background2D (SExtractor and median
  estimators, 3-sigma clipping, 10 iterations, 3x3 median filter of the mesh) with
  BkgZoomInterpolator(order=1), the bilinear interpolation between box centres that
  the Swift stage uses, and exclude_percentile=100 (photutils 3 otherwise drops boxes
  that lose over 10 % of their pixels to the clipping and fills them by inverse-distance
  weighting; the Swift stage keeps every box with 90 % finite pixels); also SEP's
  background on the same image.
Writes Tests/PreprocessingTests/Fixtures/background_fixtures.json.
Run: python3 scripts/make_observation_fixtures.py   (pip install photutils sep)
"""
import json
import os
import numpy as np
import photutils
from astropy.stats import SigmaClip
from photutils.background import (Background2D, BkgZoomInterpolator, MedianBackground,
                                  SExtractorBackground)
import sep

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "PreprocessingTests", "Fixtures",
                   "background_fixtures.json")


def compact(values):
    return [float("%.8g" % v) for v in np.ravel(values)]


def image():
    rng = np.random.default_rng(15)
    h, w = 64, 96
    y, x = np.mgrid[0:h, 0:w]
    sky = 200.0 + 0.4 * x - 0.25 * y + 15 * np.sin(x / 23.0) * np.cos(y / 31.0)
    stars = np.zeros((h, w))
    for _ in range(14):
        cx, cy, flux = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(500, 20000)
        s = rng.uniform(1.0, 3.0)
        stars += flux / (2 * np.pi * s * s) * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * s * s))
    return (sky + stars + rng.normal(0, 8.0, (h, w))).astype(np.float32)


def main():
    data = image()
    cases = []
    for name, estimator in [("sextractor", SExtractorBackground()), ("median", MedianBackground())]:
        bkg = Background2D(data, box_size=16, filter_size=3, sigma_clip=SigmaClip(sigma=3.0, maxiters=10),
                           bkg_estimator=estimator, interpolator=BkgZoomInterpolator(order=1),
                           exclude_percentile=100)
        cases.append({"estimator": name, "mesh": 16, "filter": 3,
                      "background_mesh": compact(bkg.background_mesh),
                      "background": compact(bkg.background)})
    sep_bkg = sep.Background(data.astype(np.float64), bw=16, bh=16, fw=3, fh=3)
    out = {"generator": "scripts/make_observation_fixtures.py",
           "versions": {"photutils": photutils.__version__, "sep": sep.__version__, "numpy": np.__version__},
           "shape": list(data.shape), "image": compact(data), "cases": cases,
           "sep": {"globalback": float(sep_bkg.globalback), "globalrms": float(sep_bkg.globalrms),
                   "background": compact(sep_bkg.back())}}
    with open(OUT, "w") as f:
        json.dump(out, f, separators=(",", ":"))
    print("wrote", OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
