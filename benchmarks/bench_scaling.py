"""4. Time per D-PSGD step against n (16 ... 4096) and d: it must grow as n d (neighbour gather), not n^2 d.

Least squares with one sample per step on a ring, with the shift backend and with the neighbour-gather backend (the
one any graph uses); the log-log slope of time against n at fixed d should be about 1 (2 would
mean n^2). The time per step is the marginal one: (time of 3S steps - time of S steps) / 2S, each the best of two
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


def run(quick=False):
    ns = [16, 64, 256, 1024, 4096]
    d = 256
    rows = []
    for label, topo_fn, backend in (("ring, shift", _ring, "shift"),
                                    ("ring, neighbour gather", _ring, "gather")):
        ts = [_time_per_step(n, d, topo_fn, backend, 200 if quick else 500) for n in ns]
        slope = np.polyfit(np.log(ns[2:]), np.log(ts[2:]), 1)[0]
        cells = ", ".join(f"n={n}: {t * 1e6:.0f} us" for n, t in zip(ns, ts))
        rows.append((f"time per step vs n, d={d}, {label}", f"{cells}; slope (n >= 256) {slope:.2f}", "~1 (n d), not 2",
                     "yes" if slope < 1.5 else "no"))
    dense_ns = [64, 256, 1024]  # the contrast: W @ X costs n^2 d
    ts = [_time_per_step(n, d, _ring, "dense", 20) for n in dense_ns]
    slope = np.polyfit(np.log(dense_ns[1:]), np.log(ts[1:]), 1)[0]
    rows.append((f"contrast: time per step vs n, d={d}, ring as a dense W @ X",
                 ", ".join(f"n={n}: {t * 1e6:.0f} us" for n, t in zip(dense_ns, ts)) + f"; slope (n >= 256) {slope:.2f}",
                 "(n^2 d: slope ~2)", ""))
    ds = [64, 256, 1024, 4096]
    ts = [_time_per_step(256, dd, _ring, "shift", 200 if quick else 500) for dd in ds]
    slope = np.polyfit(np.log(ds[1:]), np.log(ts[1:]), 1)[0]
    rows.append(("time per step vs d, n=256, ring", ", ".join(f"d={dd}: {t * 1e6:.0f} us" for dd, t in zip(ds, ts))
                 + f"; slope (d >= 256) {slope:.2f}", "~1", "yes" if slope < 1.5 else "no"))
    return rows
