"""3. A 64-configuration sweep (8 learning rates x 8 seeds) as one program vs 64 separate runs.

Both sides are timed twice: cold (compile included: one compile for the sweep, one shared by the 64 runs since the
learning rate is traced) and warm (compiled programs cached), so the ratio is reported with and without compilation.
"""

import time

import jaxgossip as jg


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


def run(quick=False):
    prob = jg.problems.quadratic(n_workers=16, dim=50, samples_per_worker=20, seed=0)
    topo = jg.topology.ring(16)
    lrs = [0.005 * (i + 1) for i in range(8)]
    steps = 500 if quick else 1000
    cold = (_sweep(prob, topo, lrs, steps), _separate(prob, topo, lrs, steps))
    warm = (_sweep(prob, topo, lrs, steps), _separate(prob, topo, lrs, steps))
    return [(f"64 configurations (quadratic n=16, d=50, {steps} steps): one sweep vs 64 simulate calls, {kind}",
             f"{a:.2f} s vs {b:.2f} s = {b / a:.1f}x", ">= 10x", "yes" if b / a >= 10 else "no")
            for kind, (a, b) in (("compile included", cold), ("warm (compiled)", warm))]
