"""Gossip backends: one signature, ``mixing(X) == W @ X`` for an (n, d) stack X.

* ``dense``: the reference, ``W @ X`` (O(n^2 d) work; fine for small n).
* ``gather``: ``sum_k weight[i, k] X[index[i, k]]`` over a padded neighbour table, O(n deg d) work and memory.
* ``shift``: ``w_0 X + sum_k w_k X[perm_k]`` for graphs that are weighted sums of permutations (ring, torus, hypercube,
  exponential, complete); under a sharded worker axis XLA lowers the permutations to collective permutes.
* ``sparse``: ``W_ii X_i + segment_sum over the edges (i, j) of W_ij X_j``, O((n + edges) d) whatever the degrees: for
  graphs whose largest degree is far above the average (hubs, power laws), where the padded gather table would be
  mostly padding.

The weights are traced arrays (so a sweep may vmap over mixing matrices of the same n); the structure (backend, table
shapes) is static. A :class:`Mixing` also exposes ``diag`` (the W_ii), which naive compressed gossip needs, and the
messages each worker sends and receives on its graph (``sends``, ``receives``), from which a step is priced
(:meth:`jaxgossip.cost.Pricing.on`): the graph of step t is one value, :func:`select`, that both the mixing and the
pricing read.

``mixing.difference(X)`` computes the same ``W @ X`` in the difference form ``x_i + sum_j w_ij (x_j - x_i)``
(``mixing.delta(X)`` is the sum alone, ``(W - I) X``). It keeps a consensus stack (every row equal) bit-exactly and
does not read W's float32 row sums: the self weights are 1 - sum_j w_ij by construction, and with symmetric stored
weights the worker-sum of ``delta(X)`` is 0 up to rounding of terms of the size of the disagreement, so every error it
makes in the average scales with the workers' disagreement x float32 eps, not with the models. The bias-corrected
methods (exact diffusion, D², gradient tracking), whose corrections integrate every error in the average, mix with it.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxgossip import _pytree as struct
from jaxgossip._host import to_device

from jaxgossip.topology import Topology, TimeVarying

BACKENDS = ("auto", "dense", "gather", "shift", "sparse")

__all__ = ["Mixing", "make_mixing", "shard_over", "BACKENDS", "DENSE_FRACTION", "SPARSE_PADDING"]

#: "auto" uses the dense einsum when W's entries fill at least this fraction of the n x n matrix (dense graphs, tiny n;
#: a star's hub alone does not make it dense); otherwise the O(n deg d) shift (permutation graphs), gather or sparse
#: backend. On a CPU at n = 64, d = 1000 a ring's shift step took 24 us against the dense einsum's 587 us.
DENSE_FRACTION = 0.25

#: "auto" uses the edge-list (segment-sum) backend instead of the padded gather when the table, n (deg_max + 1) slots,
#: would hold more than this many times the n + edges entries W has. On a 2-core CPU at d = 256 a scatter-added edge
#: cost ~9x a gathered slot: Erdos-Renyi(4096, 0.002) (table 2.3x its entries) took 433 us per step by gather and
#: 1778 us by edges; Barabasi-Albert(4096, 2) (table 41x) took 9506 us by gather, 640 us by edges (and compiled in
#: 0.10 s instead of 1.21 s: the gather loop is unrolled over the largest degree).
SPARSE_PADDING = 8.0


@struct.dataclass
class Mixing:
    """A traced mixing operator. Call it on an (n, d) stack: ``mixing(X) == W @ X``.

    Attributes:
      weights: dense: (n, n) W; gather: (n, k) neighbour weights; shift: (K + 1,) weights, self first; sparse: (E,)
        the off-diagonal W_ij.
      index: gather: (n, k) neighbour indices; shift: (K, n) permutations; sparse: (2, E) rows i and columns j, sorted
        by row; dense: unused (shape (0,)).
      diag: (n,) the self weights W_ii.
      backend: static name of the backend.
      plan: static; for ``shift`` on a worker-sharded stack, the ppermute plan (:func:`shard_over`), else None.
      sends: (n,) float32, the messages each worker sends in one gossip round: the off-diagonal nonzeros of its
        column of W (``W @ X`` sends x_j to every i with W_ij != 0); None when unknown.
      receives: (n,) float32, the messages each worker receives: the off-diagonal nonzeros of its row. Both equal the
        degrees on a symmetric graph.
    """

    weights: jax.Array
    index: jax.Array
    diag: jax.Array
    backend: str = struct.field(pytree_node=False, default="dense")
    plan: Any = struct.field(pytree_node=False, default=None)  # shard_gossip.ShardPlan when the workers are sharded
    sends: Any = None
    receives: Any = None

    def __call__(self, X: jax.Array) -> jax.Array:
        if self.backend == "dense":
            return jnp.einsum("ij,j...->i...", self.weights.astype(X.dtype), X, precision=jax.lax.Precision.HIGHEST)
        if self.backend == "gather":
            w = self.weights.astype(X.dtype)
            out = w[:, 0, None] * X[self.index[:, 0]]
            for k in range(1, self.index.shape[1]):  # static loop over the (small) degree, not over workers
                out = out + w[:, k, None] * X[self.index[:, k]]
            return out
        if self.backend == "shift" and self.plan is not None:
            from jaxgossip.shard_gossip import apply

            return apply(self.weights, X, self.plan)
        if self.backend == "shift":
            w = self.weights.astype(X.dtype)
            out = _per_row(w[0], X) * X
            for k in range(self.index.shape[0]):
                out = out + _per_row(w[k + 1], X) * jnp.take(X, self.index[k], axis=0)
            return out
        if self.backend == "sparse":
            per_row = (-1,) + (1,) * (X.ndim - 1)
            edges = self.weights.astype(X.dtype).reshape(per_row) * X[self.index[1]]
            neighbours = jax.ops.segment_sum(edges, self.index[0], num_segments=X.shape[0], indices_are_sorted=True)
            return self.diag.astype(X.dtype).reshape(per_row) * X + neighbours
        raise ValueError(f"unknown gossip backend {self.backend!r}")

    def links(self) -> jax.Array:
        """(n, n) float32 active links of this graph: entry [i, j] = 1 when worker j's model reaches worker i, the
        link j -> i (``W_ij != 0``, ``i != j``), else 0. Read from the NONZERO weights of every backend (a zero-weight
        slot, gather or sparse padding, a lost message of :meth:`masked`, carries nothing and is no link), so its
        column sums are the messages each worker sends and its row sums those it receives (``sends``, ``receives``
        of an unmasked graph). One graph only: pick a time-varying stack's step with :func:`select` first. Prices a
        step on a per-link network (:meth:`jaxgossip.cost.Pricing.on`)."""
        n = self.diag.shape[-1]
        if self.diag.ndim != 1:
            raise ValueError("Mixing.links: this is a time-varying stack of graphs; pick one with gossip.select first.")
        if self.backend == "dense":
            return ((self.weights != 0) & ~jnp.eye(n, dtype=bool)).astype(jnp.float32)
        if self.backend == "gather":
            rows = jnp.broadcast_to(jnp.arange(n)[:, None], self.index.shape)
            cols, live = self.index, self.weights != 0
        elif self.backend == "shift":
            rows = jnp.broadcast_to(jnp.arange(n)[None, :], self.index.shape)
            w = self.weights[1:]
            cols, live = self.index, jnp.broadcast_to((w.reshape(-1, 1) if w.ndim == 1 else w) != 0, self.index.shape)
        elif self.backend == "sparse":
            rows, cols, live = self.index[0], self.index[1], self.weights != 0
        else:
            raise ValueError(f"unknown gossip backend {self.backend!r}")
        live = (live & (rows != cols)).astype(jnp.float32)
        return jnp.zeros((n, n), jnp.float32).at[rows, cols].max(live)

    def minus_identity(self, X: jax.Array) -> jax.Array:
        """``(W - I) X``."""
        return self(X) - X

    def delta(self, X: jax.Array) -> jax.Array:
        """``(W - I) X`` in difference form: row i is ``sum_{j != i} w_ij (x_j - x_i)``, exactly 0 on a consensus stack.

        gather / shift / sparse sum ``w (X_neighbour - X)`` over the neighbours (edges). The dense backend subtracts a
        reference row first, D = X - x_0 (exactly 0 at consensus), and returns ``W_off D - s * D`` with W_off the
        off-diagonal part of W and s its row sums: equal to the neighbour sum in exact arithmetic (for any reference
        row), with no n x n x d intermediate. Assumes W's rows sum to 1 (it equals ``W X - X`` only then); the self
        weights are not read, they are 1 - sum_j w_ij by construction. Under a worker-sharded ``shift`` mixing the
        permutations run as ``ppermute``, in the same order, so the result is bit-identical to one device.
        """
        per_row = (-1,) + (1,) * (X.ndim - 1)
        if self.backend == "dense":
            w = self.weights.astype(X.dtype)
            off = w * (1 - jnp.eye(w.shape[-1], dtype=w.dtype))
            D = X - X[:1]
            mixed = jnp.einsum("ij,j...->i...", off, D, precision=jax.lax.Precision.HIGHEST)
            return mixed - jnp.sum(off, axis=1).reshape(per_row) * D
        if self.backend == "gather":
            w = self.weights.astype(X.dtype)
            out = jnp.zeros_like(X)
            for k in range(1, self.index.shape[1]):  # slot 0 is the worker itself (x_i - x_i = 0); padding too
                out = out + w[:, k].reshape(per_row) * (X[self.index[:, k]] - X)
            return out
        if self.backend == "shift" and self.plan is not None:
            from jaxgossip.shard_gossip import apply_delta

            return apply_delta(self.weights, X, self.plan)
        if self.backend == "shift":
            w = self.weights.astype(X.dtype)
            out = jnp.zeros_like(X)
            for k in range(self.index.shape[0]):
                out = out + _per_row(w[k + 1], X) * (jnp.take(X, self.index[k], axis=0) - X)
            return out
        if self.backend == "sparse":
            edges = self.weights.astype(X.dtype).reshape(per_row) * (X[self.index[1]] - X[self.index[0]])
            return jax.ops.segment_sum(edges, self.index[0], num_segments=X.shape[0], indices_are_sorted=True)
        raise ValueError(f"unknown gossip backend {self.backend!r}")

    def difference(self, X: jax.Array) -> jax.Array:
        """``W @ X`` in difference form, ``x_i + sum_{j != i} w_ij (x_j - x_i)`` (see :meth:`delta`): equal to
        ``mixing(X)`` up to float rounding when W's rows sum to 1, and a consensus stack comes back bit-exactly."""
        return X + self.delta(X)

    def masked(self, up: jax.Array, lost: jax.Array | None = None) -> "Mixing":
        """This step's mixing with some messages lost: the weight of every lost message moves to the receiver's own
        model (``W_t[i, j] = 0``, ``W_t[i, i] += W[i, j]``), so a symmetric doubly stochastic W stays one.

        Args:
          up: bool, one entry per slot of ``index`` (one mixing, not a time-varying stack): dense (n, n) (entry i, j:
            the message from j to i; the diagonal is ignored), gather (n, k) (slot 0, the worker itself, ignored),
            shift (K, n) (entry k, i: the message from ``index[k, i]`` to i), sparse (E,) (one per edge).
          lost: optional (n,) float32 messages each worker no longer sends nor receives (a symmetric graph: one per
            lost link); default: counted from ``up`` per receiver (a slot with a nonzero weight that is down).

        Returns:
          A :class:`Mixing` of the same backend and plan (a sharded ``shift`` mixing stays a ``ppermute`` one) whose
          ``sends`` / ``receives`` count the live messages only, so ``pricing.on(masked)`` prices the step. gather
          keeps its weights and points a lost slot at the receiver itself (``w_ij x_i``: the weight stays home);
          sparse zeroes a lost edge's weight and adds it to ``diag``, its self weights; shift's weights become per receiver, (K + 1, n) (``w_k up_k[i]``, self ``w_0`` + the lost ones),
          which keeps the ``ppermute`` plan; dense moves the weight onto W's diagonal. With every entry of ``up`` True the result, the self weights ``diag`` (+ 0) and the message counts
          (- 0) equal this mixing's bit for bit.
        """
        up = jnp.asarray(up, bool)
        w = self.weights
        index = self.index
        if self.backend == "dense":
            n = w.shape[-1]
            keep = up | jnp.eye(n, dtype=bool)
            dropped = jnp.sum(jnp.where(keep, 0.0, w), axis=1).astype(w.dtype)
            idx = jnp.arange(n)
            weights = jnp.where(keep, w, 0.0).astype(w.dtype).at[idx, idx].add(dropped)
            count = jnp.sum((~keep) & (w != 0), axis=1)
        elif self.backend == "gather":  # a lost slot reads the receiver's own row: w_ik x_i, its weight kept at home
            keep = up.at[:, 0].set(True)
            n = index.shape[0]
            dropped = jnp.sum(jnp.where(keep, 0.0, w), axis=1).astype(w.dtype)
            weights, index = w, jnp.where(keep, index, jnp.arange(n, dtype=index.dtype)[:, None])
            count = jnp.sum((~keep) & (w != 0), axis=1)
        elif self.backend == "shift":  # per-receiver weights (K + 1, n): w_k up_k[i], self w_0 + the lost w_k
            rows = jnp.broadcast_to(w[1:].reshape(-1, 1) if w.ndim == 1 else w[1:], up.shape)
            dropped = jnp.sum(jnp.where(up, 0.0, rows), axis=0).astype(w.dtype)
            weights = jnp.concatenate([(w[0] + dropped)[None], jnp.where(up, rows, 0.0).astype(w.dtype)], axis=0)
            count = jnp.sum((~up) & (rows != 0), axis=0)
        elif self.backend == "sparse":  # a lost edge's weight 0, added to the self weight diag (which it mixes with)
            n = self.diag.shape[0]
            dropped = jax.ops.segment_sum(jnp.where(up, 0.0, w), index[0], num_segments=n,
                                          indices_are_sorted=True).astype(w.dtype)
            weights = jnp.where(up, w, 0.0).astype(w.dtype)
            count = jax.ops.segment_sum(((~up) & (w != 0)).astype(jnp.int32), index[0], num_segments=n,
                                        indices_are_sorted=True)
        else:
            raise ValueError(f"unknown gossip backend {self.backend!r}")
        lost = count.astype(jnp.float32) if lost is None else jnp.asarray(lost, jnp.float32)
        sends = None if self.sends is None else self.sends - lost
        receives = None if self.receives is None else self.receives - lost
        return self.replace(weights=weights, index=index, diag=self.diag + dropped.astype(self.diag.dtype),
                            sends=sends, receives=receives)


