"""5. Time from ``import jaxgossip`` to the first metrics of the demo experiment (compile included), in a fresh process.

The demo is configs/demo.toml's D-PSGD run (logistic regression on digits, 16 workers, ring), its first evaluation.
Measured twice: with no compilation cache (every program compiled), and with the persistent compilation cache the CLI
turns on (``jg.enable_compilation_cache``), warm from an earlier process, as a user's second ``make demo`` is.
"""

import os
import subprocess
import sys
import tempfile

SCRIPT = r"""
import os, time
t = time.perf_counter()
import jaxgossip as jg
if os.environ.get("BENCH_CACHE"):
    jg.enable_compilation_cache(os.environ["BENCH_CACHE"])
prob = jg.problems.logistic_regression("digits", n_workers=16, batch_size=8, reg=1e-3, seed=0)
res = jg.simulate(prob, jg.algorithms.dpsgd(lr=0.5), jg.topology.ring(16), steps=50, eval_every=50, seed=0)
assert res.metrics["loss"][-1] < res.metrics["loss"][0]
print("SECONDS", time.perf_counter() - t)
"""


def _once(cache=None):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    if cache:
        env["BENCH_CACHE"] = cache
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, check=True).stdout
    return float(out.split("SECONDS")[1])


def run(quick=False):
    cold = min(_once() for _ in range(1 if quick else 2))
    with tempfile.TemporaryDirectory() as cache:
        _once(cache)  # fills the cache
        warm = min(_once(cache) for _ in range(1 if quick else 2))
    return [
        ("import jaxgossip -> first metrics of the demo (fresh process, no compilation cache)", f"{cold:.2f} s",
         "< 3 s", "yes" if cold < 3 else "no"),
        ("import jaxgossip -> first metrics of the demo (fresh process, warm persistent cache, as the CLI runs)",
         f"{warm:.2f} s", "< 3 s", "yes" if warm < 3 else "no"),
    ]
