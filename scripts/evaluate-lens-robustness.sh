#!/usr/bin/env bash
# Compares lens models on our held-out set and on the independent simulator's lens sets
# (GalSim + lenstronomy, scripts/independent_sim.py) with Gaussian and varied PSFs:
# ROC AUC and TPR at 1 % FPR with their standard errors, per PSF type.
#   scripts/evaluate-lens-robustness.sh WORK MODEL.safetensors [MODEL2.safetensors ...]
# Data sets are made once under WORK (1,000 cubes each; seeds as in docs/results.md:
# ours 8, independent Gaussian 102, independent varied 104); reports go to
# WORK/eval-<model name>-<set>/ and scores to WORK/score-<model name>-<set>.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:?usage: $0 WORK MODEL.safetensors [...]}; shift
A=${ASTROLABE:-.build/release/astrolabe}
S=scripts/independent_sim.py
mkdir -p "$WORK"
[ -f "$WORK/held-8/catalog.csv" ] || $A simulate --task lens --count 1000 --seed 8 --out "$WORK/held-8"
[ -f "$WORK/indep-lens/catalog.csv" ] || python3 $S --task lens --count 1000 --seed 102 --workers 2 --out "$WORK/indep-lens"
[ -f "$WORK/indep-lens-varied/catalog.csv" ] || \
  python3 $S --task lens --count 1000 --seed 104 --psf varied --workers 2 --out "$WORK/indep-lens-varied"
for model in "$@"; do
  name=$(basename "$model" .safetensors)
  for set in held-8 indep-lens indep-lens-varied; do
    $A evaluate pipelines/find-lenses.yaml --input "$WORK/$set/catalog.csv" --report "$WORK/eval-$name-$set" \
      --set model.weights="$(realpath "$model")" > "$WORK/eval-$name-$set.log" 2>&1
    python3 $S --out "$WORK/$set" --score "$WORK/eval-$name-$set/predictions.csv" > "$WORK/score-$name-$set.txt"
    echo "$name $set: $(head -1 "$WORK/score-$name-$set.txt")"
  done
done
