#!/usr/bin/env python3
"""Writes the small demo FITS files in samples/fits/ (a few tens of KB in all).

    python3 scripts/make_sample_fits.py

- galaxy.fits: a 64 x 64 float32 Sersic-like galaxy with noise and TAN WCS keywords
- field.fits: a 128 x 128 int16 star field (BSCALE/BZERO, a few BLANK pixels),
  RICE_1 tile-compressed in extension 1 (EXTNAME FIELD)
- mask.fits: a 64 x 64 uint8 segmentation mask (0 sky, 1 galaxy, 2 star) with the
  galaxy's WCS, and a small catalog table (EXTNAME CATALOG)

Deterministic (seeded). Written with astropy; `astrolabe inspect --stats samples/fits/*.fits`
lists them.
"""
import os

import numpy as np
from astropy.io import fits

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "samples", "fits")


def wcs_header(side, scale_arcsec=0.2):
    header = fits.Header()
    header["WCSAXES"] = 2
    header["CTYPE1"] = "RA---TAN"
    header["CTYPE2"] = "DEC--TAN"
    header["CRVAL1"] = (150.1163, "[deg] RA at the reference pixel")
    header["CRVAL2"] = (2.2058, "[deg] Dec at the reference pixel")
    header["CRPIX1"] = side / 2 + 0.5
    header["CRPIX2"] = side / 2 + 0.5
    header["CD1_1"] = -scale_arcsec / 3600
    header["CD1_2"] = 0.0
    header["CD2_1"] = 0.0
    header["CD2_2"] = scale_arcsec / 3600
    header["CUNIT1"] = "deg"
    header["CUNIT2"] = "deg"
    header["RADESYS"] = "ICRS"
    header["EQUINOX"] = 2000.0
    return header


def main():
    os.makedirs(HERE, exist_ok=True)
    rng = np.random.default_rng(2024)

    # A galaxy: elliptical exponential disk plus bulge, noise.
    y, x = np.mgrid[0:64, 0:64] - 31.5
    angle = np.deg2rad(35)
    u = x * np.cos(angle) + y * np.sin(angle)
    v = (-x * np.sin(angle) + y * np.cos(angle)) / 0.55
    r = np.hypot(u, v)
    galaxy = 80 * np.exp(-r / 6) + 200 * np.exp(-7.67 * ((np.hypot(x, y) / 2.5) ** 0.25 - 1)) / 1e3
    image = (galaxy + rng.normal(0, 1.5, galaxy.shape)).astype(np.float32)
    header = wcs_header(64)
    header["OBJECT"] = ("demo galaxy", "synthetic")
    header["BUNIT"] = "ADU"
    header["EXPTIME"] = (300.0, "[s]")
    header.add_history("made by scripts/make_sample_fits.py")
    fits.PrimaryHDU(image, header=header).writeto(os.path.join(HERE, "galaxy.fits"), overwrite=True)

    # A star field, int16 with scaling, RICE-compressed.
    field = rng.normal(100, 5, (128, 128))
    yy, xx = np.mgrid[0:128, 0:128]
    for _ in range(25):
        cx, cy, flux = rng.uniform(0, 128), rng.uniform(0, 128), rng.uniform(200, 5000)
        field += flux / (2 * np.pi * 1.5**2) * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 1.5**2))
    raw = np.clip(np.round((field - 1000) / 0.5), -32767, 32767).astype(np.int16)
    raw[0, :3] = -32768
    compressed = fits.CompImageHDU(raw, header=wcs_header(128, 0.4), compression_type="RICE_1", name="FIELD")
    compressed.header["BSCALE"] = 0.5
    compressed.header["BZERO"] = 1000.0
    compressed.header["BLANK"] = -32768
    compressed.header["OBJECT"] = "demo star field"
    fits.HDUList([fits.PrimaryHDU(), compressed]).writeto(os.path.join(HERE, "field.fits"), overwrite=True)

    # A mask with the galaxy's WCS, plus a catalog.
    mask = np.zeros((64, 64), np.uint8)
    mask[galaxy > 5] = 1
    mask[(x - 20) ** 2 + (y + 18) ** 2 < 6] = 2
    catalog = fits.BinTableHDU.from_columns([
        fits.Column(name="ID", format="J", array=np.array([1, 2], np.int32)),
        fits.Column(name="CLASS", format="8A", array=np.array(["galaxy", "star"])),
        fits.Column(name="X", format="E", array=np.array([31.5, 51.5], np.float32)),
        fits.Column(name="Y", format="E", array=np.array([31.5, 13.5], np.float32)),
    ], name="CATALOG")
    fits.HDUList([fits.PrimaryHDU(mask, header=wcs_header(64)), catalog]).writeto(
        os.path.join(HERE, "mask.fits"), overwrite=True)
    for name in sorted(os.listdir(HERE)):
        print(name, os.path.getsize(os.path.join(HERE, name)), "bytes")


if __name__ == "__main__":
    main()
