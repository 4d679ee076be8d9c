#!/usr/bin/env python3
"""Reference values for the flow tests (FlowTests.swift) from the PyTorch flow libraries:
nflows' rational-quadratic spline (the bare transform and PiecewiseRationalQuadraticCouplingTransform
with a context) and zuko's affine coupling (GeneralCouplingTransform with MonotonicAffineTransform),
with the weights, inputs, outputs, log-determinants, inverses and the gradients of
sum(y * r) + sum(logdet * q) with respect to inputs, context and every weight.
Run: python3 Tests/NNTests/Fixtures/make_flow_fixtures.py   (pip install zuko; pip install --no-deps nflows)
Rewrites flow_fixtures.json beside this file.
"""
import functools
import importlib.metadata
import json
import math
import os
import warnings


import torch
import zuko
from nflows.transforms.coupling import PiecewiseRationalQuadraticCouplingTransform
from nflows.transforms.splines.rational_quadratic import unconstrained_rational_quadratic_spline
from zuko.flows.coupling import GeneralCouplingTransform
from zuko.transforms import MonotonicAffineTransform

HERE = os.path.dirname(os.path.abspath(__file__))
torch.set_default_dtype(torch.float64)


def t(x):
    """A tensor as {"shape", "data"} (float32 values, as the Swift side holds them)."""
    x = x.detach().to(torch.float32)
    return {"shape": list(x.shape), "data": x.reshape(-1).tolist()}


def f32(x):
    """Rounds to float32 and back, so the reference runs on exactly the values Swift reads."""
    return x.to(torch.float32).to(torch.float64)


def spline():
    """The bare spline: 16 elements, 5 bins, tail bound 3, some inputs in the tails."""
    g = torch.Generator().manual_seed(1)
    m, k, bound = 16, 5, 3.0
    x = f32(torch.linspace(-3.8, 3.6, m)).requires_grad_()
    uw = f32(torch.randn(m, k, generator=g) * 1.5).requires_grad_()
    uh = f32(torch.randn(m, k, generator=g) * 1.5).requires_grad_()
    ud = f32(torch.randn(m, k - 1, generator=g) * 1.5).requires_grad_()
    r = f32(torch.randn(m, generator=g))
    q = f32(torch.randn(m, generator=g))
    y, ld = unconstrained_rational_quadratic_spline(x, uw, uh, ud, inverse=False, tails="linear", tail_bound=bound)
    (y * r + ld * q).sum().backward()
    xb, ldb = unconstrained_rational_quadratic_spline(y.detach(), uw, uh, ud, inverse=True, tails="linear",
                                                      tail_bound=bound)
    return {"bins": k, "tailBound": bound, "x": t(x), "widths": t(uw), "heights": t(uh), "derivatives": t(ud),
            "r": t(r), "q": t(q), "y": t(y), "logdet": t(ld), "inverse": t(xb), "inverseLogdet": t(ldb),
            "gradX": t(x.grad), "gradWidths": t(uw.grad), "gradHeights": t(uh.grad), "gradDerivatives": t(ud.grad)}


class ContextMLP(torch.nn.Module):
    """nflows' transform net: cat(identity features, context) -> Linear/ReLU/Linear/ReLU/Linear."""

    def __init__(self, inputs, outputs, hidden):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(inputs, hidden), torch.nn.ReLU(),
                                       torch.nn.Linear(hidden, hidden), torch.nn.ReLU(),
                                       torch.nn.Linear(hidden, outputs))

    def forward(self, x, context=None):
        return self.net(x if context is None else torch.cat([x, context], dim=-1))


def round_parameters(module, last_scale):
    """Float32-rounded weights; the last layer scaled up so that bins and scales vary a lot."""
    with torch.no_grad():
        layers = [m for m in module.modules() if isinstance(getattr(m, "weight", None), torch.Tensor) and m.weight.dim() == 2]
        layers[-1].weight.mul_(last_scale)
        layers[-1].bias.mul_(last_scale)
        for p in module.parameters():
            p.copy_(f32(p))


