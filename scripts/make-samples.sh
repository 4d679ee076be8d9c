#!/usr/bin/env bash
# Regenerates samples/ and the contact sheets docs/sim_*.png (seeded: byte-identical output).
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product astrolabe
bin=.build/release/astrolabe
rm -rf samples/morphology samples/lens samples/regression samples/segmentation samples/skymap samples/lightcurves samples/deblend
mkdir -p docs
"$bin" simulate --task morphology   --count 30 --seed 101 --out samples/morphology   --contact-sheet docs/sim_morphology.png
"$bin" simulate --task lens         --count 30 --seed 102 --out samples/lens         --contact-sheet docs/sim_lens.png
"$bin" simulate --task regression   --count 30 --seed 103 --out samples/regression   --contact-sheet docs/sim_regression.png
"$bin" simulate --task segmentation --count 8  --seed 104 --out samples/segmentation --contact-sheet docs/sim_segmentation.png
"$bin" simulate --task segmentation --skymap --size 1024 --seed 105 --out samples/skymap
"$bin" simulate --task deblend      --count 8  --seed 107 --out samples/deblend
"$bin" simulate --task lightcurves  --count 70 --seed 106 --out samples/lightcurves --fits --contact-sheet docs/sim_lightcurves.png --sheet-count 14
du -sh samples/* docs/sim_*.png
