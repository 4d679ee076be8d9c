#!/usr/bin/env bash
# The main job on the shipped samples: installs what is missing, builds the tool,
# and runs it. Later issues turn this into `astrolabe run pipelines/...`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build -c release --product astrolabe >&2
exec .build/release/astrolabe inspect --stats samples/fits/*.fits "$@"