def _per_row(w: jax.Array, X: jax.Array) -> jax.Array:
    """A shift weight as a factor of the (n, ...) stack X: a scalar as it is, per-receiver (n,) weights (a masked
    mixing, :meth:`Mixing.masked`) as a column."""
    return w if w.ndim == 0 else w.reshape((-1,) + (1,) * (X.ndim - 1))


def _choose_backend(topology: Topology, backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}.")
    if backend == "shift" and topology.permutations is None:
        raise ValueError(f"backend='shift' needs a shift-structured graph (ring, torus, ...); {topology.name} is not one.")
    if backend != "auto":
        return backend
    if topology.n + topology.degrees.sum() >= DENSE_FRACTION * topology.n**2:
        return "dense"
    if topology.permutations is not None:
        return "shift"
    if topology.n * (topology.max_degree + 1) > SPARSE_PADDING * (topology.n + topology.degrees.sum()):
        return "sparse"
    return "gather"


def _single(topology: Topology, backend: str, put=to_device) -> Mixing:
    """One graph's mixing; ``put(array, dtype)`` makes its arrays (on the device by default, on the host for
    :func:`make_mixing` to pad and stack a time-varying sequence first)."""
    diag = put(topology.self_weights, np.float32)
    counts = dict(sends=put(topology.out_degrees, np.float32), receives=put(topology.in_degrees, np.float32))
    if backend == "dense":
        return Mixing(put(topology.W, np.float32), put(np.zeros(0), np.int32), diag, "dense", **counts)
    if backend == "gather":
        index, weight = topology.gather_index
        return Mixing(put(weight, np.float32), put(index, np.int32), diag, "gather", **counts)
    if backend == "sparse":
        rows, cols, vals = topology.entries
        off = rows != cols
        return Mixing(put(vals[off], np.float32), put(np.stack([rows[off], cols[off]]), np.int32), diag,
                      "sparse", **counts)
    w0, perms = topology.permutations
    weights = put([w0] + [w for _, w in perms], np.float32)
    index = put(np.stack([p for p, _ in perms]) if perms else np.zeros((0, topology.n)), np.int32)
    return Mixing(weights, index, diag, "shift", **counts)


