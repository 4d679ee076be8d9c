#!/usr/bin/env bash
# The test command: installs what is missing, then runs the whole suite in release
# mode (numeric kernels are 10-100x slower unoptimised), with @testable imports enabled.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec swift test -c release -Xswiftc -enable-testing "$@"
