"""Random numbers: 64,000 uniforms (a 16-bit quantizer's draws for n = 64, d = 1000) per call, jitted.

Two changes jaxgossip makes to how Threefry runs on CPU, each timed against the code without it (both give the same
bits): the unrolled lowering (jaxgossip/_threefry_cpu.py, the change of jax-ml/jax#37872; jax's own CPU lowering runs
the rounds as a 5-trip while loop), and, on a CPU with AVX-512, 512-bit vectors (``xla_cpu_prefer_vector_width``; XLA
prefers 256). Each side runs in a fresh process (both choices are made at import); the time is the best of 300 calls,
compile excluded.

A third row times what the stochastic quantizers draw since issue 25 (jaxgossip/compressors/_dither.py: one Threefry
draw per worker seeds a keyed MurmurHash3 finalizer of the coordinate index) against ``jax.random.uniform``, both as a
compressed step draws them: 64 worker keys ``fold_in(step key, i)``, vmapped, inside a compiled loop of 10 steps, in
this process, interleaved, best of 200 calls each.
"""

import os
import subprocess
import sys

SCRIPT = r"""
import time, jax, jaxgossip
from jaxgossip._threefry_cpu import compiler_options, installed
f = jax.jit(lambda k: jax.random.uniform(k, (64, 1000)), compiler_options=compiler_options())
k = jax.random.key(0)
f(k).block_until_ready()
best = float("inf")
for _ in range(300):
    t = time.perf_counter(); f(k).block_until_ready(); best = min(best, time.perf_counter() - t)
print("US", best * 1e6, installed(), compiler_options().get("xla_cpu_prefer_vector_width", 256))
"""


def _once(rolled: bool, width: int) -> float:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["JAXGOSSIP_ROLLED_THREEFRY"] = "1" if rolled else "0"
    env["JAXGOSSIP_CPU_VECTOR_WIDTH"] = str(width)
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True).stdout
    us, installed, used = out.split("US")[1].split()
    assert (installed == "True") != rolled and int(used) == width
    return float(us)


def run(quick=False):
    import jax

    from jaxgossip._threefry_cpu import _has_avx512

    if jax.default_backend() != "cpu":  # both changes are CPU-only; GPUs keep jax's kernel
        return [("64,000 uniforms: Threefry lowerings on CPU", "not run (CPU-only comparison)", "", "")]
    rolled, unrolled = _once(True, 256), _once(False, 256)
    rows = [("64,000 uniforms (jax.random.uniform, jit): jax's rolled CPU Threefry vs jaxgossip's unrolled lowering "
             "(256-bit vectors)", f"{rolled:.0f} us vs {unrolled:.0f} us = {rolled / unrolled:.1f}x", "", "")]
    label = "64,000 uniforms, unrolled Threefry: XLA's 256-bit vectors vs 512-bit (AVX-512), as jaxgossip compiles runs"
    if not _has_avx512():
        return rows + [(label, "n/a (this CPU has no AVX-512)", "", "")]
    # Interleaved, each side keeping its best: a burst of load on the shared machine then hits both sides.
    narrow, wide = float("inf"), float("inf")
    for _ in range(3):
        narrow, wide = min(narrow, _once(False, 256)), min(wide, _once(False, 512))
    return rows + [(label, f"{narrow:.0f} us vs {wide:.0f} us = {narrow / wide:.2f}x", "", ""), _dither_row()]


def _dither_row(steps=10, calls=200):
    """64 workers x 1000 dither uniforms per step: jax.random.uniform per worker key vs jaxgossip's dither stream."""
    import time

    import jax
    import jax.numpy as jnp

    from jaxgossip._threefry_cpu import compiler_options
    from jaxgossip.compressors import _dither
    from jaxgossip.compressors._base import worker_keys

    def loop(draw):
        def body(i, acc):
            keys = worker_keys(jax.random.fold_in(jax.random.key(0), i), 64)
            return acc + jax.vmap(lambda k: draw(k, (1000,)))(keys)
        return jax.jit(lambda acc: jax.lax.fori_loop(0, steps, body, acc), compiler_options=compiler_options())

    sides = {"threefry": loop(lambda k, s: jax.random.uniform(k, s)), "dither": loop(_dither.uniform)}
    acc = jnp.zeros((64, 1000), jnp.float32)
    best = {}
    for name, f in sides.items():
        f(acc).block_until_ready()
        best[name] = float("inf")
    for _ in range(calls):
        for name, f in sides.items():
            t = time.perf_counter()
            f(acc).block_until_ready()
            best[name] = min(best[name], (time.perf_counter() - t) / steps)
    old, new = best["threefry"] * 1e6, best["dither"] * 1e6
    label = ("64 workers x 1000 rounding uniforms per step (vmapped over fold_in worker keys, jit): "
             "jax.random.uniform vs jaxgossip's dither stream (issue 25)")
    return (label, f"{old:.0f} us vs {new:.0f} us = {old / new:.1f}x", "", "")
