#!/usr/bin/env python3
"""How well can the Sersic parameters of TASKS.md's regression task be measured at all?

For galaxies drawn from TASKS.md's task-4 distribution (n in [0.5, 6], r_e in [0.3, 3]",
q in [0.2, 1], mag in [17, 22], PSF FWHM in [0.6, 1.0]", sky sigma in [5, 15] counts plus
Poisson noise, 64 x 64 pixels of 0.2"), this computes the Fisher information of the image
about (n, r_e, q, mag, position angle, x0, y0) with GalSim and numerical derivatives, and
from it the Cramer-Rao bound: the smallest standard deviation an unbiased estimator can
reach for each parameter, object by object. Drawing one Gaussian error per object with
that deviation gives the NMAD an ideal unbiased estimator would score on this population
(a Bayesian estimator that shrinks towards the prior can do somewhat better at the faint
end, so this is a guide, not a strict limit).

With `--unknown-psf` the PSF's FWHM is one more parameter to measure, with a Gaussian prior
as wide as TASKS.md's uniform [0.6, 1.0]" (sigma 0.4/sqrt(12) = 0.115"): the bound of an estimator
that is not told the PSF and must infer it from the galaxy itself (a model that does not read
PSF_FWHM from the header). Comparing both runs shows what the header's PSF is worth.

The NMAD of the bound is reported for all galaxies and per bin of true magnitude, with its
spread: the standard deviation over 200 bootstrap resamples of the galaxies, each with a
fresh draw of the errors (the population and the draws both scatter the NMAD: 300 galaxies
give about +-0.045 in n). The per-bin median sigma is printed too, but a model's NMAD must
be compared with the bound's NMAD, not with its median sigma (which is 15-20 % larger).

    pip install galsim numpy
    python3 scripts/regression_fisher.py [--count 1000] [--seed 1] [--out bounds.csv] [--unknown-psf]
"""
import argparse
import math

import galsim
import numpy as np

PIXEL, SIDE, ZERO = 0.2, 64, 30.0


def render(p):
    """The noiseless image of parameters p = (n, r_e, q, mag, angle, x0, y0, PSF FWHM)."""
    n, re, q, mag, beta, x0, y0, fwhm = p
    psf = galsim.Gaussian(fwhm=fwhm)
    flux = 10 ** (0.4 * (ZERO - mag))
    g = galsim.Sersic(n=n, half_light_radius=re, flux=flux).shear(q=q, beta=beta * galsim.degrees)
    g = galsim.Convolve(g, psf).shift(x0 * PIXEL, y0 * PIXEL)
    return g.drawImage(nx=SIDE, ny=SIDE, scale=PIXEL).array.astype(np.float64)


def nmad(errors):
    e = np.asarray(errors)
    return 1.4826 * np.median(np.abs(e - np.median(e)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", help="CSV of the per-galaxy bounds (n, r_e, q, mag, sigma_n, sigma_log10_r_e, sigma_q, sigma_mag)")
    ap.add_argument("--unknown-psf", action="store_true",
                    help="the PSF FWHM is not given: a nuisance parameter with the prior's width (see above)")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    steps = np.array([0.01, 0.0, 0.005, 0.01, 0.5, 0.05, 0.05, 0.005])   # r_e step is relative (1%)
    count = 8 if args.unknown_psf else 7
    rows = []
    for _ in range(args.count):
        n, re, q, mag = rng.uniform(0.5, 6.0), rng.uniform(0.3, 3.0), rng.uniform(0.2, 1.0), rng.uniform(17, 22)
        p = np.array([n, re, q, mag, rng.uniform(0, 180), rng.uniform(-2, 2), rng.uniform(-2, 2), rng.uniform(0.6, 1.0)])
        sigma = rng.uniform(5, 15)
        model = render(p)
        variance = sigma ** 2 + np.clip(model, 0, None)
        derivatives = []
        for i in range(count):
            h = steps[i] if i != 1 else 0.01 * re
            lo, hi = p.copy(), p.copy()
            lo[i] -= h; hi[i] += h
            if i == 0:
                lo[0], hi[0] = max(lo[0], 0.3), min(hi[0], 6.2)
                h = (hi[0] - lo[0]) / 2
            if i == 2:
                hi[2] = min(hi[2], 1.0)
                h = (hi[2] - lo[2]) / 2
            derivatives.append(((render(hi) - render(lo)) / (2 * h)).ravel())
        d = np.array(derivatives)
        fisher = (d / variance.ravel()) @ d.T
        if args.unknown_psf:
            fisher[7, 7] += 1 / (0.4 / math.sqrt(12)) ** 2
        try:
            bound = np.sqrt(np.diag(np.linalg.inv(fisher)))
        except np.linalg.LinAlgError:
            continue
        rows.append((n, re, q, mag, bound[0], bound[1] / (re * math.log(10)), bound[2], bound[3]))
    rows = np.array(rows)
    if args.out:
        np.savetxt(args.out, rows, delimiter=",", comments="",
                   header="sersic_n,r_e,q,mag,sigma_n,sigma_log10_r_e,sigma_q,sigma_mag")
    report(rows, rng)


def bound_nmad(sigmas, rng, resamples=200):
    """NMAD of one Gaussian error per object (the first draw) and its spread over bootstrap
    resamples of the objects with fresh draws."""
    first = nmad(rng.standard_normal(len(sigmas)) * sigmas)
    spread = [nmad(rng.standard_normal(len(sigmas)) * rng.choice(sigmas, len(sigmas))) for _ in range(resamples)]
    return first, float(np.std(spread))


def report(rows, rng):
    names = [("n", 0.25), ("log10 r_e", 0.03), ("q", 0.03), ("mag", 0.05)]
    print(f"{len(rows)} galaxies; Cramer-Rao NMAD of an ideal unbiased estimator, +- its spread (issue 9 targets):")
    for k, (name, target) in enumerate(names):
        value, spread = bound_nmad(rows[:, 4 + k], rng)
        print(f"  {name:10s} {value:.4f} +- {spread:.4f}   (target <= {target})")
    print("by true magnitude: NMAD of the bound +- spread [median sigma]:")
    for lo in range(17, 22):
        sel = (rows[:, 3] >= lo) & (rows[:, 3] < lo + 1)
        cells = []
        for k, (name, _) in enumerate(names):
            value, spread = bound_nmad(rows[sel, 4 + k], rng)
            cells.append(f"{name} {value:.4f} +- {spread:.4f} [{np.median(rows[sel, 4 + k]):.4f}]")
        print(f"  mag {lo}-{lo + 1} ({sel.sum()} objects): " + "  ".join(cells))

if __name__ == "__main__":
    main()
