#!/usr/bin/env python3
"""How well can the central galaxy's flux be measured in TASKS.md's deblending blends at all?

For blends drawn from TASKS.md's task-6 distribution (a central Sersic galaxy, n [0.5, 6],
r_e [0.3, 2.0]", q [0.3, 1], m [18, 21], centred within +-2 px; 1 or 2 neighbours, each a
star (m [16, 22]) with probability 0.2 or a Sersic galaxy of the central's population with m
[17.5, 22.5], 1-5" away in a uniform direction; the common observation model: 64 x 64 pixels
of 0.2", Gaussian PSF FWHM [0.6, 1.0]", sky sigma [5, 15] counts plus Poisson noise at gain
1), this computes with GalSim and numerical derivatives the Fisher information of the blend
about every parameter of every source (per galaxy n, r_e, q, mag, angle, x0, y0; per star
mag, x0, y0) and from it the Cramer-Rao bound of the task's flux metric: the central
galaxy's flux within the stamp, sum(TRUTH), whose gradient is the stamp sum of the central's
derivative images. The same centrals observed alone (their parameters only) give the bound
an ideal fit to the galaxy alone reaches. Drawing one Gaussian error per blend with the
bound's sigma gives the NMAD an ideal unbiased estimator would score (in magnitudes,
1.0857 sigma / flux); a Bayesian estimator with the right priors can do somewhat better, so
this is a guide, not a strict limit (scripts/regression_fisher.py does the same for task 4).

    pip install galsim numpy
    python3 scripts/deblend_fisher.py [--count 1000] [--seed 1] [--out bounds.csv] [--workers 2]
"""
import argparse
import math
import multiprocessing
import os
import sys

import galsim
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# One home for the observation, a galaxy's image and the bound's NMAD.
from regression_fisher import PIXEL, SIDE, ZERO, bound_nmad, render as render_galaxy  # noqa: E402

# Central differences: galaxy (n, r_e relative, q, mag, angle deg, x0 px, y0 px), star (mag, x0, y0).
GALAXY_STEPS = [0.01, 0.01, 0.005, 0.01, 0.5, 0.05, 0.05]
STAR_STEPS = [0.01, 0.05, 0.05]


def render(source, fwhm):
    """The noiseless image of one source: ('galaxy', n, re, q, mag, angle, x0, y0) or
    ('star', mag, x0, y0); x0, y0 in pixels from the stamp's centre."""
    if source[0] == "galaxy":
        return render_galaxy(tuple(source[1:]) + (fwhm,))
    _, mag, x0, y0 = source
    star = galsim.Gaussian(fwhm=fwhm).withFlux(10 ** (0.4 * (ZERO - mag)))
    return star.shift(x0 * PIXEL, y0 * PIXEL).drawImage(nx=SIDE, ny=SIDE, scale=PIXEL).array.astype(np.float64)


def derivatives(source, fwhm):
    """The derivative images of one source's parameters (flattened), by central differences."""
    steps = GALAXY_STEPS if source[0] == "galaxy" else STAR_STEPS
    out = []
    for i, h in enumerate(steps):
        j = i + 1
        lo, hi = list(source), list(source)
        if source[0] == "galaxy" and i == 1:
            h = h * source[2]
        lo[j] -= h
        hi[j] += h
        if source[0] == "galaxy" and i == 0:
            lo[j], hi[j] = max(lo[j], 0.3), min(hi[j], 6.2)
        if source[0] == "galaxy" and i == 2:
            hi[j] = min(hi[j], 1.0)
        out.append(((render(tuple(hi), fwhm) - render(tuple(lo), fwhm)) / (hi[j] - lo[j])).ravel())
    return out


def draw_blend(rng):
    """One blend of TASKS.md task 6: its central, its neighbours, PSF FWHM and sky sigma."""
    def galaxy(x0, y0, mags):
        return ("galaxy", rng.uniform(0.5, 6.0), rng.uniform(0.3, 2.0), rng.uniform(0.3, 1.0),
                rng.uniform(*mags), rng.uniform(0, 180), x0, y0)
    cx, cy = rng.uniform(-2, 2), rng.uniform(-2, 2)
    central = galaxy(cx, cy, (18, 21))
    neighbours = []
    for _ in range(1 if rng.uniform() < 0.5 else 2):
        is_star = rng.uniform() < 0.2
        distance, direction = rng.uniform(1.0, 5.0) / PIXEL, rng.uniform(0, 2 * math.pi)
        x0, y0 = cx + distance * math.cos(direction), cy + distance * math.sin(direction)
        neighbours.append(("star", rng.uniform(16, 22), x0, y0) if is_star else galaxy(x0, y0, (17.5, 22.5)))
    return central, neighbours, rng.uniform(0.6, 1.0), rng.uniform(5, 15)


def flux_bound(args):
    """sigma_mag of the central's stamp flux, in the blend and alone (nan where the Fisher
    matrix is singular)."""
    central, neighbours, fwhm, sigma = args
    images = [render(central, fwhm)] + [render(s, fwhm) for s in neighbours]
    variance = (sigma ** 2 + np.clip(sum(images), 0, None)).ravel()
    alone_variance = (sigma ** 2 + np.clip(images[0], 0, None)).ravel()
    columns = [derivatives(central, fwhm)] + [derivatives(s, fwhm) for s in neighbours]
    stamp = images[0].sum()
    central_gradient = np.array([d.sum() for d in columns[0]])
    result = []
    for d, var in ((np.array([c for block in columns for c in block]), variance), (np.array(columns[0]), alone_variance)):
        fisher = (d / var) @ d.T
        g = np.zeros(len(d))
        g[:len(central_gradient)] = central_gradient
        try:
            quadratic = float(g @ np.linalg.solve(fisher, g))
            sigma_flux = math.sqrt(quadratic) if quadratic > 0 else float("nan")
        except np.linalg.LinAlgError:
            sigma_flux = float("nan")
        result.append(2.5 / math.log(10) * sigma_flux / stamp)
    return central[4], len(neighbours), result[0], result[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--out", help="CSV per blend: mag,neighbours,sigma_mag_blend,sigma_mag_alone")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    blends = [draw_blend(rng) for _ in range(args.count)]
    if args.workers > 1:
        with multiprocessing.Pool(args.workers) as pool:
            rows = pool.map(flux_bound, blends, chunksize=8)
    else:
        rows = [flux_bound(b) for b in blends]
    finite = [r for r in rows if all(math.isfinite(v) for v in r)]
    if len(finite) < len(rows):
        print(f"{len(rows) - len(finite)} blends left out: their Fisher matrix is singular or not positive definite")
    rows = np.array(finite)
    if args.out:
        np.savetxt(args.out, rows, delimiter=",", comments="", header="mag,neighbours,sigma_mag_blend,sigma_mag_alone")
    print(f"{len(rows)} blends; Cramer-Rao NMAD of the central's stamp flux (mag) for an ideal unbiased estimator, "
          "+- its spread [median sigma]:")
    for label, sel in [("all", np.ones(len(rows), bool))] + [
            (f"mag {lo}-{lo + 1}", (rows[:, 0] >= lo) & (rows[:, 0] < lo + 1)) for lo in (18, 19, 20)]:
        cells = []
        for k, name in ((2, "in the blend"), (3, "alone")):
            value, spread = bound_nmad(rows[sel, k], rng)
            cells.append(f"{name} {value:.4f} +- {spread:.4f} [{np.median(rows[sel, k]):.4f}]")
        print(f"  {label:10s} ({sel.sum()} blends): " + "  ".join(cells))


if __name__ == "__main__":
    main()
