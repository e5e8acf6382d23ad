"""Random numbers: 64,000 uniforms (a 16-bit quantizer's draws for n = 64, d = 1000) per call, jitted.

jaxgossip lowers Threefry on CPU with its rounds unrolled (jaxgossip/_threefry_cpu.py, the change of jax-ml/jax#37872);
jax's own CPU lowering runs the rounds as a 5-trip while loop. Both give the same bits. Each side runs in a fresh
process (the lowering is chosen at import); the time is the best of 300 calls, compile excluded.
"""

import os
import subprocess
import sys

SCRIPT = r"""
import time, jax, jaxgossip
f = jax.jit(lambda k: jax.random.uniform(k, (64, 1000)))
k = jax.random.key(0)
f(k).block_until_ready()
best = float("inf")
for _ in range(300):
    t = time.perf_counter(); f(k).block_until_ready(); best = min(best, time.perf_counter() - t)
print("US", best * 1e6, jaxgossip._threefry_cpu.installed())
"""


def _once(rolled: bool) -> float:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["JAXGOSSIP_ROLLED_THREEFRY"] = "1" if rolled else "0"
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True).stdout
    us, installed = out.split("US")[1].split()
    assert (installed == "True") != rolled
    return float(us)


def run(quick=False):
    import jax

    if jax.default_backend() != "cpu":  # the unrolled lowering is CPU-only; GPUs keep jax's kernel
        return [("64,000 uniforms: rolled vs unrolled Threefry", "not run (CPU-only comparison)", "", "")]
    rolled, unrolled = _once(True), _once(False)
    return [("64,000 uniforms (jax.random.uniform, jit): jax's rolled CPU Threefry vs jaxgossip's unrolled lowering",
             f"{rolled:.0f} us vs {unrolled:.0f} us = {rolled / unrolled:.1f}x", "", "")]
