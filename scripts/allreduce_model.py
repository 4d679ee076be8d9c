#!/usr/bin/env python3
"""Ring all-reduce cost model for data-parallel training (docs/distributed.md).

Per step, N processes sum P float32 gradients (B = 4P bytes) in buckets of b bytes.
One ring all-reduce of b bytes takes  2 (N-1)/N * b / BW  +  2 (N-1) * alpha
(reduce-scatter then all-gather: 2 (N-1) messages of b/N bytes each).
Buckets start during the backward pass (about 2/3 of a step), so what is not hidden
is the last bucket, or the excess of all buckets over the backward window:
    exposed = max(t(last bucket), T_total - backward)
    efficiency = t_step / (t_step + exposed)        (no overlap: t_step / (t_step + T_total))

Inputs: parameter counts of the BENCH.md networks (reference_models.py, counted with
torch) and their measured train_step_ms at batch 32 per process (unet 8) on 2 threads
(docs/benchmarks.md, 2026-11-27 quiet-machine run A; gru from the 2026-12-03 run A).
"""
import math

BANDWIDTH = 100e9 / 8          # 100 Gb/s in bytes/s
ALPHA = 5e-6                   # per-message latency (s): RDMA fabrics 1-3 us, TCP 20-50 us
BACKWARD = 2 / 3               # share of a step that the backward pass takes

NETWORKS = [  # name, parameters, measured train step (ms)
    ("cnn", 2_191_365, 36.8),
    ("resnet18", 11_179_077, 102.3),
    ("unet", 1_942_323, 820.6),
    ("lstm", 17_668, 1.4),
    ("gru", 14_663, 3.9),
]
NODES = [8, 64, 256]
BUCKETS_MB = [1, 4, 16, 25, 64, math.inf]
CHOSEN_MB = 4                  # model.train.bucket_mb's default, chosen from the table below


def ring(b, n, alpha=ALPHA, bw=BANDWIDTH):
    return 2 * (n - 1) / n * b / bw + 2 * (n - 1) * alpha


def step_cost(params, n, bucket_bytes, alpha=ALPHA):
    total = 4 * params
    sizes = []
    left = total
    while left > 0:
        sizes.append(min(bucket_bytes, left))
        left -= sizes[-1]
    all_buckets = sum(ring(s, n, alpha) for s in sizes)
    return all_buckets, sizes


def efficiency(params, step_s, n, bucket_bytes, alpha=ALPHA):
    total, sizes = step_cost(params, n, bucket_bytes, alpha)
    exposed = max(ring(sizes[-1], n, alpha), total - BACKWARD * step_s)
    return total, exposed, step_s / (step_s + exposed), step_s / (step_s + total)


def main():
    print(f"100 Gb/s ({BANDWIDTH / 1e9:.1f} GB/s), alpha = {ALPHA * 1e6:.0f} us per message, "
          f"backward = {BACKWARD:.2f} of a step\n")
    print(f"| network | parameters | gradient MB | step ms (measured) | N | all-reduce ms ({CHOSEN_MB} MB buckets) "
          "| not hidden ms | efficiency, overlapped | efficiency, no overlap | efficiency, 25 MB buckets |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, p, ms in NETWORKS:
        for n in NODES:
            total, exposed, eff, eff_no = efficiency(p, ms / 1000, n, CHOSEN_MB * 1e6)
            eff25 = efficiency(p, ms / 1000, n, 25e6)[2]
            print(f"| {name} | {p:,} | {4 * p / 1e6:.1f} | {ms} | {n} | {total * 1e3:.2f} | {exposed * 1e3:.2f} "
                  f"| {eff:.3f} | {eff_no:.3f} | {eff25:.3f} |")
    print("\nNot-hidden time (ms) per step by bucket size (inf = one bucket at the end of backward):\n")
    print("| network | N | " + " | ".join(f"{b} MB" for b in BUCKETS_MB) + " |")
    print("|---|---:|" + "---:|" * len(BUCKETS_MB))
    for name, p, ms in NETWORKS:
        for n in NODES:
            row = [efficiency(p, ms / 1000, n, b * 1e6 if b != math.inf else 1e18)[1] * 1e3 for b in BUCKETS_MB]
            print(f"| {name} | {n} | " + " | ".join(f"{v:.2f}" for v in row) + " |")
    print("\nBucket size where bandwidth and latency terms of one bucket are equal, b* = N alpha BW:")
    for n in NODES:
        print(f"  N = {n}: {n * ALPHA * BANDWIDTH / 1e6:.1f} MB (alpha 5 us); "
              f"{n * 30e-6 * BANDWIDTH / 1e6:.1f} MB (alpha 30 us, TCP)")


if __name__ == "__main__":
    main()
