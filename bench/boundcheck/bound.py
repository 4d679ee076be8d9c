#!/usr/bin/env python3
"""Independent check of the conv-share bound (docs/benchmarks.md). Per net (cnn, resnet18 at BENCH.md's
inference batch 64), torch 2 threads, traced + frozen + optimize_for_inference:
  A  t_frozen: per-pass wall time of the frozen module (>=20 passes after warm-up).
  B2 in-network per-node timing: the frozen graph re-executed node by node in Python (same ops:
     torch.mkldnn_convolution / aten ops on the same mkldnn tensors and constant mkldnn weights),
     perf_counter around every node; conv = sum over prim::mkldnn_convolution nodes.
  B3 isolated: every conv node re-run alone on its captured in-network input (same layout) with the
     frozen weight; and with the weight pre-reordered to the primitive's format (no per-call reorder).
  B1 oneDNN's own exec times (ONEDNN verbose) of the primitives inside the frozen module
     (subprocess: python3 bound.py --verbose NET).
Each sample carries a PSI cpu 'some' stall flag (other processes competing); 'quiet' stats use only
undisturbed samples. Output: JSON lines to stdout.

  cd bench/boundcheck && python3 bound.py cnn,resnet18 3 > run.jsonl   # nets, rounds
  cc -O2 -mavx512f -mfma -pthread fma.c -o fma && ./fma 2 512; python3 gemm_peak.py   # the machine's peak"""
import importlib.util, json, statistics, sys, time, os, ctypes, re, subprocess
import torch
from quiet import wait_quiet as _wq, Sample
THREADS = int(os.environ.get('BC_THREADS', '2'))
torch.set_num_threads(THREADS)
def wait_quiet(max_wait=20):
    return _wq(max_wait, thresh=0.02 + (2 - THREADS) / 2)
spec = importlib.util.spec_from_file_location("rm", "/work/shared/spec/reference_models.py")
rm = importlib.util.module_from_spec(spec); spec.loader.exec_module(rm)

def build(name):
    make, shape, _, b = rm.MODELS[name]
    torch.manual_seed(0); m = make().eval(); x = torch.randn(b, *shape)
    with torch.no_grad():
        f = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(m, x)))
    return m, x, f

