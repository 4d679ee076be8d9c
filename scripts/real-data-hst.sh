#!/usr/bin/env bash
# The second worked example of docs/real-data.md: a real space-based image, HST WFPC2 F814W
# of the cluster Abell 478 (600 x 600 drizzled at 0.1"/px, 600 s, counts/s, sky left in,
# cosmic rays not removed), shipped inside the mpdaf wheel on PyPI (mpdaf/data/sdetect/
# a478hst-cutout.fits). Needs PyPI once (pip download of the wheel, astroscrappy, galsim).
#   scripts/real-data-hst.sh [OUT]      (default OUT=/tmp/astrolabe-hst)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/astrolabe-hst}
TOOL=${TOOL:-.build/release/astrolabe}
mkdir -p "$OUT"
python3 -c "import astroscrappy" 2>/dev/null || pip install -q astroscrappy
python3 -c "import galsim" 2>/dev/null || pip install -q galsim
if [ ! -f "$OUT/a478.fits" ]; then
  pip download -q --no-deps mpdaf==3.6 -d "$OUT/wheel"
  unzip -o -q -j "$OUT"/wheel/mpdaf-3.6-*.whl mpdaf/data/sdetect/a478hst-cutout.fits -d "$OUT"
  mv "$OUT/a478hst-cutout.fits" "$OUT/a478.fits"
