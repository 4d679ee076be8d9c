#!/usr/bin/env python3
"""Records, in the shipped model files, the observation each model was trained for and
its provenance, without retraining: only the `astrolabe.preprocessing` metadata (the
recipe JSON) of samples/models/*.safetensors is rewritten; the tensors are copied byte
for byte. The observation is TASKS.md's common observation model, which
`astrolabe simulate` follows and pipelines/train-*.yaml record for new trainings.

Run from the repository root: python3 scripts/record_observation.py
(or, for a posterior model's intervals on rows with an `outside_domain` flag such as
`neighbours` or `sky`, --interval-scales FLAG MODEL PREDICTIONS.csv CATALOG.csv SOURCE; for a
posterior model's inference views, --views N MODEL; for the arithmetic of a model's
convolutions at inference, --precision float32|bfloat16 MODEL). A class model's temperature, energy
threshold and feature density come from `astrolabe evaluate --calibrate`.
"""
import csv
import json
import os
import struct

COMMON = {"pixel_scale": 0.2, "psf_fwhm": [0.6, 1.0], "sky_sigma": [5.0, 15.0], "zero_point": 30.0,
          "sky_subtracted": True}
MODELS = {
    "morphology": {"size": [64, 64], "bands": []},
    "lens": {"size": [64, 64], "bands": ["g", "r", "i"]},
    "regression": {"size": [64, 64], "bands": []},
    "segmentation": {"size": None, "bands": []},
}


def provenance(name):
    pipeline = f"pipelines/train-{name}.yaml"
    with open(pipeline) as f:
        lines = f.read().splitlines()
    simulate = next((l.lstrip("# ").strip() for l in lines if "astrolabe simulate" in l), "")
    with open(f"samples/models/{name}.history.csv") as f:
        rows = list(csv.DictReader(f))
    last = rows[-1]
    result = {"pipeline": pipeline, "data": simulate, "epochs": str(len(rows)),
              "history": f"samples/models/{name}.history.csv",
              "recorded_by": "scripts/record_observation.py (observation and provenance added after training)"}
    for key in ("val_accuracy", "val_macro_f1", "val_loss", "val_mean_iou"):
        if key in last and last[key]:
            result["final_" + key] = "%.4g" % float(last[key])
    return result


def read_model(path):
    """A safetensors file's header (JSON, with `__metadata__`) and its tensor bytes."""
    if not os.path.isfile(path):
        raise SystemExit(f"{path}: no such model file")
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        if n > os.path.getsize(path) - 8:
            raise SystemExit(f"{path}: not a safetensors model file (header length {n} beyond the file)")
        header = json.loads(f.read(n))
        data = f.read()
    return header, data


def write_model(path, header, data):
    """Writes a safetensors file atomically (a temporary file renamed over `path`), the header
    padded with spaces to a multiple of 8 bytes."""
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        f.write(data)
    os.replace(tmp, path)


def rewrite(path, update, update_architecture=None):
    """Rewrites the recipe (and with `update_architecture` the architecture) metadata of
    model file `path` in place; the tensors are copied byte for byte."""
    header, data = read_model(path)
    meta = header["__metadata__"]
    recipe = json.loads(meta["astrolabe.preprocessing"])
    update(recipe)
    meta["astrolabe.preprocessing"] = json.dumps(recipe, sort_keys=True, separators=(",", ":"))
    if update_architecture:
        architecture = json.loads(meta["astrolabe.architecture"])
        update_architecture(architecture)
        meta["astrolabe.architecture"] = json.dumps(architecture, sort_keys=True, separators=(",", ":"))
    write_model(path, header, data)


def main():
    for name, own in MODELS.items():
        observation = dict(COMMON, **own)
        if observation["size"] is None:
            del observation["size"]

        def update(recipe, observation=observation, name=name):
            recipe["observation"] = observation
            recipe["provenance"] = provenance(name)
        rewrite(f"samples/models/{name}.safetensors", update)
        print(f"samples/models/{name}.safetensors: observation and provenance recorded")


WIDENED_FLAGS = ("neighbours", "sky", "correlated_noise")
PROFILE_FIT = "profile_fit"