def conv_gflop_shapes(m, x):
    """own count from input/output shapes: 2*Cin/groups*Cout*kh*kw*Hout*Wout*N per conv"""
    rows = []
    def hook(mod, inp, out):
        n, co, ho, wo = out.shape
        rows.append(dict(cin=mod.in_channels, cout=co, k=mod.kernel_size, stride=mod.stride, hin=inp[0].shape[2],
                         hout=ho, gflop=2 * mod.in_channels // mod.groups * co * mod.kernel_size[0] * mod.kernel_size[1] * ho * wo * n / 1e9))
    hs = [mm.register_forward_hook(hook) for mm in m.modules() if isinstance(mm, torch.nn.Conv2d)]
    with torch.no_grad(): m(x)
    for h in hs: h.remove()
    return rows

def interp(f, x, times=None, capture=None):
    """execute the frozen graph node by node; times: dict node-index -> list of seconds"""
    g = f.graph; env = {}
    inputs = list(g.inputs()); env[inputs[1]] = x
    for i, n in enumerate(g.nodes()):
        k = n.kind(); ins = [env.get(v) for v in n.inputs()]
        if k == "prim::Constant":
            env[n.output()] = n.output().toIValue(); continue
        if k == "prim::ConstantMKLDNNTensor":
            env[n.output()] = n.t("value"); continue
        if k == "prim::ListConstruct":
            env[n.output()] = list(ins); continue
        t0 = time.perf_counter()
        if k == "prim::mkldnn_convolution":
            if capture is not None: capture.append((i, ins))
            # prim::mkldnn_convolution(input, weight, bias, stride, padding, dilation, groups)
            xi, w, b, st, pd, dl, gr = ins
            out = [torch.mkldnn_convolution(xi, w, b, pd, st, dl, gr)]
        elif k == "prim::BroadcastMKLDNNTensors":
            assert ins[0].shape == ins[1].shape; out = ins
        elif k == "aten::add":
            out = [torch.add(ins[0], ins[1], alpha=ins[2])]
        elif k == "aten::add_":
            out = [ins[0].add_(ins[1], alpha=ins[2])]
        elif k == "aten::to_dense":
            out = [ins[0].to_dense()]
        else:
            op = getattr(torch.ops.aten, k.split("::")[1])
            r = op(*ins); out = list(r) if isinstance(r, tuple) else [r]
        dt = time.perf_counter() - t0
        if times is not None: times.setdefault(i, []).append((k, dt))
        for v, o in zip(n.outputs(), out): env[v] = o
    return env[list(g.outputs())[0]]

def med(v): return statistics.median(v) if v else float("nan")

def run_round(name, passes=20):
    m, x, f = build(name)
    convs = conv_gflop_shapes(m, x); gflop = sum(c["gflop"] for c in convs)
    res = dict(net=name, threads=THREADS, batch=len(x), conv_gflop=round(gflop, 3))
    with torch.no_grad():
        for _ in range(3): f(x)
        # check replica == frozen
        y_ref = f(x); y_rep = interp(f, x)
        res["replica_maxdiff"] = float((y_ref - y_rep).abs().max())
        # A: frozen module
        wait_quiet()
        tA, qA = [], []
        for _ in range(passes):
            with Sample() as s: f(x)
            tA.append(s.dt); qA.append(s.quiet)
        # B2: node-by-node
        wait_quiet()
        conv_t, tot_t, wall_t, qB = [], [], [], []
        for _ in range(max(10, passes // 2)):
            times = {}
            with Sample() as s: interp(f, x, times)
            conv_t.append(sum(dt for v in times.values() for k, dt in v if k == "prim::mkldnn_convolution"))
            tot_t.append(sum(dt for v in times.values() for k, dt in v)); wall_t.append(s.dt); qB.append(s.quiet)
        # B3: isolated convs on captured inputs
        cap = []; interp(f, x, capture=cap)
        wait_quiet()
        iso, iso_pre, iso_q = [], [], True
        for idx, ins in cap:
            xin, w, b, stride, pad, dil, groups = ins
            w_pre = torch._C._nn.mkldnn_reorder_conv2d_weight(w, pad, stride, dil, groups, list(xin.shape))
            for _ in range(2): torch.mkldnn_convolution(xin, w, b, pad, stride, dil, groups); torch.mkldnn_convolution(xin, w_pre, b, pad, stride, dil, groups)
            t1, t2 = [], []
            for _ in range(10):
                with Sample() as s: torch.mkldnn_convolution(xin, w, b, pad, stride, dil, groups)
                if s.quiet: t1.append(s.dt)
                with Sample() as s2: torch.mkldnn_convolution(xin, w_pre, b, pad, stride, dil, groups)
                if s2.quiet: t2.append(s2.dt)
            if len(t1) < 3 or len(t2) < 3: iso_q = False
            iso.append(min(t1) if t1 else float("nan")); iso_pre.append(min(t2) if t2 else float("nan"))
            iso[-1] = med(t1); iso_pre[-1] = med(t2)
    quietA = [t for t, q in zip(tA, qA) if q]
    res.update(
        frozen_ms_median_all=round(med(tA) * 1e3, 2), frozen_ms_min=round(min(tA) * 1e3, 2),
        frozen_quiet_n=len(quietA), frozen_ms_median_quiet=round(med(quietA) * 1e3, 2),
        nodes_conv_ms_median=round(med([c for c, q in zip(conv_t, qB) if q]) * 1e3, 2),
        nodes_total_ms_median=round(med([c for c, q in zip(tot_t, qB) if q]) * 1e3, 2),
        nodes_wall_ms_median=round(med([c for c, q in zip(wall_t, qB) if q]) * 1e3, 2),
        nodes_quiet_n=sum(qB),
        nodes_conv_share_of_pass=round(med([c / w for c, w, q in zip(conv_t, wall_t, qB) if q]), 3),
        iso_conv_ms_sum=round(sum(iso) * 1e3, 2), iso_conv_prereordered_ms_sum=round(sum(iso_pre) * 1e3, 2),
        iso_all_quiet=iso_q, iso_per_conv_ms=[round(t * 1e3, 2) for t in iso],
        per_conv_gflop=[round(c["gflop"], 3) for c in convs])
    return res

def verbose_child(name, passes=6):
    libc = ctypes.CDLL(None)
    m, x, f = build(name)
    with torch.no_grad():
        for _ in range(3): f(x)
        wait_quiet()
        with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):
            for _ in range(passes):
                with Sample() as s: f(x)
                libc.fflush(None)
                print(f"=== PASS {s.dt} {int(s.quiet)}", flush=True)

def verbose_parse(name):
    out = subprocess.run([sys.executable, __file__, "--verbose", name], capture_output=True, text=True).stdout
    passes, cur = [], {}
    for line in out.splitlines():
        if line.startswith("=== PASS"):
            _, _, dt, q = line.split(); cur["wall"] = float(dt) * 1e3; cur["quiet"] = q == "1"; passes.append(cur); cur = {}
        elif line.startswith("onednn_verbose") and ",exec," in line:
            p = line.split(","); kind = p[5]; ms = float(p[-1])
            if kind == "reorder":
                kind = "reorder_weights" if re.search(r",,\d+x\d+x\d+x\d+,", line) and ("Acdb" in line or "ABcd" in line or "Adcb" in line) else "reorder_data"
            cur[kind] = cur.get(kind, 0.0) + ms
    return passes

if __name__ == "__main__":
    if sys.argv[1] == "--verbose":
        verbose_child(sys.argv[2]); sys.exit()
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    for r in range(rounds):
        for name in sys.argv[1].split(","):
            res = run_round(name)
            vp = verbose_parse(name)
            q = [p for p in vp if p["quiet"]] or vp
            res["verbose_passes"] = len(vp); res["verbose_quiet"] = sum(p["quiet"] for p in vp)
            for key in ("convolution", "reorder_weights", "reorder_data", "eltwise", "pooling", "binary", "sum", "wall"):
                res["verbose_" + key + "_ms"] = round(med([p.get(key, 0.0) for p in q]), 2)
            res["verbose_all_prims_ms"] = round(med([sum(v for k, v in p.items() if k not in ("wall", "quiet")) for p in q]), 2)
            res["round"] = r; res["time"] = time.strftime("%H:%M:%S")
            print(json.dumps(res), flush=True)
