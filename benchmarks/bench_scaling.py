"""4. Time per D-PSGD step against n (16 ... 4096) and d: it must grow as n d (neighbour gather), not n^2 d.

Least squares with one sample per step on a ring, with the shift backend and with the neighbour-gather backend (the
one any graph uses); the log-log slope of time against n at fixed d should be about 1 (2 would
mean n^2).
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
    jg.simulate(prob, algo, topo, steps=steps, eval_every=steps, backend=backend, shard=False)
    t = time.perf_counter()
    jg.simulate(prob, algo, topo, steps=steps, eval_every=steps, backend=backend, shard=False)
    return (time.perf_counter() - t) / steps


def run(quick=False):
    ns = [16, 64, 256, 1024, 4096]
    d = 256
    rows = []
    for label, topo_fn, backend in (("ring, shift", _ring, "shift"),
                                    ("ring, neighbour gather", _ring, "gather")):
        ts = [_time_per_step(n, d, topo_fn, backend, 50 if quick else 200) for n in ns]
        slope = np.polyfit(np.log(ns[2:]), np.log(ts[2:]), 1)[0]
        cells = ", ".join(f"n={n}: {t * 1e6:.0f} us" for n, t in zip(ns, ts))
        rows.append((f"time per step vs n, d={d}, {label}", f"{cells}; slope (n >= 256) {slope:.2f}", "~1 (n d), not 2",
                     "yes" if slope < 1.5 else "no"))
    ds = [64, 256, 1024, 4096]
    ts = [_time_per_step(256, dd, _ring, "shift", 50 if quick else 200) for dd in ds]
    slope = np.polyfit(np.log(ds[1:]), np.log(ts[1:]), 1)[0]
    rows.append(("time per step vs d, n=256, ring", ", ".join(f"d={dd}: {t * 1e6:.0f} us" for dd, t in zip(ds, ts))
                 + f"; slope (d >= 256) {slope:.2f}", "~1", "yes" if slope < 1.5 else "no"))
    return rows
