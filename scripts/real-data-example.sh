#!/usr/bin/env bash
# The worked example of docs/real-data.md: a real ground-based image (M13, the Digitized Sky
# Survey through SkyView, 300 x 300 at 1"/px, int16, sky left in, no SKYSIG / MAGZERO / PSF
# keywords), shipped inside astropy's test data, so it runs offline.
#   scripts/real-data-example.sh [OUT]      (default OUT=/tmp/astrolabe-real)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/astrolabe-real}
TOOL=${TOOL:-.build/release/astrolabe}
mkdir -p "$OUT"
M13=$(python3 -c "import astropy, os; print(os.path.join(os.path.dirname(astropy.__file__), 'io/fits/hdu/compressed/tests/data/m13.fits'))")
cp "$M13" "$OUT/m13.fits"

# 1. Segmentation: automatic observation matching (sky subtracted, noise measured).
"$TOOL" run pipelines/segment-sky.yaml --input "$OUT/m13.fits" --output "$OUT/segmented" --set outputs.previews="$OUT/previews"
# The same without matching, noise given by hand: the sky pedestal is left in.
"$TOOL" run pipelines/segment-sky.yaml --input "$OUT/m13.fits" --output "$OUT/segmented-raw" \
    --set input.match_observation=false --set input.header_values.SKYSIG=5.376 --set outputs.previews="$OUT/previews-raw"

# 2. Morphology of 12 isolated field stars (13 x 13 px at 1"/px = 65 x 65 at 0.2"/px), seeing given on the command line.
python3 - "$OUT" <<'PY'
import sys, numpy as np
from astropy.io import fits
from scipy.ndimage import maximum_filter
out = sys.argv[1]
d = fits.getdata(out + "/m13.fits").astype(float)
med = np.median(d)
peaks = (d == maximum_filter(d, size=11)) & (d > med + 150) & (d < med + 2000)
ys, xs = np.nonzero(peaks)
stars = [(x, y) for x, y in zip(xs, ys) if np.hypot(y - 150, x - 150) > 100 and 10 < x < 290 and 10 < y < 290
         and (d[y - 6:y + 7, x - 6:x + 7] > med + 60).sum() < 40][:12]
with open(out + "/stars.csv", "w") as f:
    f.write("id,x,y\n")
    for i, (x, y) in enumerate(stars):
        f.write(f"star{i:02d},{x},{y}\n")
PY
"$TOOL" cutout "$OUT/m13.fits" --positions "$OUT/stars.csv" --size 13 --out "$OUT/stars" --overwrite
"$TOOL" run pipelines/classify-galaxies.yaml --input "$OUT/stars" --output "$OUT/stars-classified.csv" \
    --set input.header_values.SEEING=3 --set outputs.previews="$OUT/star-previews"
