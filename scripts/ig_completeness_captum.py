"""Integrated-gradients completeness of the shipped models, checked with captum (docs/interpretability.md).

Like for like with scripts/ig_completeness.py: the same files, the same network inputs, the same
targets and the zero baseline. The network inputs are those `astrolabe explain --save-inputs`
wrote (`<stem>.input.fits`: the file after the model's recipe stages, exactly what our explainer
integrates over); the targets are the `TARGET` keywords of our maps. Each shipped model is loaded
strictly into torchvision's ResNet class (the NNTests interop class CompactTorchvisionResNet,
widths 16/32/64/128; `stem_pool: false` drops the stem's max-pool), in eval mode.

Per model this prints and writes (<work>/captum-<model>.csv, per file):
  - the check that the PyTorch network is ours: |f_t(x) - f_t(0)| from PyTorch against our
    completeness.csv's abs_output_change, and captum's 64-step Gauss-Legendre maps against ours;
  - captum's relative delta |sum attributions - (f(x) - f(0))| / |f(x) - f(0)| with n_steps=64,
    gausslegendre in float32 (all files) and float64 (the first --float64-files), and
    riemann_trapezoid (--trapezoid models), against ours (median, 90th percentile, max, files
    below 1 %, Spearman rho of the per-file deltas);
  - for --extras models: captum's Gauss-Legendre relative delta at 16 ... 1024 steps on the
    worst files at 64 steps; for the worst files, the number of ReLU units whose input changes
    sign between neighbouring points of a fine grid on the path (linear-region boundaries
    crossed; a lower bound), the grid intervals where d f_t / d alpha jumps, and the adaptive
    trapezoid rule of Explainer.adaptiveIntegratedGradients (float64) to 1 %.

  python3 -W ignore scripts/ig_completeness_captum.py --work /tmp/ig3 \
      --model morphology samples/models/morphology.safetensors /tmp/ig3/morphology-inputs /tmp/ig3/morphology-gausslegendre-64 \
      --model regression samples/models/regression.safetensors /tmp/ig3/regression-inputs /tmp/ig3/regression-gausslegendre-64 \
      --model lens samples/models/lens.safetensors /tmp/ig3/lens-inputs /tmp/ig3/lens-gausslegendre-64
Our runs: `astrolabe explain PIPELINE --input DATA --method integrated_gradients --steps 64
--output /tmp/ig3/<model>-gausslegendre-64` and the inputs `astrolabe explain PIPELINE --input DATA
--method saliency --save-inputs --output /tmp/ig3/<model>-inputs`, with the pipelines and data of
scripts/ig_completeness.py (morphology: 100 simulated cutouts, seed 23; regression: the 30
samples/regression files; lens: 120 simulated cubes, seed 19).
"""
import argparse
import csv
import glob
import json
import os
import struct
import sys
import time

import numpy as np
import torch
from astropy.io import fits
from safetensors.torch import load_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "Tests", "NNTests", "Fixtures"))
from captum.attr import IntegratedGradients  # noqa: E402
from make_fixtures import CompactTorchvisionResNet  # noqa: E402


