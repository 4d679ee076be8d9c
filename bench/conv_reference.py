#!/usr/bin/env python3
"""PyTorch (CPU) timings of the conv shapes that `astrolabe bench --workload conv` measures.

Same shapes, same protocol: 2 threads, one warm-up round, median (and minimum) of `reps` rounds; the
forward is timed alone, the backward is `y.backward(gout)` into fresh `.grad` of the input
and the weight (no bias). Prints one JSON object per line.

    python3 bench/conv_reference.py [--quick]
"""
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F

torch.set_num_threads(2)
REPS = 3 if "--quick" in sys.argv else 10


def shapes():
    def r(layer, c, f, size, k, s, p):
        return dict(net="resnet18", layer=layer, batch=32, c=c, f=f, size=size, k=k, stride=s, padding=p, transposed=False)

    def u(layer, c, f, size, k=3, transposed=False):
        return dict(net="unet", layer=layer, batch=8, c=c, f=f, size=size, k=2 if transposed else k,
                    stride=2 if transposed else 1, padding=1 if k == 3 and not transposed else 0, transposed=transposed)

    return [
        r("conv1", 3, 64, 64, 7, 2, 3), r("layer1.conv", 64, 64, 16, 3, 1, 1),
        r("layer2.0.conv1", 64, 128, 16, 3, 2, 1), r("layer2.conv", 128, 128, 8, 3, 1, 1), r("layer2.0.downsample", 64, 128, 16, 1, 2, 0),
        r("layer3.0.conv1", 128, 256, 8, 3, 2, 1), r("layer3.conv", 256, 256, 4, 3, 1, 1), r("layer3.0.downsample", 128, 256, 8, 1, 2, 0),
        r("layer4.0.conv1", 256, 512, 4, 3, 2, 1), r("layer4.conv", 512, 512, 2, 3, 1, 1), r("layer4.0.downsample", 256, 512, 4, 1, 2, 0),
        u("down0.conv1", 1, 16, 256), u("down0.conv2", 16, 16, 256), u("down1.conv1", 16, 32, 128), u("down1.conv2", 32, 32, 128),
        u("down2.conv1", 32, 64, 64), u("down2.conv2", 64, 64, 64), u("down3.conv1", 64, 128, 32), u("down3.conv2", 128, 128, 32),
        u("bottleneck.conv1", 128, 256, 16), u("bottleneck.conv2", 256, 256, 16),
        u("up0", 256, 128, 16, transposed=True), u("up_conv0.conv1", 256, 128, 32),
        u("up3", 32, 16, 128, transposed=True), u("up_conv3.conv1", 32, 16, 256), u("head", 16, 3, 256, 1),
    ]


def elementwise():
    """The memory-bound ops of unet's largest activation, as `astrolabe bench --workload conv`."""
    x = torch.randn(8, 16, 256, 256, requires_grad=True)
    gamma, beta = torch.ones(16, requires_grad=True), torch.zeros(16, requires_grad=True)
    rm, rv = torch.zeros(16), torch.ones(16)
    ops = [("relu", lambda: F.relu(x)),
           ("batchNorm", lambda: F.batch_norm(x, rm, rv, gamma, beta, training=True)),
           ("maxPool2d", lambda: F.max_pool2d(x, 2)),
           ("add", lambda: x + x)]
    for name, op in ops:
        gout = torch.randn_like(op())
        tf, tb = [], []
        for rep in range(REPS + 1):
            t0 = time.perf_counter()
            y = op()
            t1 = time.perf_counter()
            x.grad = gamma.grad = beta.grad = None
            t2 = time.perf_counter()
            y.backward(gout)
            t3 = time.perf_counter()
            if rep > 0:
                tf.append((t1 - t0) * 1e3)
                tb.append((t3 - t2) * 1e3)
        print(json.dumps(dict(workload="conv", impl="pytorch", kernel=name, shape="8x16x256x256", threads=torch.get_num_threads(),
                              forward_ms=round(statistics.median(tf), 2), backward_ms=round(statistics.median(tb), 2),
                              forward_min_ms=round(min(tf), 2), backward_min_ms=round(min(tb), 2)), sort_keys=True), flush=True)


def main():
    elementwise()
    for s in shapes():
        x = torch.randn(s["batch"], s["c"], s["size"], s["size"], requires_grad=True)
        wshape = (s["c"], s["f"], s["k"], s["k"]) if s["transposed"] else (s["f"], s["c"], s["k"], s["k"])
        w = (torch.randn(*wshape) * 0.05).requires_grad_()
        if s["transposed"]:
            fwd = lambda: F.conv_transpose2d(x, w, stride=s["stride"])
            out = s["size"] * s["stride"]
            pixels = s["size"] ** 2
        else:
            fwd = lambda: F.conv2d(x, w, stride=s["stride"], padding=s["padding"])
            out = (s["size"] + 2 * s["padding"] - s["k"]) // s["stride"] + 1
            pixels = out ** 2
        flops = 2.0 * s["batch"] * s["c"] * s["f"] * s["k"] ** 2 * pixels
        gout = torch.randn_like(fwd())
        tf, tb = [], []
        for rep in range(REPS + 1):
            t0 = time.perf_counter()
            y = fwd()
            t1 = time.perf_counter()
            x.grad = None
            w.grad = None
            t2 = time.perf_counter()
            y.backward(gout)
            t3 = time.perf_counter()
            if rep > 0:
                tf.append(t1 - t0)
                tb.append(t3 - t2)
        f, b = statistics.median(tf), statistics.median(tb)
        shape = f"{s['batch']}x{s['c']}x{s['size']}x{s['size']}->{s['f']} k{s['k']} s{s['stride']}" + (" transposed" if s["transposed"] else "")
        print(json.dumps(dict(workload="conv", impl="pytorch", net=s["net"], layer=s["layer"], shape=shape,
                              forward_ms=round(f * 1e3, 2), forward_gflops=round(flops / f / 1e9, 1),
                              backward_ms=round(b * 1e3, 2), backward_gflops=round(2 * flops / b / 1e9, 1),
                              forward_min_ms=round(min(tf) * 1e3, 2), backward_min_ms=round(min(tb) * 1e3, 2),
                              threads=torch.get_num_threads(), torch=torch.__version__,
                              mkldnn=torch.backends.mkldnn.is_available()), sort_keys=True), flush=True)


if __name__ == "__main__":
    main()
