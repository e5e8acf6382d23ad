"""4. Time per D-PSGD step against n (16 ... 131072) and d: it must grow as n d (neighbour gather), not n^2 d.

Least squares with one sample per step on a ring, with the shift backend and with the neighbour-gather backend (the
one any graph uses); the log-log slope of time against n at fixed d should be about 1 (2 would mean n^2). Slopes are
taken within one memory regime, read from this machine's caches: while the state fits in the per-core L2, and once it
is at least twice the L3 (64 MiB on a 32 MiB L3: n = 65536 at d = 256; topologies are sparse, so a ring of that size
costs no n x n matrix). Crossing from one regime to the other costs several times per value, which is the memory system,
not n^2. A dense W @ X (n^2 d) is timed as the contrast. The time per step is the marginal one: (time of 3S steps -
time of S steps) / 2S, each the best of three to five compiled runs (S and 3S alternating), so a call's fixed cost (preparing, the first evaluation,
copying results back) is not spread over the steps.
"""

import functools
import time

import numpy as np

import jaxgossip as jg


@functools.lru_cache(maxsize=None)
def _ring(n):
    return jg.topology.ring(n)


def _cache_bytes(level, default):
    try:
        with open(f"/sys/devices/system/cpu/cpu0/cache/index{level}/size") as f:
            text = f.read().strip()
        return int(text[:-1]) * {"K": 2**10, "M": 2**20}[text[-1]]
    except (OSError, ValueError, KeyError):
        return default


@functools.lru_cache(maxsize=None)
def _problem(n, d):
    # no d x d Hessian at large d (solve_optimum=False): the optimum is not needed to time steps
    return jg.problems.quadratic(n_workers=n, dim=d, samples_per_worker=2 if n * d > 2**22 else 4, seed=0,
                                 solve_optimum=n * d <= 2**22)


def _time_per_step(n, d, topo_fn, backend, steps):
    prob = _problem(n, d)
    topo = topo_fn(n)
    # the quadratic's sample curvature grows with d: lr 0.01 diverged from d = 1024 on, and a diverged run skips the
    # blocks after the evaluation that caught it, so its "time per step" read 0-68 us where 0.3-1 ms was spent
    algo = jg.algorithms.dpsgd(lr=0.01 * min(1.0, 256 / d))
    repeats = 5 if n * d <= 2**18 else 3  # short runs are cheap to repeat, and the most exposed to a noisy neighbour

    def timed(total):
        t = time.perf_counter()
        res = jg.simulate(prob, algo, topo, steps=total, eval_every=steps, backend=backend, shard=False)
        seconds = time.perf_counter() - t
        if res.diverged:
            raise RuntimeError(f"bench_scaling: the run at n={n}, d={d} diverged; its skipped steps cannot be timed.")
        return seconds

    timed(steps), timed(3 * steps)  # compile both
    short = long = float("inf")
    for _ in range(repeats):  # S and 3S alternate, so a burst of load from a neighbour lands on both sides
        short, long = min(short, timed(steps)), min(long, timed(3 * steps))
    return max(long - short, 0.0) / (2 * steps)


def _slope(xs, ts):
    return float(np.polyfit(np.log(xs), np.log(ts), 1)[0])


def _steps(values, quick):
    if values <= 2**18:
        return 200 if quick else 500
    return 60 if values <= 2**22 else (20 if values <= 2**24 else 10)


def _regime_slopes(sizes, other, ts, l2, l3):
    """Least-squares slopes over the last three sizes whose state fits in L2, and over the first three whose state is at
    least twice the L3 (spans of 16x and 4x, so one disturbed timing moves a slope less)."""
    state = [4 * s * other for s in sizes]
    cached = [i for i, b in enumerate(state) if b <= l2][-3:]
    out_of_cache = [i for i, b in enumerate(state) if b >= 2 * l3][:3]

    def pick(idx):  # (slope, first size, last size); NaN where this machine's caches leave fewer than two sizes
        if len(idx) < 2:
            return float("nan"), None, None
        return _slope([sizes[i] for i in idx], [ts[i] for i in idx]), sizes[idx[0]], sizes[idx[-1]]

    return pick(cached), pick(out_of_cache)


def _describe(var, slope, first, last, regime):
    if first is None:
        return f"n/a ({regime}: fewer than two sizes on this machine)"
    return f"{slope:.2f} for {var} = {first} -> {last} ({regime})"


def _met(*slopes):
    """Met when every regime's slope is about 1: below 1.5 (not n^2), and above 0.5 (a time that does not grow with
    the size is a failed measurement, not a fast one)."""
    known = [s for s in slopes if s == s]
    return ("yes" if all(0.5 < s < 1.5 for s in known) else "no") if known else "-"


def _fmt(t):
    return f"{t * 1e3:.1f} ms" if t >= 1e-3 else f"{t * 1e6:.0f} us"


def run(quick=False):
    l2, l3 = _cache_bytes(2, 2**20), _cache_bytes(3, 32 * 2**20)
    caches = f"L2 {l2 // 2**10} KiB, L3 {l3 // 2**20} MiB"
    rows = []
    d = 256
    ns = [16, 64, 256, 1024, 4096, 65536, 131072, 262144]  # 16 KiB ... 256 MiB of state
    for label, backend in (("shift", "shift"), ("neighbour gather", "gather")):
        ts = [_time_per_step(n, d, _ring, backend, _steps(n * d, quick)) for n in ns]
        (s_in, a, b), (s_out, c, e) = _regime_slopes(ns, d, ts, l2, l3)
        cells = ", ".join(f"n={n}: {_fmt(t)} ({t / (n * d) * 1e9:.2f} ns per n d)" for n, t in zip(ns, ts))
        rows.append((f"time per step vs n, d={d}, ring, {label}",
                     f"{cells}. Slope {_describe('n', s_in, a, b, 'state in L2')}, "
                     f"{_describe('n', s_out, c, e, 'state >= 2x L3')}; {caches}", "~1 (n d), not 2", _met(s_in, s_out)))
    dense_ns = [64, 256, 1024, 2048, 4096]  # the contrast: W @ X costs n^2 d (a matmul: efficient only from n ~ 1024)
    ts = [_time_per_step(n, d, _ring, "dense", 20) for n in dense_ns]
    slope = _slope(dense_ns[2:], ts[2:])
    rows.append((f"contrast: time per step vs n, d={d}, ring as a dense W @ X",
                 ", ".join(f"n={n}: {_fmt(t)}" for n, t in zip(dense_ns, ts)) + f"; slope (n >= 1024) {slope:.2f}",
                 "(n^2 d: slope ~2)", ""))
    n = 256
    ds = [64, 256, 1024, 4096, 65536, 131072, 262144]
    ts = [_time_per_step(n, dd, _ring, "shift", _steps(n * dd, quick)) for dd in ds]
    (s_in, a, b), (s_out, c, e) = _regime_slopes(ds, n, ts, l2, l3)
    rows.append((f"time per step vs d, n={n}, ring, shift",
                 ", ".join(f"d={dd}: {_fmt(t)}" for dd, t in zip(ds, ts))
                 + f". Slope {_describe('d', s_in, a, b, 'state in L2')}, {_describe('d', s_out, c, e, 'state >= 2x L3')};"
                 f" {caches}", "~1", _met(s_in, s_out)))
    _problem.cache_clear()
    return rows