def make_mixing(topology: Topology | TimeVarying, backend: str = "auto") -> Mixing:
    """Build the traced mixing operator of a topology.

    For a :class:`TimeVarying` topology the arrays get a leading axis of length K (one per graph, same backend and
    padded shapes); :func:`select` picks step t's.
    """
    if isinstance(topology, TimeVarying):
        tops = topology.topologies
        chosen = {_choose_backend(t, backend) for t in tops}
        # one backend for the whole sequence, its tables padded to a common shape: gather for shift graphs too (their
        # permutation counts may differ), the edge lists when one graph needs them, dense when one graph is dense
        b = "dense" if "dense" in chosen else ("sparse" if "sparse" in chosen else "gather")
        mixes = [_single(t, b, put=np.asarray) for t in tops]  # padded and stacked on the host, sent once
        if b == "gather":
            k = max(m.index.shape[1] for m in mixes)
            mixes = [m.replace(index=_pad(m.index, k, m.index[:, :1]), weights=_pad(m.weights, k, 0.0)) for m in mixes]
        elif b == "sparse":  # padding edges: weight 0 on (n - 1, n - 1), after every real edge (rows stay sorted)
            e = max(m.index.shape[1] for m in mixes)
            mixes = [m.replace(index=_pad(m.index, e, topology.n - 1), weights=_pad(m.weights, e, 0.0)) for m in mixes]
        return jax.tree.map(lambda *a: to_device(np.stack(a)), *mixes)
    return _single(topology, _choose_backend(topology, backend))


