"""Helpers: CPU-pressure (PSI) gate so that samples disturbed by other processes can be flagged."""
import time
def psi_some_us():
    with open("/proc/pressure/cpu") as f:
        for line in f:
            if line.startswith("some"):
                return int(line.split("total=")[1])
def busy_others():
    """fraction of the last 0.5 s during which some task waited for a CPU (our process is idle here)."""
    a = psi_some_us(); time.sleep(0.5); b = psi_some_us()
    return (b - a) / 0.5e6
def wait_quiet(max_wait=120, thresh=0.02):
    t0 = time.time()
    while time.time() - t0 < max_wait:
        # idle check: total non-idle CPU of others via /proc/stat
        with open("/proc/stat") as f: a = list(map(int, f.readline().split()[1:9]))
        time.sleep(0.5)
        with open("/proc/stat") as f: b = list(map(int, f.readline().split()[1:9]))
        d = [y - x for x, y in zip(a, b)]
        tot = sum(d); idle = d[3] + d[4]
        if tot and (tot - idle) / tot < thresh:
            return time.time() - t0
    return -1.0
class Sample:
    """context manager: wall time and PSI 'some' stall during the block"""
    def __enter__(self):
        self.p0 = psi_some_us(); self.t0 = time.perf_counter(); return self
    def __exit__(self, *a):
        self.dt = time.perf_counter() - self.t0
        self.stall = (psi_some_us() - self.p0) * 1e-6
        self.quiet = self.stall < 0.02 * self.dt + 50e-6
