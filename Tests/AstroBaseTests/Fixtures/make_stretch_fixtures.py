#!/usr/bin/env python3
"""Reference values for AstroBase's display stretches, intervals, robust statistics and
Lupton composites, computed with astropy.visualization and astropy.stats.
Run from anywhere: python3 Tests/AstroBaseTests/Fixtures/make_stretch_fixtures.py
It rewrites stretch_fixtures.json and lupton_fixtures.json beside this file; the Swift
tests (StretchFixtureTests, LuptonRGBTests) read them.
"""
import json
import os
import numpy as np
import astropy
from astropy import visualization as vis
from astropy.stats import sigma_clipped_stats, mad_std

HERE = os.path.dirname(os.path.abspath(__file__))


def images():
    rng = np.random.default_rng(20261127)
    out = {}
    # A galaxy-like image: an exponential blob over Gaussian sky noise, with NaN blanks.
    y, x = np.mgrid[0:30, 0:26]
    r = np.hypot((x - 12.3) / 1.0, (y - 14.8) / 0.6)
    img = 900.0 * np.exp(-r / 3.0) + rng.normal(0, 10, size=r.shape)
    img[5, 7] = np.nan
    img[20, 2] = np.nan
    out["galaxy"] = img.astype(np.float32)
    # Heavy-tailed: a few very bright pixels (cosmic rays) over noise.
    noise = rng.normal(100, 5, size=(21, 19))
    noise[rng.integers(0, 21, 8), rng.integers(0, 19, 8)] = 5e4
    out["cosmics"] = noise.astype(np.float32)
    # Large enough that zscale samples with stride > 1.
    big = rng.normal(0, 1, size=(70, 60)) + np.linspace(0, 5, 60)[None, :]
    out["gradient"] = big.astype(np.float32)
    # Few distinct values (ties) for percentiles and histogram equalisation.
    out["ties"] = rng.integers(0, 6, size=(9, 11)).astype(np.float32)
    return out


def compact(values):
    """Nine significant digits: exact enough for a 1e-5 comparison, and small."""
    return [None if not np.isfinite(v) else float("%.9g" % v) for v in np.ravel(values)]


def stretch_fixture():
    cases = []
    intervals = {
        "minmax": (vis.MinMaxInterval(), {"kind": "minMax"}),
        "p99.5": (vis.PercentileInterval(99.5), {"kind": "percentile", "percent": 99.5}),
        "p90": (vis.PercentileInterval(90), {"kind": "percentile", "percent": 90.0}),
        "ap1-97": (vis.AsymmetricPercentileInterval(1, 97), {"kind": "asymmetric", "lower": 1.0, "upper": 97.0}),
        "zscale": (vis.ZScaleInterval(), {"kind": "zscale"}),
    }
    stretches = {
        "linear": (vis.LinearStretch(), {"kind": "linear"}),
        "sqrt": (vis.SqrtStretch(), {"kind": "sqrt"}),
        "power2": (vis.PowerStretch(2.0), {"kind": "power", "a": 2.0}),
        "log": (vis.LogStretch(), {"kind": "log", "a": 1000.0}),
        "asinh": (vis.AsinhStretch(), {"kind": "asinh", "a": 0.1}),
        "asinh0.02": (vis.AsinhStretch(0.02), {"kind": "asinh", "a": 0.02}),
        "sinh": (vis.SinhStretch(), {"kind": "sinh", "a": 1.0 / 3.0}),
    }
    for name, img in images().items():
        data = img.astype(np.float64)
        finite = data[np.isfinite(data)]
        mean, median, std = sigma_clipped_stats(data, sigma=3.0, maxiters=5)
        entry = {
            "name": name,
            "shape": list(img.shape),
            "data": [None if not np.isfinite(v) else float(v) for v in img.ravel()],  # exact float32
            "sigma_clipped": [float(mean), float(median), float(std)],
            "mad_std": float(mad_std(finite)),
            "limits": {},
            "normalized": [],
        }
        for iname, (interval, spec) in intervals.items():
            lo, hi = interval.get_limits(data)
            entry["limits"][iname] = {"spec": spec, "vmin": float(lo), "vmax": float(hi)}
        for iname in (("minmax", "p99.5", "zscale") if name != "gradient" else ()):
            interval, ispec = intervals[iname]
            for sname, (stretch, sspec) in stretches.items():
                # What ImageNormalize(data, interval, stretch, clip=True) computes,
                # without needing matplotlib.
                values = stretch(interval(data.copy(), clip=True), clip=True)
                entry["normalized"].append({
                    "interval": ispec, "stretch": sspec,
                    "values": compact(values),
                })
        # Histogram equalisation over the image's own (min-max normalised) values.
        lo, hi = vis.MinMaxInterval().get_limits(data)
        unit = np.clip((data - lo) / (hi - lo), 0, 1)
        heq = vis.HistEqStretch(unit[np.isfinite(unit)])(unit.copy(), clip=False)
        entry["normalized"].append({
            "interval": {"kind": "minMax"}, "stretch": {"kind": "histeq"},
            "values": compact(heq),
        })
        cases.append(entry)
    return cases


def lupton_fixture():
    """make_lupton_rgb on three bands with a bright saturated core and negative noise."""
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:12, 0:10]
    core = np.exp(-np.hypot(x - 5, y - 6) / 1.5)
    bands = [(a * core + rng.normal(0, 0.02, core.shape)).astype(np.float32) for a in (3.0, 1.5, 0.4)]
    out = {"bands": [[float(v) for v in b.ravel()] for b in bands], "shape": [12, 10], "cases": []}
    for (minimum, stretch, Q) in [(0.0, 5, 8), (0.01, 0.5, 10), (0.0, 2, 0)]:
        rgb = vis.make_lupton_rgb(*bands, minimum=minimum, stretch=stretch, Q=Q, output_dtype=np.float64)
        rgb8 = vis.make_lupton_rgb(*bands, minimum=minimum, stretch=stretch, Q=Q)
        out["cases"].append({"minimum": minimum, "stretch": stretch, "Q": Q,
                             "rgb": compact(rgb), "rgb8": [int(v) for v in rgb8.ravel()]})
    return out


if __name__ == "__main__":
    doc = {
        "generator": "Tests/AstroBaseTests/Fixtures/make_stretch_fixtures.py",
        "versions": {"astropy": astropy.__version__, "numpy": np.__version__},
        "cases": stretch_fixture(),
    }
    with open(os.path.join(HERE, "stretch_fixtures.json"), "w") as f:
        json.dump(doc, f, separators=(",", ":"))
    with open(os.path.join(HERE, "lupton_fixtures.json"), "w") as f:
        json.dump(lupton_fixture(), f)
