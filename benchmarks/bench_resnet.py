"""11. ResNet-20 (BatchNorm, 269,722 parameters, batch 128 per worker, 32x32x3): the compiled D-PSGD step's memory
and its time against n (issue 15, item 3).

Memory: the bytes XLA's compiled program needs (arguments, outputs and temporaries from
``Compiled.memory_analysis()``; nothing runs), for n = 1, 2, 4, 8, 16. It must grow linearly in n: with the CPU
default ``worker_map="map"`` the temporaries are one worker's activations (its im2col patches included), paid once,
and each worker adds its models, gradients and BatchNorm statistics.

Time: the same compiled step run warm for a few n, against n times one worker's jitted step as a user writes it
(XLA's convolution, called from Python): the ratio is what the stack costs over the workers' own compute.

    python benchmarks/bench_resnet.py [--n 1 2 4 8 16] [--time 1 4 16]
"""

from __future__ import annotations

import argparse
import os
import time
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np

import jaxgossip as jg
from jaxgossip.algorithms._base import Context
from jaxgossip.lowering import lowering_record
from jaxgossip.simulate import initial_model_state, prepare

BATCH = 128
#: Timed calls of each step (the best is kept): 2 on a CPU (a step takes seconds), 5 on an accelerator.
REPEATS = 2 if jax.default_backend() == "cpu" else 5


def _data(n):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n * BATCH + 8, 32, 32, 3)).astype(np.float32)
    return X, rng.integers(0, 10, len(X))


def step_program(n, worker_map="auto", measure=True):
    """The lowered and compiled D-PSGD step of n ResNet-20 workers (one step: gradients, gossip, update), its inputs
    and its compile time. ``measure=False``: the ``"auto"`` lowerings take the platform rule instead of timing their
    candidates (``JAXGOSSIP_LOWERING=platform``; on a CPU, timing XLA's convolution in a loop takes minutes per n)."""
    X, y = _data(n)
    with mock.patch.dict(os.environ, {} if measure else {"JAXGOSSIP_LOWERING": "platform"}):
        prob = jg.problems.from_flax(jg.models.ResNet20(), (X, y, X[:8], y[:8]), n_workers=n, batch_size=BATCH,
                                     eval_batch=BATCH, worker_map=worker_map)
    topo = jg.topology.ring(n) if n > 2 else jg.topology.complete(n)
    prep = prepare(prob, jg.algorithms.dpsgd(lr=0.1), topo, steps=1, shard=False)
    model = initial_model_state(prob)

    def step(X0, model, key):
        p = prep.problem.replace(worker_state=model, slot=None)
        ctx = Context(p, prep.mixing, prep.pricing, jnp.zeros((), jnp.int32))
        state = prep.algorithm.init(X0, ctx)
        new, _ = prep.algorithm.step(state, key, ctx)
        return new.x

    X0 = jnp.tile(prob.x0, (n, 1))
    t = time.perf_counter()
    compiled = jax.jit(step).lower(X0, model, jax.random.key(0)).compile()
    return prob, compiled, (X0, model), time.perf_counter() - t


def isolated_step_seconds(repeats=None):
    """One ResNet-20 worker's jitted SGD step (batch 128, XLA's convolution, BatchNorm in training mode)."""
    X, y = _data(1)
    module = jg.models.ResNet20(conv="xla")
    variables = module.init(jax.random.key(0), X[:1])
    params, stats = variables["params"], variables["batch_stats"]

    @jax.jit
    def step(params, stats, xs, ys):
        def loss(p):
            logits, new = module.apply({"params": p, "batch_stats": stats}, xs, train=True, mutable=["batch_stats"])
            return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), ys[:, None], 1)), new

        (_, new), g = jax.value_and_grad(loss, has_aux=True)(params)
        return jax.tree.map(lambda a, b: a - 0.1 * b, params, g), new["batch_stats"]

    xs, ys = jnp.asarray(X[:BATCH]), jnp.asarray(y[:BATCH])
    jax.block_until_ready(step(params, stats, xs, ys))
    best = float("inf")
    for _ in range(repeats or REPEATS):
        t = time.perf_counter()
        jax.block_until_ready(step(params, stats, xs, ys))
        best = min(best, time.perf_counter() - t)
    return best


def run(quick=True, ns=(1, 2, 4, 8, 16), timed=None):
    timed = timed if timed is not None else ((1, 4) if quick else (1, 4, 16))
    rows, sizes = [], []
    one = isolated_step_seconds()
    rows.append(("ResNet-20, one worker's jitted step as a user writes it (batch 128, XLA's convolution)",
                 f"{one * 1e3:.3g} ms", "", ""))
    for n in sorted(set(ns) | set(timed)):
        prob, compiled, args, seconds = step_program(n, measure=n in timed)  # memory only: the platform rule
        mem = compiled.memory_analysis()
        total = mem.argument_size_in_bytes + mem.output_size_in_bytes + mem.temp_size_in_bytes
        if n in ns:
            sizes.append((n, total))
        line = (f"{total / 2**20:,.0f} MiB (temporaries {mem.temp_size_in_bytes / 2**20:,.0f} MiB), compiled in "
                f"{seconds:.0f} s")
        if n in timed:
            jax.block_until_ready(compiled(*args, jax.random.key(0)))
            step = float("inf")
            for r in range(REPEATS):  # best of a few: one call is a few ms on a GPU
                t = time.perf_counter()
                jax.block_until_ready(compiled(*args, jax.random.key(1 + r)))
                step = min(step, time.perf_counter() - t)
            line += f"; step {step * 1e3:.3g} ms = {step / (n * one):.2f}x {n} isolated steps, {n * BATCH / step:.0f} samples/s"
        how = lowering_record(prob)
        rows.append((f"ResNet-20 D-PSGD step, n = {n} (conv={how['conv']}, worker_map={how['worker_map']}, by "
                     f"{how['by']})", line, "", ""))
    if len(sizes) > 2:
        n_, b_ = np.array(sizes, float).T
        per_worker, fixed = np.polyfit(n_, b_, 1)
        resid = np.max(np.abs(np.polyval([per_worker, fixed], n_) - b_) / b_)
        rows.append(("ResNet-20 program bytes against n: a line fixed + per-worker x n",
                     f"{fixed / 2**20:,.0f} MiB + {per_worker / 2**20:.2f} MiB x n (largest deviation from the line "
                     f"{100 * resid:.1f}%)", "linear in n", "yes" if resid < 0.05 else "no"))
    return rows


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    ap.add_argument("--time", type=int, nargs="+", default=[1, 4])
    a = ap.parse_args()
    for r in run(ns=tuple(a.n), timed=tuple(a.time)):
        print(r, flush=True)
