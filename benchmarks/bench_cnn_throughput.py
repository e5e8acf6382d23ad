"""9-10. CNN training throughput on the stack against a Python loop over per-worker jitted steps, and the step's
arithmetic rate against this machine's dense matmul rate (issue 15).

LeNet-5 (61,706 parameters; conv 6@5x5, pool, conv 16@5x5, pool, dense 120, 84, 10) on 28x28x1 inputs, batch 32 per
worker, D-PSGD on ring(n), synthetic data (no download).

- **The loop** is what a JAX user writes: a plain flax LeNet-5 (``nn.Conv`` as written), one jitted step per worker
  (sample 32 of its samples, ``value_and_grad``, SGD) called from Python for each of the n workers, then one jitted
  ring average of the stacked models. Async dispatch overlaps the calls.
- **The stack** is ``jg.simulate`` with the library's defaults (``conv="auto"``, ``worker_map="auto"``: on CPU im2col
  convolutions and ``lax.map`` over the workers inside the compiled ``lax.scan``). Its per-step time is
  ``(T(2S) - T(S)) / S`` of two warm runs of S and 2S steps with one evaluation each, so compile, evaluation and the
  run's fixed costs cancel.
- At n = 16 the other lowerings are timed the same way (``worker_map`` x ``conv``), beside the choice ``"auto"``
  made (timed once on this machine by :mod:`jaxgossip.lowering` and cached; its row says whether it is the fastest
  of the four fixed ones, within 10%).
- **Arithmetic rate** (item 10): XLA's cost analysis of one compiled stacked step (FLOPs) over the stack's measured
  step time, as a fraction of the rate of a 2048^3 float32 matmul measured in the same run.

    python benchmarks/bench_cnn_throughput.py [--n 4 16 64] [--steps 10]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from jax.flatten_util import ravel_pytree

import jaxgossip as jg
from _common import best_time
from jaxgossip.algorithms._base import Context
from jaxgossip.lowering import lowering_record
from jaxgossip.simulate import initial_model_state, prepare

BATCH, LR = 32, 0.05


class PlainLeNet5(nn.Module):
    """LeNet-5 as a user writes it (XLA's convolution); the same parameters as jg.models.LeNet5."""

    @nn.compact
    def __call__(self, x):
        x = nn.avg_pool(nn.relu(nn.Conv(6, (5, 5), padding="SAME")(x)), (2, 2), strides=(2, 2))
        x = nn.avg_pool(nn.relu(nn.Conv(16, (5, 5), padding="VALID")(x)), (2, 2), strides=(2, 2))
        x = x.reshape(x.shape[0], -1)
        x = nn.relu(nn.Dense(120)(x))
        x = nn.relu(nn.Dense(84)(x))
        return nn.Dense(10)(x)


def data(n, per_worker=64, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n * per_worker + 64, 28, 28, 1)).astype(np.float32)
    return X, rng.integers(0, 10, len(X))


def loop_step_seconds(n, module=None, steps=10):
    """Seconds per D-PSGD step of the Python loop over n per-worker jitted steps (see the module docstring)."""
    module = PlainLeNet5() if module is None else module
    X, y = data(n)
    shards = [(jnp.asarray(X[i::n][:64]), jnp.asarray(y[i::n][:64])) for i in range(n)]
    params = module.init(jax.random.key(0), X[:1])
    flat0, unravel = ravel_pytree(params)

    @jax.jit
    def worker_step(x, xs, ys, key):
        idx = jax.random.randint(key, (BATCH,), 0, xs.shape[0])

        def loss(x):
            logits = module.apply(unravel(x), xs[idx])
            return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), ys[idx][:, None], 1))

        return x - LR * jax.grad(loss)(x)

    @jax.jit
    def ring_average(*xs):
        P = jnp.stack(xs)
        return P, (P + jnp.roll(P, 1, 0) + jnp.roll(P, -1, 0)) / 3.0

    models = [flat0] * n

    def one_step(models, t):
        keys = jax.random.split(jax.random.key(t), n)
        new = [worker_step(models[i], *shards[i], keys[i]) for i in range(n)]
        _, P = ring_average(*new)
        return [P[i] for i in range(n)]

    models = one_step(models, 0)
    jax.block_until_ready(models)
    t = time.perf_counter()
    for s in range(steps):
        models = one_step(models, s + 1)
    jax.block_until_ready(models)
    return (time.perf_counter() - t) / steps


def stack_problem(n, worker_map="auto", conv="auto"):
    X, y = data(n)
    return jg.problems.from_flax(jg.models.LeNet5(conv=conv), (X, y, X[:64], y[:64]), n_workers=n, batch_size=BATCH,
                                 worker_map=worker_map, eval_batch=512)


def stack_step_seconds(prob, steps=10, repeats=2):
    """Seconds per step of jg.simulate: (T(3S) - T(S)) / 2S, each T the best of ``repeats`` warm runs (compile and
    the one evaluation cancel)."""
    algo, topo = jg.algorithms.dpsgd(lr=LR), jg.topology.ring(prob.n)
    times = {}
    for s in (steps, 3 * steps):
        jg.simulate(prob, algo, topo, steps=s, eval_every=s, metrics=["loss"])  # compile
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            jg.simulate(prob, algo, topo, steps=s, eval_every=s, metrics=["loss"])
            best = min(best, time.perf_counter() - t)
        times[s] = best
    return max(times[3 * steps] - times[steps], 1e-9) / (2 * steps)


