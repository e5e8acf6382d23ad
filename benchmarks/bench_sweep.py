"""3. A 64-configuration sweep (8 learning rates x 8 seeds) as one program vs 64 separate runs.

Separate runs are measured two ways. In one process, 64 ``jg.simulate`` calls share one compiled program (the learning
rate is traced), the strictest baseline there is; both sides are timed cold (each compiling its own program, after a
warm-up on another problem size) and warm (best of three interleaved runs each). And as a shell
loop runs them: 64 fresh Python processes, one configuration each, with the persistent compilation cache warm (each
still pays ``import jax`` and loading its program), against the sweep with its compile.

On a CPU with several cores, the in-process comparison runs once more in a process that splits the CPU into one JAX
device per core (``jax_num_cpu_devices``) and shards the sweep over them (``shard_sweep=True``): each device then runs
its share of the configurations on one thread, where one device splits every small kernel over the cores.
"""

import os
import subprocess
import sys
import tempfile
import time

import jaxgossip as jg
from _common import usable_cores

PER_CORE = r"""
import sys, time
import jax
jax.config.update("jax_num_cpu_devices", int(sys.argv[1]))
sys.path.insert(0, sys.argv[3])
import jaxgossip as jg
import bench_sweep as b
steps = int(sys.argv[2])
prob, topo, lrs = b.problem(), jg.topology.ring(16), b.LRS
tiny = jg.problems.quadratic(n_workers=4, dim=5, samples_per_worker=4, seed=0)
b._sweep(tiny, jg.topology.ring(4), lrs, 20, shard_sweep=True)
b._separate(tiny, jg.topology.ring(4), lrs[:1], 20)
cold = (b._sweep(prob, topo, lrs, steps, shard_sweep=True), b._separate(prob, topo, lrs, steps))
warm = b._best_warm(lambda: b._sweep(prob, topo, lrs, steps, shard_sweep=True),
                    lambda: b._separate(prob, topo, lrs, steps))
print("TIMES", *cold, *warm)
"""

SCRIPT = r"""
import sys
import jaxgossip as jg
lr, seed, steps, cache = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
jg.enable_compilation_cache(cache)
prob = jg.problems.quadratic(n_workers=16, dim=50, samples_per_worker=20, seed=0)
jg.simulate(prob, jg.algorithms.dpsgd(lr=lr), jg.topology.ring(16), steps=steps, eval_every=steps // 10, seed=seed,
            shard=False)
"""


LRS = [0.005 * (i + 1) for i in range(8)]


def problem():
    """The swept problem (the 64-process script builds the same one without importing this file)."""
    return jg.problems.quadratic(n_workers=16, dim=50, samples_per_worker=20, seed=0)


def _sweep(prob, topo, lrs, steps, shard_sweep=False):
    t = time.perf_counter()
    df = jg.sweep(prob, jg.algorithms.dpsgd(lr=0.01), topo, steps=steps, eval_every=steps // 10, grid={"lr": lrs},
                  seeds=range(8), shard_sweep=shard_sweep)
    assert df.groupby(["hp.lr", "seed"]).ngroups == 64
    return time.perf_counter() - t


def _separate(prob, topo, lrs, steps):
    t = time.perf_counter()
    for lr in lrs:
        for s in range(8):
            jg.simulate(prob, jg.algorithms.dpsgd(lr=lr), topo, steps=steps, eval_every=steps // 10, seed=s, shard=False)
    return time.perf_counter() - t


def _best_warm(sweep, separate, rounds=3):
    """Each side's best of ``rounds`` interleaved compiled runs (a warm sweep takes tens of milliseconds: one burst of
    load on the shared machine would otherwise decide the ratio)."""
    best = [float("inf"), float("inf")]
    for _ in range(rounds):
        best = [min(best[0], sweep()), min(best[1], separate())]
    return tuple(best)


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


def _per_core(cores, steps):
    """(cold, warm) pairs of (sweep, 64 simulate calls) seconds, in a process with one CPU device per core."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    out = subprocess.run([sys.executable, "-c", PER_CORE, str(cores), str(steps), os.path.dirname(__file__)], env=env,
                         check=True, capture_output=True, text=True).stdout
    t = [float(v) for v in out.split("TIMES")[1].split()]
    return (t[0], t[1]), (t[2], t[3])


def run(quick=False):
    prob = problem()
    topo = jg.topology.ring(16)
    lrs = LRS
    steps = 500 if quick else 1000
    # Warm-up on another problem size (its programs are not reused below): pandas' import and jax's small shared
    # programs would otherwise be charged to whichever side runs first.
    tiny = jg.problems.quadratic(n_workers=4, dim=5, samples_per_worker=4, seed=0)
    _sweep(tiny, jg.topology.ring(4), lrs, 20)
    _separate(tiny, jg.topology.ring(4), lrs[:1], 20)
    cold = (_sweep(prob, topo, lrs, steps), _separate(prob, topo, lrs, steps))
    warm = _best_warm(lambda: _sweep(prob, topo, lrs, steps), lambda: _separate(prob, topo, lrs, steps))
    rows = [(f"64 configurations (quadratic n=16, d=50, {steps} steps): one sweep vs 64 simulate calls in one process, "
             f"{kind}", f"{a:.2f} s vs {b:.2f} s = {b / a:.1f}x", ">= 10x", "yes" if b / a >= 10 else "no")
            for kind, (a, b) in (("compile included", cold), ("warm (compiled)", warm))]
    import jax

    if jax.default_backend() != "cpu":  # 64 processes would each start the GPU runtime: minutes of a short lease
        return rows
    cores = usable_cores()
    if cores > 1:
        cold_pc, warm_pc = _per_core(cores, steps)
        rows += [(f"64 configurations (quadratic n=16, d=50, {steps} steps): one sweep sharded over {cores} CPU devices "
                  f"(one per core) vs 64 simulate calls in that process, {kind}", f"{a:.2f} s vs {b:.2f} s = {b / a:.1f}x",
                  ">= 10x", "yes" if b / a >= 10 else "no")
                 for kind, (a, b) in (("compile included", cold_pc), ("warm (compiled)", warm_pc))]
    procs = _processes(lrs, steps)
    rows.append((f"64 configurations (quadratic n=16, d=50, {steps} steps): one sweep, compile included, vs 64 Python "
                 "processes of one run each (persistent compilation cache warm)",
                 f"{cold[0]:.2f} s vs {procs:.2f} s = {procs / cold[0]:.0f}x", ">= 10x",
                 "yes" if procs / cold[0] >= 10 else "no"))
    return rows
