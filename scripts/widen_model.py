#!/usr/bin/env python3
"""Widens the ResNet encoder of a model file without changing what it computes (Net2WiderNet,
Chen, Goodfellow & Shlens 2016): every stage's channels grow by FACTOR, each new channel a
copy of a randomly chosen old one (its filter, its batch norm's weight, bias and running
statistics), and every layer that reads a copied channel divides that channel's input weights
by the number of copies, so the sums it forms are unchanged. The residual stream of a stage
keeps one channel map across its blocks (the stem, each block's second convolution and the
downsample all write it); each block's inner channels get their own map. `--noise` adds
Gaussian noise, in units of each filter tensor's standard deviation, to the new copies'
filters, so that training can tell a copy from its original (exact copies receive the same
updates for ever); with `--noise 0` the widened model's outputs equal the original's.

    python3 scripts/widen_model.py IN.safetensors OUT.safetensors --factor 1.5 [--noise 0.01] [--seed 0]

Works on the model files of `resnet18`, `resnet18_flow` and the other torchvision-named
ResNets of BasicBlocks (tensor names `[encoder.]conv1`, `bn1`, `layerL.B.convK`, `bnK`,
`downsample.0/1`, `fc`); the architecture metadata's `widths` is rewritten and a recorded
feature density (over the old penultimate features) is dropped.
"""
import argparse
import json
import re

import numpy as np

from record_observation import read_model, write_model

BN = ("weight", "bias", "running_mean", "running_var")


def channel_map(old, new, rng):
    """New channel j copies old channel m[j]: the first `old` map to themselves, the rest at random."""
    return np.concatenate([np.arange(old), rng.integers(0, old, new - old)])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--factor", type=float, required=True, help="new width over old, > 1")
    parser.add_argument("--noise", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.factor <= 1:
        parser.error(f"--factor must be above 1, got {args.factor}")
    rng = np.random.default_rng(args.seed)
    header, data = read_model(args.input)
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, entry in header.items():
        if entry["dtype"] != "F32":
            raise SystemExit(f"{args.input}: {name} has dtype {entry['dtype']}; only F32 model files are widened")
        s, e = entry["data_offsets"]
        tensors[name] = np.frombuffer(data[s:e], np.float32).reshape(entry["shape"]).astype(np.float64)

    stem = next((n for n in tensors if re.fullmatch(r"(.*\.)?conv1\.weight", n) and ".layer" not in n), None)
    if stem is None:
        raise SystemExit(f"{args.input}: no stem convolution (`conv1.weight`); not a ResNet model file")
    prefix = stem[: -len("conv1.weight")]
    blocks = sorted({tuple(map(int, m.groups())) for n in tensors
                     if (m := re.match(re.escape(prefix) + r"layer(\d+)\.(\d+)\.conv1\.weight$", n))})
    if not blocks or any(prefix + f"layer{l}.{b}.conv3.weight" in tensors for l, b in blocks):
        raise SystemExit(f"{args.input}: widening handles ResNets of two-convolution blocks only")
    stages = sorted({l for l, _ in blocks})
    widths = [tensors[prefix + f"layer{l}.0.conv2.weight"].shape[0] for l in stages]
    new_widths = [int(round(w * args.factor)) for w in widths]
    # One map per stage's residual stream; the stem writes stage 1's.
    stream = {l: channel_map(w, nw, rng) for l, w, nw in zip(stages, widths, new_widths)}

    def widen_out(conv, bn, out_map):
        """Output channels of convolution `conv` (and its batch norm `bn`) copied by `out_map`."""
        w = tensors[conv]
        copied = w[out_map].copy()
        old = w.shape[0]
        if args.noise > 0 and len(out_map) > old:
            copied[old:] += rng.normal(0, args.noise * w.std(), copied[old:].shape)
        tensors[conv] = copied
        for p in BN:
            tensors[f"{bn}.{p}"] = tensors[f"{bn}.{p}"][out_map].copy()

    def widen_in(name, in_map, axis=1):
        """Input channels of weight `name` copied by `in_map`, each divided by its number of copies."""
        w = tensors[name]
        counts = np.bincount(in_map, minlength=w.shape[axis])
        tensors[name] = np.take(w, in_map, axis=axis) / np.expand_dims(
            counts[in_map], tuple(i for i in range(w.ndim) if i != axis))

    widen_out(prefix + "conv1.weight", prefix + "bn1", stream[stages[0]])
    previous = stream[stages[0]]
    for l, b in blocks:
        block = prefix + f"layer{l}.{b}."
        inner = channel_map(tensors[block + "conv1.weight"].shape[0],
                            int(round(tensors[block + "conv1.weight"].shape[0] * args.factor)), rng)
        widen_in(block + "conv1.weight", previous)
        widen_out(block + "conv1.weight", block + "bn1", inner)
        widen_in(block + "conv2.weight", inner)
        widen_out(block + "conv2.weight", block + "bn2", stream[l])
        if block + "downsample.0.weight" in tensors:
            widen_in(block + "downsample.0.weight", previous)
            widen_out(block + "downsample.0.weight", block + "downsample.1", stream[l])
        elif len(previous) != len(stream[l]) or np.any(previous != stream[l]):
            raise SystemExit(f"{block}: changes width without a downsample")
        previous = stream[l]
    widen_in(prefix + "fc.weight", previous)

    out = {}
    offset = 0
    chunks = []
    for name in sorted(tensors):
        x = tensors[name].astype(np.float32)
        raw = x.tobytes()
        out[name] = {"dtype": "F32", "shape": list(x.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    if "astrolabe.architecture" in meta:
        architecture = json.loads(meta["astrolabe.architecture"])
        architecture["widths"] = new_widths
        meta["astrolabe.architecture"] = json.dumps(architecture, sort_keys=True, separators=(",", ":"))
    if "astrolabe.preprocessing" in meta:
        recipe = json.loads(meta["astrolabe.preprocessing"])
        # A density over the penultimate features does not fit the wider features: fit it
        # again on the widened model (`astrolabe evaluate --calibrate`).
        if recipe.pop("featureDensity", None) is not None:
            recipe.get("provenance", {}).pop("feature_density", None)
            print(f"{args.output}: the feature density was dropped (fit it again with `astrolabe evaluate --calibrate`)")
        recipe.setdefault("provenance", {})["widened"] = (
            f"{args.input}: widths {widths} -> {new_widths}, noise {args.noise:g}, seed {args.seed} "
            "(scripts/widen_model.py)")
        meta["astrolabe.preprocessing"] = json.dumps(recipe, sort_keys=True, separators=(",", ":"))
    out["__metadata__"] = meta
    write_model(args.output, out, b"".join(chunks))
    print(f"{args.output}: widths {widths} -> {new_widths}")


if __name__ == "__main__":
    main()