def step_flops(prob):
    """FLOPs of one compiled stacked D-PSGD step (XLA's cost analysis of the step's program). Counted on the
    ``worker_map="vmap"`` program of the same math: the cost analysis counts a ``while`` loop's body (``lax.map``'s
    one worker) once, not once per trip."""
    prob = prob.replace(worker_map="vmap")
    prep = prepare(prob, jg.algorithms.dpsgd(lr=LR), jg.topology.ring(prob.n), steps=1, shard=False)
    model = initial_model_state(prob)

    def step(X0, key):
        ctx = Context(prep.problem.replace(worker_state=model, slot=None), prep.mixing, prep.pricing,
                      jnp.zeros((), jnp.int32))
        new, _ = prep.algorithm.step(prep.algorithm.init(X0, ctx), key, ctx)
        return new.x

    compiled = jax.jit(step).lower(jnp.tile(prob.x0, (prob.n, 1)), jax.random.key(0)).compile()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost.get("flops", float("nan")))


def worker_flops(n=1):
    """FLOPs of one worker's loss gradient on a batch of 32 (the loop's per-worker work), from XLA's cost analysis."""
    module = PlainLeNet5()
    X, y = data(1)
    params = module.init(jax.random.key(0), X[:1])

    def loss(p):
        logits = module.apply(p, X[:BATCH])
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:BATCH, None], 1))

    cost = jax.jit(jax.grad(loss)).lower(params).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost.get("flops", float("nan")))


def matmul_rate(size=2048, repeats=5):
    """FLOP/s of a size^3 float32 matmul on this backend (best of repeats)."""
    a = jnp.asarray(np.random.default_rng(0).normal(size=(size, size)), jnp.float32)
    f = jax.jit(lambda a: a @ a)
    return 2.0 * size**3 / best_time(lambda: f(a).block_until_ready(), repeats)


def run(quick=True, ns=(4, 16, 64), steps=None):
    steps = steps or (8 if quick else 20)
    gpu = jax.default_backend() != "cpu"
    target = 5.0 if gpu else 1.3
    rows, at16 = [], {}
    peak = matmul_rate()
    rows.append(("dense float32 matmul rate (2048^3) on this machine", f"{peak / 1e9:.1f} GFLOP/s", "", ""))
    for n in ns:
        loop = loop_step_seconds(n, steps=steps)
        prob = stack_problem(n)
        stack = stack_step_seconds(prob, steps)
        ratio = loop / stack
        sps = n * BATCH / stack
        low = lowering_record(prob)
        rows.append((f"LeNet-5 D-PSGD, n = {n}, batch 32: stack (conv auto = {low['conv']}, worker_map auto = "
                     f"{low['worker_map']}, by {low['by']}) vs Python loop of {n} jitted per-worker steps",
                     f"stack {sps:,.0f} samples/s ({stack * 1e3:.3g} ms/step), loop {n * BATCH / loop:,.0f} samples/s "
                     f"({loop * 1e3:.3g} ms/step): {ratio:.2f}x",
                     f">= {target}x at n = 16" if n == 16 else "", ("yes" if ratio >= target else "no") if n == 16 else ""))
        if n == 16:
            at16 = {"stack": stack, "prob": prob, "loop": loop}
    if at16:
        n = 16
        fixed = {}
        for worker_map, conv in (("vmap", "xla"), ("map", "xla"), ("vmap", "im2col"), ("map", "im2col")):
            t = fixed[(conv, worker_map)] = stack_step_seconds(stack_problem(n, worker_map, conv), steps)
            rows.append((f"LeNet-5 n = 16 on the stack, worker_map={worker_map!r}, conv={conv!r}",
                         f"{t * 1e3:.3g} ms/step = {at16['loop'] / t:.2f}x the loop", "", ""))
        low = lowering_record(at16["prob"])
        fastest = min(fixed, key=fixed.get)
        auto = fixed.get((low["conv"], low["worker_map"]), at16["stack"])
        rows.append((f"LeNet-5 n = 16, \"auto\" ({low['by']}): conv={low['conv']!r}, worker_map={low['worker_map']!r}; "
                     f"fastest fixed: conv={fastest[0]!r}, worker_map={fastest[1]!r}",
                     f"{auto * 1e3:.3g} ms/step vs {fixed[fastest] * 1e3:.3g} ms/step ({auto / fixed[fastest]:.2f}x)",
                     "the fastest (within 10%)", "yes" if auto <= 1.1 * fixed[fastest] else "no"))
        loop_im2col = loop_step_seconds(n, module=jg.models.LeNet5(conv="im2col"), steps=steps)
        rows.append(("the loop with im2col convolutions (n = 16)", f"{loop_im2col * 1e3:.3g} ms/step", "", ""))
        flops = step_flops(at16["prob"])
        rate = flops / at16["stack"]
        rows.append(("item 10: the stack's step (n = 16): XLA's FLOPs / measured time, as a fraction of the matmul rate",
                     f"{flops / 1e6:.0f} MFLOP per step, {rate / 1e9:.1f} GFLOP/s = {100 * rate / peak:.0f}% of "
                     f"{peak / 1e9:.0f}", ">= 30%" if not gpu else "", "yes" if rate >= 0.3 * peak else "no"))
        wf = worker_flops()
        loop_rate = 16 * wf / at16["loop"]
        rows.append(("item 10: the loop's rate (16 x one worker's gradient FLOPs / loop step time)",
                     f"{wf / 1e6:.0f} MFLOP per worker, {loop_rate / 1e9:.1f} GFLOP/s = {100 * loop_rate / peak:.0f}%",
                     "", ""))
    return rows


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, nargs="+", default=[4, 16, 64])
    ap.add_argument("--steps", type=int, default=10)
    a = ap.parse_args()
    for r in run(ns=tuple(a.n), steps=a.steps):
        print(r, flush=True)
