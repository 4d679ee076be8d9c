#!/usr/bin/env python3
"""Reference values for the Preprocessing tests: resizing from PyTorch (`interpolate`
bilinear / area) and WCS / Cutout2D from astropy.
Run from anywhere: python3 Tests/PreprocessingTests/Fixtures/make_fixtures.py
It rewrites resize_fixtures.json and wcs_fixtures.json beside this file; the Swift tests
read them. (The stretch, statistics and Lupton fixtures are made by
Tests/AstroBaseTests/Fixtures/make_stretch_fixtures.py.)
"""
import json
import os
import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


def compact(values):
    """Nine significant digits: exact enough for a 1e-5 comparison, and small."""
    return [None if not np.isfinite(v) else float("%.9g" % v) for v in np.ravel(values)]


def resize_fixture():
    resize = []
    rng = np.random.default_rng(7)
    for (c, h, w, oh, ow) in [(1, 7, 9, 12, 5), (2, 16, 16, 5, 7), (1, 10, 6, 10, 13), (3, 9, 12, 3, 4)]:
        x = rng.normal(size=(c, h, w)).astype(np.float32)
        t = torch.from_numpy(x)[None]
        bil = F.interpolate(t, size=(oh, ow), mode="bilinear", align_corners=False)[0].numpy()
        area = F.interpolate(t, size=(oh, ow), mode="area")[0].numpy()
        resize.append({"shape": [c, h, w], "out": [oh, ow], "data": [float(v) for v in x.ravel()],
                       "bilinear": compact(bil), "area": compact(area)})
    doc = {
        "generator": "Tests/PreprocessingTests/Fixtures/make_fixtures.py",
        "versions": {"numpy": np.__version__, "torch": torch.__version__},
        "resize": resize,
    }
    with open(os.path.join(HERE, "resize_fixtures.json"), "w") as f:
        json.dump(doc, f, separators=(",", ":"))


def wcs_fixture():
    """A TAN WCS with a rotated CD matrix, pixel<->sky pairs and Cutout2D results."""
    from astropy.io import fits
    from astropy.wcs import WCS
    from astropy.nddata import Cutout2D
    from astropy.coordinates import SkyCoord
    import astropy.units as u
    header = fits.Header()
    header["NAXIS"] = 2
    header["NAXIS1"] = 50
    header["NAXIS2"] = 40
    header["CTYPE1"] = "RA---TAN"
    header["CTYPE2"] = "DEC--TAN"
    header["CRVAL1"] = 150.1163213
    header["CRVAL2"] = 2.2009731
    header["CRPIX1"] = 25.5
    header["CRPIX2"] = 20.5
    angle = np.deg2rad(23.0)
    scale = 0.2 / 3600
    header["CD1_1"] = -scale * np.cos(angle)
    header["CD1_2"] = scale * np.sin(angle)
    header["CD2_1"] = scale * np.sin(angle)
    header["CD2_2"] = scale * np.cos(angle)
    header["RADESYS"] = "ICRS"
    header["EQUINOX"] = 2000.0
    wcs = WCS(header)
    data = np.arange(40 * 50, dtype=np.float32).reshape(40, 50)
    positions = [(10.3, 12.7), (0.2, 3.9), (48.6, 38.1), (24.0, 19.5)]
    out = {"header": header.tostring(), "shape": [40, 50], "points": [], "cutouts": []}
    for (x, y) in positions:
        ra, dec = wcs.wcs_pix2world([[x, y]], 0)[0]
        out["points"].append({"x": x, "y": y, "ra": float(ra), "dec": float(dec)})
        coord = SkyCoord(ra * u.deg, dec * u.deg)
        cut = Cutout2D(data, coord, (9, 8), wcs=wcs, mode="partial", fill_value=np.nan)
        out["cutouts"].append({
            "ra": float(ra), "dec": float(dec), "size": [9, 8],
            "data": [None if not np.isfinite(v) else float(v) for v in cut.data.ravel()],
            "crpix": [float(v) for v in cut.wcs.wcs.crpix],
            "origin": [int(v) for v in cut.origin_original],
        })
    return out


if __name__ == "__main__":
    resize_fixture()
    with open(os.path.join(HERE, "wcs_fixtures.json"), "w") as f:
        json.dump(wcs_fixture(), f, indent=1)
