#!/usr/bin/env python3
"""Copies a TASKS.md image set (FITS files + catalog.csv) adding survey artefacts with numpy,
independently of the Swift augmentations, to measure what models lose on them.

Per file (each artefact with probability --p, drawn per file, numpy PCG64 from --seed):
  pedestal   per band a constant U(-L, L) x SKYSIG (L = --pedestal-level, default 3) plus a plane changing by U(0, 2) x SKYSIG
             across the image in a random direction;
  correlated white noise convolved with a Gaussian of sigma U(0.5, 1.5) px, scaled to
             U(0.3, 1) x SKYSIG per pixel;
  cosmic     1-4 hits, each in one band: a pixel or a track of up to 15 px, U(10, 300) x SKYSIG;
  masked     NaN: 0-2 bad columns/rows (one band each), 0-2 discs of radius 1-4 px and a
             strip of 0-12 px along one side (all bands).
--artefacts picks a subset (e.g. --artefacts pedestal --p 1: a pedestal in every file).
The noise unit is the header's SKYSIG_<band> (SKYSIG for one band). Records ARTEFACT (the
artefacts applied, comma-separated) in each header.

  python3 scripts/add_artefacts.py --input data/lens-test --out data/lens-test-artefacts --seed 1
"""
import argparse
import csv
import os

import numpy as np
from astropy.io import fits


def gaussian_kernel(s):
    r = max(1, int(np.ceil(4 * s)))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / s) ** 2)
    return k / np.sqrt((k ** 2).sum())


KINDS = ("pedestal", "correlated", "cosmic", "masked")


def add(cube, sigmas, rng, p, kinds=KINDS, pedestal_level=3.0):
    """Adds each artefact of `kinds` with probability p (a pedestal's constant up to
    pedestal_level x SKYSIG)."""
    c, h, w = cube.shape
    done = []
    p = {k: (p if k in kinds else 0.0) for k in KINDS}
    if rng.random() < p["pedestal"]:
        done.append("pedestal")
        yy, xx = np.mgrid[0:h, 0:w]
        for b in range(c):
            level, change, angle = rng.uniform(-pedestal_level, pedestal_level), rng.uniform(0, 2), rng.uniform(0, 2 * np.pi)
            extent = max(1.0, abs(np.cos(angle)) * (w - 1) + abs(np.sin(angle)) * (h - 1))
            plane = (np.cos(angle) * (xx - (w - 1) / 2) + np.sin(angle) * (yy - (h - 1) / 2)) * change / extent
            cube[b] += sigmas[b] * (level + plane)
    if rng.random() < p["correlated"]:
        done.append("correlated")
        k = gaussian_kernel(rng.uniform(0.5, 1.5))
        r = len(k) // 2
        for b in range(c):
            white = rng.normal(size=(h + 2 * r, w + 2 * r))
            rows = np.apply_along_axis(lambda v: np.convolve(v, k, mode="valid"), 1, white)
            field = np.apply_along_axis(lambda v: np.convolve(v, k, mode="valid"), 0, rows)
            cube[b] += rng.uniform(0.3, 1.0) * sigmas[b] * field
    if rng.random() < p["cosmic"]:
        done.append("cosmic")
        for _ in range(rng.integers(1, 5)):
            b = rng.integers(0, c)
            amp = rng.uniform(10, 300) * sigmas[b]
            steps, angle = max(1, int(round(rng.uniform(1, 15)))), rng.uniform(0, 2 * np.pi)
            y, x = rng.uniform(0, h), rng.uniform(0, w)
            hit = set()
            for _ in range(steps):
                iy, ix = int(np.floor(y)), int(np.floor(x))
                if 0 <= iy < h and 0 <= ix < w and (iy, ix) not in hit:
                    cube[b, iy, ix] += amp
                    hit.add((iy, ix))
                y += np.sin(angle)
                x += np.cos(angle)
    if rng.random() < p["masked"]:
        done.append("masked")
        for _ in range(rng.integers(0, 3)):
            b = rng.integers(0, c)
            if rng.random() < 0.5:
                cube[b, :, rng.integers(0, w)] = np.nan
            else:
                cube[b, rng.integers(0, h), :] = np.nan
        yy, xx = np.mgrid[0:h, 0:w]
        for _ in range(rng.integers(0, 3)):
            rad, sy, sx = rng.uniform(1, 4), rng.uniform(0, h), rng.uniform(0, w)
            cube[:, (yy + 0.5 - sy) ** 2 + (xx + 0.5 - sx) ** 2 <= rad ** 2] = np.nan
        strip, side = rng.integers(0, 13), rng.integers(0, 4)
        if strip:
            [lambda: cube.__setitem__((slice(None), slice(0, strip)), np.nan),
             lambda: cube.__setitem__((slice(None), slice(h - strip, h)), np.nan),
             lambda: cube.__setitem__((slice(None), slice(None), slice(0, strip)), np.nan),
             lambda: cube.__setitem__((slice(None), slice(None), slice(w - strip, w)), np.nan)][side]()
    return done


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--p", type=float, default=0.5, help="probability of each artefact (default 0.5)")
    ap.add_argument("--artefacts", default=",".join(KINDS),
                    help="comma-separated subset of " + ", ".join(KINDS) + " (default all)")
    ap.add_argument("--pedestal-level", type=float, default=3.0,
                    help="largest |constant| of a pedestal in units of SKYSIG (default 3)")
    a = ap.parse_args()
    kinds = [k.strip() for k in a.artefacts.split(",") if k.strip()]
    if any(k not in KINDS for k in kinds):
        ap.error(f"--artefacts: unknown {[k for k in kinds if k not in KINDS]}; choose from {', '.join(KINDS)}")
    rng = np.random.Generator(np.random.PCG64(a.seed))
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.input, "catalog.csv")) as f:
        rows = list(csv.reader(f))
    counts = {}
    for row in rows[1:]:
        with fits.open(os.path.join(a.input, row[0])) as hdul:
            header, data = hdul[0].header, hdul[0].data.astype(np.float32)
        cube = data[None] if data.ndim == 2 else data
        bands = header.get("BANDS", "").split(",") if cube.shape[0] > 1 else []
        sigmas = [header.get(f"SKYSIG_{b.strip().upper()}", header["SKYSIG"]) for b in bands] or [header["SKYSIG"]]
        done = add(cube, sigmas, rng, a.p, kinds, a.pedestal_level)
        for d in done:
            counts[d] = counts.get(d, 0) + 1
        header["ARTEFACT"] = (",".join(done) or "none", "scripts/add_artefacts.py")
        fits.PrimaryHDU(cube.reshape(data.shape).astype(np.float32), header).writeto(
            os.path.join(a.out, row[0]), overwrite=True)
    with open(os.path.join(a.out, "catalog.csv"), "w", newline="") as f:
        csv.writer(f).writerows(rows)
    print(f"{len(rows) - 1} files; with " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


if __name__ == "__main__":
    main()