fi
# The AB zero point comes from the header's PHOTFLAM and PHOTPLAM (said once per run);
# computed here too, for the synthetic galaxies below.
ZP=$(python3 -c "
from astropy.io import fits; import math
h = fits.getheader('$OUT/a478.fits', 'SCI')
print(round(-2.5 * math.log10(h['PHOTFLAM']) - 21.10 - 5 * math.log10(h['PHOTPLAM']) + 18.692, 3))")
echo "zero point (AB, counts/s): $ZP"
SET=(--set input.header_values.PSF_FWHM=0.15)

# 1. Cosmic rays to NaN with astroscrappy (L.A.Cosmic); the SCI header (WCS) kept.
python3 - "$OUT" <<'PY'
import sys, numpy as np, astroscrappy
from astropy.io import fits
out = sys.argv[1]
h = fits.open(out + "/a478.fits")
sci = h["SCI"].data.astype(np.float32)
mask, _ = astroscrappy.detect_cosmics(sci * h[0].header["EXPTIME"], gain=7.0, readnoise=5.0, sigclip=4.5, objlim=5.0)
print(f"cosmic-ray pixels masked: {mask.sum()} ({100 * mask.mean():.1f} %)")
sci[mask] = np.nan
fits.PrimaryHDU(sci, h["SCI"].header).writeto(out + "/a478-clean.fits", overwrite=True)
PY

# 2. Segmentation, cosmic rays left in and masked (the map stays on its 0.1"/px grid).
"$TOOL" run pipelines/segment-sky.yaml --input "$OUT/a478.fits" --output "$OUT/segmented-raw" --set input.hdu=SCI \
    "${SET[@]}" --set outputs.previews="$OUT/previews-raw"
"$TOOL" run pipelines/segment-sky.yaml --input "$OUT/a478-clean.fits" --output "$OUT/segmented" \
    "${SET[@]}" --set outputs.previews="$OUT/previews"
python3 - "$OUT" <<'PY'
import sys, numpy as np
from astropy.io import fits
out = sys.argv[1]
for name in ["segmented-raw/a478.fits", "segmented/a478-clean.fits"]:
    c = np.bincount(fits.getdata(f"{out}/{name}").ravel(), minlength=3)
    print(f"{name}: background {c[0]}, star {c[1]}, galaxy {c[2]} pixels")
PY

# 3. Galaxies and stars of the field: cutouts twice the models' field (256 px = 25.6"), so the
#    sky comes from pixels away from each object; classification and Sérsic posteriors.
cat > "$OUT/positions.csv" <<'CSV'
id,x,y
ell_topleft,171.7,459.8
compact_left,184.7,218.4
gal_right,554.8,290.7
faint_1,282.9,233.5
faint_2,201.6,337.6
bcg,313.7,316.9
star_spikes,460.0,98.0
star_2,250.7,368.6
star_3,124.0,226.0
CSV
for size in 128 256; do
  "$TOOL" cutout "$OUT/a478-clean.fits" --positions "$OUT/positions.csv" --size $size --out "$OUT/cutouts-$size" --overwrite
  "$TOOL" run pipelines/classify-galaxies.yaml --input "$OUT/cutouts-$size" --output "$OUT/classes-$size.csv" "${SET[@]}" \
      --set outputs.previews="$OUT/class-previews-$size"
  "$TOOL" run pipelines/regress-sersic.yaml --input "$OUT/cutouts-$size" --output "$OUT/sersic-$size.csv" "${SET[@]}"
done

# 4. The matching itself, on GalSim Sérsic galaxies drawn as this image is (0.1"/px, Gaussian
#    PSF 0.15", counts/s at this zero point, the image's noise and sky level, its WCS).
python3 - "$OUT" "$ZP" <<'PY'
import sys, os, numpy as np, galsim
from astropy.io import fits
out, zp = sys.argv[1], float(sys.argv[2])
cases = [("c1", 3.35, 0.61, 0.88, 17.57), ("c2", 2.3, 1.59, 0.72, 17.2), ("c3", 2.27, 0.36, 0.81, 19.76),
         ("c4", 1.0, 1.0, 0.5, 19.0), ("c5", 4.5, 2.5, 0.8, 17.5)]
header = fits.getheader(out + "/cutouts-256/compact_left.fits")
rng = np.random.default_rng(1)
with open(out + "/synthetic-truth.csv", "w") as f:
    f.write("file,sersic_n,r_e,q,mag\n")
    for name, n, re, q, mag in cases:
        f.write(f"{name}.fits,{n},{re},{q},{mag}\n")
        g = galsim.Sersic(n=n, half_light_radius=re, flux=10 ** (0.4 * (zp - mag))).shear(q=q, beta=0.3 * galsim.radians)
        image = galsim.Convolve(g, galsim.Gaussian(fwhm=0.15)).drawImage(nx=256, ny=256, scale=0.1).array
        image = image + 0.019 + rng.normal(0, 0.0027, image.shape)
        for size in (128, 256):
            os.makedirs(f"{out}/synthetic-{size}", exist_ok=True)
            h = header.copy(); h["CRPIX1"] -= (256 - size) // 2; h["CRPIX2"] -= (256 - size) // 2
            lo = (256 - size) // 2
            fits.PrimaryHDU(image[lo:lo + size, lo:lo + size].astype(np.float32), h).writeto(
                f"{out}/synthetic-{size}/{name}.fits", overwrite=True)
PY
for size in 128 256; do
  "$TOOL" run pipelines/regress-sersic.yaml --input "$OUT/synthetic-$size" --output "$OUT/synthetic-$size.csv" "${SET[@]}"
done
python3 - "$OUT" <<'PY'
import sys, csv
out = sys.argv[1]
truth = {r["file"]: r for r in csv.DictReader(open(out + "/synthetic-truth.csv"))}
for size in (128, 256):
    print(f"synthetic galaxies, {size}-px cutouts: true -> posterior median [16th, 84th percentile]")
    for r in csv.DictReader(open(f"{out}/synthetic-{size}.csv")):
        t = truth[r["file"]]
        print("  " + r["file"] + "  " + "  ".join(
            f"{k} {float(t[k]):.2f} -> {float(r[k]):.2f} [{float(r[k + '_p16']):.2f}, {float(r[k + '_p84']):.2f}]"
            for k in ["sersic_n", "r_e", "q", "mag"]))
PY
