#!/usr/bin/env python3
"""How fast could any implementation built on oneDNN's convolutions be, against PyTorch?

For each convolutional network of `../shared/spec/reference_models.py` (cnn, resnet18, unet,
pix2pix's generator) this runs PyTorch's traced + frozen module (`torch.jit.trace` +
`torch.jit.freeze` + `torch.jit.optimize_for_inference`, as bench/compare.py's `frozen`
variant) with 2 threads at BENCH.md's inference batch and input, and measures:

- `t_frozen_ms`: median time of one forward pass, without the profiler;
- `conv_share`: the share of the profiled forward pass's wall time spent inside convolutions:
  the self time of every operator whose name contains "conv" (`aten::conv_transpose2d`, ...)
  plus the self time of the graph's `forward` call, which is where the frozen graph's
  `prim::mkldnn_convolution` nodes land (the profiler does not record them as operators; the
  interpreter's own overhead, a few microseconds per node, lands there too, so the share is
  an upper bound). Every other operator - ReLU, pooling, concatenation, `to_mkldnn` /
  `to_dense` reorders, the dense layers - is outside it. The convolutions are oneDNN
  primitives, the same ones Astrolabe calls at the same per-layer speed (docs/benchmarks.md,
  "Convolution kernels"); `graph_ops` lists the frozen graph's node kinds;
- `t_conv_ms` = `conv_share` x `t_frozen_ms`: time a forward pass spends in convolutions;
- `bound_vs_frozen` = `t_frozen_ms / t_conv_ms` = 1 / `conv_share`: the largest speed-up over
  the frozen module that any implementation using those convolutions could reach (everything
  else - pooling, concatenation, batch norm, ReLU, reorders, framework overhead - taken to
  cost nothing);
- `conv_gflop`: multiply-adds x 2 of every convolution in one pass (forward hooks on the
  eager module); `conv_gflops` = `conv_gflop / t_conv`, the convolutions' achieved rate;
- `t_conv_at_peak_ms` = `conv_gflop` / the machine's FMA peak, and `bound_at_peak_vs_frozen` =
  `t_frozen_ms / t_conv_at_peak_ms`: the bound for a hypothetical convolution running at the
  FMA peak (no implementation reaches it; oneDNN's best layers reach ~70% of it here).

The FMA peak comes from `bench/fma_peak.c` (compiled with `cc -O2 -mavx512f -mfma` into a
temporary directory and run on 2 threads: 12 independent chains of 16-lane FMAs per thread;
best of 5 runs, counted per CPU-second of its threads so that other processes on a shared
machine do not lower it); `--peak-gflops X` uses X instead.

    python3 bench/conv_share.py [--models cnn,resnet18,unet,pix2pix] [--rounds 10] [--json]
                                [--reference ../shared/spec/reference_models.py] [--peak-gflops X]

The ratio targets of issue 21 are against PyTorch's best variant; to turn `bound_vs_frozen`
into a bound against another variant, multiply by `t_variant / t_frozen` from bench/compare.py
(docs/benchmarks.md does this with the idle-machine run).
"""
import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_REFERENCE = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "spec", "reference_models.py"))
THREADS = 2
MODELS = ["cnn", "resnet18", "unet", "pix2pix"]


