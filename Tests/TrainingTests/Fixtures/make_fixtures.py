#!/usr/bin/env python3
"""Reference values for the Training tests: PyTorch learning-rate schedulers and
scikit-learn metrics. Run: python3 Tests/TrainingTests/Fixtures/make_fixtures.py
Rewrites training_fixtures.json beside this file.
"""
import json
import math
import os

import numpy as np
import sklearn
import torch
from sklearn import metrics

HERE = os.path.dirname(os.path.abspath(__file__))


def schedule(make, steps, base=0.1, values=None):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=base)
    sched = make(opt)
    rates = []
    for t in range(steps):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        if values is None:
            sched.step()
        else:
            sched.step(values[t])
    return rates


def schedules():
    S = torch.optim.lr_scheduler
    out = []
    out.append({"kind": "step", "stepSize": 3, "gamma": 0.5,
                "rates": schedule(lambda o: S.StepLR(o, 3, 0.5), 12)})
    out.append({"kind": "exponential", "gamma": 0.9,
                "rates": schedule(lambda o: S.ExponentialLR(o, 0.9), 12)})
    out.append({"kind": "cosine", "total": 20, "warmup": 4, "startFactor": 0.1, "minimum": 0.001,
                "rates": schedule(lambda o: S.SequentialLR(o, [S.LinearLR(o, 0.1, 1.0, 4),
                                                              S.CosineAnnealingLR(o, 16, 0.001)], [4]), 20)})
    out.append({"kind": "cosine", "total": 10, "warmup": 0, "startFactor": 1.0, "minimum": 0.0,
                "rates": schedule(lambda o: S.CosineAnnealingLR(o, 10, 0.0), 10)})
    out.append({"kind": "oneCycle", "maxRate": 0.5, "total": 25, "pctStart": 0.3,
                "rates": schedule(lambda o: S.OneCycleLR(o, 0.5, total_steps=25), 25)})
    losses = [1.0, 0.9, 0.91, 0.92, 0.93, 0.89, 0.95, 0.96, 0.97, 0.98, 0.85, 0.86, 0.87, 0.88, 0.89, 0.9]
    out.append({"kind": "plateau", "patience": 2, "factor": 0.5, "cooldown": 1, "values": losses,
                "rates": schedule(lambda o: S.ReduceLROnPlateau(o, "min", 0.5, 2, cooldown=1), len(losses),
                                  values=losses)})
    return out


def classification():
    rng = np.random.default_rng(11)
    truth = rng.integers(0, 5, 200)
    predicted = np.where(rng.random(200) < 0.7, truth, rng.integers(0, 5, 200))
    predicted[predicted == 3] = 2  # class 3 never predicted: zero_division
    p, r, f, _ = metrics.precision_recall_fscore_support(truth, predicted, labels=range(5), zero_division=0)
    binary = rng.integers(0, 2, 300)
    scores = np.round(binary * 0.8 + rng.normal(0, 0.5, 300), 2)  # rounding makes ties
    fpr, tpr, thr = metrics.roc_curve(binary, scores)
    at1 = float(max(t for f_, t in zip(fpr, tpr) if f_ <= 0.01))
    at10 = float(max(t for f_, t in zip(fpr, tpr) if f_ <= 0.10))
    return {
        "truth": truth.tolist(), "predicted": predicted.tolist(),
        "accuracy": metrics.accuracy_score(truth, predicted),
        "confusion": metrics.confusion_matrix(truth, predicted, labels=range(5)).tolist(),
        "precision": p.tolist(), "recall": r.tolist(), "f1": f.tolist(),
        "macroF1": metrics.f1_score(truth, predicted, average="macro", zero_division=0),
        "binaryTruth": binary.tolist(), "scores": scores.tolist(),
        "auc": metrics.roc_auc_score(binary, scores), "tprAt1": at1, "tprAt10": at10,
    }


def regression():
    rng = np.random.default_rng(5)
    truth = rng.uniform(0.5, 6, 150)
    predicted = truth + rng.normal(0, 0.2, 150)
    predicted[:5] += 5  # outliers: NMAD ignores them, RMSE does not
    residual = predicted - truth
    return {
        "truth": truth.tolist(), "predicted": predicted.tolist(),
        "rmse": math.sqrt(metrics.mean_squared_error(truth, predicted)),
        "mae": metrics.mean_absolute_error(truth, predicted),
        "r2": metrics.r2_score(truth, predicted),
        "nmad": float(1.4826 * np.median(np.abs(residual - np.median(residual)))),
    }


def main():
    doc = {
        "generator": "Tests/TrainingTests/Fixtures/make_fixtures.py",
        "versions": {"torch": torch.__version__, "sklearn": sklearn.__version__, "numpy": np.__version__},
        "schedules": schedules(), "classification": classification(), "regression": regression(),
    }
    with open(os.path.join(HERE, "training_fixtures.json"), "w") as f:
        json.dump(doc, f)


if __name__ == "__main__":
    main()
