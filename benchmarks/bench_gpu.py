"""12. ResNet-20 on a GPU: samples per second of a D-PSGD run with n = 16 and 64 workers (batch 128 each), and the
fraction of the device's dense-matmul FLOP rate and memory bandwidth it reaches (issue 15, item 4).

The prepared command for a lent device machine (call the ``device`` tool's ``status`` first; it needs a few minutes
of device time)::

    python benchmarks/bench_gpu.py            # writes benchmarks/RESULTS-gpu.md

and ``python benchmarks/bench_gpu.py --tiny`` runs the same code at toy sizes on any machine (a check that it works,
not a measurement; it writes nothing unless ``--out`` is given).

What it measures, all in one run on the device:

- the device's float32 matmul rate (an 8192^3 product, TF32 where XLA uses it by default) and its copy bandwidth
  (a 1 GiB array read and written), the references of the fractions;
- per n: the step time of ``jg.simulate`` (``(T(3S) - T(S)) / 2S`` of warm runs: compile and evaluation cancel) with
  the library's GPU defaults (``worker_map="vmap"``, XLA's convolutions), samples per second, the step's FLOPs and
  bytes from XLA's cost analysis of one compiled step, and so FLOP/s and bytes/s as fractions of the references.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jaxgossip as jg  # noqa: E402
from _common import best_time, machine  # noqa: E402
from bench_cnn_throughput import matmul_rate  # noqa: E402
from jaxgossip.algorithms._base import Context  # noqa: E402
from jaxgossip.lowering import lowering_record  # noqa: E402
from jaxgossip.simulate import initial_model_state, prepare  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def copy_bandwidth(mib):
    """Bytes per second read and written by a jitted elementwise pass over ``mib`` MiB."""
    a = jnp.ones((mib * 2**20 // 4,), jnp.float32)
    f = jax.jit(lambda a: a * 1.0001)
    return 2.0 * a.nbytes / best_time(lambda: f(a).block_until_ready(), repeats=5)


def problem(n, batch, image):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n * batch + 64, image, image, 3)).astype(np.float32)
    y = rng.integers(0, 10, len(X))
    return jg.problems.from_flax(jg.models.ResNet20(), (X, y, X[:64], y[:64]), n_workers=n, batch_size=batch,
                                 eval_batch=64)


def step_cost(prob):
    """(FLOPs, bytes accessed) of one compiled D-PSGD step, from XLA's cost analysis of its vmap program (the
    analysis counts a while loop's body once, so lax.map's program would count one worker)."""
    prob = prob.replace(worker_map="vmap")
    prep = prepare(prob, jg.algorithms.dpsgd(lr=0.1), jg.topology.ring(prob.n), steps=1, shard=False)
    model = initial_model_state(prob)

    def step(X0, key):
        ctx = Context(prep.problem.replace(worker_state=model, slot=None), prep.mixing, prep.pricing,
                      jnp.zeros((), jnp.int32))
        return prep.algorithm.step(prep.algorithm.init(X0, ctx), key, ctx)[0].x

    cost = jax.jit(step).lower(jnp.tile(prob.x0, (prob.n, 1)), jax.random.key(0)).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost.get("flops", np.nan)), float(cost.get("bytes accessed", np.nan))


def step_seconds(prob, steps):
    algo, topo = jg.algorithms.dpsgd(lr=0.1), jg.topology.ring(prob.n)
    times = {}
    for s in (steps, 3 * steps):
        jg.simulate(prob, algo, topo, steps=s, eval_every=s, metrics=["loss"])
        best = float("inf")
        for _ in range(2):
            t = time.perf_counter()
            jg.simulate(prob, algo, topo, steps=s, eval_every=s, metrics=["loss"])
            best = min(best, time.perf_counter() - t)
        times[s] = best
    return max(times[3 * steps] - times[steps], 1e-9) / (2 * steps)


def run(ns=(16, 64), batch=128, image=32, steps=5, matmul=8192, copy_mib=1024):
    rows = []
    peak, bw = matmul_rate(matmul), copy_bandwidth(copy_mib)
    rows.append((f"float32 matmul rate ({matmul}^3)", f"{peak / 1e12:.1f} TFLOP/s"))
    rows.append((f"copy bandwidth ({copy_mib} MiB, read + write)", f"{bw / 1e9:.0f} GB/s"))
    for n in ns:
        prob = problem(n, batch, image)
        flops, nbytes = step_cost(prob)
        t = time.perf_counter()
        sec = step_seconds(prob, steps)
        wall = time.perf_counter() - t
        low = lowering_record(prob)
        rows.append((f"ResNet-20 D-PSGD, n = {n}, batch {batch} (conv={low['conv']!r}, worker_map={low['worker_map']!r}, "
                     f"by {low['by']})",
                     f"{sec * 1e3:.1f} ms/step, {n * batch / sec:,.0f} samples/s; {flops / 1e9:.0f} GFLOP and "
                     f"{nbytes / 1e9:.1f} GB per step: {flops / sec / 1e12:.1f} TFLOP/s = {100 * flops / sec / peak:.0f}% "
                     f"of the matmul rate, {nbytes / sec / 1e9:.0f} GB/s = {100 * nbytes / sec / bw:.0f}% of the copy "
                     f"bandwidth ({wall:.0f} s to measure)"))
        print(rows[-1], flush=True)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiny", action="store_true", help="toy sizes on any machine (checks that the script works)")
    ap.add_argument("--out", default=None, help="default: benchmarks/RESULTS-gpu.md (nothing with --tiny)")
    ap.add_argument("--n", type=int, nargs="+", default=[16, 64], help="numbers of workers (default 16 64)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    if args.tiny:
        rows = run(ns=(2,), batch=4, image=8, steps=1, matmul=256, copy_mib=8)
    else:
        rows = run(ns=tuple(args.n))
    for r in rows:
        print(r, flush=True)
    out = args.out if args.out or args.tiny else os.path.join(HERE, "RESULTS-gpu.md")
    if out:
        lines = ["# GPU benchmark results (item 12)", "",
                 f"Written by `python benchmarks/bench_gpu.py{' --tiny' if args.tiny else ''}` on "
                 f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC in {time.perf_counter() - t0:.0f} s.",
                 "", f"Machine: {machine()}", "", "| benchmark | measured |", "|---|---|"]
        lines += [f"| {a} | {b} |" for a, b in rows]
        with open(out, "w") as f:
            f.write("\n".join(lines) + "\n")
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
