"""Issue 16's sweep benchmark: 45 configurations (5 step sizes x 3 bit widths x 3 seeds) of CHOCO-SGD with randomized
quantization on L2 logistic regression (digits), ring(16), 1000 steps, as one ``jg.sweep`` call against a loop of
``jg.simulate`` calls.

Each side runs in its own fresh Python process (nothing compiled or cached in memory beforehand, no persistent
compilation cache), timed twice there: cold (the first call, compilation included) and warm (the same call again, best
of ``--repeats``). The problem is built before the clock starts on both sides. Printed: the four times and the ratios
loop / sweep, cold and warm (the issue's targets: >= 3x cold, >= 5x warm on a 2-core CPU).

    python benchmarks/bench_sweep_vs_loop.py [--steps 1000] [--repeats 2]
"""

import argparse
import json
import os
import subprocess
import sys
import time

CHILD = r"""
import json, sys, time
mode, steps, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
import jaxgossip as jg
prob = jg.problems.logistic_regression("digits", n_workers=16, batch_size=8, seed=0)
topo = jg.topology.ring(16)
LRS, BITS, SEEDS = [0.01, 0.03, 0.1, 0.3, 1.0], [2.0, 4.0, 8.0], [0, 1, 2]
algo = jg.algorithms.choco_sgd(lr=0.1, compressor=jg.compressors.quantize(bits=4), consensus=0.5)


def sweep():
    df = jg.sweep(prob, algo, topo, steps=steps, eval_every=steps // 10, grid={"lr": LRS, "compressor.bits": BITS},
                  seeds=SEEDS)
    return float(df.loss.sum())


def loop():
    total = 0.0
    for lr in LRS:
        for bits in BITS:
            a = jg.algorithms.choco_sgd(lr=lr, compressor=jg.compressors.quantize(bits=bits), consensus=0.5)
            for seed in SEEDS:
                r = jg.simulate(prob, a, topo, steps=steps, eval_every=steps // 10, seed=seed, shard=False)
                total += float(r.metrics["loss"][-1])
    return total


fn = sweep if mode == "sweep" else loop
t = time.perf_counter(); fn(); cold = time.perf_counter() - t
warm = float("inf")
for _ in range(repeats):
    t = time.perf_counter(); fn(); warm = min(warm, time.perf_counter() - t)
print("RESULT " + json.dumps({"cold": cold, "warm": warm}))
"""


def run(mode, steps, repeats):
    env = dict(os.environ)
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    out = subprocess.run([sys.executable, "-c", CHILD, mode, str(steps), str(repeats)], capture_output=True, text=True,
                         env=env, check=True).stdout
    line = [ln for ln in out.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def rows(quick=True):
    """The rows of ``make bench`` (item 8): both sides in fresh processes, 1000 steps (300 with ``quick``)."""
    steps = 300 if quick else 1000
    sweep, loop = run("sweep", steps, 2), run("loop", steps, 2)
    cold, warm = loop["cold"] / sweep["cold"], loop["warm"] / sweep["warm"]
    what = f"45 CHOCO configurations ({steps} steps), loop of simulate / one sweep, fresh processes"
    return [(f"{what}, compile included", f"{cold:.2f}x ({loop['cold']:.3g} s / {sweep['cold']:.3g} s)", ">= 3x",
             "yes" if cold >= 3 else "no"),
            (f"{what}, warm", f"{warm:.2f}x ({loop['warm']:.3g} s / {sweep['warm']:.3g} s)", ">= 5x",
             "yes" if warm >= 5 else "no")]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args(argv)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _common import machine

    print(machine())
    print(f"load average before: {os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "")
    t = time.perf_counter()
    sweep, loop = run("sweep", args.steps, args.repeats), run("loop", args.steps, args.repeats)
    print(f"45 configurations, {args.steps} steps: sweep cold {sweep['cold']:.2f} s, warm {sweep['warm']:.2f} s; "
          f"loop of simulate cold {loop['cold']:.2f} s, warm {loop['warm']:.2f} s")
    print(f"loop / sweep: cold {loop['cold'] / sweep['cold']:.2f}x (target 3x), "
          f"warm {loop['warm'] / sweep['warm']:.2f}x (target 5x)  [{time.perf_counter() - t:.0f} s in all]")


if __name__ == "__main__":
    main()
