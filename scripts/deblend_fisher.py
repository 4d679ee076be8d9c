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
1.0857 sigma / flux); scripts/regression_fisher.py does the same for task 4.

A Bayesian estimator that knows TASKS.md's priors can do better than an unbiased one, by what
the priors add to the data. Two measures of that per blend: (1) the Gaussian prior of each
bounded parameter's variance (range^2 / 12) added to the Fisher matrix, the error of the
posterior mean were the model linear and the priors Gaussian; (2) the likelihood, Gaussian with
the Fisher matrix's covariance about the true parameters, cut to TASKS.md's own ranges (n, r_e,
q and each source's magnitude range, the central within +-2 px, each neighbour 1-5" from it),
and the spread of the central's stamp flux over that posterior, by sampling: what the uniform
priors themselves take off.

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
from regression_fisher import PIXEL, SIDE, ZERO, bound_nmad, gaussian_inside, render as render_galaxy  # noqa: E402

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


# TASKS.md's ranges per parameter (None: no bound used), in derivatives()' order.
GALAXY_RANGES = [(0.5, 6.0), (0.3, 2.0), (0.3, 1.0), None, None, None, None]
CENTRAL_MAGS, NEIGHBOUR_MAGS, STAR_MAGS = (18.0, 21.0), (17.5, 22.5), (16.0, 22.0)
CENTRE_OFFSET, NEIGHBOUR_DISTANCE = 2.0, (1.0 / PIXEL, 5.0 / PIXEL)


def prior_ranges(sources):
    """The range of every parameter of the blend (None where no bound is used) and the index
    of each neighbour's x0 in the parameter vector."""
    ranges, positions = [], []
    for k, source in enumerate(sources):
        if source[0] == "galaxy":
            block = list(GALAXY_RANGES)
            block[3] = CENTRAL_MAGS if k == 0 else NEIGHBOUR_MAGS
            if k == 0:
                block[5] = block[6] = (-CENTRE_OFFSET, CENTRE_OFFSET)
            else:
                positions.append(len(ranges) + 5)
        else:
            block = [STAR_MAGS, None, None]
            positions.append(len(ranges) + 1)
        ranges += block
    return ranges, positions


def cut_to_priors_sigma(truth, covariance, g, ranges, positions, rng, draws=40000):
    """The spread of g . theta over the Gaussian likelihood about the truth cut to the ranges
    (nan when fewer than 400 of up to 10 x draws land inside them)."""
    def inside(theta):
        keep = np.ones(len(theta), bool)
        for i, r in enumerate(ranges):
            if r is not None:
                keep &= (theta[:, i] >= r[0]) & (theta[:, i] <= r[1])
        for i in positions:
            distance = np.hypot(theta[:, i] - theta[:, 5], theta[:, i + 1] - theta[:, 6])
            keep &= (distance >= NEIGHBOUR_DISTANCE[0]) & (distance <= NEIGHBOUR_DISTANCE[1])
        return keep

    values = gaussian_inside(truth, np.linalg.cholesky(covariance), inside, rng, per_round=draws, enough=4000) @ g
    return float(np.std(values)) if len(values) >= 400 else float("nan")


def flux_bound(args):
    """sigma_mag of the central's stamp flux: unbiased in the blend, unbiased alone, with
    Gaussian priors in the blend, and with the likelihood cut to the priors in the blend (nan
    where the Fisher matrix is singular)."""
    central, neighbours, fwhm, sigma, seed = args
    sources = [central] + neighbours
    images = [render(s, fwhm) for s in sources]
    variance = (sigma ** 2 + np.clip(sum(images), 0, None)).ravel()
    alone_variance = (sigma ** 2 + np.clip(images[0], 0, None)).ravel()
    columns = [derivatives(s, fwhm) for s in sources]
    stamp = images[0].sum()
    central_gradient = np.array([d.sum() for d in columns[0]])
    to_mag = 2.5 / math.log(10) / stamp
    blend_d, alone_d = np.array([c for block in columns for c in block]), np.array(columns[0])
    blend_fisher = (blend_d / variance) @ blend_d.T
    result = []
    for fisher in (blend_fisher, (alone_d / alone_variance) @ alone_d.T):
        g = np.zeros(len(fisher))
        g[:len(central_gradient)] = central_gradient
        try:
            quadratic = float(g @ np.linalg.solve(fisher, g))
            sigma_flux = math.sqrt(quadratic) if quadratic > 0 else float("nan")
        except np.linalg.LinAlgError:
            sigma_flux = float("nan")
        result.append(to_mag * sigma_flux)
    ranges, positions = prior_ranges(sources)
    g = np.zeros(len(ranges))
    g[:len(central_gradient)] = central_gradient
    prior = np.diag([12.0 / (r[1] - r[0]) ** 2 if r is not None else 0.0 for r in ranges])
    truth = np.array([v for s in sources for v in s[1:]], dtype=np.float64)
    gaussian = cut = float("nan")
    try:
        gaussian = to_mag * math.sqrt(float(g @ np.linalg.solve(blend_fisher + prior, g)))
        covariance = np.linalg.inv(blend_fisher)
        cut = to_mag * cut_to_priors_sigma(truth, (covariance + covariance.T) / 2, g, ranges, positions,
                                           np.random.default_rng(seed))
    except (np.linalg.LinAlgError, ValueError):
        pass
    result += [gaussian, cut]
    return (central[4], len(neighbours), *result)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--out", help="CSV per blend: mag,neighbours,sigma_mag_blend,sigma_mag_alone,"
                    "sigma_mag_gaussian_prior,sigma_mag_cut_to_priors")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    blends = [draw_blend(rng) + (args.seed * 1_000_003 + k,) for k in range(args.count)]
    if args.workers > 1:
        with multiprocessing.Pool(args.workers) as pool:
            rows = pool.map(flux_bound, blends, chunksize=8)
    else:
        rows = [flux_bound(b) for b in blends]
    finite = [r for r in rows if all(math.isfinite(v) for v in r[:4])]
    if len(finite) < len(rows):
        print(f"{len(rows) - len(finite)} blends left out: their Fisher matrix is singular or not positive definite")
    rows = np.array(finite)
    uncut = int((~np.isfinite(rows[:, 5])).sum())
    if uncut:
        print(f"{uncut} blends without a 'cut to priors' value (fewer than 400 of 400,000 draws inside the ranges): "
              "that column is over the others")
    if args.out:
        np.savetxt(args.out, rows, delimiter=",", comments="", header="mag,neighbours,sigma_mag_blend,sigma_mag_alone,"
                   "sigma_mag_gaussian_prior,sigma_mag_cut_to_priors")
    print(f"{len(rows)} blends; NMAD of the central's stamp flux (mag) from one Gaussian error per blend, "
          "+- its spread [median sigma]: the Cramer-Rao bound of an unbiased estimator in the blend and alone, "
          "and in the blend with Gaussian priors and with the likelihood cut to TASKS.md's ranges:")
    for label, sel in [("all", np.ones(len(rows), bool))] + [
            (f"mag {lo}-{lo + 1}", (rows[:, 0] >= lo) & (rows[:, 0] < lo + 1)) for lo in (18, 19, 20)]:
        cells = []
        for k, name in ((2, "in the blend"), (3, "alone"), (4, "Gaussian priors"), (5, "cut to priors")):
            sigmas = rows[sel, k][np.isfinite(rows[sel, k])]
            value, spread = bound_nmad(sigmas, rng)
            cells.append(f"{name} {value:.4f} +- {spread:.4f} [{np.median(sigmas):.4f}]")
        print(f"  {label:10s} ({sel.sum()} blends): " + "  ".join(cells))


if __name__ == "__main__":
    main()