def load_reference(path):
    spec = importlib.util.spec_from_file_location("reference_models", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fma_peak_gflops():
    """The FMA peak of 2 threads, measured by bench/fma_peak.c (best of 5 runs)."""
    with tempfile.TemporaryDirectory() as tmp:
        exe = os.path.join(tmp, "fma_peak")
        subprocess.run(["cc", "-O2", "-mavx512f", "-mfma", "-pthread", os.path.join(HERE, "fma_peak.c"), "-o", exe],
                       check=True)
        runs = [json.loads(subprocess.run([exe, str(THREADS)], check=True, capture_output=True, text=True).stdout)
                for _ in range(5)]
    # Per CPU-second of the threads: on a shared machine the wall-clock rate only says how much
    # of the cores the loop got.
    return max(r["gflops_cpu"] for r in runs), max(runs, key=lambda r: r["gflops_cpu"])


def network(reference, name):
    """(eval-mode module, example input batch) at BENCH.md's inference batch."""
    import torch
    torch.manual_seed(7)
    if name == "pix2pix":
        generator, _ = reference.pix2pix()
        return generator.eval(), torch.randn(64, 1, 64, 64)
    make, shape, _, infer_batch = reference.MODELS[name]
    return make().eval(), torch.randn(infer_batch, *shape)


def conv_gflop(model, x):
    """2 x multiply-adds of every Conv2d / ConvTranspose2d in one forward pass of `model` on `x`."""
    import torch
    from torch import nn
    total = [0]

    def hook(module, inputs, output):
        k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
        if isinstance(module, nn.ConvTranspose2d):
            # every input pixel meets every weight once
            total[0] += 2 * inputs[0].numel() * module.out_channels * module.kernel_size[0] * module.kernel_size[1]
        else:
            total[0] += 2 * output.numel() * k

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return total[0] / 1e9


def measure(reference, name, rounds):
    import torch
    from torch.profiler import ProfilerActivity, profile
    torch.set_num_threads(THREADS)
    model, x = network(reference, name)
    gflop = conv_gflop(model, x)
    with torch.no_grad():
        frozen = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(model, x)))
        for _ in range(3):
            frozen(x)
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            frozen(x)
            times.append(time.perf_counter() - t0)
        shares, conv_ops = [], {}
        for _ in range(rounds):
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                t0 = time.perf_counter()
                frozen(x)
                wall = time.perf_counter() - t0
            conv = 0.0
            for event in prof.key_averages():
                # `prim::mkldnn_convolution` (the frozen graph's convolution) is not recorded as
                # an operator of its own: its time is the self time of the enclosing `forward`.
                if "conv" in event.key.lower() or event.key == "forward":
                    conv += event.self_cpu_time_total * 1e-6
                    conv_ops[event.key] = event.count
            shares.append(min(conv / wall, 1.0))
        kinds = sorted({node.kind() for node in frozen.graph.nodes()} - {"prim::Constant", "prim::ListConstruct",
                                                                         "prim::GetAttr", "prim::ConstantMKLDNNTensor"})
    t_frozen = statistics.median(times)
    share = statistics.median(shares)
    t_conv = share * t_frozen
    return {"model": name, "batch": len(x), "t_frozen_ms": round(t_frozen * 1e3, 2),
            "t_frozen_min_ms": round(min(times) * 1e3, 2),
            "conv_share": round(share, 3), "conv_share_range": [round(min(shares), 3), round(max(shares), 3)],
            "t_conv_ms": round(t_conv * 1e3, 2), "bound_vs_frozen": round(1 / share, 2),
            "conv_gflop": round(gflop, 3), "conv_gflops": round(gflop / t_conv, 1),
            "conv_ops": conv_ops, "graph_ops": kinds, "rounds": rounds, "threads": THREADS}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--reference", default=DEFAULT_REFERENCE)
    parser.add_argument("--peak-gflops", type=float, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    reference = load_reference(args.reference)
    if args.peak_gflops is not None:
        peak, peak_run = args.peak_gflops, None
    else:
        peak, peak_run = fma_peak_gflops()
    rows = []
    for name in args.models.split(","):
        row = measure(reference, name, args.rounds)
        row["t_conv_at_peak_ms"] = round(row["conv_gflop"] / peak * 1e3, 2)
        row["bound_at_peak_vs_frozen"] = round(row["t_frozen_ms"] / row["t_conv_at_peak_ms"], 2)
        row["conv_share_of_peak"] = round(row["conv_gflops"] / peak, 3)
        rows.append(row)
    if args.json:
        print(json.dumps({"fma_peak_gflops": peak, "fma_peak_run": peak_run, "rows": rows}))
        return
    print(f"FMA peak, {THREADS} threads: {peak:.0f} GFLOP/s" + (f" ({peak_run})" if peak_run else ""))
    print("| net | batch | frozen ms | conv share | conv ms | conv GFLOP | conv GFLOP/s (% of peak) | bound vs frozen | conv at peak ms | bound at peak vs frozen |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['model']} | {r['batch']} | {r['t_frozen_ms']} | {r['conv_share']} ({r['conv_share_range'][0]}-{r['conv_share_range'][1]}) "
              f"| {r['t_conv_ms']} | {r['conv_gflop']} | {r['conv_gflops']} ({100 * r['conv_share_of_peak']:.0f}%) "
              f"| {r['bound_vs_frozen']} | {r['t_conv_at_peak_ms']} | {r['bound_at_peak_vs_frozen']} |")
    for r in rows:
        print(f"{r['model']}: counted as convolution {r['conv_ops']}; graph nodes {r['graph_ops']}", file=sys.stderr)


if __name__ == "__main__":
    main()
