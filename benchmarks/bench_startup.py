"""5. Time from ``import jaxgossip`` to the first metrics of the demo experiment (compile included), in a fresh process.

The demo is configs/demo.toml's D-PSGD run (logistic regression on digits, 16 workers, ring), its first evaluation.
"""

import os
import subprocess
import sys

SCRIPT = r"""
import time
t = time.perf_counter()
import jaxgossip as jg
prob = jg.problems.logistic_regression("digits", n_workers=16, batch_size=8, reg=1e-3, seed=0)
res = jg.simulate(prob, jg.algorithms.dpsgd(lr=0.5), jg.topology.ring(16), steps=50, eval_every=50, seed=0)
assert res.metrics["loss"][-1] < res.metrics["loss"][0]
print("SECONDS", time.perf_counter() - t)
"""


def run(quick=False):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    times = []
    for _ in range(1 if quick else 2):
        out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, check=True).stdout
        times.append(float(out.split("SECONDS")[1]))
    t = min(times)
    return [("import jaxgossip -> first metrics of the demo (fresh process, compile included)", f"{t:.2f} s",
             "< 3 s", "yes" if t < 3 else "no")]
