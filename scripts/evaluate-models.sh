#!/usr/bin/env bash
# Reproduces docs/results.md: simulates held-out sets with seeds never used in training,
# then evaluates each shipped model with its shipped pipeline. Reports go to out/eval-<task>/.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product astrolabe >&2
A=.build/release/astrolabe
mkdir -p data out
[ -f data/morphology-test/catalog.csv ] || $A simulate --task morphology --count 1000 --seed 11 --out data/morphology-test
[ -f data/lens-test/catalog.csv ] || $A simulate --task lens --count 1000 --seed 8 --out data/lens-test
[ -f data/regression-test/catalog.csv ] || $A simulate --task regression --count 1000 --seed 9 --out data/regression-test
[ -f data/segmentation-test/catalog.csv ] || $A simulate --task segmentation --count 40 --seed 10 --out data/segmentation-test
$A evaluate pipelines/classify-galaxies.yaml --input data/morphology-test/catalog.csv --report out/eval-morphology
$A evaluate pipelines/find-lenses.yaml --input data/lens-test/catalog.csv --report out/eval-lens
$A evaluate pipelines/regress-sersic.yaml --input data/regression-test/catalog.csv --report out/eval-regression
$A evaluate pipelines/segment-sky.yaml --input data/segmentation-test --report out/eval-segmentation
