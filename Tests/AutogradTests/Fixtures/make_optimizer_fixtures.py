#!/usr/bin/env python3
"""Reference trajectories for the optimiser tests (OptimizerTests.swift): 20 steps of each
torch.optim optimiser. Run: python3 Tests/AutogradTests/Fixtures/make_optimizer_fixtures.py
Rewrites optimizers.json beside this file.
"""
import json
import os

import torch

HERE = os.path.dirname(os.path.abspath(__file__))


def optimizers():
    """20 steps of each torch.optim optimizer on a fixed non-quadratic problem:
    the gradient of p is 2 (p - t) + 0.3 sin(3 p), assigned by hand."""
    start = [0.5, -1.2, 2.0, 0.1, -0.3, 1.7]
    target = [1.0, 0.0, -1.0, 0.5, 0.25, 2.0]
    cases = [
        ("sgd", {"lr": 0.05}, {}),
        ("sgd", {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.01}, {}),
        ("sgd", {"lr": 0.05, "momentum": 0.9, "nesterov": True}, {}),
        ("adam", {"lr": 0.05}, {}),
        ("adam", {"lr": 0.05, "weight_decay": 0.1}, {}),
        ("adamw", {"lr": 0.05}, {}),
        ("adamw", {"lr": 0.05, "weight_decay": 0.3, "betas": (0.8, 0.95)}, {}),
        ("rmsprop", {"lr": 0.01}, {}),
        ("rmsprop", {"lr": 0.01, "momentum": 0.5, "weight_decay": 0.05}, {}),
    ]
    out = []
    t = torch.tensor(target)
    for name, kwargs, _ in cases:
        p = torch.nn.Parameter(torch.tensor(start))
        cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
               "rmsprop": torch.optim.RMSprop}[name]
        opt = cls([p], **kwargs)
        trajectory = []
        for _ in range(20):
            with torch.no_grad():
                p.grad = 2 * (p - t) + 0.3 * torch.sin(3 * p)
            opt.step()
            trajectory.append(p.detach().tolist())
        spec = {k: (list(v) if isinstance(v, tuple) else v) for k, v in kwargs.items()}
        out.append({"name": name, "options": spec, "start": start, "target": target, "trajectory": trajectory})
    return out


def main():
    doc = {
        "generator": "Tests/AutogradTests/Fixtures/make_optimizer_fixtures.py",
        "versions": {"torch": torch.__version__},
        "optimizers": optimizers(),
    }
    with open(os.path.join(HERE, "optimizers.json"), "w") as f:
        json.dump(doc, f)


if __name__ == "__main__":
    main()
