"""Picture for docs/results.md: generated galaxies (astrolabe generate) above simulated ones.

Both in counts, each shown with the same asinh display stretch (per image: 1st-99.8th
percentile after asinh(x / sky sigma)), 8 columns by default.

    python3 scripts/generator_grid.py GENERATED_DIR SIMULATED_DIR OUT.png [--rows 3] [--labels TOP BOTTOM]

(The second folder may hold generated images too: `--noiseless` ones above the same seed's
observed ones, `--labels noiseless observed`.)
"""
import argparse
import pathlib

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from astropy.io import fits


def load(folder, count, pattern):
    files = sorted(pathlib.Path(folder).glob(pattern))[:count]
    images = []
    for f in files:
        with fits.open(f) as h:
            data, sigma = h[0].data.astype(float), float(h[0].header.get("SKYSIG", 1))
        images.append(np.arcsinh(data / sigma))
    return images


def main():
    p = argparse.ArgumentParser()
    p.add_argument("generated")
    p.add_argument("simulated")
    p.add_argument("out")
    p.add_argument("--rows", type=int, default=3)
    p.add_argument("--columns", type=int, default=8)
    p.add_argument("--labels", nargs=2, default=["generated", "simulated"], metavar=("TOP", "BOTTOM"))
    a = p.parse_args()
    n = a.rows * a.columns
    sets = [(a.labels[0], load(a.generated, n, "generated_*.fits")), (a.labels[1], load(a.simulated, n, "*.fits"))]
    fig, axes = plt.subplots(2 * a.rows, a.columns, figsize=(a.columns * 1.2, 2 * a.rows * 1.25))
    for s, (name, images) in enumerate(sets):
        for k, image in enumerate(images):
            ax = axes[s * a.rows + k // a.columns, k % a.columns]
            lo, hi = np.percentile(image, [1, 99.8])
            ax.imshow(image, origin="lower", cmap="gray", vmin=lo, vmax=hi)
        axes[s * a.rows, 0].set_title(name, loc="left", fontsize=9)
    for ax in axes.ravel():
        ax.set_xticks([]); ax.set_yticks([])
    fig.tight_layout(pad=0.3)
    fig.savefig(a.out, dpi=64)


if __name__ == "__main__":
    main()