def architecture(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    return json.loads(header["__metadata__"]["astrolabe.architecture"])


def load_model(path):
    arch = architecture(path)
    assert arch["name"] == "resnet18" and not arch.get("small_image_stem", False), arch
    model = CompactTorchvisionResNet([2, 2, 2, 2], arch["widths"], num_classes=arch["classes"],
                                     in_channels=arch["in_channels"])
    if not arch.get("stem_pool", True):
        model.maxpool = torch.nn.Identity()
    state = load_file(path)
    model.load_state_dict(state, strict=True)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    for m in model.modules():
        if isinstance(m, torch.nn.ReLU):
            m.inplace = False
    return model


def network_input(inputs, stem):
    """`<stem>.input.fits` of `astrolabe explain --save-inputs`; or, with INPUTS given as
    `reconstruct:SALIENCY:IG1` (two explain runs: signed saliency, `absolute: false`, and
    integrated gradients with 1 riemann_right step, zero baseline: x * grad f(x)), x = IG1 / saliency."""
    if not inputs.startswith("reconstruct:"):
        return fits.getdata(os.path.join(inputs, f"{stem}.input.fits")).astype(np.float32)
    _, saliency, ig1 = inputs.split(":")
    g = fits.getdata(os.path.join(saliency, f"{stem}.saliency.fits")).astype(np.float64)
    a = fits.getdata(os.path.join(ig1, f"{stem}.integrated_gradients.fits")).astype(np.float64)
    x = np.where(g != 0, a / np.where(g != 0, g, 1), 0.0)
    unknown = int((g == 0).sum())
    if unknown:
        print(f"  {stem}: {unknown} pixels with zero gradient, input unknown there (set to 0)")
    return x.astype(np.float32)


def relative(delta, change):
    return np.abs(delta) / np.maximum(np.abs(change), 1e-30)


def spearman(a, b):
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def summary(r):
    return (f"median {100 * np.median(r):.2f} %  p90 {100 * np.percentile(r, 90):.2f} %  max {100 * r.max():.2f} %  "
            f"< 1 %: {int((r < 0.01).sum())}/{len(r)}")


def relu_crossings(model, x, target, points=2049):
    """ReLU units whose input changes sign between neighbouring grid points on the path 0 -> x,
    and the grid intervals where the path derivative of f_t jumps (float64)."""
    signs = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: signs.append((inp[0] > 0).flatten(1)))
             for m in model.modules() if isinstance(m, torch.nn.ReLU)]
    alphas = torch.linspace(0, 1, points, dtype=torch.float64)
    crossings, total_units = 0, 0
    slopes = []
    for chunk in torch.split(alphas, 128):
        signs.clear()
        path = (chunk.view(-1, 1, 1, 1) * x).requires_grad_(True)
        y = model(path)[:, target]
        g, = torch.autograd.grad(y.sum(), path)
        slopes.append((g * x).flatten(1).sum(1))
        s = torch.cat(signs, dim=1)
        if total_units == 0:
            total_units = s.shape[1]
            previous = s[:1]
        both = torch.cat([previous, s], dim=0)
        crossings += int((both[1:] != both[:-1]).sum())
        previous = s[-1:]
    for h in hooks:
        h.remove()
    slope = torch.cat(slopes).numpy()
    jumps = int((np.abs(np.diff(slope)) > 1e-9 * max(np.abs(slope).max(), 1e-30)).sum())
    return crossings, total_units, jumps


