"""3. A 64-configuration sweep (8 learning rates x 8 seeds) as one program vs 64 separate runs.

Separate runs are measured two ways. In one process, 64 ``jg.simulate`` calls share one compiled program (the learning
rate is traced), the strictest baseline there is; both sides are timed cold (each compiling its own program, after a
warm-up on another problem size) and warm. And as a shell
loop runs them: 64 fresh Python processes, one configuration each, with the persistent compilation cache warm (each
still pays ``import jax`` and loading its program), against the sweep with its compile.
"""

import os
import subprocess
import sys
import tempfile
import time

import jaxgossip as jg

SCRIPT = r"""
import sys
import jaxgossip as jg
lr, seed, steps, cache = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
jg.enable_compilation_cache(cache)
prob = jg.problems.quadratic(n_workers=16, dim=50, samples_per_worker=20, seed=0)
jg.simulate(prob, jg.algorithms.dpsgd(lr=lr), jg.topology.ring(16), steps=steps, eval_every=steps // 10, seed=seed,
            shard=False)
"""


def _sweep(prob, topo, lrs, steps):
    t = time.perf_counter()
    df = jg.sweep(prob, jg.algorithms.dpsgd(lr=0.01), topo, steps=steps, eval_every=steps // 10, grid={"lr": lrs},
                  seeds=range(8))
    assert df.groupby(["lr", "seed"]).ngroups == 64
    return time.perf_counter() - t


def _separate(prob, topo, lrs, steps):
    t = time.perf_counter()
    for lr in lrs:
        for s in range(8):
            jg.simulate(prob, jg.algorithms.dpsgd(lr=lr), topo, steps=steps, eval_every=steps // 10, seed=s, shard=False)
    return time.perf_counter() - t


def _processes(lrs, steps):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    with tempfile.TemporaryDirectory() as cache:
        one = lambda lr, seed: subprocess.run([sys.executable, "-c", SCRIPT, str(lr), str(seed), str(steps), cache],  # noqa: E731
                                              env=env, check=True, capture_output=True)
        one(lrs[0], 0)  # fills the compilation cache
        t = time.perf_counter()
        for lr in lrs:
            for s in range(8):
                one(lr, s)
        return time.perf_counter() - t


def run(quick=False):
    prob = jg.problems.quadratic(n_workers=16, dim=50, samples_per_worker=20, seed=0)
    topo = jg.topology.ring(16)
    lrs = [0.005 * (i + 1) for i in range(8)]
    steps = 500 if quick else 1000
    # Warm-up on another problem size (its programs are not reused below): pandas' import and jax's small shared
    # programs would otherwise be charged to whichever side runs first.
    tiny = jg.problems.quadratic(n_workers=4, dim=5, samples_per_worker=4, seed=0)
    _sweep(tiny, jg.topology.ring(4), lrs, 20)
    _separate(tiny, jg.topology.ring(4), lrs[:1], 20)
    cold = (_sweep(prob, topo, lrs, steps), _separate(prob, topo, lrs, steps))
    warm = (_sweep(prob, topo, lrs, steps), _separate(prob, topo, lrs, steps))
    rows = [(f"64 configurations (quadratic n=16, d=50, {steps} steps): one sweep vs 64 simulate calls in one process, "
             f"{kind}", f"{a:.2f} s vs {b:.2f} s = {b / a:.1f}x", ">= 10x", "yes" if b / a >= 10 else "no")
            for kind, (a, b) in (("compile included", cold), ("warm (compiled)", warm))]
    import jax

    if jax.default_backend() != "cpu":  # 64 processes would each start the GPU runtime: minutes of a short lease
        return rows
    procs = _processes(lrs, steps)
    rows.append((f"64 configurations (quadratic n=16, d=50, {steps} steps): one sweep, compile included, vs 64 Python "
                 "processes of one run each (persistent compilation cache warm)",
                 f"{cold[0]:.2f} s vs {procs:.2f} s = {procs / cold[0]:.0f}x", ">= 10x",
                 "yes" if procs / cold[0] >= 10 else "no"))
    return rows
