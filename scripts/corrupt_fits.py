#!/usr/bin/env python3
"""Corruption experiment of issue 14: random damage to real FITS files through `astrolabe inspect --stats`.

    python3 scripts/corrupt_fits.py [--count 1500] [--seed 14] [--timeout 20]
        [--astrolabe .build/release/astrolabe] [--jobs 2] [--keep DIR] [SOURCE ...]

Makes COUNT corrupted copies of the FITS files under SOURCE (files or folders; default:
astropy's test data, found through the installed astropy, and Tests/FITSTests/Fixtures),
each with one of three kinds of damage, chosen at random:

  bitflip    1-8 random bits flipped anywhere in the file
  truncate   the file cut at a random byte
  card       a random header card's value replaced by an extreme one (0, -1, 1e18,
             2**31, 2**63-1, a huge float, a string, ...), keeping the 80-column layout

and runs `astrolabe inspect --stats --json` on each with a time limit. Counts:
  ok        exit 0
  error     exit 1 with one `astrolabe: FILE: ...` line on stderr (a clean, typed error)
  crash     killed by a signal (SIGFPE, SIGSEGV, SIGABRT, ...) or any other exit status
  hang      still running after --timeout seconds
Prints one summary JSON line (and the files behind every crash and hang); with --keep
the corrupted files stay in DIR. The copies are generated from the seed, so a run is
repeatable. Exit status 1 when there was a crash or a hang.
"""
import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXTREMES = ["0", "-1", "1", "2", "999999999999", "1000000000000000000", "2147483647", "2147483648",
            "-2147483648", "9223372036854775807", "-9223372036854775808", "1E300", "-1E300", "0.0",
            "NaN", "'X'", "T", "65536", "4294967296", "100000", "'RICE_1'", "'HCOMPRESS_1'", "'PLIO_1'",
            "'GZIP_2'", "'NOCOMPRESS'", "'1PB(0)'", "'1QE'", "'2147483647E'", "'0A'", "'9999999J'"]


def default_sources():
    sources = [os.path.join(ROOT, "Tests", "FITSTests", "Fixtures")]
    try:
        import astropy
        sources.insert(0, os.path.join(os.path.dirname(astropy.__file__), "io", "fits", "tests", "data"))
    except ImportError:
        pass
    return sources


def fits_files(sources):
    files = []
    for source in sources:
        if os.path.isdir(source):
            for name in sorted(os.listdir(source)):
                path = os.path.join(source, name)
                if os.path.isfile(path) and name.lower().endswith((".fits", ".fit", ".fts")):
                    files.append(path)
        elif os.path.isfile(source):
            files.append(source)
    # Only files that start like FITS: a corrupted copy of garbage says nothing.
    return [f for f in files if open(f, "rb").read(6) == b"SIMPLE" and os.path.getsize(f) >= 2880]


def header_cards(data):
    """Byte offsets of the value cards (KEY = value) in every header of `data`."""
    cards = []
    offset = 0
    while offset + 80 <= len(data):
        card = data[offset:offset + 80]
        if card[8:10] == b"= ":
            cards.append(offset)
        offset += 80
    return cards


def corrupt(data, rng):
    data = bytearray(data)
    kind = rng.choice(["bitflip", "truncate", "card", "card"])
    if kind == "bitflip":
        for _ in range(rng.randint(1, 8)):
            position = rng.randrange(len(data))
            data[position] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        data = data[:rng.randrange(1, len(data))]
    else:
        cards = header_cards(data)
        if not cards:
            return corrupt(bytes(data), rng)
        offset = rng.choice(cards)
        value = rng.choice(EXTREMES).rjust(20)[:70]
        data[offset + 10:offset + 80] = value.encode().ljust(70)
    return kind, bytes(data)


def run_one(binary, path, timeout):
    start = time.monotonic()
    try:
        result = subprocess.run([binary, "inspect", "--stats", "--json", path], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, timeout=timeout, start_new_session=True)
    except subprocess.TimeoutExpired:
        return "hang", time.monotonic() - start, ""
    elapsed = time.monotonic() - start
    stderr = result.stderr.decode(errors="replace")
    if result.returncode == 0:
        return "ok", elapsed, ""
    if result.returncode == 1 and stderr.startswith("astrolabe: ") and stderr.count("\n") == 1:
        return "error", elapsed, stderr.strip()
    if result.returncode < 0:
        return "crash", elapsed, "signal %s %s" % (signal.Signals(-result.returncode).name, stderr[-300:])
    return "crash", elapsed, "exit %d %s" % (result.returncode, stderr[-300:])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sources", nargs="*")
    parser.add_argument("--count", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--timeout", type=float, default=20)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--astrolabe", default=os.path.join(ROOT, ".build", "release", "astrolabe"))
    parser.add_argument("--keep")
    args = parser.parse_args()

    originals = fits_files(args.sources or default_sources())
    if not originals:
        sys.exit("corrupt_fits: no FITS files found in %s" % (args.sources or default_sources()))
    rng = random.Random(args.seed)
    directory = args.keep or tempfile.mkdtemp(prefix="corrupt-fits-")
    os.makedirs(directory, exist_ok=True)
    jobs = []
    for number in range(args.count):
        source = rng.choice(originals)
        kind, data = corrupt(open(source, "rb").read(), rng)
        path = os.path.join(directory, "%05d-%s-%s" % (number, kind, os.path.basename(source)))
        with open(path, "wb") as handle:
            handle.write(data)
        jobs.append((path, kind))

    counts = {"ok": 0, "error": 0, "crash": 0, "hang": 0}
    findings = []
    slowest = (0.0, "")
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = pool.map(lambda job: (job, run_one(args.astrolabe, job[0], args.timeout)), jobs)
        for (path, kind), (outcome, elapsed, detail) in results:
            counts[outcome] += 1
            slowest = max(slowest, (elapsed, path))
            if outcome in ("crash", "hang"):
                findings.append({"file": path, "outcome": outcome, "seconds": round(elapsed, 1), "detail": detail})
                print("%s %s (%.1f s) %s" % (outcome, path, elapsed, detail[:200]), file=sys.stderr)
    if not args.keep:
        for path, _ in jobs:
            if not any(f["file"] == path for f in findings):
                os.remove(path)
    summary = {"files": args.count, "originals": len(originals), "seed": args.seed, "timeout_s": args.timeout,
               **counts, "slowest_s": round(slowest[0], 2), "slowest": os.path.basename(slowest[1]),
               "wall_s": round(time.monotonic() - started, 1), "kept": directory if findings or args.keep else None,
               "astrolabe": args.astrolabe}
    print(json.dumps(summary))
    sys.exit(1 if counts["crash"] or counts["hang"] else 0)


if __name__ == "__main__":
    main()