def adaptive_trapezoid(model, x, target, initial, tolerance, max_steps, batch=64):
    """The rule of Explainer.adaptiveIntegratedGradients (float64): trapezoid on a grid of
    `initial` points, bisecting the intervals with the largest local completeness error."""
    alphas, slopes, outputs = [], [], []

    def evaluate(new):
        for chunk in torch.split(torch.tensor(new, dtype=torch.float64), batch):
            path = (chunk.view(-1, 1, 1, 1) * x).requires_grad_(True)
            y = model(path)[:, target]
            g, = torch.autograd.grad(y.sum(), path)
            alphas.extend(chunk.tolist())
            slopes.extend((g * x).flatten(1).sum(1).tolist())
            outputs.extend(y.detach().tolist())

    evaluate(list(np.linspace(0, 1, initial)))
    while True:
        order = np.argsort(alphas)
        a, s, f = np.array(alphas)[order], np.array(slopes)[order], np.array(outputs)[order]
        local = 0.5 * np.diff(a) * (s[1:] + s[:-1]) - np.diff(f)
        change = abs(f[-1] - f[0])
        if abs(local.sum()) <= tolerance * change:
            return len(alphas), abs(local.sum()) / change, True
        budget = min(batch, max_steps - len(alphas))
        if budget <= 0:
            return len(alphas), abs(local.sum()) / change, False
        rest, chosen = np.abs(local).sum(), []
        for k in np.argsort(-np.abs(local)):
            if len(chosen) >= budget or (chosen and rest <= 0.5 * tolerance * change):
                break
            if a[k + 1] - a[k] > 1e-12:
                chosen.append(0.5 * (a[k] + a[k + 1]))
                rest -= abs(local[k])
        evaluate(chosen)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", default="/tmp/ig3")
    parser.add_argument("--model", nargs=4, action="append", required=True,
                        metavar=("NAME", "WEIGHTS", "INPUTS", "OURS"),
                        help="name, model file, folder of <stem>.input.fits, our explain run (completeness.csv, maps)")
    parser.add_argument("--steps", default="16,64,256,1024")
    parser.add_argument("--float64-files", type=int, default=30, help="files per model integrated in float64 too")
    parser.add_argument("--trapezoid", nargs="*", default=["morphology"], help="models run with riemann_trapezoid too")
    parser.add_argument("--extras", nargs="*", default=["morphology"],
                        help="models with the steps sweep, the ReLU crossings and the adaptive rule")
    parser.add_argument("--scaling-files", type=int, default=5, help="files for the steps sweep (float32)")
    parser.add_argument("--crossing-files", type=int, default=2, help="worst files for the ReLU crossings")
    parser.add_argument("--grid", type=int, default=1025, help="path points for the ReLU crossings")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(args.work, exist_ok=True)
    table = []
    for name, weights, inputs, ours in args.model:
        t0 = time.time()
        model32 = load_model(weights)
        model64 = load_model(weights).double()
        with open(os.path.join(ours, "completeness.csv")) as f:
            rows = list(csv.DictReader(f))
        files, xs, targets, our_maps = [], [], [], []
        for row in rows:
            stem = os.path.splitext(row["file"])[0].replace("/", "_")
            xs.append(network_input(inputs, stem))
            with fits.open(os.path.join(ours, f"{stem}.integrated_gradients.fits")) as hdul:
                targets.append(int(hdul[0].header["TARGET"]))
                our_maps.append(hdul[0].data.astype(np.float32))
            files.append(row["file"])
        x = torch.tensor(np.stack([v if v.ndim == 3 else v[None] for v in xs]))
        our_maps = np.stack([m if m.ndim == 3 else m[None] for m in our_maps])
        t = torch.tensor(targets)
        ours_rel = np.array([float(r["relative_delta"]) for r in rows])
        ours_change = np.array([float(r["abs_output_change"]) for r in rows])

        # The network is ours: outputs and maps.
        with torch.no_grad():
            change32 = (model32(x) - model32(torch.zeros_like(x)))[torch.arange(len(t)), t].numpy()
        print(f"{name}: {len(files)} files; |f(x) - f(0)| PyTorch vs ours: max |diff| "
              f"{np.abs(np.abs(change32) - ours_change).max():.2e} (values up to {ours_change.max():.3g})", flush=True)
        ig32, ig64 = IntegratedGradients(model32), IntegratedGradients(model64)
        result = {}
        variants = [("gausslegendre", "float32"), ("gausslegendre", "float64")]
        if name in args.trapezoid:
            variants.append(("riemann_trapezoid", "float32"))
        k64 = min(args.float64_files, len(files))
        for rule, dtype in variants:
            ig = ig32 if dtype == "float32" else ig64
            xi = x if dtype == "float32" else x[:k64].double()
            ti = t[:len(xi)]
            maps, delta = ig.attribute(xi, target=ti, n_steps=64, method=rule, internal_batch_size=4 * len(xi),
                                       return_convergence_delta=True)
            with torch.no_grad():
                m = model64 if dtype == "float64" else model32
                change = (m(xi) - m(torch.zeros_like(xi)))[torch.arange(len(ti)), ti].double().numpy()
            result[(rule, dtype)] = relative(delta.double().numpy(), change)
            if rule == "gausslegendre" and dtype == "float32":
                scale = np.abs(maps.numpy()).reshape(len(t), -1).max(1)
                diff = np.abs(maps.numpy() - our_maps).reshape(len(t), -1).max(1)
                print(f"  captum GL-64 maps vs ours: max |diff| / max |map| per file: median "
                      f"{np.median(diff / scale):.2e}, max {np.max(diff / scale):.2e}", flush=True)
        print(f"  ours       GL 64 float32: {summary(ours_rel)}")
        for (rule, dtype), r in result.items():
            print(f"  captum {rule:17s} 64 {dtype}: {summary(r)}  rho vs ours {spearman(r, ours_rel[:len(r)]):.3f}"
                  + (f"  (first {len(r)} files; ours there: {summary(ours_rel[:len(r)])}; float32 captum there: "
                     f"{summary(result[('gausslegendre', 'float32')][:len(r)])}; max |f64 - f32| "
                     f"{np.abs(r - result[('gausslegendre', 'float32')][:len(r)]).max():.2e})" if len(r) < len(files) else ""),
                  flush=True)
        table.append(dict(model=name, files=len(files), ours_median=np.median(ours_rel), ours_p90=np.percentile(ours_rel, 90),
                          ours_max=ours_rel.max(), ours_below=int((ours_rel < 0.01).sum()),
                          **{f"{rule}_{dtype}_{k}": v for (rule, dtype), r in result.items()
                             for k, v in (("files", len(r)), ("median", np.median(r)), ("p90", np.percentile(r, 90)),
                                          ("max", r.max()), ("below", int((r < 0.01).sum())),
                                          ("rho", spearman(r, ours_rel[:len(r)])))}))
        with open(os.path.join(args.work, f"captum-{name}.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["file", "target", "ours_gl64"] + [f"captum_{r}_{d}_64" for r, d in result])
            for i, file in enumerate(files):
                w.writerow([file, targets[i], f"{ours_rel[i]:.6g}"]
                           + [f"{result[k][i]:.6g}" if i < len(result[k]) else "" for k in result])
        if name not in args.extras:
            print(f"  ({time.time() - t0:.0f} s)", flush=True)
            continue

        # Delta against steps (Gauss-Legendre) on the worst files at 64 steps.
        worst = np.argsort(-ours_rel)
        k = min(args.scaling_files, len(files))
        pick = torch.tensor(worst[:k])
        with torch.no_grad():
            change = (model32(x[pick]) - model32(torch.zeros_like(x[pick])))[torch.arange(k), t[pick]].double().numpy()
        for steps in [int(s) for s in args.steps.split(",")]:
            _, delta = ig32.attribute(x[pick], target=t[pick], n_steps=steps, method="gausslegendre", internal_batch_size=256,
                                      return_convergence_delta=True)
            r = relative(delta.double().numpy(), change)
            print(f"  captum GL float32 {steps:5d} steps, the {k} worst files at 64: "
                  + " ".join(f"{100 * v:.3f} %" for v in r), flush=True)
            table[-1][f"sweep_{steps}_median"] = np.median(r)
            table[-1][f"sweep_{steps}_max"] = r.max()

        # Linear regions crossed on the path, and the adaptive rule at 1 %.
        for i in worst[:args.crossing_files]:
            crossings, units, jumps = relu_crossings(model64, x[i:i + 1].double(), targets[i], points=args.grid)
            steps, rel, met = adaptive_trapezoid(model64, x[i:i + 1].double(), targets[i], 32, 0.01, 1024)
            print(f"  {files[i]}: ours GL-64 {100 * ours_rel[i]:.2f} %; ReLU sign changes on a {args.grid}-point path grid: "
                  f"{crossings} (of {units} ReLU inputs); intervals where d f/d alpha jumps: {jumps} of {args.grid - 1}; "
                  f"adaptive trapezoid (float64, from 32 points) to 1 %: {steps} steps, {100 * rel:.3f} %, met {met}",
                  flush=True)
            table[-1].setdefault("crossings", []).append((files[i], crossings, units, jumps))
        print(f"  ({time.time() - t0:.0f} s)", flush=True)
    with open(os.path.join(args.work, "captum-summary.json"), "w") as f:
        json.dump(table, f, indent=1, default=float)


if __name__ == "__main__":
    main()
