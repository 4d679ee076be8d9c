"""Pointing game on simulated lenses (docs/interpretability.md).

For each true positive (LABEL = 1 in the file, predicted `lens` by the model), the fraction of
the positive attribution (summed over bands) that falls inside the lensed-arc region, per method.
The arc region is where the noiseless lensed source (the `ARC` extension written by
`astrolabe simulate --task lens --arcs`) exceeds `--level` times the image's mean sky sigma
(SKYSIG, g+r+i summed in quadrature). The chance level is the region's share of the image.

  astrolabe simulate --task lens --arcs --count 200 --seed 19 --out /tmp/lens-arcs
  astrolabe explain pipelines/find-lenses.yaml --input /tmp/lens-arcs --method ... --output /tmp/lens-maps
  astrolabe run pipelines/find-lenses.yaml --input /tmp/lens-arcs --output /tmp/lens-maps/predictions.csv
  python3 scripts/pointing_game.py /tmp/lens-arcs /tmp/lens-maps saliency smoothgrad integrated_gradients gradcam occlusion
"""
import argparse
import csv
import os

import numpy as np
from astropy.io import fits

parser = argparse.ArgumentParser()
parser.add_argument("data")
parser.add_argument("maps")
parser.add_argument("methods", nargs="+")
parser.add_argument("--level", type=float, default=1.0)
args = parser.parse_args()

predicted = {}
with open(os.path.join(args.maps, "predictions.csv")) as f:
    for row in csv.DictReader(f):
        predicted[row["file"]] = row["predicted"]

fractions = {m: [] for m in args.methods}
chance = []
for name in sorted(predicted):
    with fits.open(os.path.join(args.data, name)) as hdus:
        if hdus[0].header["LABEL"] != 1 or predicted[name] != "lens":
            continue
        arc = hdus["ARC"].data.astype(float)
        sky = np.sqrt(sum(hdus[0].header[f"SKYSIG_{b}"] ** 2 for b in "GRI"))
    region = arc > args.level * sky
    if not region.any():
        continue
    chance.append(region.mean())
    stem = name[:-5]
    for m in args.methods:
        a = fits.getdata(os.path.join(args.maps, f"{stem}.{m}.fits")).astype(float)
        if a.ndim == 3:
            a = a.sum(axis=0)
        positive = np.clip(a, 0, None)
        total = positive.sum()
        fractions[m].append(positive[region].sum() / total if total > 0 else 0.0)

print(f"true positives: {len(chance)}; arc region: ARC > {args.level} x SKYSIG (g+r+i in quadrature)")
print(f"| method | positive attribution inside the arc (mean ± s.e.) | median |")
print("| --- | ---: | ---: |")
for m in args.methods:
    v = np.array(fractions[m])
    print(f"| {m} | {v.mean():.3f} ± {v.std(ddof=1) / np.sqrt(len(v)):.3f} | {np.median(v):.3f} |")
c = np.array(chance)
print(f"| chance (area share of the arc region) | {c.mean():.3f} ± {c.std(ddof=1) / np.sqrt(len(c)):.3f} | {np.median(c):.3f} |")
