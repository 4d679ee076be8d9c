#!/usr/bin/env python3
"""Compare SkySim's lensed sources with lenstronomy (SIE + SHEAR, SERSIC_ELLIPSE source).

Run:  SKYSIM_PREVIEW_DIR=/tmp/x swift test -c release -Xswiftc -enable-testing \
          --filter SkySimTests.LensReferenceDumpTests && python3 scripts/crosscheck_lenstronomy.py /tmp/x
Cases must match LensReferenceDumpTests.cases. lenstronomy draws with 20x supersampling.
"""
import sys
import numpy as np
from scipy.special import gammaincinv, gamma
from lenstronomy.Data.imaging_data import ImageData
from lenstronomy.Data.psf import PSF
from lenstronomy.ImSim.image_model import ImageModel
from lenstronomy.LensModel.lens_model import LensModel
from lenstronomy.LightModel.light_model import LightModel

CASES = [[1.2, 0.7, 0.4, 0.02, -0.01, 0.10, 0.05, 0.2, 0.6, 1.0, 0.7],
         [2.0, 0.9, 2.0, 0.0, 0.04, -0.3, 0.2, 0.1, 0.5, 0.3, 0.6],
         [0.9, 0.6, 1.2, 0.03, 0.0, 0.05, -0.2, 0.4, 0.9, 2.5, 1.0]]
directory = sys.argv[1]
scale = 0.2
data = ImageData(image_data=np.zeros((64, 64)), transform_pix2angle=np.array([[scale, 0], [0, scale]]),
                 ra_at_xy_0=-31.5 * scale, dec_at_xy_0=-31.5 * scale)

def e1e2(q, phi):
    e = (1 - q) / (1 + q)
    return e * np.cos(2 * phi), e * np.sin(2 * phi)

worst = 0.0
for k, (te, mq, mpa, g1, g2, sx, sy, re, sq, spa, fwhm) in enumerate(CASES):
    ours = np.fromfile(f"{directory}/lensed_{k}.f64", dtype=np.float64).reshape(64, 64)
    psf = PSF(psf_type="GAUSSIAN", fwhm=fwhm, truncation=6)
    me1, me2 = e1e2(mq, mpa)
    se1, se2 = e1e2(sq, spa)
    n = 1.0
    b = gammaincinv(2 * n, 0.5)
    amp = 1000 / (2 * np.pi * n * np.exp(b) * b ** (-2 * n) * gamma(2 * n) * re ** 2)  # I_e per arcsec²
    model = ImageModel(data, psf, lens_model_class=LensModel(["SIE", "SHEAR"]),
                       source_model_class=LightModel(["SERSIC_ELLIPSE"]),
                       kwargs_numerics={"supersampling_factor": 20, "supersampling_convolution": True})
    image = model.image(kwargs_lens=[{"theta_E": te, "e1": me1, "e2": me2, "center_x": 0, "center_y": 0},
                                     {"gamma1": g1, "gamma2": g2, "ra_0": 0, "dec_0": 0}],
                        kwargs_source=[{"amp": amp, "R_sersic": re, "n_sersic": n, "e1": se1, "e2": se2,
                                        "center_x": sx, "center_y": sy}])
    diff = np.abs(ours - image).max() / image.max()
    worst = max(worst, diff)
    print(f"case {k}: theta_E={te}\" q={mq}: max |ours - lenstronomy| / peak = {diff:.2e}, "
          f"sum ratio = {ours.sum() / image.sum():.4f}, peak ratio = {ours.max() / image.max():.4f}")
print(f"worst: {worst:.2e}")
