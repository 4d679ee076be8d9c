#!/usr/bin/env python3
"""Astrolabe vs PyTorch (CPU) on BENCH.md's model workloads, in one run.

For each network of `../shared/spec/reference_models.py` (cnn, resnet18, unet, lstm, gru, pix2pix) it
measures in PyTorch, each model and variant in its own subprocess (so peak RSS is its own):
- train_step_ms: median of >= 10 training steps (forward, cross-entropy - per pixel for
  unet -, backward, Adam lr 1e-3) at batch 32 (unet 8), after 3 warm-up steps;
- infer_img_per_s: batch 64 (unet 8) / median forward time under torch.no_grad() and
  model.eval(), after 3 warm-up passes;
- pix2pix (`reference_models.pix2pix()`): train_step_ms is one adversarial step at batch 16 (a
  discriminator update with BCE-with-logits on real and generated pairs, then a generator
  update with BCE-with-logits + 100 x L1, each with Adam lr 2e-4, betas 0.5, 0.999);
  inference is the generator alone at batch 64;
- dcgan and dcgan_resize (PyTorch's DCGAN example for one band, not in reference_models.py; the
  second with resize-convolutions, nn.Upsample(2) + 3x3 convolution, in the generator): one
  adversarial step at batch 64 with the non-saturating loss, inference the generator from noise;
- infer_bf16_img_per_s (cnn, resnet18, unet, where the CPU has bfloat16 instructions): the
  same inference in bfloat16, PyTorch's network converted whole (`.to(torch.bfloat16)`,
  channels-last) against Astrolabe's `inference_precision: bfloat16` (the convolutions' inputs
  and weights rounded, everything else float32);
- peak_rss_mb: ru_maxrss of the subprocess right after the training steps;
in up to three PyTorch variants (`--variants`):
- eager: the module as it is;
- frozen: inference only, `torch.jit.trace` + `torch.jit.freeze` +
  `torch.jit.optimize_for_inference` (batch norm folded, convolution + ReLU fused on oneDNN,
  weights pre-packed);
- compiled: `torch.compile` (inductor); inference with `torch._inductor.config.freezing`, the
  training step compiled without it. Compilation happens in the warm-up steps.
Each row's `pytorch` figure is the best variant's (fastest; least memory), named in
`pytorch_variant`, and `ratio` is against it; `ratio_eager` is against eager.
Then tile_segment_mpix_per_s: a 2048 x 2048 map segmented by the unet (eager and frozen)
through 256 x 256 tiles overlapping by 32 px (8 tiles per forward pass), stitched with the
same smooth window as Astrolabe's TileStitcher, argmax, written as a float32 FITS image
(astropy), median of 3. Astrolabe's side is `astrolabe bench --model M` and `astrolabe bench
--workload tiles` (same protocol, see Sources/astrolabe/Bench+Models.swift); a table with
every figure and the ratios is printed, or one JSON object with `--json`.

    pip install torch torchvision numpy astropy
    swift build -c release --product astrolabe
    python3 bench/compare.py [--models cnn,unet] [--variants eager,frozen,compiled] [--no-tiles]
                             [--quick] [--json] [--save FILE] [--astrolabe .build/release/astrolabe]
                             [--reference ../shared/spec/reference_models.py] [--baseline BINARY]
"""
import argparse
import copy
import functools
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_REFERENCE = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "spec", "reference_models.py"))
DEFAULT_BINARY = os.path.normpath(os.path.join(HERE, "..", ".build", "release", "astrolabe"))
MODELS = ["cnn", "resnet18", "unet", "lstm", "gru", "pix2pix", "dcgan", "dcgan_resize"]
VARIANTS = ["eager", "frozen", "compiled"]
THREADS = 2
# Convolutional networks measured again with bfloat16 inference where the CPU has bfloat16 instructions.
BF16_MODELS = ["cnn", "resnet18", "unet"]