def gradients_and_weights(module, prefix):
    """Weights and their gradients under Swift's keys (conditioner.0.weight, ...)."""
    weights, grads = {}, {}
    for name, p in module.named_parameters():
        key = "conditioner." + name[len(prefix):]
        weights[key] = t(p)
        grads[key] = t(p.grad)
    return weights, grads


def spline_coupling():
    """nflows PiecewiseRationalQuadraticCouplingTransform: 3 features (0 and 2 transformed),
    context 2, hidden 8, 4 bins, tail bound 2.5."""
    torch.manual_seed(2)
    g = torch.Generator().manual_seed(3)
    mask = [1, 0, 1]
    bins, bound = 4, 2.5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no softmax rescaling: the net has no hidden_features
        layer = PiecewiseRationalQuadraticCouplingTransform(
            mask=torch.tensor(mask), transform_net_create_fn=lambda i, o: ContextMLP(i + 2, o, 8),
            num_bins=bins, tails="linear", tail_bound=bound)
        round_parameters(layer.transform_net, 3.0)
        x = f32(torch.randn(6, 3, generator=g) * 1.4).requires_grad_()
        c = f32(torch.randn(6, 2, generator=g)).requires_grad_()
        r = f32(torch.randn(6, 3, generator=g))
        q = f32(torch.randn(6, generator=g))
        y, ld = layer(x, context=c)
        (y * r).sum().add((ld * q).sum()).backward()
        xb, _ = layer.inverse(y.detach(), context=c)
    weights, grads = gradients_and_weights(layer.transform_net, "net.")
    return {"mask": [m > 0 for m in mask], "bins": bins, "tailBound": bound, "hidden": [8, 8], "weights": weights,
            "x": t(x), "context": t(c), "r": t(r), "q": t(q), "y": t(y), "logdet": t(ld), "inverse": t(xb),
            "gradX": t(x.grad), "gradContext": t(c.grad), "gradWeights": grads}


def affine_coupling():
    """zuko GeneralCouplingTransform with MonotonicAffineTransform: 3 features (feature 1
    transformed), context 2, hidden 8, log-scale bound 2 (slope e^-2)."""
    torch.manual_seed(4)
    g = torch.Generator().manual_seed(5)
    bound = 2.0
    conditioning = torch.tensor([True, False, True])
    layer = GeneralCouplingTransform(features=3, context=2, mask=conditioning,
                                     univariate=functools.partial(MonotonicAffineTransform, slope=math.exp(-bound)),
                                     hidden_features=(8, 8))
    round_parameters(layer.hyper, 3.0)
    x = f32(torch.randn(6, 3, generator=g)).requires_grad_()
    c = f32(torch.randn(6, 2, generator=g)).requires_grad_()
    r = f32(torch.randn(6, 3, generator=g))
    q = f32(torch.randn(6, generator=g))
    transform = layer(c)
    y, ld = transform.call_and_ladj(x)
    (y * r).sum().add((ld * q).sum()).backward()
    xb = transform.inv(y.detach())
    weights, grads = gradients_and_weights(layer.hyper, "")
    return {"mask": [not b for b in conditioning.tolist()], "logScaleBound": bound, "hidden": [8, 8],
            "weights": weights, "x": t(x), "context": t(c), "r": t(r), "q": t(q), "y": t(y), "logdet": t(ld),
            "inverse": t(xb), "gradX": t(x.grad), "gradContext": t(c.grad), "gradWeights": grads}


def main():
    doc = {
        "generator": "Tests/NNTests/Fixtures/make_flow_fixtures.py",
        "versions": {"torch": torch.__version__, "zuko": zuko.__version__, "nflows": importlib.metadata.version("nflows")},
        "spline": spline(),
        "splineCoupling": spline_coupling(),
        "affineCoupling": affine_coupling(),
    }
    with open(os.path.join(HERE, "flow_fixtures.json"), "w") as f:
        json.dump(doc, f)


if __name__ == "__main__":
    main()
