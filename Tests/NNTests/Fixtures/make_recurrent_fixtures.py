#!/usr/bin/env python3
"""Reference outputs of torch.nn.GRU and torch.nn.LSTM (batch_first=True) for RecurrentTests.swift.

Versions used for the committed recurrent.json: torch 2.15.0 (CPU); also stored in the file.
Run from anywhere:  python3 Tests/NNTests/Fixtures/make_recurrent_fixtures.py
Rewrites recurrent.json beside this file. Seeds are fixed.

Each case: the module's options, its state_dict (PyTorch's keys, row-major flat lists with
shapes; weights, inputs and directions rounded to 6 significant digits before the run, results
written with 9), an input [N, T, F], optional lengths (run as a packed sequence with
enforce_sorted=False, outputs padded back to T with zeros), and
  output  [N, T, H * directions], h_n (and c_n for the LSTM) [layers * directions, N, H],
  grad.input and grad.<key>: gradients of sum(output * direction) + sum(h_n * direction_h)
  (+ sum(c_n * direction_c)), the directions stored too.
bench_gru_keys: the state_dict keys and shapes of BENCH.md's gru (reference_models.LightCurveGRU).
Gradients are written with 7 significant digits. Hidden 16 (the last two cases) runs the AVX-512
kernels where the CPU has them; the other sizes run the portable Swift loops.
"""
import json
import os

import sys

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "..", "shared", "spec"))
sys.path.insert(0, "/work/shared/spec")
import reference_models as ref  # noqa: E402

CASES = [
    # (name, cell, features, hidden, layers, bidirectional, batch, steps, lengths)
    ("gru_one_layer", "gru", 3, 5, 1, False, 2, 6, None),
    ("gru_bidirectional", "gru", 3, 5, 1, True, 2, 6, None),
    ("gru_two_layers", "gru", 3, 5, 2, False, 3, 5, None),
    ("gru_lengths", "gru", 3, 5, 1, False, 4, 7, [7, 3, 5, 1]),
    ("gru_two_layers_bidirectional_lengths", "gru", 4, 6, 2, True, 3, 6, [4, 6, 2]),
    ("lstm_one_layer", "lstm", 3, 5, 1, False, 2, 6, None),
    ("lstm_bidirectional", "lstm", 3, 5, 1, True, 2, 6, None),
    ("lstm_two_layers", "lstm", 3, 5, 2, False, 3, 5, None),
    ("lstm_lengths", "lstm", 3, 5, 1, False, 4, 7, [7, 3, 5, 1]),
    ("lstm_two_layers_bidirectional_lengths", "lstm", 4, 16, 2, True, 3, 6, [4, 6, 2]),
    ("gru_bidirectional_lengths_hidden_16", "gru", 3, 16, 1, True, 3, 5, [5, 2, 4]),
]


def flat(t, digits=9):
    """Row-major values with `digits` significant digits (9: float32 exactly)."""
    return {"shape": list(t.shape), "data": [float(f"{v:.{digits}g}") for v in t.detach().reshape(-1).tolist()]}


def rounded(t):
    """`t` at 6 significant digits, so that the values written to the file are the ones run."""
    return torch.tensor([float(f"{v:.6g}") for v in t.reshape(-1).tolist()]).reshape(t.shape)


def case(name, cell, features, hidden, layers, bidirectional, batch, steps, lengths, seed):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    cls = nn.GRU if cell == "gru" else nn.LSTM
    module = cls(features, hidden, num_layers=layers, bidirectional=bidirectional, batch_first=True)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(rounded(p))
    x = rounded(torch.randn(batch, steps, features, generator=g)).requires_grad_(True)
    if lengths is None:
        out, state = module(x)
    else:
        packed = pack_padded_sequence(x, torch.tensor(lengths), batch_first=True, enforce_sorted=False)
        out, state = module(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=steps)
    h_n, c_n = (state, None) if cell == "gru" else state
    direction = rounded(torch.randn(out.shape, generator=g))
    direction_h = rounded(torch.randn(h_n.shape, generator=g))
    loss = (out * direction).sum() + (h_n * direction_h).sum()
    result = {"name": name, "cell": cell, "features": features, "hidden": hidden, "layers": layers,
              "bidirectional": bidirectional, "lengths": lengths, "input": flat(x, 6),
              "state_dict": {k: flat(v, 6) for k, v in module.state_dict().items()},
              "output": flat(out), "h_n": flat(h_n), "direction": flat(direction, 6), "direction_h": flat(direction_h, 6)}
    if c_n is not None:
        direction_c = rounded(torch.randn(c_n.shape, generator=g))
        loss = loss + (c_n * direction_c).sum()
        result.update(c_n=flat(c_n), direction_c=flat(direction_c, 6))
    loss.backward()
    result["grad.input"] = flat(x.grad, 7)
    for k, p in module.named_parameters():
        result["grad." + k] = flat(p.grad, 7)
    return result


def main():
    doc = {"generator": "Tests/NNTests/Fixtures/make_recurrent_fixtures.py",
           "versions": {"torch": torch.__version__},
           "cases": [case(*c, seed=100 + i) for i, c in enumerate(CASES)],
           "bench_gru_keys": {k: list(v.shape) for k, v in ref.LightCurveGRU().state_dict().items()}}
    with open(os.path.join(HERE, "recurrent.json"), "w") as f:
        json.dump(doc, f)


if __name__ == "__main__":
    main()
