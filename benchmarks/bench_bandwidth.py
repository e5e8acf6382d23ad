"""1. One gossip + local update step at n = 16, d = 2^20, float32: bytes moved per second vs the copy bandwidth.

Bytes per step: read X and the update G, write X (3 n d 4 bytes; the mixing reads each row of X once in a fused loop).
The copy bandwidth is NumPy's ``np.copyto`` of a 256 MiB array (read + write), measured in the same run.
"""

import jax
import jax.numpy as jnp
import numpy as np

import jaxgossip as jg
from _common import best_time

N, D, STEPS = 16, 2**20, 20


def copy_bandwidth():
    a = np.ones(2**26, np.float32)
    b = np.empty_like(a)
    t = best_time(lambda: np.copyto(b, a), repeats=5)
    return 2 * a.nbytes / t


def _steps(step_fn):
    @jax.jit
    def run(X, G):
        return jax.lax.fori_loop(0, STEPS, lambda _, X: step_fn(X, G), X)

    return run


def run(quick=False):
    bw = copy_bandwidth()
    X = jax.random.normal(jax.random.key(0), (N, D))
    G = jax.random.normal(jax.random.key(1), (N, D))
    lr = jnp.float32(0.01)
    mixing = jg.gossip.make_mixing(jg.topology.ring(N), "shift")
    lib = _steps(lambda X, G: mixing(X) - lr * G)
    roll = _steps(lambda X, G: (X + jnp.roll(X, 1, axis=0) + jnp.roll(X, -1, axis=0)) / 3 - lr * G)
    out = {}
    for name, fn in (("jaxgossip shift backend", lib), ("plain jnp.roll ring", roll)):
        t = best_time(lambda: fn(X, G).block_until_ready(), repeats=2 if quick else 3) / STEPS
        out[name] = 3 * N * D * 4 / t
    rows = [("copy bandwidth (np.copyto, read+write)", f"{bw / 1e9:.2f} GB/s", "", "")]
    for name, v in out.items():
        rows.append((f"gossip + update, {name}, n=16, d=2^20", f"{v / 1e9:.2f} GB/s = {v / bw:.0%} of copy",
                     ">= 50%" if "jaxgossip" in name else "(~20% in the issue)",
                     ("yes" if v / bw >= 0.5 else "no") if "jaxgossip" in name else ""))
    return rows
