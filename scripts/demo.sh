#!/usr/bin/env bash
# The main job on the shipped samples: installs what is missing, builds the tool, and
# classifies the sample galaxies with the shipped model (pipelines/classify-galaxies.yaml).
# Results go to out/; the other shipped pipelines run the same way (see README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build -c release --product astrolabe >&2
mkdir -p out
.build/release/astrolabe run pipelines/classify-galaxies.yaml --input samples/morphology --output out/morphology.csv "$@"
echo "--- out/morphology.csv (first rows)"
head -n 6 out/morphology.csv
