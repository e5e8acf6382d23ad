"""4. Time per D-PSGD step against n (16 ... 4096) and d: it must grow as n d (neighbour gather), not n^2 d.

Least squares with one sample per step on a ring, with the shift backend and with the neighbour-gather backend (the
one any graph uses); the log-log slope of time against n at fixed d should be about 1 (2 would
mean n^2). Slopes are taken within one memory regime, while the state fits in cache (n d up to 2^18) and once it does
not (n d from 2^20): crossing from one to the other costs ~3x per value, which is the memory system, not n^2. A dense
W @ X (n^2 d) is timed as the contrast. The time per step is the marginal one: (time of 3S steps - time of S steps) / 2S, each the best of two
compiled runs, so a call's fixed cost (preparing, the first evaluation, copying results back) is not spread over the
steps.
"""

import functools
import time

import numpy as np

import jaxgossip as jg


@functools.lru_cache(maxsize=None)
def _ring(n):
    return jg.topology.ring(n)  # built once per n (its spectrum is an n x n eigendecomposition)


def _time_per_step(n, d, topo_fn, backend, steps):
    prob = jg.problems.quadratic(n_workers=n, dim=d, samples_per_worker=4, seed=0)
    topo = topo_fn(n)
    algo = jg.algorithms.dpsgd(lr=0.01)

    def best(total):
        run = lambda: jg.simulate(prob, algo, topo, steps=total, eval_every=steps, backend=backend, shard=False)  # noqa: E731
        run()
        out = float("inf")
        for _ in range(2):
            t = time.perf_counter()
            run()
            out = min(out, time.perf_counter() - t)
        return out

    return max(best(3 * steps) - best(steps), 0.0) / (2 * steps)


def _slope(xs, ts):
    return float(np.polyfit(np.log(xs), np.log(ts), 1)[0])


def run(quick=False):
    ns = [16, 64, 256, 1024, 4096, 8192]
    d = 256
    rows = []
    for label, topo_fn, backend in (("ring, shift", _ring, "shift"),
                                    ("ring, neighbour gather", _ring, "gather")):
        ts = [_time_per_step(n, d, topo_fn, backend, (200 if quick else 500) if n <= 1024 else 60) for n in ns]
        in_cache, in_memory = _slope(ns[2:4], ts[2:4]), _slope(ns[4:], ts[4:])
        cells = ", ".join(f"n={n}: {t * 1e6:.0f} us ({t / (n * d) * 1e9:.1f} ns per n d)" for n, t in zip(ns, ts))
        rows.append((f"time per step vs n, d={d}, {label}",
                     f"{cells}; slope {in_cache:.2f} for n = 256 -> 1024 (state in cache), {in_memory:.2f} for "
                     f"4096 -> 8192 (state in memory)", "~1 (n d), not 2",
                     "yes" if max(in_cache, in_memory) < 1.5 else "no"))
    dense_ns = [64, 256, 1024]  # the contrast: W @ X costs n^2 d
    ts = [_time_per_step(n, d, _ring, "dense", 20) for n in dense_ns]
    slope = _slope(dense_ns[1:], ts[1:])
    rows.append((f"contrast: time per step vs n, d={d}, ring as a dense W @ X",
                 ", ".join(f"n={n}: {t * 1e6:.0f} us" for n, t in zip(dense_ns, ts)) + f"; slope (n >= 256) {slope:.2f}",
                 "(n^2 d: slope ~2)", ""))
    ds = [64, 256, 1024, 4096, 8192]
    ts = [_time_per_step(256, dd, _ring, "shift", (200 if quick else 500) if dd <= 1024 else 60) for dd in ds]
    in_cache, in_memory = _slope(ds[1:3], ts[1:3]), _slope(ds[3:], ts[3:])
    rows.append(("time per step vs d, n=256, ring, shift",
                 ", ".join(f"d={dd}: {t * 1e6:.0f} us" for dd, t in zip(ds, ts))
                 + f"; slope {in_cache:.2f} for d = 256 -> 1024 (in cache), {in_memory:.2f} for 4096 -> 8192 (in memory)",
                 "~1", "yes" if max(in_cache, in_memory) < 1.5 else "no"))
    return rows
