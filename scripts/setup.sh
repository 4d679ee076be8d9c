#!/usr/bin/env bash
# Installs the system libraries Astrolabe links against, if any is missing.
# Debian/Ubuntu: libcfitsio-dev, libopenblas-dev, wcslib-dev, libpng-dev, libdnnl2, pkg-config,
# libopenmpi-dev and openmpi-bin (Open MPI: data-parallel training and split runs under mpirun).
set -euo pipefail
need=()
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
for pair in cfitsio:libcfitsio-dev zlib:zlib1g-dev openblas:libopenblas-dev wcslib:wcslib-dev libpng:libpng-dev ompi-c:libopenmpi-dev; do
    pc=${pair%%:*}; deb=${pair#*:}
    pkg-config --exists "$pc" 2>/dev/null || need+=("$deb")
done
# oneDNN is loaded at run time (dlopen) for fast convolutions; without it, im2col + OpenBLAS.
ldconfig -p 2>/dev/null | grep -q 'libdnnl.so.2' || need+=(libdnnl2)
command -v mpirun >/dev/null 2>&1 || need+=(openmpi-bin)
if [ ${#need[@]} -gt 0 ]; then
    echo "setup: installing ${need[*]}" >&2
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v swift >/dev/null 2>&1 || { echo "setup: Swift 6 is required (https://swift.org/install)" >&2; exit 1; }
