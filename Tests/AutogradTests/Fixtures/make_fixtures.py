#!/usr/bin/env python3
"""Reference values for AutogradTests, computed with PyTorch (float32, CPU).

Run from this folder: `python3 make_fixtures.py`. Writes `reference.safetensors`: for every
case `<case>.<name>` tensors (inputs, a fixed output gradient `gout`, the forward result `y`
and the input gradients `d<input>`), and in the metadata a JSON string per case with its
parameters. Integer labels are stored as float32.
"""
import json

import numpy as np
import safetensors
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(20261127)
tensors, meta = {}, {"torch": torch.__version__, "numpy": np.__version__,
                     "safetensors": safetensors.__version__}


def case(name, params, inputs, fn, grad_inputs=None):
    """inputs: name -> tensor; fn(**inputs) -> y. Gradients for float inputs in grad_inputs."""
    grad_inputs = list(inputs) if grad_inputs is None else grad_inputs
    leaves = {k: v.clone().requires_grad_(k in grad_inputs) for k, v in inputs.items()}
    y = fn(**leaves)
    gout = torch.randn_like(y)
    y.backward(gout)
    for k, v in inputs.items():
        tensors[f"{name}.{k}"] = v.float().clone().contiguous()
    tensors[f"{name}.y"] = y.detach().contiguous()
    tensors[f"{name}.gout"] = gout.contiguous()
    for k in grad_inputs:
        tensors[f"{name}.d{k}"] = leaves[k].grad.contiguous()
    meta[name] = json.dumps(params)


r = torch.randn

# Convolution: random shapes, strides, paddings (explicit and "same"), dilations.
conv_cases = [
    dict(n=2, c=3, h=9, w=8, f=4, k=(3, 3), stride=(1, 1), padding=(1, 1), dilation=(1, 1), bias=True),
    dict(n=3, c=2, h=11, w=10, f=5, k=(3, 2), stride=(2, 3), padding=(2, 1), dilation=(1, 1), bias=True),
    dict(n=2, c=4, h=10, w=9, f=3, k=(3, 3), stride=(1, 1), padding="same", dilation=(2, 1), bias=False),
    dict(n=1, c=3, h=12, w=12, f=6, k=(7, 7), stride=(2, 2), padding=(3, 3), dilation=(1, 1), bias=False),
    dict(n=4, c=5, h=6, w=7, f=3, k=(1, 1), stride=(1, 1), padding=(0, 0), dilation=(1, 1), bias=True),
    dict(n=2, c=4, h=9, w=9, f=4, k=(1, 1), stride=(2, 2), padding=(0, 0), dilation=(1, 1), bias=False),
    dict(n=5, c=3, h=4, w=4, f=8, k=(3, 3), stride=(1, 1), padding=(1, 1), dilation=(1, 1), bias=True),
    dict(n=2, c=2, h=8, w=8, f=3, k=(4, 4), stride=(1, 1), padding="same", dilation=(1, 1), bias=True),
]
for i, p in enumerate(conv_cases):
    inputs = dict(x=r(p["n"], p["c"], p["h"], p["w"]), w=r(p["f"], p["c"], *p["k"]) * 0.3)
    if p["bias"]:
        inputs["b"] = r(p["f"])
    case(f"conv{i}", p, inputs, lambda x, w, b=None, p=p: F.conv2d(
        x, w, b, stride=p["stride"], padding=p["padding"], dilation=p["dilation"]))

tconv_cases = [
    dict(n=2, cin=4, h=5, w=5, cout=3, k=(2, 2), stride=(2, 2), padding=(0, 0), output_padding=(0, 0), dilation=(1, 1), bias=True),
    dict(n=3, cin=3, h=4, w=6, cout=2, k=(3, 3), stride=(2, 1), padding=(1, 1), output_padding=(1, 0), dilation=(1, 1), bias=True),
    dict(n=2, cin=2, h=5, w=4, cout=4, k=(3, 2), stride=(1, 2), padding=(0, 1), output_padding=(0, 1), dilation=(2, 1), bias=False),
]
for i, p in enumerate(tconv_cases):
    inputs = dict(x=r(p["n"], p["cin"], p["h"], p["w"]), w=r(p["cin"], p["cout"], *p["k"]) * 0.3)
    if p["bias"]:
        inputs["b"] = r(p["cout"])
    case(f"tconv{i}", p, inputs, lambda x, w, b=None, p=p: F.conv_transpose2d(
        x, w, b, stride=p["stride"], padding=p["padding"], output_padding=p["output_padding"],
        dilation=p["dilation"]))

