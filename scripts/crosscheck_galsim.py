#!/usr/bin/env python3
"""Compare SkySim's noiseless Sérsic renders with GalSim.

Run:  SKYSIM_PREVIEW_DIR=/tmp/x swift test -c release -Xswiftc -enable-testing \
          --filter SkySimTests.ReferenceDumpTests && python3 scripts/crosscheck_galsim.py /tmp/x
Cases must match ReferenceDumpTests.cases. GalSim: Sersic(n, half_light_radius, flux)
.shear(q, beta) convolved with a Gaussian PSF, drawn with the pixel response (method='auto').
"""
import sys
import numpy as np
import galsim

CASES = [(6.0, 0.3, 0.4, 0.3, 0.6, 31.5, 31.5), (4.0, 0.5, 0.8, 1.0, 0.8, 32.2, 30.9),
         (1.0, 0.3, 0.3, 2.0, 0.6, 31.0, 31.0), (0.5, 0.3, 0.2, 0.5, 1.0, 30.7, 32.4),
         (2.5, 1.5, 0.6, 2.8, 0.7, 31.5, 31.5), (6.0, 3.0, 0.2, 0.1, 0.6, 32.0, 31.0)]
directory = sys.argv[1]
params = galsim.GSParams(folding_threshold=1e-4, maxk_threshold=1e-4, kvalue_accuracy=1e-6,
                         xvalue_accuracy=1e-6, maximum_fft_size=16384)
worst = 0.0
for k, (n, re, q, pa, fwhm, cx, cy) in enumerate(CASES):
    ours = np.fromfile(f"{directory}/sersic_{k}.f64", dtype=np.float64).reshape(64, 64)
    gal = galsim.Sersic(n=n, half_light_radius=re, flux=1e4, gsparams=params).shear(q=q, beta=pa * galsim.radians)
    psf = galsim.Gaussian(fwhm=fwhm, gsparams=params)
    image = galsim.Convolve(gal, psf, gsparams=params).drawImage(
        nx=64, ny=64, scale=0.2, offset=(cx + 1 - 32.5, cy + 1 - 32.5))
    ref = image.array
    peak = ref.max()
    diff = np.abs(ours - ref).max() / peak
    worst = max(worst, diff)
    print(f"n={n} re={re}\" q={q} fwhm={fwhm}\": max |ours - galsim| / peak = {diff:.2e}, "
          f"sum ratio = {ours.sum() / ref.sum():.5f}, peak ratio = {ours.max() / peak:.5f}")
print(f"worst: {worst:.2e}")
