"""Gossip by ``ppermute`` inside ``jax.shard_map`` when the worker axis is split over devices.

A shift-structured graph mixes as ``W X = w_0 X + sum_k w_k P_k X`` with permutations P_k (ring, torus, hypercube,
exponential; see :mod:`jaxgossip.topology`). With the n workers split into D contiguous blocks of b = n / D rows, one
device holds one block, and ``P_k X`` only needs the rows that cross a block boundary: for a ring, one row per device
and direction. A :class:`ShardPlan`, built once in NumPy, lists for every permutation the rounds of device-to-device
transfers (each round a partial permutation of the devices, so one ``lax.ppermute``), which local rows each device sends
and where the receiver puts them. Inside ``shard_map`` a device gathers its outgoing rows, ``ppermute`` moves them, and
the receiver scatters them into place; rows that stay on the device are copied locally.

The sum is taken in the same order as the single-device ``shift`` backend (self first, then the permutations in order),
and moving rows is exact, so the sharded result is bit-identical to ``shift`` on one device.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P

__all__ = ["ShardPlan", "make_plan", "apply", "apply_delta", "replicate", "AXIS"]

#: Name of the mesh axis that carries the workers.
AXIS = "workers"


@dataclasses.dataclass(frozen=True)
class ShardPlan:
    """Static transfer plan of one mixing (hashable: it is a static field of a jitted Mixing).

    Attributes:
      mesh: the 1-D device mesh over the worker axis.
      block: rows per device b.
      perms: one entry per permutation: a tuple of rounds ``(pairs, send, recv)`` where ``pairs`` are the
        (source device, destination device) pairs of the round (empty for the local copy round), ``send[q]`` the local
        rows device q sends (padded with 0) and ``recv[p]`` where device p puts what it receives (padded with b, dropped).
    """

    mesh: jax.sharding.Mesh
    block: int
    perms: tuple


def _rounds(perm: np.ndarray, D: int, b: int):
    """Split ``out[i] = X[perm[i]]`` into rounds of device transfers (a greedy edge colouring of the device pairs)."""
    src_dev, dst_dev = perm // b, np.arange(len(perm)) // b
    pairs = sorted({(int(q), int(p)) for q, p in zip(src_dev, dst_dev)})
    local = [(q, p) for q, p in pairs if q == p]
    remote = [(q, p) for q, p in pairs if q != p]
    rounds = [local] if local else []
    colours: list[list] = []
    for q, p in remote:
        for c in colours:
            if all(q != a and p != z for a, z in c):
                c.append((q, p))
                break
        else:
            colours.append([(q, p)])
    rounds += colours
    out = []
    for pairs_r in rounds:
        rows = {(q, p): np.flatnonzero((src_dev == q) & (dst_dev == p)) for q, p in pairs_r}
        width = max(len(r) for r in rows.values())
        send = np.zeros((D, width), np.int32)
        recv = np.full((D, width), b, np.int32)
        for (q, p), r in rows.items():
            send[q, : len(r)] = perm[r] - q * b
            recv[p, : len(r)] = r - p * b
        is_local = all(q == p for q, p in pairs_r)
        out.append((() if is_local else tuple(pairs_r), _tup(send), _tup(recv)))
    return tuple(out)


def _tup(a: np.ndarray) -> tuple:
    return tuple(tuple(int(v) for v in row) for row in a)


def make_plan(perms: np.ndarray, mesh: jax.sharding.Mesh) -> ShardPlan:
    """The plan of the (K, n) permutations over the mesh (n must be a multiple of the number of devices)."""
    D = mesh.devices.size
    n = perms.shape[1]
    if n % D:
        raise ValueError(f"ppermute gossip: n={n} workers cannot be split evenly over {D} devices.")
    b = n // D
    return ShardPlan(mesh, b, tuple(_rounds(np.asarray(p), D, b) for p in perms))


def _permute_block(X, rounds, block):
    """``(P X)`` restricted to this device's block, inside shard_map (X is the (b, d) local block)."""
    me = jax.lax.axis_index(AXIS)
    out = jnp.zeros_like(X)
    for pairs, send, recv in rounds:
        rows = X[jnp.asarray(send)[me]]
        if pairs:
            rows = jax.lax.ppermute(rows, AXIS, perm=pairs)
        out = out.at[jnp.asarray(recv)[me]].set(rows, mode="drop")
    return out


def _row(w, X):
    """A weight as a factor of the local block: a scalar, or this block's per-receiver weights as a column (a masked
    mixing, :meth:`jaxgossip.gossip.Mixing.masked`)."""
    return w if w.ndim == 0 else w.reshape((-1,) + (1,) * (X.ndim - 1))


def _mix_local(weights, X, plan):
    out = _row(weights[0], X) * X
    for k, rounds in enumerate(plan.perms):
        out = out + _row(weights[k + 1], X) * _permute_block(X, rounds, plan.block)
    return out


def apply(weights: jax.Array, X: jax.Array, plan: ShardPlan) -> jax.Array:
    """``w_0 X + sum_k w_k P_k X`` for a worker-sharded (n, ...) stack X (same sum order as the ``shift`` backend).
    ``weights``: (K + 1,), or (K + 1, n) per receiver (a masked mixing, split over the devices with X)."""
    fn = jax.shard_map(functools.partial(_mix_local, plan=plan), mesh=plan.mesh, in_specs=(_wspec(weights), P(AXIS)),
                       out_specs=P(AXIS))
    return fn(weights.astype(X.dtype), X)


def _delta_local(weights, X, plan):
    out = jnp.zeros_like(X)
    for k, rounds in enumerate(plan.perms):
        out = out + _row(weights[k + 1], X) * (_permute_block(X, rounds, plan.block) - X)
    return out


def apply_delta(weights: jax.Array, X: jax.Array, plan: ShardPlan) -> jax.Array:
    """``sum_k w_k (P_k X - X)`` for a worker-sharded stack (the difference form of ``Mixing.delta``, same order as
    the single-device ``shift`` backend, so bit-identical to it)."""
    fn = jax.shard_map(functools.partial(_delta_local, plan=plan), mesh=plan.mesh,
                       in_specs=(_wspec(weights), P(AXIS)),
                       out_specs=P(AXIS))
    return fn(weights.astype(X.dtype), X)


def _wspec(weights):
    """Replicated (K + 1,) weights, or per-receiver (K + 1, n) ones split along the workers."""
    return P() if jnp.ndim(weights) == 1 else P(None, AXIS)


def replicate(tree):
    """Constrain every array of ``tree`` to be replicated on the current mesh (a no-op without one).

    Reductions over the worker axis of a sharded array sum per-device partial sums, in another order than one device
    does; reducing a replicated copy instead gives the single-device bits. Used for the metrics.
    """
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty or AXIS not in mesh.axis_names:
        return tree
    return jax.tree.map(lambda a: jax.lax.with_sharding_constraint(a, P()) if hasattr(a, "ndim") else a, tree)