def record_interval_scales(flag, model, predictions, catalog, source):
    """Records in posterior `model` the factors `[s68, s95]` per target by which the intervals
    of rows flagged `flag` in `outside_domain` (`neighbours`, `sky`, `correlated_noise`, or
    `neighbours+sky` for rows with both; `none`: rows with none of WIDENED_FLAGS; `profile_fit`:
    rows whose `posterior_from` says a profile fit gave them) are widened (`intervalScales[flag]`): on a run of a copy of the model without any
    intervalScales over held-out simulated cutouts (`predictions`, truths in `catalog`; the rows
    whose flags among WIDENED_FLAGS are exactly those of `flag`), each flagged row's error
    in the flow's standardised space, divided by its interval's half on the truth's side (84th
    or 16th percentile; 97.5th or 2.5th), has its 68th (95th) percentile as s68 (s95): the
    widened intervals then hold 68 % (95 %) of them."""
    import numpy as np
    with open(model, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        recipe = json.loads(json.loads(f.read(n))["__metadata__"]["astrolabe.preprocessing"])
    if flag in (recipe.get("intervalScales") or {}):
        raise SystemExit(f"{model} already records intervalScales for '{flag}': fit them on a run of the model without them")
    names, mean, std = recipe["targetNames"], recipe["targetMean"], recipe["targetStd"]
    bounds, logs = recipe["targetBounds"], set(recipe.get("logTargets", []))

    def standardized(v, k):
        v = np.asarray(v, dtype=np.float64)
        lo, hi = bounds[k]
        if names[k] in logs:
            v, lo, hi = np.log10(np.maximum(v, 1e-300)), np.log10(lo), np.log10(hi)
        p = np.clip((v - lo) / (hi - lo), 1e-6, 1 - 1e-6)
        return (np.log(p / (1 - p)) - mean[k]) / std[k]

    with open(catalog) as f:
        truth = {r["file"]: r for r in csv.DictReader(f)}
    with open(predictions) as f:
        # The rows whose widened flags are exactly those of `flag` (`neighbours+sky`: both).
        # `profile_fit`: the rows whose posterior a profile fit gave (`posterior_from`); the other flags
        # are the network's posteriors only.
        wanted = set() if flag in ("none", PROFILE_FIT) else set(flag.split("+"))
        rows = [r for r in csv.DictReader(f) if set(r["outside_domain"].split(";")) & set(WIDENED_FLAGS) == wanted
                and (r.get("posterior_from", "network") == PROFILE_FIT) == (flag == PROFILE_FIT)]
    scales = []
    for k, name in enumerate(names):
        t = standardized([float(truth[r["file"]][name]) for r in rows], k)
        col = {q: standardized([float(r[name if q == "" else f"{name}_{q}"]) for r in rows], k)
               for q in ("", "p16", "p84", "p025", "p975")}
        m, above = col[""], t >= col[""]
        pair = []
        for lo, hi, level in (("p16", "p84", 68), ("p025", "p975", 95)):
            half = np.where(above, col[hi] - m, m - col[lo])
            ratio = np.abs(t - m) / np.maximum(half, 1e-9)
            pair.append(round(float(np.percentile(ratio, level)), 3))
        scales.append(pair)

    def update(recipe):
        recipe.setdefault("intervalScales", {})[flag] = scales
        recipe.setdefault("provenance", {})[f"interval_scales_{flag}"] = (
            f"fitted on {len(rows)} rows " + ("whose posterior a profile fit gave" if flag == PROFILE_FIT else f"flagged {flag}")
            + f": {source} "
            "(scripts/record_observation.py --interval-scales)")
    rewrite(model, update)
    print(f"{model}: intervalScales['{flag}'] {dict(zip(names, scales))} from {len(rows)} rows")


def record_views(views, model):
    """Sets a posterior model's or a ResNet class model's `views` (1, 4 or 8: the encoder's
    context, or the class logits and pooled features, averaged over the image's 90° rotations,
    and with 8 their mirror images, at inference) in the architecture metadata; the tensors are
    unchanged (the average needs no new weights). Fit the interval factors of a posterior, or the
    temperature and energy threshold of a class model (`astrolabe evaluate --calibrate`),
    afterwards: the average moves them."""
    views = int(views)
    if views not in (1, 4, 8):
        raise SystemExit(f"views must be 1, 4 or 8; got {views}")

    def check(a):
        if a.get("name") not in ("resnet18_flow", "resnet18", "resnet34"):
            raise SystemExit(f"{model}: views belong to resnet18_flow, resnet18 or resnet34, not {a.get('name')}")
    set_architecture_key(model, "views", views,
                         f"{views}, set after training by scripts/record_observation.py --views (the tensors are the trained ones)",
                         check)


def record_precision(precision, model):
    """Sets the model's `inference_precision` (the architecture metadata; `float32` or
    `bfloat16`, which runs where the CPU has bfloat16 instructions and float32 elsewhere).
    The tensors are unchanged; measure the model's metrics with the precision it will run in,
    and fit interval factors or a temperature afterwards."""
    if precision not in ("float32", "bfloat16"):
        raise SystemExit(f"precision must be float32 or bfloat16; got {precision}")

    set_architecture_key(model, "inference_precision", precision,
                         f"{precision}, set after training by scripts/record_observation.py --precision (training ran in float32)")


def set_architecture_key(model, key, value, note, check=None):
    """Sets `key` of the model file's architecture metadata to `value` (after `check(architecture)`,
    which may refuse it) and records `note` as that key's provenance; the tensors are unchanged."""
    def architecture(a):
        if check:
            check(a)
        a[key] = value

    def update(recipe):
        recipe.setdefault("provenance", {})[key] = note
    rewrite(model, update, architecture)
    print(f"{model}: {key} {value}")


if __name__ == "__main__":
    import sys
    if len(sys.argv) == 7 and sys.argv[1] == "--interval-scales":
        # python3 scripts/record_observation.py --interval-scales FLAG MODEL PREDICTIONS.csv CATALOG.csv "how the data was made"
        record_interval_scales(*sys.argv[2:])
    elif len(sys.argv) == 4 and sys.argv[1] == "--views":
        # python3 scripts/record_observation.py --views 4 MODEL
        record_views(*sys.argv[2:])
    elif len(sys.argv) == 4 and sys.argv[1] == "--precision":
        # python3 scripts/record_observation.py --precision bfloat16 MODEL
        record_precision(*sys.argv[2:])
    elif len(sys.argv) == 1:
        main()
    else:
        # Anything else (--help, a typo, a wrong count of arguments) rewrites nothing.
        print(__doc__, file=sys.stderr)
        raise SystemExit(f"record_observation.py: unrecognised arguments {sys.argv[1:]}; nothing was written")
