#!/usr/bin/env python3
"""Averages the weights of model files of one architecture (a "model soup", Wortsman et al.
2022): every tensor of OUT is the weighted mean of the inputs' tensors of the same name
(batch-norm running statistics too); OUT keeps the last input's metadata (architecture,
recipe), with `provenance.averaged` saying which files and weights made it.

    python3 scripts/average_models.py OUT.safetensors A.safetensors B.safetensors [--weights 0.5 0.5]

Models fine-tuned from one another (one the start of the other's fine-tuning) average well;
independently trained ones do not. Refuses files whose tensor names, shapes or dtypes differ.
"""
import argparse
import json

import numpy as np

from record_observation import read_model, write_model


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("inputs", nargs="+")
    parser.add_argument("--weights", nargs="+", type=float, help="one per input (default equal); normalised to sum 1")
    args = parser.parse_args()
    if len(args.inputs) < 2:
        parser.error("give at least two model files to average")
    weights = args.weights or [1.0] * len(args.inputs)
    if len(weights) != len(args.inputs) or min(weights) < 0 or sum(weights) <= 0:
        parser.error(f"--weights needs {len(args.inputs)} non-negative numbers, got {weights}")
    weights = [w / sum(weights) for w in weights]
    files = [read_model(p) for p in args.inputs]
    header, data = files[-1]
    names = {k for k in header if k != "__metadata__"}
    out = bytearray(data)
    for path, (h, _) in zip(args.inputs, files):
        other = {k for k in h if k != "__metadata__"}
        if other != names:
            raise SystemExit(f"{path}: tensors differ from {args.inputs[-1]}'s: {sorted(other ^ names)[:5]}")
    for name in sorted(names):
        entry = header[name]
        if entry["dtype"] != "F32":
            raise SystemExit(f"{name}: dtype {entry['dtype']}; only F32 tensors are averaged")
        total = None
        for path, (h, d), w in zip(args.inputs, files, weights):
            if h[name]["shape"] != entry["shape"] or h[name]["dtype"] != "F32":
                raise SystemExit(f"{path}: {name} has shape {h[name]['shape']}, {args.inputs[-1]} {entry['shape']}")
            s, e = h[name]["data_offsets"]
            x = np.frombuffer(d[s:e], np.float32).astype(np.float64) * w
            total = x if total is None else total + x
        s, e = entry["data_offsets"]
        out[s:e] = total.astype(np.float32).tobytes()
    meta = header.setdefault("__metadata__", {})
    if "astrolabe.preprocessing" in meta:
        recipe = json.loads(meta["astrolabe.preprocessing"])
        recipe.setdefault("provenance", {})["averaged"] = ", ".join(
            f"{w:g} x {p}" for p, w in zip(args.inputs, weights)) + " (scripts/average_models.py)"
        meta["astrolabe.preprocessing"] = json.dumps(recipe, sort_keys=True, separators=(",", ":"))
    write_model(args.out, header, bytes(out))
    print(f"{args.out}: {len(names)} tensors averaged over {len(args.inputs)} files")


if __name__ == "__main__":
    main()
