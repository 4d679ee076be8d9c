#!/usr/bin/env bash
# Adebayo et al. (2018)'s randomised-labels sanity check on the morphology model:
# trains a copy of the shipped morphology model (same architecture and recipe) on
# simulated cutouts whose labels were permuted, then compares the maps of the two models
# on samples/morphology (Spearman rho of |map| per method, `astrolabe explain --compare-model`).
#   scripts/randomised_labels.sh [WORK_DIR] [COUNT] [EPOCHS]
# Writes WORK_DIR/random-labels.safetensors and WORK_DIR/compare/{model-comparison.csv,png}.
# Generated data stay in WORK_DIR (default /tmp/randomised-labels), not in the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
work="${1:-/tmp/randomised-labels}"
count="${2:-1024}"
epochs="${3:-40}"
astrolabe="${ASTROLABE:-.build/release/astrolabe}"
mkdir -p "$work"
if [ ! -f "$work/data/catalog.csv" ]; then
    "$astrolabe" simulate --task morphology --count "$count" --seed 7 --out "$work/data" > /dev/null
fi
# The same files, the labels permuted (a fixed seed): no relation between image and label is left.
python3 - "$work/data/catalog.csv" "$work/data/permuted.csv" <<'PY'
import csv, random, sys
rows = list(csv.DictReader(open(sys.argv[1])))
labels = [r["label"] for r in rows]
random.Random(2018).shuffle(labels)
with open(sys.argv[2], "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["file", "label"])
    for r, l in zip(rows, labels):
        w.writerow([r["file"], l])
same = sum(r["label"] == l for r, l in zip(rows, labels))
print(f"permuted labels: {same} of {len(rows)} kept their label by chance")
PY
# The shipped model's architecture and recipe (pipelines/train-morphology.yaml) without the
# flip/rotate augmentations, so that the network can memorise the random labels
# (Zhang et al. 2017); no validation split (there is nothing to validate).
cat > "$work/train-random-labels.yaml" <<YAML
name: train-morphology-random-labels
task: classify
input:
  label_column: label
  class_names: [elliptical, spiral, edge_on, irregular, star]
stages:
  - fill_blanks: {fill: zero}
  - scale_by_noise: {keyword: SKYSIG}
  - asinh: {softening: 3.0}
model:
  architecture: {name: resnet18, width: 16, small_image_stem: false, classes: 5}
  train:
    data: $work/data/permuted.csv
    validation_split: 0
    epochs: $epochs
    batch_size: 64
    optimizer: adamw
    learning_rate: 0.003
    weight_decay: 0.0005
    schedule: {cosine: {warmup_epochs: 1}}
    seed: 1
    save: $work/random-labels.safetensors
run:
  threads: 2
observation:
  pixel_scale: 0.2
  psf_fwhm: [0.6, 1.0]
  sky_sigma: [5, 15]
  zero_point: 30
  size: [64, 64]
YAML
"$astrolabe" train "$work/train-random-labels.yaml"
"$astrolabe" explain pipelines/classify-galaxies.yaml --input samples/morphology \
    --compare-model "$work/random-labels.safetensors" --images 30 \
    --method saliency --method smoothgrad --method integrated_gradients --method gradcam --method occlusion \
    --layer layer3 --steps 32 --samples 8 --noise 0.5 --window 8 --stride 4 --output "$work/compare"
