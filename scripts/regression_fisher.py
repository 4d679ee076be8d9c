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

With `--priors` it also estimates what the posterior median under TASKS.md's uniform priors
reaches, were the likelihood Gaussian with the Fisher covariance C: per galaxy and noise draw, a
maximum-likelihood estimate theta_hat ~ N(truth, C), the posterior N(theta_hat, C) cut to the
ranges (n, r_e, q, mag, and the centre within +-2 px), sampled, and its median's error. Where the
data pin a parameter far from the ranges' edges this equals the unbiased bound; near an edge or
for faint galaxies the prior pulls the median in, as a calibrated posterior's does. `--mags LO,HI`
draws the magnitudes from a narrower range (the bright bins, say) with the rest unchanged.

    pip install galsim numpy
    python3 scripts/regression_fisher.py [--count 1000] [--seed 1] [--out bounds.csv] [--unknown-psf]
        [--priors] [--mags 17,19] [--workers 2]
"""
import argparse
import math
import multiprocessing

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


RANGES = [(0.5, 6.0), (0.3, 3.0), (0.2, 1.0), (17.0, 22.0), None, (-2.0, 2.0), (-2.0, 2.0)]
STEPS = np.array([0.01, 0.0, 0.005, 0.01, 0.5, 0.05, 0.05, 0.005])   # r_e step is relative (1%)


def galaxy_bound(job):
    """sigma of (n, log10 r_e, q, mag) for one galaxy, and with `priors` the errors of the cut
    posterior's medians over `draws` noise draws (None where the Fisher matrix is singular)."""
    p, sigma, unknown_psf, priors, draws, seed = job
    n, re = p[0], p[1]
    count = 8 if unknown_psf else 7
    model = render(p)
    variance = sigma ** 2 + np.clip(model, 0, None)
    derivatives = []
    for i in range(count):
        h = STEPS[i] if i != 1 else 0.01 * re
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
    if unknown_psf:
        fisher[7, 7] += 1 / (0.4 / math.sqrt(12)) ** 2
    try:
        covariance = np.linalg.inv(fisher)
    except np.linalg.LinAlgError:
        return None
    bound = np.sqrt(np.diag(covariance))
    row = [p[0], p[1], p[2], p[3], bound[0], bound[1] / (re * math.log(10)), bound[2], bound[3]]
    errors = None
    if priors:
        try:
            root = np.linalg.cholesky((covariance + covariance.T) / 2)
            errors = cut_posterior_median_errors(p[:count], root, np.random.default_rng(seed), draws)
        except np.linalg.LinAlgError:
            pass
    return row, errors


def gaussian_inside(centre, root, inside, rng, per_round, enough, rounds=10):
    """Draws of N(centre, root root^T) for which `inside(draws)` (a boolean mask) holds: rounds of
    `per_round` draws until `enough` are kept or `rounds` ran out."""
    kept = []
    for _ in range(rounds):
        theta = centre + rng.standard_normal((per_round, len(centre))) @ root.T
        kept.append(theta[inside(theta)])
        if sum(len(k) for k in kept) >= enough:
            break
    return np.concatenate(kept)


