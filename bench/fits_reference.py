#!/usr/bin/env python3
"""Reference figures for the FITS data-path workloads of BENCH.md, with astropy and fitsio.

    python3 bench/fits_reference.py [--quick] [--astrolabe .build/release/astrolabe]

Workloads (as `astrolabe bench --workload fits`):
  fits_read_cutouts_per_s  read 5,000 float32 64x64 FITS cutouts, one file each, from a
                           directory into one float32 batch [N, 64, 64], then asinh scaling
  fits_read_big_mb_per_s   read one 4096x4096 float32 image into memory (native float32)

The files are generated first (outside the timing) into a temporary directory, with
the files in the page cache. astropy is asked not to memory-map (memmap=False), so the
pixels are really read and converted, as the others do. With --astrolabe the script
also runs the Swift tool on the same files (ASTROLABE_BENCH_FITS_DIR), interleaved with
the Python readers for --rounds rounds, so that all figures come from one session on
one machine and a busy spell hits every reader alike; each figure is the best over all
rounds (3 runs each). Prints one JSON object per line.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import astropy
import fitsio
from astropy.io import fits


def generate(directory, count, side):
    rng = np.random.default_rng(7)
    y, x = np.mgrid[-32:32, -32:32].astype(np.float32)
    blob = 100 * np.exp(-(x * x + y * y) / 50)
    cutouts = os.path.join(directory, "cutouts")
    os.makedirs(cutouts)
    for index in range(count):
        data = (blob + rng.random((64, 64), dtype=np.float32) * 5).astype(np.float32)
        fits.PrimaryHDU(data).writeto(os.path.join(cutouts, "cutout%05d.fits" % index))
    big = os.path.join(directory, "big.fits")
    fits.PrimaryHDU((rng.random((side, side), dtype=np.float32) * 1000)).writeto(big)
    return cutouts, big


def read_batch(cutouts, reader, threads=1):
    names = sorted(n for n in os.listdir(cutouts) if n.endswith(".fits"))
    batch = np.empty((len(names), 64, 64), np.float32)

    def load(index):
        batch[index] = reader(os.path.join(cutouts, names[index]))

    if threads == 1:
        for index in range(len(names)):
            load(index)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(load, range(len(names))))
    np.arcsinh(batch, out=batch)
    return batch


def astropy_read(path):
    return fits.getdata(path, memmap=False).astype(np.float32, copy=False)


def fitsio_read(path):
    return fitsio.read(path).astype(np.float32, copy=False)


def best(function, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="500 cutouts, a 1024x1024 image, 1 run")
    parser.add_argument("--astrolabe", help="path of the astrolabe binary to run on the same files")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    args = parser.parse_args()
    count, side, repeats = (500, 1024, 1) if args.quick else (5000, 4096, 3)

    directory = tempfile.mkdtemp(prefix="fits-reference-")
    best_rows = {}

    def keep(key, row, metric):
        if key not in best_rows or row[metric] > best_rows[key][metric]:
            best_rows[key] = row

    try:
        cutouts, big = generate(directory, count, side)
        megabytes = side * side * 4 / 1e6
        for _ in range(args.rounds):
            for name, reader, threads in [("astropy", astropy_read, 1), ("fitsio", fitsio_read, 1),
                                          ("fitsio", fitsio_read, 2)]:
                seconds = best(lambda: read_batch(cutouts, reader, threads), repeats)
                version = astropy.__version__ if name == "astropy" else fitsio.__version__
                keep((name, "cutouts", threads), {"library": name, "version": version,
                     "fits_read_cutouts_per_s": round(count / seconds, 1), "files": count, "threads": threads},
                     "fits_read_cutouts_per_s")
            for name, reader in [("astropy", astropy_read), ("fitsio", fitsio_read)]:
                seconds = best(lambda: reader(big), repeats)
                version = astropy.__version__ if name == "astropy" else fitsio.__version__
                keep((name, "big"), {"library": name, "version": version,
                     "fits_read_big_mb_per_s": round(megabytes / seconds, 1), "shape": [side, side], "threads": 1},
                     "fits_read_big_mb_per_s")
            if args.astrolabe:
                for threads in (1, 2):
                    command = [args.astrolabe, "bench", "--workload", "fits"] + (["--quick"] if args.quick else [])
                    environment = dict(os.environ, ASTROLABE_BENCH_FITS_DIR=directory,
                                       ASTROLABE_BENCH_THREADS=str(threads))
                    output = subprocess.run(command, check=True, capture_output=True, text=True, env=environment)
                    for line in output.stdout.splitlines():
                        row = {"library": "astrolabe", **json.loads(line)}
                        metric = "fits_read_cutouts_per_s" if "fits_read_cutouts_per_s" in row else "fits_read_big_mb_per_s"
                        if metric == "fits_read_big_mb_per_s" and threads == 2:
                            continue
                        keep(("astrolabe", metric, threads), row, metric)
        for row in best_rows.values():
            print(json.dumps(row))
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