def _pad(a, size, fill):
    """Host array ``a`` padded along its last axis to ``size`` with ``fill`` (a scalar, or a column broadcast along
    it)."""
    extra = size - a.shape[-1]
    fill = np.broadcast_to(np.asarray(fill, a.dtype), a.shape[:-1] + (extra,))
    return np.concatenate([a, fill], axis=-1)


def select(mixing: Mixing, step: Any, period: int) -> Mixing:
    """Step ``step``'s mixing from a time-varying stack of ``period`` graphs (identity for period 0 = static): the
    graph of the step, which the step mixes with and is priced on (``pricing.on(select(...))``)."""
    if period == 0:
        return mixing
    return jax.tree.map(lambda a: a[step % period], mixing)


def shard_over(mixing: Mixing, mesh) -> Mixing:
    """The same mixing run by ``ppermute`` inside ``shard_map`` over ``mesh`` (shift backend only; others unchanged).

    The numbers are bit-identical to the single-device ``shift`` backend (:mod:`jaxgossip.shard_gossip`).
    """
    if mixing.backend != "shift" or mesh is None or mixing.index.ndim != 2:
        return mixing
    from jaxgossip.shard_gossip import make_plan

    return mixing.replace(plan=make_plan(np.asarray(mixing.index), mesh))
