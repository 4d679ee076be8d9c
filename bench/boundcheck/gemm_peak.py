"""Peak sgemm rate of torch.mm (MKL) on 2 threads, quiet-gated; also 1 thread."""
import torch, statistics, json, sys
from quiet import wait_quiet, Sample
res = {}
for threads in (2, 1):
    torch.set_num_threads(threads)
    for n in (2048, 4096):
        a = torch.randn(n, n); b = torch.randn(n, n); c = torch.empty(n, n)
        torch.mm(a, b, out=c)
        rates, qrates = [], []
        reps = 6 if n == 2048 else 3
        for _ in range(reps):
            waited = wait_quiet(60)
            with Sample() as s:
                torch.mm(a, b, out=c)
            r = 2 * n**3 / s.dt / 1e9
            rates.append(r)
            if s.quiet: qrates.append(r)
        res[f"{threads}t_{n}"] = {"all": [round(r, 1) for r in rates], "quiet": [round(r, 1) for r in qrates]}
        print(threads, n, res[f"{threads}t_{n}"], flush=True)
json.dump(res, open("gemm_peak.json", "w"))