def load_reference(path):
    spec = importlib.util.spec_from_file_location("reference_models", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# MARK: - PyTorch side (run in a subprocess per model)

def inference_module(model, x, variant):
    """The module a `variant` user runs for inference (model in eval mode, x an example batch)."""
    import torch
    if variant == "frozen":
        with torch.no_grad():
            return torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(model, x)))
    if variant == "compiled":
        import torch._inductor.config as inductor
        inductor.freezing = True
        return torch.compile(model)
    return model


def measure_training(step, warmup, steps):
    """train_step_ms (median), train_step_min_ms and peak_rss_mb of `step()` after `warmup` calls."""
    train_times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        step()
        t1 = time.perf_counter()
        if i >= warmup:
            train_times.append(t1 - t0)
    return {"train_step_ms": round(statistics.median(train_times) * 1e3, 1),
            "train_step_min_ms": round(min(train_times) * 1e3, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def measure_inference(model, x, variant, warmup, steps):
    """infer_img_per_s (median) and infer_max_img_per_s of `variant` of `model` (in eval mode) on batch `x`."""
    import torch
    module = inference_module(model, x, variant)
    infer_times = []
    with torch.no_grad():
        for rep in range(warmup + steps):
            t0 = time.perf_counter()
            module(x)
            t1 = time.perf_counter()
            if rep >= warmup:
                infer_times.append(t1 - t0)
    return {"infer_img_per_s": round(len(x) / statistics.median(infer_times), 1),
            "infer_max_img_per_s": round(len(x) / min(infer_times), 1)}


def torch_adversarial(name, generator, discriminator, make_pair, infer_input, quick, variant):
    """One adversarial step of `generator` against `discriminator` (Adam at 2e-4, betas 0.5 and
    0.999; the discriminator's BCE on real and detached fake pairs, then the generator's
    non-saturating BCE with the discriminator frozen) and the generator's inference on
    `infer_input`. `make_pair()` returns the step's (fake, real pair, fake pair, reconstruction
    loss or None) from the (possibly compiled) generator `g`."""
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(THREADS)
    warmup, steps = (1, 3) if quick else (3, 10)
    result = {"model": name, "variant": variant, "steps": steps, "threads": THREADS}
    if variant != "frozen":
        generator.train()
        discriminator.train()
        g = torch.compile(generator) if variant == "compiled" else generator
        d = torch.compile(discriminator) if variant == "compiled" else discriminator
        opt_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))

        def step():
            fake, real_pair, fake_pair, reconstruction = make_pair(g)
            opt_d.zero_grad()
            real_logits, fake_logits = d(real_pair), d(fake_pair(fake.detach()))
            d_loss = 0.5 * (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
            d_loss.backward()
            opt_d.step()
            opt_g.zero_grad()
            for p in discriminator.parameters():
                p.requires_grad_(False)
            logits = d(fake_pair(fake))
            g_loss = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
            if reconstruction is not None:
                g_loss = g_loss + reconstruction(fake)
            g_loss.backward()
            opt_g.step()
            for p in discriminator.parameters():
                p.requires_grad_(True)
        result.update(measure_training(step, warmup, steps))
    generator.eval()
    result.update(measure_inference(generator, infer_input, variant, warmup, steps))
    return result


def torch_pix2pix(reference, quick, variant):
    """BENCH.md's pix2pix: one adversarial step at batch 16 (L1 weight 100); the generator's
    inference at batch 64."""
    import torch
    import torch.nn.functional as F
    torch.manual_seed(7)
    generator, discriminator = reference.pix2pix()
    x, y = torch.randn(16, 1, 64, 64), torch.randn(16, 1, 64, 64)

    def make_pair(g):
        return (g(x), torch.cat([x, y], 1), lambda fake: torch.cat([x, fake], 1),
                lambda fake: 100 * F.l1_loss(fake, y))
    return torch_adversarial("pix2pix", generator, discriminator, make_pair, torch.randn(64, 1, 64, 64), quick, variant)


def dcgan_networks(resize=False):
    """PyTorch's DCGAN example for one band (not in reference_models.py): generator 100 -> 1 x 64 x 64
    (widths 512-64, no biases, tanh), discriminator 64-512 without the final sigmoid (BCE with logits).
    `resize`: each doubling of the generator is nn.Upsample(2, nearest) + a 3x3 convolution
    (DCGANGenerator's upsampling .nearest)."""
    from torch import nn
    widths = [512, 256, 128, 64]

    def doubling(cin, cout):
        if resize:
            return [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, 1, 1, bias=False)]
        return [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False)]
    g = [nn.ConvTranspose2d(100, 512, 4, 1, 0, bias=False), nn.BatchNorm2d(512), nn.ReLU(True)]
    for cin, cout in zip(widths, widths[1:]):
        g += doubling(cin, cout) + [nn.BatchNorm2d(cout), nn.ReLU(True)]
    g += doubling(64, 1) + [nn.Tanh()]
    d = [nn.Conv2d(1, 64, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
    for cin, cout in zip(widths[::-1], widths[::-1][1:]):
        d += [nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, True)]
    d += [nn.Conv2d(512, 1, 4, 1, 0, bias=False), nn.Flatten()]

    class Generator(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(*g)

        def forward(self, z):
            return self.net(z.view(z.shape[0], -1, 1, 1))
    return Generator(), nn.Sequential(*d)


def torch_dcgan(quick, variant, name="dcgan"):
    """The dcgan and dcgan_resize rows: one adversarial step at batch 64 (Astrolabe's GAN.trainOnBatch
    protocol); the generator's inference from noise [64, 100]."""
    import torch
    torch.manual_seed(7)
    generator, discriminator = dcgan_networks(resize=name == "dcgan_resize")
    real = torch.randn(64, 1, 64, 64)

    def make_pair(g):
        return g(torch.randn(64, 100)), real, lambda fake: fake, None
    return torch_adversarial(name, generator, discriminator, make_pair, torch.randn(64, 100), quick, variant)


def torch_model(reference, name, quick, variant):
    import torch
    from torch import nn
    if name == "pix2pix":
        return torch_pix2pix(reference, quick, variant)
    if name in ("dcgan", "dcgan_resize"):
        return torch_dcgan(quick, variant, name)
    torch.set_num_threads(THREADS)
    torch.manual_seed(7)
    make, shape, train_batch, infer_batch = reference.MODELS[name]
    model = make()
    classes = {"cnn": 5, "resnet18": 5, "unet": 3, "lstm": 4, "gru": 7}[name]
    warmup, steps = (1, 3) if quick else (3, 10)
    result = {"model": name, "variant": variant, "steps": steps, "threads": THREADS}

    if variant != "frozen":
        model.train()
        step_model = torch.compile(model) if variant == "compiled" else model
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = nn.CrossEntropyLoss()
        x = torch.randn(train_batch, *shape)
        y = torch.randint(0, classes, (train_batch, *shape[1:]) if name == "unet" else (train_batch,))
        def step():
            optimizer.zero_grad()
            loss = loss_fn(step_model(x), y)
            loss.backward()
            optimizer.step()
        result.update(measure_training(step, warmup, steps))

    model.eval()
    result.update(measure_inference(model, torch.randn(infer_batch, *shape), variant, warmup, steps))
    if name in BF16_MODELS and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        # The same network in bfloat16 throughout (weights and activations), channels-last as
        # PyTorch's oneDNN convolutions prefer; Astrolabe's row rounds the convolutions' inputs
        # and weights only (its `inference_precision: bfloat16`).
        fast = copy.deepcopy(model).to(torch.bfloat16).to(memory_format=torch.channels_last)
        x = torch.randn(infer_batch, *shape).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
        try:
            bf16 = measure_inference(fast, x, variant, warmup, steps)
            result.update(infer_bf16_img_per_s=bf16["infer_img_per_s"], infer_bf16_max_img_per_s=bf16["infer_max_img_per_s"])
        except Exception as error:  # a variant that cannot run bfloat16 (inductor's freezing, say) loses that row only
            print(f"PyTorch {variant} {name} in bfloat16 failed; left out: {type(error).__name__}: "
                  f"{str(error).splitlines()[0] if str(error) else ''}", file=sys.stderr)
    return result


@functools.lru_cache(maxsize=None)
def smooth_window(origin, length, tile, overlap):
    """TileStitcher's `.smooth` axis weights (Sources/Preprocessing/Tiling.swift)."""
    import numpy as np
    margin = overlap // 4
    ramp = overlap - 2 * margin

    def taper(d):
        if d < margin:
            return 0.0
        if d >= margin + ramp:
            return 1.0
        return 0.5 - 0.5 * np.cos(np.pi * (d - margin + 0.5) / ramp)

    w = np.ones(tile, dtype=np.float32)
    for i in range(tile):
        if origin > 0:
            w[i] = min(w[i], taper(i))
        if origin + tile < length:
            w[i] = min(w[i], taper(tile - 1 - i))
    return w


def origins(length, tile, step):
    if length <= tile:
        return [0]
    return list(range(0, length - tile, step)) + [length - tile]


def torch_tiles(reference, quick, variant):
    import numpy as np
    import torch
    from astropy.io import fits
    torch.set_num_threads(THREADS)
    torch.manual_seed(7)
    side, tile, overlap, batch, classes = (1024 if quick else 2048), 256, 32, 8, 3
    repeats = 1 if quick else 3
    model = reference.UNet()
    model.eval()
    image = np.random.default_rng(3).standard_normal((side, side)).astype(np.float32)
    rects = [(y, x) for y in origins(side, tile, tile - overlap) for x in origins(side, tile, tile - overlap)]
    path = os.path.join(tempfile.mkdtemp(prefix="compare-tiles-"), "segmentation.fits")
    example = torch.randn(batch, 1, tile, tile)
    model = inference_module(model, example, variant)
    with torch.no_grad():
        model(example)
        model(example)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        total = np.zeros((classes, side, side), dtype=np.float32)
        weight = np.zeros((side, side), dtype=np.float32)
        with torch.no_grad():
            for start in range(0, len(rects), batch):
                chunk = rects[start:start + batch]
                x = torch.from_numpy(np.stack([image[y:y + tile, x:x + tile] for y, x in chunk])[:, None])
                out = model(x).numpy()
                for k, (y, x) in enumerate(chunk):
                    # The windows are cached (three distinct ones per axis), so this is numpy work only.
                    w = np.outer(smooth_window(y, side, tile, overlap), smooth_window(x, side, tile, overlap))
                    total[:, y:y + tile, x:x + tile] += w * out[k]
                    weight[y:y + tile, x:x + tile] += w
        with np.errstate(invalid="ignore", divide="ignore"):
            logits = total / weight
        labels = np.argmax(logits, axis=0).astype(np.float32)
        fits.PrimaryHDU(labels).writeto(path, overwrite=True)
        times.append(time.perf_counter() - t0)
    os.remove(path)
    os.rmdir(os.path.dirname(path))
    mpix = side * side / 1e6
    return {"workload": "tiles", "variant": variant,
            "tile_segment_mpix_per_s": round(mpix / statistics.median(times), 3),
            "tile_segment_max_mpix_per_s": round(mpix / min(times), 3),
            "seconds": round(statistics.median(times), 2), "tiles": len(rects), "side": side, "threads": THREADS}


def run_child(argv):
    """`compare.py --torch-child NAME --variant V [--quick] --reference PATH` (NAME: a model or `tiles`)."""
    p = argparse.ArgumentParser()
    p.add_argument("--torch-child")
    p.add_argument("--reference")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--variant", default="eager")
    a = p.parse_args(argv)
    reference = load_reference(a.reference)
    if a.torch_child == "tiles":
        result = torch_tiles(reference, a.quick, a.variant)
    else:
        result = torch_model(reference, a.torch_child, a.quick, a.variant)
    print(json.dumps(result, sort_keys=True), flush=True)


# MARK: - Driver

def torch_run(name, args, variant):
    cmd = [sys.executable, os.path.abspath(__file__), "--torch-child", name, "--reference", args.reference,
           "--variant", variant]
    if args.quick:
        cmd.append("--quick")
    env = dict(os.environ)
    if not args.omp_active:
        # PyTorch's OpenMP threads spin while they wait; on a shared machine whose load is
        # above its 2 cores they lose their time slices and PyTorch slows down 2-10x. Passive
        # waiting keeps PyTorch close to its quiet-machine speed (the fair comparison there).
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        print(f"PyTorch {variant} failed on {name}; left out:\n" + done.stderr[-2000:], file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def best_variant(results, metric, higher):
    """(variant, figure, result) of the variant with the best `metric`, or None."""
    found = [(r["variant"], r[metric], r) for r in results if r and metric in r]
    if not found:
        return None
    return (max if higher else min)(found, key=lambda item: item[1])


def astrolabe_run(flags, args, binary=None):
    cmd = [binary or args.astrolabe, "bench"] + flags + (["--quick"] if args.quick else [])
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def baseline_run(flags, args):
    """The `--baseline` build's figures for one workload, or None (no baseline, or a workload it lacks)."""
    if not args.baseline:
        return None
    try:
        return astrolabe_run(flags, args, args.baseline)[0]
    except subprocess.CalledProcessError:
        print(f"baseline {args.baseline} cannot run {' '.join(flags)}; no baseline figures for it", file=sys.stderr)
        return None


def machine():
    model = platform.processor() or platform.machine()
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return model


# (metric, unit, higher is better, the key of the best run's figure)
METRICS = [("train_step_ms", "ms", False, "train_step_min_ms"), ("infer_img_per_s", "img/s", True, "infer_max_img_per_s"),
           ("infer_bf16_img_per_s", "img/s", True, "infer_bf16_max_img_per_s"), ("peak_rss_mb", "MB", False, None)]


def main():
    if "--torch-child" in sys.argv:
        return run_child(sys.argv[1:])
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated subset of " + ",".join(MODELS))
    p.add_argument("--variants", default=",".join(VARIANTS),
                   help="PyTorch variants to measure, comma-separated subset of " + ",".join(VARIANTS))
    p.add_argument("--no-tiles", action="store_true", help="skip tile_segment_mpix_per_s")
    p.add_argument("--quick", action="store_true", help="fewer steps, 1024 x 1024 map (a smoke test, not a result)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--save", metavar="FILE", help="also write the JSON object to FILE")
    p.add_argument("--omp-active", action="store_true",
                   help="leave PyTorch's OpenMP wait policy at its default (spinning) instead of PASSIVE")
    p.add_argument("--astrolabe", default=DEFAULT_BINARY)
    p.add_argument("--reference", default=DEFAULT_REFERENCE)
    p.add_argument("--baseline", metavar="BINARY",
                   help="another astrolabe build (e.g. main before a change) run right after --astrolabe on each "
                        "workload; adds its figures and the ratio of --astrolabe to it")
    args = p.parse_args()
    models = [m for m in args.models.split(",") if m]
    for m in models:
        if m not in MODELS:
            p.error(f"unknown model {m!r}; expected one of {', '.join(MODELS)}")
    variants = [v for v in args.variants.split(",") if v]
    for v in variants:
        if v not in VARIANTS:
            p.error(f"unknown PyTorch variant {v!r}; expected one of {', '.join(VARIANTS)}")

    import torch
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    load_before = os.getloadavg()
    rows = []
    for m in models:
        theirs = [torch_run(m, args, v) for v in variants]
        ours = astrolabe_run(["--model", m], args)[0]
        base = baseline_run(["--model", m], args)
        for metric, unit, higher, fastest in METRICS:
            best = best_variant(theirs, metric, higher)
            if best is None or metric not in ours:
                continue
            variant, t, result = best
            a = ours[metric]
            # ratio > 1: Astrolabe is better (faster, or less memory)
            row = {"workload": m, "metric": metric, "unit": unit, "astrolabe": a, "pytorch": t,
                   "pytorch_variant": variant, "ratio": round((a / t) if higher else (t / a), 2)}
            for r in theirs:
                if r and metric in r:
                    row["pytorch_" + r["variant"]] = r[metric]
            if "pytorch_eager" in row:
                e = row["pytorch_eager"]
                row["ratio_eager"] = round((a / e) if higher else (e / a), 2)
            if fastest:
                a, t = ours[fastest], result[fastest]
                row.update(astrolabe_best=a, pytorch_best=t, ratio_best=round((a / t) if higher else (t / a), 2))
            if base:
                b = base[metric]
                row.update(baseline=b, ratio_baseline=round((ours[metric] / b) if higher else (b / ours[metric]), 2))
            rows.append(row)
    if not args.no_tiles:
        theirs = [torch_run("tiles", args, v) for v in variants if v != "compiled"]
        best = best_variant(theirs, "tile_segment_mpix_per_s", True)
        ours = astrolabe_run(["--workload", "tiles"], args)[0]
        if best:
            variant, t, result = best
            a = ours["tile_segment_mpix_per_s"]
            ab, tb = ours["tile_segment_max_mpix_per_s"], result["tile_segment_max_mpix_per_s"]
            row = {"workload": "tiles", "metric": "tile_segment_mpix_per_s", "unit": "Mpix/s",
                   "astrolabe": a, "pytorch": t, "pytorch_variant": variant, "ratio": round(a / t, 2),
                   "astrolabe_best": ab, "pytorch_best": tb, "ratio_best": round(ab / tb, 2)}
            for r in theirs:
                if r:
                    row["pytorch_" + r["variant"]] = r["tile_segment_mpix_per_s"]
            if "pytorch_eager" in row:
                row["ratio_eager"] = round(a / row["pytorch_eager"], 2)
            if args.baseline:
                base = baseline_run(["--workload", "tiles"], args)
                if base:
                    b = base["tile_segment_mpix_per_s"]
                    row.update(baseline=b, ratio_baseline=round(a / b, 2))
            rows.append(row)
    policy = "default (active)" if args.omp_active else os.environ.get("OMP_WAIT_POLICY", "PASSIVE")
    report = {"date": started, "machine": machine(), "threads": THREADS, "torch": torch.__version__,
              "astrolabe": args.astrolabe, "baseline": args.baseline,
              "torch_omp_wait_policy": policy, "pytorch_variants": variants,
              "load_average_before": [round(v, 2) for v in load_before],
              "load_average_after": [round(v, 2) for v in os.getloadavg()],
              "quick": args.quick, "rows": rows}
    if args.save:
        with open(args.save, "w") as f:
            json.dump(report, f, sort_keys=True, indent=1)
    if args.json:
        print(json.dumps(report, sort_keys=True))
        return
    print(f"{report['date']}  {report['machine']}  threads {THREADS}  torch {report['torch']}"
          f"  OMP_WAIT_POLICY {policy}")
    print(f"load average before {report['load_average_before']}, after {report['load_average_after']}")
    print("median of the runs; PyTorch = its best variant (named); best = fastest run;"
          " ratio > 1 means Astrolabe is better (faster or smaller)\n")
    extra = " baseline | vs baseline |" if args.baseline else ""
    shown = [v for v in VARIANTS if v in variants]
    print("| workload | metric | Astrolabe | " + " | ".join(f"PyTorch {v}" for v in shown)
          + " | ratio to best | ratio to eager | Astrolabe best | PyTorch best | ratio best |" + extra)
    print("|---|---|---:|" + "---:|" * len(shown) + "---:|---:|---:|---:|---:|"
          + ("---:|---:|" if args.baseline else ""))
    for r in rows:
        figures = [r.get("pytorch_" + v, "-") for v in shown]
        best = [r.get("astrolabe_best", ""), r.get("pytorch_best", ""), r.get("ratio_best", "")]
        cells = ([r["workload"], f"{r['metric']} ({r['unit']})", r["astrolabe"]] + figures
                 + [f"{r['ratio']} ({r['pytorch_variant']})", r.get("ratio_eager", "")] + best)
        if args.baseline:
            cells += [r.get("baseline", ""), r.get("ratio_baseline", "")]
        print("| " + " | ".join(str(c) for c in cells) + " |")

if __name__ == "__main__":
    main()