pool_cases = [
    dict(kind="max", n=2, c=3, h=8, w=8, k=(2, 2), stride=(2, 2), padding=(0, 0)),
    dict(kind="max", n=2, c=2, h=9, w=7, k=(3, 3), stride=(2, 2), padding=(1, 1)),
    dict(kind="avg", n=2, c=3, h=8, w=6, k=(2, 2), stride=(2, 2), padding=(0, 0)),
    dict(kind="avg", n=1, c=2, h=7, w=9, k=(3, 2), stride=(2, 1), padding=(1, 1)),
]
for i, p in enumerate(pool_cases):
    fn = F.max_pool2d if p["kind"] == "max" else F.avg_pool2d
    case(f"pool{i}", p, dict(x=r(p["n"], p["c"], p["h"], p["w"])),
         lambda x, p=p, fn=fn: fn(x, p["k"], p["stride"], p["padding"]))

for i, p in enumerate([dict(mode="nearest", scale=2), dict(mode="bilinear", scale=2), dict(mode="bilinear", scale=3)]):
    case(f"upsample{i}", p, dict(x=r(2, 2, 4, 5)), lambda x, p=p: F.interpolate(
        x, scale_factor=p["scale"], mode=p["mode"], **({} if p["mode"] == "nearest" else dict(align_corners=False))))

# Batch norm: training (batch statistics, running stats updated) and inference.
for i, p in enumerate([dict(training=True, shape=[4, 3, 5, 6]), dict(training=False, shape=[3, 4, 3, 3]),
                       dict(training=True, shape=[6, 5])]):
    c = p["shape"][1]
    rm, rv = r(c) * 0.1, torch.rand(c) + 0.5
    tensors[f"bn{i}.rm"], tensors[f"bn{i}.rv"] = rm.clone(), rv.clone()
    x = r(*p["shape"]) * 2 + 1
    case(f"bn{i}", p, dict(x=x, gamma=torch.rand(c) + 0.5, beta=r(c)),
         lambda x, gamma, beta, p=p, rm=rm, rv=rv: F.batch_norm(
             x, rm, rv, gamma, beta, training=p["training"], momentum=0.1, eps=1e-5))
    tensors[f"bn{i}.rm_after"], tensors[f"bn{i}.rv_after"] = rm, rv

for i, p in enumerate([dict(axis=1, log=False), dict(axis=1, log=True), dict(axis=-1, log=True)]):
    case(f"softmax{i}", p, dict(x=r(3, 4, 5) * 3), lambda x, p=p: (F.log_softmax if p["log"] else F.softmax)(x, dim=p["axis"]))

# Losses.
logits, labels = r(6, 5), torch.randint(0, 5, (6,))
cw = torch.rand(5) + 0.5
case("ce_plain", {}, dict(logits=logits, labels=labels.float()),
     lambda logits, labels: F.cross_entropy(logits, labels.long()), ["logits"])
case("ce_weighted", dict(label_smoothing=0.1), dict(logits=logits, labels=labels.float(), weight=cw),
     lambda logits, labels, weight: F.cross_entropy(logits, labels.long(), weight=weight, label_smoothing=0.1), ["logits"])
probs = torch.softmax(r(6, 5), 1)
case("ce_probs", dict(label_smoothing=0.05), dict(logits=logits, probs=probs, weight=cw),
     lambda logits, probs, weight: F.cross_entropy(logits, probs, weight=weight, label_smoothing=0.05), ["logits"])
