#!/usr/bin/env python3
"""Reference values for the AstroBase tests: the seeded generator's raw outputs from an
independent Python implementation of SplitMix64 and xoshiro256** (Blackman & Vigna's
reference algorithm), and robust statistics from numpy and astropy.stats.
Run from anywhere: python3 Tests/AstroBaseTests/Fixtures/make_base_fixtures.py
It rewrites base_fixtures.json beside this file; the Swift tests read it.
"""
import json
import os

import astropy
import numpy as np
from astropy.stats import mad_std, sigma_clipped_stats

HERE = os.path.dirname(os.path.abspath(__file__))
MASK = (1 << 64) - 1


def splitmix64(state):
    """Yields SplitMix64 outputs from `state`."""
    while True:
        state = (state + 0x9E3779B97F4A7C15) & MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        yield z ^ (z >> 31)


def rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & MASK


def xoshiro256ss(seed, count):
    mixer = splitmix64(seed)
    s = [next(mixer) for _ in range(4)]
    out = []
    for _ in range(count):
        out.append(rotl((s[1] * 5) & MASK, 7) * 9 & MASK)
        t = (s[1] << 17) & MASK
        s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
    return out


def stream_seed(seed, stream):
    """The seed of stream `stream` of a run seeded with `seed` (SeededGenerator(seed:stream:))."""
    base = next(splitmix64(seed))
    return base ^ ((stream * 0xD1B54A32D192ED03) & MASK) ^ 0x5851F42D4C957F2D


def main():
    generators = []
    for seed in (0, 1, 42, 2**64 - 1):
        generators.append({"seed": str(seed), "outputs": [str(v) for v in xoshiro256ss(seed, 8)]})
    streams = []
    for seed, stream in ((7, 0), (7, 3), (11, 12345)):
        streams.append({"seed": str(seed), "stream": str(stream),
                        "outputs": [str(v) for v in xoshiro256ss(stream_seed(seed, stream), 4)]})

    rng = np.random.default_rng(20261203)
    statistics = []
    for n in (1, 2, 7, 10, 101):
        x = rng.standard_t(3, size=n) * 5 + 2
        entry = {"values": [float(v) for v in x], "median": float(np.median(x)),
                 "percentiles": {str(p): float(np.percentile(x, p)) for p in (0, 1, 25, 50, 62.5, 99.5, 100)},
                 "mad": float(np.median(np.abs(x - np.median(x)))),
                 "mad_std": float(mad_std(x))}
        mean, median, std = sigma_clipped_stats(x, sigma=3, maxiters=5)
        entry["sigma_clipped"] = [float(mean), float(median), float(std)]
        statistics.append(entry)

    doc = {"generator": "Tests/AstroBaseTests/Fixtures/make_base_fixtures.py",
           "versions": {"numpy": np.__version__, "astropy": astropy.__version__},
           "generators": generators, "streams": streams, "statistics": statistics}
    with open(os.path.join(HERE, "base_fixtures.json"), "w") as f:
        json.dump(doc, f, indent=1)


if __name__ == "__main__":
    main()
