#!/usr/bin/env python3
"""Maximum-likelihood Sersic fits against the posterior medians on the same regression files.

`deblend-galaxies.yaml` ends in a maximum-likelihood fit of PSF-convolved Sersic profiles
(`SceneFit`, the header's PSF and noise) and writes the central galaxy's parameters in FIT_*
cards. Run on single-galaxy regression files it measures what a classical fit reaches, galaxy by
galaxy, beside the posterior model's medians (`regress-sersic.yaml`'s predictions CSV). This
prints, per bin of true magnitude, the NMAD of both and their paired difference with its
bootstrap spread (the same galaxies resampled for both), and the fit's median error.

    astrolabe run pipelines/deblend-galaxies.yaml --input REGRESSION_DIR --output FITTED_DIR
    astrolabe run pipelines/regress-sersic.yaml --input REGRESSION_DIR --output posterior.csv
    python3 scripts/profile_fit_vs_posterior.py --truth catalog.csv --posterior posterior.csv \
        --fitted REGRESSION_DIR=FITTED_DIR [REGRESSION_DIR2=FITTED_DIR2 ...]

The truth and posterior CSVs name each file by the path the run was given (`file` column);
`--fitted` maps each input folder to the folder the fits were written to.
"""
import argparse
import csv
import os

import numpy as np
from astropy.io import fits

NAMES = ["n", "log10 r_e", "q", "mag"]


def nmad(e):
    return 1.4826 * np.median(np.abs(e - np.median(e)))


def targets(row):
    return [float(row["sersic_n"]), np.log10(float(row["r_e"])), float(row["q"]), float(row["mag"])]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--truth", required=True, help="catalog CSV: file,sersic_n,r_e,q,mag")
    ap.add_argument("--posterior", required=True, help="regress-sersic.yaml's predictions CSV")
    ap.add_argument("--fitted", nargs="+", required=True, help="INPUT_DIR=FITTED_DIR pairs")
    ap.add_argument("--bins", default="17,18,19,20,21,22", help="magnitude bin edges")
    ap.add_argument("--resamples", type=int, default=400)
    args = ap.parse_args()

    truth = {os.path.normpath(r["file"]): r for r in csv.DictReader(open(args.truth))}
    posterior = {os.path.normpath(r["file"]): r for r in csv.DictReader(open(args.posterior))}
    t, f, p, sources = [], [], [], []
    for pair in args.fitted:
        source, fitted = pair.split("=", 1)
        for name in sorted(os.listdir(fitted)):
            key = os.path.normpath(os.path.join(source, name))
            if not name.endswith(".fits") or key not in truth or key not in posterior:
                continue
            h = fits.getheader(os.path.join(fitted, name))
            if "FIT_N" not in h:
                continue
            t.append(targets(truth[key]))
            p.append(targets(posterior[key]))
            f.append([h["FIT_N"], np.log10(h["FIT_RE"]), h["FIT_Q"], h["MAGZERO"] - 2.5 * np.log10(h["FIT_FLUX"])])
            sources.append(h["FIT_NSRC"])
    t, f, p = np.array(t), np.array(f), np.array(p)
    print(f"{len(t)} galaxies with a fit ({sum(s > 1 for s in sources)} fitted with more than one source)")
    rng = np.random.default_rng(1)
    edges = [float(x) for x in args.bins.split(",")]
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = np.where((t[:, 3] >= lo) & (t[:, 3] < hi))[0]
        if len(sel) < 20:
            continue
        print(f"mag {lo:g}-{hi:g} ({len(sel)} galaxies): fit NMAD vs posterior NMAD (paired difference)  [fit median error]")
        for k, name in enumerate(NAMES):
            a, b = nmad(f[sel, k] - t[sel, k]), nmad(p[sel, k] - t[sel, k])
            spread = np.std([nmad(f[i, k] - t[i, k]) - nmad(p[i, k] - t[i, k])
                             for i in (rng.choice(sel, len(sel)) for _ in range(args.resamples))])
            print(f"  {name:10s} {a:.4f} vs {b:.4f} ({a - b:+.4f} +- {spread:.4f})  [{np.median(f[sel, k] - t[sel, k]):+.4f}]")


if __name__ == "__main__":
    main()
