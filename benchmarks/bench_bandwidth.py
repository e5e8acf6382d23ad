"""1. One gossip + local update step at n = 16, d = 2^20, float32: bytes moved per second vs the copy bandwidth.

Bytes per step: read X and the update G, write X (3 n d 4 bytes; the mixing reads each row of X once in a fused loop).
The reference is the machine's copy bandwidth measured in the same run: on CPU NumPy's ``np.copyto`` of a 256 MiB array
(read + write); on an accelerator a jitted ``a + 1`` over a 256 MiB device array (read + write), its streaming
bandwidth.

The steps run in one compiled loop unrolled as ``jg.simulate`` unrolls a long run (``step_unroll``: twice, so each step
writes into the buffer the step before last read and no (n, d) copy is made per step); the loop without unrolling is
reported too.
"""

import importlib

import jax
import jax.numpy as jnp
import numpy as np

import jaxgossip as jg
from _common import best_time

N, D, STEPS = 16, 2**20, 20


def copy_bandwidth():
    """(bytes per second, what was measured): np.copyto on CPU, a device stream (a + 1) on an accelerator."""
    if jax.default_backend() == "cpu":
        a = np.ones(2**26, np.float32)
        b = np.empty_like(a)
        return 2 * a.nbytes / best_time(lambda: np.copyto(b, a), repeats=5), "np.copyto, read+write"
    a = jnp.ones(2**26, jnp.float32)
    stream = jax.jit(lambda a: a + 1)
    t = best_time(lambda: stream(a).block_until_ready(), repeats=10)
    return 2 * a.nbytes / t, f"jitted a + 1 on {jax.devices()[0].device_kind}, read+write"


UNROLL = importlib.import_module("jaxgossip.simulate").step_unroll(10**6)  # a long run's


def _steps(step_fn, unroll=UNROLL):
    @jax.jit
    def run(X, G):
        return jax.lax.fori_loop(0, STEPS, lambda _, X: step_fn(X, G), X, unroll=unroll)

    return run


def run(quick=False):
    bw, how = copy_bandwidth()
    X = jax.random.normal(jax.random.key(0), (N, D))
    G = jax.random.normal(jax.random.key(1), (N, D))
    lr = jnp.float32(0.01)
    mixing = jg.gossip.make_mixing(jg.topology.ring(N), "shift")
    lib = _steps(lambda X, G: mixing(X) - lr * G)
    roll = _steps(lambda X, G: (X + jnp.roll(X, 1, axis=0) + jnp.roll(X, -1, axis=0)) / 3 - lr * G)
    lib1 = _steps(lambda X, G: mixing(X) - lr * G, unroll=1)
    roll1 = _steps(lambda X, G: (X + jnp.roll(X, 1, axis=0) + jnp.roll(X, -1, axis=0)) / 3 - lr * G, unroll=1)
    out = {}
    for name, fn in ((f"jaxgossip shift backend, loop unrolled x{UNROLL}", lib),
                     (f"plain jnp.roll ring, loop unrolled x{UNROLL}", roll),
                     ("jaxgossip shift backend, loop not unrolled", lib1), ("plain jnp.roll ring, loop not unrolled", roll1)):
        t = best_time(lambda: fn(X, G).block_until_ready(), repeats=2 if quick else 3) / STEPS
        out[name] = 3 * N * D * 4 / t
    rows = [(f"copy bandwidth ({how})", f"{bw / 1e9:.2f} GB/s", "", "")]
    for name, v in out.items():
        rows.append((f"gossip + update, {name}, n=16, d=2^20", f"{v / 1e9:.2f} GB/s = {v / bw:.0%} of copy",
                     ">= 50%" if "jaxgossip" in name else "(~20% in the issue)",
                     ("yes" if v / bw >= 0.5 else "no") if "jaxgossip" in name and "x" + str(UNROLL) in name else ""))
    return rows