def cut_posterior_median_errors(truth, root, rng, draws, samples=4000):
    """Per noise draw, the errors of (n, log10 r_e, q, mag) of the posterior median and then of
    the unbiased estimate itself: theta_hat ~ N(truth, C), the posterior N(theta_hat, C) cut to
    RANGES (rejection; None when fewer than 200 of 10 x `samples` land inside for some draw).
    C = root root^T. Rows: draws; columns: 4 median errors, 4 estimate errors."""
    size = len(truth)
    errors = []

    def inside(theta):
        keep = np.ones(len(theta), bool)
        for i, r in enumerate(RANGES[:size]):
            if r is not None:
                keep &= (theta[:, i] >= r[0]) & (theta[:, i] <= r[1])
        return keep

    for _ in range(draws):
        centre = truth + root @ rng.standard_normal(size)
        theta = gaussian_inside(centre, root, inside, rng, per_round=samples, enough=samples)
        if len(theta) < 200:
            return None
        median = np.median(np.column_stack([theta[:, 0], np.log10(theta[:, 1]), theta[:, 2], theta[:, 3]]), axis=0)
        target = np.array([truth[0], math.log10(truth[1]), truth[2], truth[3]])
        estimate = np.array([centre[0], math.log10(max(centre[1], 1e-3)), centre[2], centre[3]])
        errors.append(np.concatenate([median - target, estimate - target]))
    return np.array(errors)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", help="CSV of the per-galaxy bounds (n, r_e, q, mag, sigma_n, sigma_log10_r_e, sigma_q, sigma_mag)")
    ap.add_argument("--unknown-psf", action="store_true",
                    help="the PSF FWHM is not given: a nuisance parameter with the prior's width (see above)")
    ap.add_argument("--priors", action="store_true", help="also the posterior median cut to TASKS.md's ranges (above)")
    ap.add_argument("--draws", type=int, default=4, help="noise draws per galaxy for --priors")
    ap.add_argument("--mags", default="17,22", help="magnitude range drawn (TASKS.md: 17,22)")
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    if args.priors and args.unknown_psf:
        ap.error("--priors with --unknown-psf would count the PSF's prior twice (it is already in the Fisher matrix)")
    low, high = (float(v) for v in args.mags.split(","))
    rng = np.random.default_rng(args.seed)
    jobs = []
    for k in range(args.count):
        n, re, q, mag = rng.uniform(0.5, 6.0), rng.uniform(0.3, 3.0), rng.uniform(0.2, 1.0), rng.uniform(low, high)
        p = np.array([n, re, q, mag, rng.uniform(0, 180), rng.uniform(-2, 2), rng.uniform(-2, 2), rng.uniform(0.6, 1.0)])
        jobs.append((p, rng.uniform(5, 15), args.unknown_psf, args.priors, args.draws, args.seed * 1_000_003 + k))
    if args.workers > 1:
        with multiprocessing.Pool(args.workers) as pool:
            results = pool.map(galaxy_bound, jobs, chunksize=4)
    else:
        results = [galaxy_bound(job) for job in jobs]
    results = [r for r in results if r is not None]
    rows = np.array([r[0] for r in results])
    if args.out:
        np.savetxt(args.out, rows, delimiter=",", comments="",
                   header="sersic_n,r_e,q,mag,sigma_n,sigma_log10_r_e,sigma_q,sigma_mag")
    report(rows, rng)
    if args.priors:
        report_cut(rows, [r[1] for r in results], rng)


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
        if sel.sum() < 20:
            continue
        cells = []
        for k, (name, _) in enumerate(names):
            value, spread = bound_nmad(rows[sel, 4 + k], rng)
            cells.append(f"{name} {value:.4f} +- {spread:.4f} [{np.median(rows[sel, 4 + k]):.4f}]")
        print(f"  mag {lo}-{lo + 1} ({sel.sum()} objects): " + "  ".join(cells))

def report_cut(rows, errors, rng, resamples=200):
    """Per magnitude bin, the NMAD of the cut posterior's median errors and of the unbiased
    estimates of the same draws, and their ratio, each +- its spread over bootstrap resamples of
    the galaxies (each galaxy's draws kept together)."""
    names = ["n", "log10 r_e", "q", "mag"]
    usable = [i for i, e in enumerate(errors) if e is not None]
    print(f"posterior median cut to TASKS.md's ranges ({len(usable)} of {len(errors)} galaxies sampled): NMAD of its "
          "errors, of the unbiased estimates of the same noise draws, and cut / unbiased, each +- spread:")

    def statistics(sel, k):
        cut = nmad(np.concatenate([errors[i][:, k] for i in sel]))
        unbiased = nmad(np.concatenate([errors[i][:, 4 + k] for i in sel]))
        return cut, unbiased, cut / unbiased

    for lo in range(17, 22):
        sel = [i for i in usable if lo <= rows[i, 3] < lo + 1]
        if len(sel) < 20:
            continue
        print(f"  mag {lo}-{lo + 1} ({len(sel)} objects):")
        for k, name in enumerate(names):
            value = statistics(sel, k)
            spread = np.std([statistics(rng.choice(sel, len(sel)), k) for _ in range(resamples)], axis=0)
            print(f"    {name:10s} cut {value[0]:.4f} +- {spread[0]:.4f}  unbiased {value[1]:.4f} +- {spread[1]:.4f}"
                  f"  ratio {value[2]:.3f} +- {spread[2]:.3f}")


if __name__ == "__main__":
    main()