pix_logits, pix_labels = r(2, 3, 4, 5), torch.randint(0, 3, (2, 4, 5))
case("ce_pixel", dict(label_smoothing=0.1), dict(logits=pix_logits, labels=pix_labels.float(), weight=torch.tensor([0.5, 1.0, 2.0])),
     lambda logits, labels, weight: F.cross_entropy(logits, labels.long(), weight=weight, label_smoothing=0.1), ["logits"])
bl, bt = r(4, 3) * 3, (torch.rand(4, 3) > 0.5).float()
case("bce", dict(pos_weight=1.0), dict(logits=bl, targets=bt),
     lambda logits, targets: F.binary_cross_entropy_with_logits(logits, targets), ["logits"])
case("bce_pw", dict(pos_weight=2.5), dict(logits=bl, targets=bt),
     lambda logits, targets: F.binary_cross_entropy_with_logits(logits, targets, pos_weight=torch.tensor(2.5)), ["logits"])
pr, tg = r(4, 5), r(4, 5)
case("mse", {}, dict(p=pr, t=tg), lambda p, t: F.mse_loss(p, t), ["p"])
case("mae", {}, dict(p=pr, t=tg), lambda p, t: F.l1_loss(p, t), ["p"])
case("huber", dict(delta=0.7), dict(p=pr, t=tg), lambda p, t: F.huber_loss(p, t, delta=0.7), ["p"])
case("gnll", {}, dict(mu=pr, logvar=r(4, 5) * 0.5, t=tg),
     lambda mu, logvar, t: F.gaussian_nll_loss(mu, t, logvar.exp(), eps=0.0), ["mu", "logvar"])

act_x = r(3, 7) * 2
for name, fn in [("gelu", F.gelu), ("elu", F.elu), ("softplus", F.softplus), ("sigmoid", torch.sigmoid),
                 ("tanh", torch.tanh), ("leaky_relu", lambda x: F.leaky_relu(x, 0.1))]:
    case(f"act_{name}", {}, dict(x=act_x), lambda x, fn=fn: fn(x))

# Optimisers: a few steps on f(p) = sum(c * p^2) + sum(p) from a fixed start.
opt_p0, opt_c = r(7), torch.rand(7) + 0.5
tensors["opt.p0"], tensors["opt.c"] = opt_p0.clone(), opt_c.clone()
for name, make in [
    ("sgd", lambda ps: torch.optim.SGD(ps, lr=0.1)),
    ("sgd_momentum", lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=0.01)),
    ("sgd_nesterov", lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True)),
    ("adam", lambda ps: torch.optim.Adam(ps, lr=0.1)),
    ("adam_l2", lambda ps: torch.optim.Adam(ps, lr=0.05, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1)),
    ("adamw", lambda ps: torch.optim.AdamW(ps, lr=0.05, weight_decay=0.1)),
]:
    p = opt_p0.clone().requires_grad_()
    opt = make([p])
    for _ in range(5):
        opt.zero_grad()
        (opt_c * p * p + p).sum().backward()
        opt.step()
    tensors[f"opt.{name}"] = p.detach().clone()

# Outlier exposure (Loss.crossEntropy's outsideWeight): label -1 rows target the uniform
# distribution with weight lam; the mean is weighted by the class weights and lam.
def outlier_exposure(logits, labels, weight, lam=0.5):
    inside = labels >= 0
    log_p = F.log_softmax(logits, 1)
    known = labels[inside].long()
    total = F.nll_loss(log_p[inside], known, weight=weight, reduction="sum") - lam * log_p[~inside].mean(1).sum()
    return total / (weight[known].sum() + lam * (~inside).sum())


oe_labels = torch.tensor([2., -1., 0., 4., -1., 1.])
case("ce_outside", dict(outside_weight=0.5), dict(logits=r(6, 5), labels=oe_labels, weight=cw),
     outlier_exposure, ["logits"])

save_file(tensors, "reference.safetensors", metadata=meta)
print(f"wrote {len(tensors)} tensors, torch {torch.__version__}")
