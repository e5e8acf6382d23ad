"""Issue 15, item 3 (memory part): the compiled D-PSGD step of ResNet-20 (BatchNorm, batch 128 per worker, 32x32x3)
for n workers, and the bytes XLA's compiled program needs (arguments, outputs and temporaries from
``Compiled.memory_analysis()``: nothing runs), against n. Memory must grow linearly in n.

    python benchmarks/bench_resnet_memory.py [--n 1 2 4 8 16]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxgossip as jg
from jaxgossip.algorithms._base import Context
from jaxgossip.simulate import initial_model_state, prepare

BATCH = 128


def step_program(n):
    """The lowered and compiled D-PSGD step of n ResNet-20 workers (one step, its gradient, gossip and update)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n * BATCH + 8, 32, 32, 3)).astype(np.float32)
    y = rng.integers(0, 10, len(X))
    prob = jg.problems.from_flax(jg.models.ResNet20(), (X, y, X[:8], y[:8]), n_workers=n, batch_size=BATCH,
                                 eval_batch=BATCH)
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
    return prob, compiled, time.perf_counter() - t


def run(ns=(1, 2, 4, 8, 16)):
    rows = []
    for n in ns:
        prob, compiled, seconds = step_program(n)
        mem = compiled.memory_analysis()
        total = mem.argument_size_in_bytes + mem.output_size_in_bytes + mem.temp_size_in_bytes
        rows.append((n, prob.d, total, mem.temp_size_in_bytes, seconds))
        print(f"n={n:3d}  d={prob.d}  program bytes {total / 2**20:8.1f} MiB (temporaries {mem.temp_size_in_bytes / 2**20:8.1f}"
              f" MiB)  per worker {total / n / 2**20:7.1f} MiB  compiled in {seconds:.1f} s", flush=True)
    ns_, tot = np.array([r[0] for r in rows], float), np.array([r[2] for r in rows], float)
    if len(ns_) > 2:
        slope = np.polyfit(np.log(ns_[1:]), np.log(tot[1:]), 1)[0]
        print(f"log-log slope of program bytes against n (n >= {int(ns_[1])}): {slope:.2f}")
    return rows


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    run(tuple(ap.parse_args().n))
