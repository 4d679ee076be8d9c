"""Integrated-gradients completeness on the shipped models (docs/interpretability.md).

Runs `astrolabe explain --method integrated_gradients` for each model, rule and step count,
reads each run's completeness.csv (per file: delta = sum of attributions - (f(x) - f(baseline)),
|f(x) - f(baseline)| and their ratio) and prints, per model, rule and steps, the median,
90th percentile and maximum of the relative delta, the share of files below 1 %, and the
median absolute delta. Also writes the delta-against-steps curves as CSV.

  python3 scripts/ig_completeness.py --astrolabe .build/release/astrolabe --work /tmp/ig \
      --model morphology pipelines/classify-galaxies.yaml /tmp/ig/morphology \
      --model lens pipelines/find-lenses.yaml /tmp/ig/lens \
      --model regression pipelines/regress-sersic.yaml samples/regression
(the inputs: `astrolabe simulate --task morphology --count 100 --seed 23 --out /tmp/ig/morphology`,
`astrolabe simulate --task lens --count 120 --seed 19 --out /tmp/ig/lens`).
"""
import argparse
import csv
import os
import subprocess

import numpy as np

parser = argparse.ArgumentParser()
parser.add_argument("--astrolabe", default=".build/release/astrolabe")
parser.add_argument("--work", default="/tmp/ig")
parser.add_argument("--model", nargs=3, action="append", metavar=("NAME", "PIPELINE", "INPUT"), required=True)
parser.add_argument("--steps", default="16,32,64,128,256")
parser.add_argument("--rules", default="gausslegendre,riemann_trapezoid,riemann_middle")
parser.add_argument("--rule-steps", default="64", help="steps at which the other rules run")
args = parser.parse_args()

rows = []
for name, pipeline, data in args.model:
    runs = [("gausslegendre", int(s)) for s in args.steps.split(",")]
    runs += [(r, int(s)) for r in args.rules.split(",")[1:] for s in args.rule_steps.split(",")]
    for rule, steps in runs:
        out = os.path.join(args.work, f"{name}-{rule}-{steps}")
        table = os.path.join(out, "completeness.csv")
        if not os.path.exists(table):
            subprocess.run([args.astrolabe, "explain", pipeline, "--input", data, "--method", "integrated_gradients",
                            "--steps", str(steps), "--integration", rule, "--output", out, "--quiet"],
                           check=True, stdout=subprocess.DEVNULL)
        with open(table) as f:
            entries = list(csv.DictReader(f))
        relative = np.array([float(e["relative_delta"]) for e in entries])
        absolute = np.array([abs(float(e["delta"])) for e in entries])
        change = np.array([float(e["abs_output_change"]) for e in entries])
        big = change > 1
        rows.append(dict(model=name, rule=rule, steps=steps, files=len(entries),
                         median=np.median(relative), p90=np.percentile(relative, 90), max=relative.max(),
                         below=int((relative < 0.01).sum()), abs_median=np.median(absolute), abs_max=absolute.max(),
                         big_files=int(big.sum()),
                         big_p90=np.percentile(relative[big], 90) if big.any() else float("nan"),
                         big_max=relative[big].max() if big.any() else float("nan")))
        r = rows[-1]
        print(f"{name:10s} {rule:18s} {steps:4d}  n={r['files']:4d}  median {100*r['median']:.2f} %  "
              f"p90 {100*r['p90']:.2f} %  max {100*r['max']:.2f} %  below 1 %: {r['below']}  "
              f"|delta| median {r['abs_median']:.3g} max {r['abs_max']:.3g}  "
              f"(|f(x)-f(b)| > 1: {r['big_files']} files, p90 {100*r['big_p90']:.2f} %, max {100*r['big_max']:.2f} %)",
              flush=True)
with open(os.path.join(args.work, "ig-completeness.csv"), "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
    w.writeheader()
    w.writerows(rows)

# Relative delta against steps (Gauss-Legendre): median, 90th percentile and maximum per model.
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import matplotlib.ticker

fig, axes = plt.subplots(1, len(args.model), figsize=(4.2 * len(args.model), 3.6), sharey=True)
axes = np.atleast_1d(axes)
for ax, (name, _, _) in zip(axes, args.model):
    r = [x for x in rows if x["model"] == name and x["rule"] == "gausslegendre"]
    steps = np.array([x["steps"] for x in r])
    for key, style in (("median", "o-"), ("p90", "s--"), ("max", "^:")):
        ax.loglog(steps, [100 * x[key] for x in r], style, label=key if key != "p90" else "90th percentile")
    ax.loglog(steps, 100 * r[0]["median"] * steps[0] / steps, "k-", lw=0.6, alpha=0.5, label="∝ 1/steps")
    ax.axhline(1, color="red", lw=0.8)
    ax.set_title(f"{name} ({r[0]['files']} files)")
    ax.set_xlabel("steps (Gauss-Legendre)")
    ax.set_xticks(steps)
    ax.set_xticklabels([str(s) for s in steps])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
axes[0].set_ylabel("|delta| / |f(x) - f(baseline)|, %")
axes[0].legend(fontsize=8)
fig.tight_layout()
fig.savefig(os.path.join(args.work, "ig-completeness.png"), dpi=90)
