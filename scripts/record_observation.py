#!/usr/bin/env python3
"""Records, in the shipped model files, the observation each model was trained for and
its provenance, without retraining: only the `astrolabe.preprocessing` metadata (the
recipe JSON) of samples/models/*.safetensors is rewritten; the tensors are copied byte
for byte. The observation is TASKS.md's common observation model, which
`astrolabe simulate` follows and pipelines/train-*.yaml record for new trainings.

Run from the repository root: python3 scripts/record_observation.py
(or, for a class model's energy threshold, --energy-threshold MODEL PREDICTIONS.csv SOURCE).
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


def rewrite(path, update):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header["__metadata__"]
    recipe = json.loads(meta["astrolabe.preprocessing"])
    update(recipe)
    meta["astrolabe.preprocessing"] = json.dumps(recipe, sort_keys=True, separators=(",", ":"))
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        f.write(data)
    os.replace(tmp, path)


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


def record_energy_threshold(model, predictions, source):
    """Records in `model` the 95th percentile of the `ood_energy` column of `predictions`
    (a run of the model on held-out simulated data) as `oodEnergyThreshold`, and `source`
    (how that data was made) in the provenance."""
    import numpy as np
    with open(predictions) as f:
        energies = np.array([float(r["ood_energy"]) for r in csv.DictReader(f)])
    threshold = round(float(np.percentile(energies, 95)), 4)

    def update(recipe):
        recipe["oodEnergyThreshold"] = threshold
        recipe.setdefault("provenance", {})["ood_energy_threshold"] = (
            f"95th percentile of {len(energies)} energies: {source} (scripts/record_observation.py --energy-threshold)")
    rewrite(model, update)
    print(f"{model}: oodEnergyThreshold {threshold} from {len(energies)} images")


if __name__ == "__main__":
    import sys
    if len(sys.argv) == 5 and sys.argv[1] == "--energy-threshold":
        # python3 scripts/record_observation.py --energy-threshold MODEL PREDICTIONS.csv "how the data was made"
        record_energy_threshold(*sys.argv[2:])
    else:
        main()
