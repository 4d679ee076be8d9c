"""TASKS.md task 6's metrics for the classical segmentation deblender (SEP: detection at 1.5
sigma, 32 deblending levels, contrast 0.005, no cleaning; the neighbours' segments set to 0,
the central object's segment and the background kept) on a folder written by
`astrolabe simulate --task deblend`. Prints the medians of PSNR and SSIM and the flux error's
median and NMAD (mag), over all files and per number of neighbours.

    pip install sep scikit-image astropy numpy
    astrolabe simulate --task deblend --count 1000 --seed 61 --out /tmp/deblend-test
    python scripts/deblend_classical_baseline.py /tmp/deblend-test
"""
import sys
import pathlib
import numpy as np
import sep
from astropy.io import fits
from skimage.metrics import structural_similarity


def deblend(data, sigma):
    objects, seg = sep.extract(data, 1.5, err=sigma, minarea=5, deblend_nthresh=32, deblend_cont=0.005,
                               clean=False, segmentation_map=True)
    h, w = data.shape
    central = seg[h // 2, w // 2]
    if central == 0 and len(objects):
        d2 = (objects["x"] - (w - 1) / 2) ** 2 + (objects["y"] - (h - 1) / 2) ** 2
        central = int(np.argmin(d2)) + 1
    return np.where((seg == 0) | (seg == central), data, 0)


def metrics(pred, truth):
    t, p = truth.astype(np.float64), pred.astype(np.float64)
    psnr = 10 * np.log10(t.max() ** 2 / np.mean((p - t) ** 2))
    ssim = structural_similarity(t, p, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                 data_range=t.max() - t.min())
    flux = -2.5 * np.log10(p.sum() / t.sum()) if p.sum() > 0 else np.nan
    return psnr, ssim, flux


def nmad(x):
    x = x[np.isfinite(x)]
    return 1.4826 * np.median(np.abs(x - np.median(x)))


rows = []
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.fits")):
    with fits.open(path) as f:
        data = f[0].data.astype(np.float64)
        truth = f["TRUTH"].data.astype(np.float64)
        sigma, nneigh = f[0].header["SKYSIG"], f[0].header["NNEIGH"]
    rows.append((nneigh,) + metrics(deblend(data, sigma), truth))
rows = np.array(rows)
for name, sel in [("all", rows[:, 0] > 0), ("1 neighbour", rows[:, 0] == 1), ("2 neighbours", rows[:, 0] == 2)]:
    r = rows[sel]
    print(f"{name:13s} n={len(r):5d}  PSNR median {np.median(r[:, 1]):6.2f} dB  SSIM median {np.median(r[:, 2]):.3f}  "
          f"flux error median {np.nanmedian(r[:, 3]):+.3f} mag, NMAD {nmad(r[:, 3]):.3f} mag")
