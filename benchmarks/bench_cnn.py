"""7. A CNN on the stack: a D-PSGD step of n = 16 LeNet-5 workers against 16 times one worker's isolated jitted step,
and the share of a run's time that evaluation takes.

LeNet-5 (LeCun et al. 1998: conv 6@5x5, pool, conv 16@5x5, pool, dense 120, 84, 10) on 28x28x1 inputs, batch 32 per
worker, synthetic data (no download). The isolated step is what a JAX user writes for one worker: a jitted
``value_and_grad`` plus the SGD update, called from Python. jaxgossip's step is D-PSGD on ring(16) inside its compiled
``lax.scan``, both worker mappings (``worker_map="vmap"`` and ``"map"``), timed warm (second run, compile excluded).
The ratio (stack step) / (16 x isolated step) is what stacking the workers costs over their own compute: <= 1 is the
goal. Evaluation's share: the same run with an evaluation every 5 steps against one evaluation at the end.

    python benchmarks/bench_cnn.py
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxgossip as jg
from bench_cnn_throughput import PlainLeNet5

N, BATCH, STEPS = 16, 32, 20


LeNet5 = PlainLeNet5  # the same user-written LeNet-5 as items 9-10


def data(samples=N * 64 + 256, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(samples, 28, 28, 1)).astype(np.float32)
    y = rng.integers(0, 10, samples)
    return X, y


def isolated_step_seconds(problem, repeats=20):
    """One worker's jitted SGD step on its own batch, called from Python (best per-step time over ``repeats``)."""
    net = problem.model
    xs, ys = problem.data_x[0, :BATCH], problem.data_y[0, :BATCH]

    @jax.jit
    def step(x):
        loss = lambda x: jnp.mean(problem.loss(net(x, xs, None, None, True)[0], ys))
        g = jax.grad(loss)(x)
        return x - 0.05 * g

    x = step(problem.x0).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        x = step(x).block_until_ready()
        best = min(best, time.perf_counter() - t)
    return best


def run_seconds(problem, eval_every, steps=STEPS):
    algo = jg.algorithms.dpsgd(lr=0.05)
    topo = jg.topology.ring(N)
    jg.simulate(problem, algo, topo, steps=steps, eval_every=eval_every, metrics=["loss", "accuracy"])  # compile
    t = time.perf_counter()
    jg.simulate(problem, algo, topo, steps=steps, eval_every=eval_every, metrics=["loss", "accuracy"])
    return time.perf_counter() - t


def run(quick=True):
    rows = []
    X, y = data()
    one = None
    for worker_map in ("vmap", "map"):
        prob = jg.problems.from_flax(LeNet5(), (X, y), n_workers=N, batch_size=BATCH, worker_map=worker_map,
                                     eval_batch=512, rng_names=())
        if one is None:
            one = isolated_step_seconds(prob)
            rows.append(("LeNet-5 one worker's isolated jitted step (batch 32)", f"{one * 1e3:.1f} ms", "", ""))
        per_step = run_seconds(prob, STEPS) / STEPS
        ratio = per_step / (N * one)
        rows.append((f"LeNet-5 D-PSGD step, n = {N}, worker_map={worker_map!r}, vs {N} x isolated step",
                     f"{per_step * 1e3:.0f} ms per step = {ratio:.2f}x", "<= 1x", "yes" if ratio <= 1 else "no"))
        if worker_map == "vmap":
            with_evals = run_seconds(prob, 5)
            without = run_seconds(prob, STEPS)
            share = max(0.0, (with_evals - without) / with_evals)
            rows.append((f"evaluation's share of run time (eval every 5 of {STEPS} steps, 256 test samples)",
                         f"{100 * share:.0f}%", "", ""))
    return rows


if __name__ == "__main__":
    for r in run():
        print(r)
