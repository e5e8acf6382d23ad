"""PowerGossip: low-rank compression of the model differences between neighbours (Vogels, Karimireddy, Jaggi 2020).

D-PSGD's gossip step ``x_i <- x_i - sum_j W_ij (x_i - x_j)`` with each edge's difference, one parameter matrix at a
time, replaced by a rank-r approximation ``P Q^T`` found by power iteration. The factors Q are warm-started: every edge
keeps its own Q per matrix in the state, so one power iteration per step is enough once the differences change slowly.

Edges are the slots of the gossip backend's neighbour table (``dense``: all n columns, ``gather``: the padded
neighbour table, ``shift``: one slot per permutation), with self and padding slots masked out; the reverse slot of
(i, k) (where i sits in its neighbour's table) is found once per step from the table. Both ends of an edge hold the
same Q and compute P from the same messages, so worker j's approximation of x_j - x_i is exactly minus worker i's
approximation of x_i - x_j, and the average model moves only by the gradients, as in D-PSGD.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgossip.algorithms._base import Algorithm, as_float, check_optimizer, init_optimizer
from jaxgossip.algorithms._rounds import gossip_rounds
from jaxgossip.algorithms.dpsgd import local_step
from jaxgossip.algorithms.tracking import check_doubly_stochastic
from jaxgossip.compressors._base import FLOAT_BITS

__all__ = ["powergossip", "PowerGossipState", "matrix_plan"]

#: Fixed key of the initial factors (the same for every run: both ends of an edge must draw the same Q).
_INIT_SEED = 20200803
_HIGHEST = jax.lax.Precision.HIGHEST


class PowerGossipState(NamedTuple):
    x: jax.Array  # (n, d) models
    q: tuple  # per parameter matrix, (n, K, cols, r) the warm-started right factors, one per neighbour slot
    opt: tuple  # per-worker optax state (empty for plain SGD)


class _Matrix(NamedTuple):
    offset: int
    size: int  # number of real entries (the rest of rows * cols is zero padding)
    rows: int
    cols: int
    rank: int


def matrix_plan(layout, d: int, rank: int):
    """Static split of a d-vector into compressed matrices and uncompressed vectors.

    With a layout: every tensor of two or more dimensions is a matrix of (product of all but the last dimension) x
    (last dimension): flax's Dense kernels (in, out) as they are, its conv kernels (kh, kw, c_in, c_out) as
    (kh kw c_in) x c_out, the output channels being one side as in the paper's (c_out x rest) reshape. Vectors and
    scalars (biases, norm scales) are sent uncompressed, as the authors' code does (``OnlyOnLargeParameters``).
    Without a layout (``layout=None``: convex problems) the whole vector is one near-square matrix,
    ceil(sqrt(d)) x ceil(d / ceil(sqrt(d))), zero padded.

    Returns:
      (matrices, vectors): a tuple of :class:`_Matrix` (rank capped at min(rows, cols)) and a tuple of
      (offset, size) slices sent in full.
    """
    if layout is None:
        rows = max(1, math.ceil(math.sqrt(d)))
        cols = max(1, math.ceil(d / rows))
        return (_Matrix(0, d, rows, cols, min(rank, rows, cols)),), ()
    matrices, vectors = [], []
    for s in layout.segments:
        if len(s.shape) >= 2 and s.size > 0:
            cols = int(s.shape[-1])
            rows = s.size // cols
            matrices.append(_Matrix(s.offset, s.size, rows, cols, min(rank, rows, cols)))
        elif s.size > 0:
            vectors.append((s.offset, s.size))
    return tuple(matrices), tuple(vectors)


# ---- the neighbour slots of any backend ------------------------------------------------------------------------------
def _slots(mixing, name="powergossip"):
    """(index, weight): (n, K) neighbour of each slot and its weight W_ij, self and padding slots weighted 0."""
    if mixing.backend == "dense":
        n = mixing.weights.shape[0]
        index = jnp.broadcast_to(jnp.arange(n, dtype=jnp.int32)[None, :], (n, n))
        weight = mixing.weights
    elif mixing.backend == "gather":
        index, weight = mixing.index, mixing.weights
    elif mixing.backend == "shift":
        index = mixing.index.T  # X[perm_k][i] = X[perm_k[i]]: slot k of worker i is perm_k[i]
        weight = jnp.broadcast_to(mixing.weights[None, 1:], index.shape)
    else:
        raise ValueError(f"{name}: needs a neighbour table; the {mixing.backend!r} gossip backend has none. Run it "
                         "with backend='gather' (or 'dense' for small n).")
    n = index.shape[0]
    own = index == jnp.arange(n, dtype=index.dtype)[:, None]
    return index, jnp.where(own, 0.0, weight).astype(jnp.float32)


def _reverse(index):
    """(n, K) slot of worker i in the table of its neighbour index[i, k] (the same occurrence when i appears twice)."""
    n, K = index.shape
    earlier = jnp.tril(jnp.ones((K, K), bool), -1)  # earlier[k, k'] = k' < k
    occ = jnp.sum((index[:, None, :] == index[:, :, None]) & earlier[None], axis=-1)  # (n, K)
    rows = jnp.arange(n, dtype=index.dtype)[:, None, None]
    match = (index[index] == rows) & (occ[index] == occ[:, :, None])  # (n, K, K'): slot k' of j = index[i, k]
    return jnp.argmax(match, axis=-1)


# ---- power iteration on every edge -----------------------------------------------------------------------------------
def _orthonormal(P, eps=1e-8):
    """Gram-Schmidt on the columns of (..., m, r) P, as the authors' ``orthogonalize`` (column / (norm + eps)).

    Sign-symmetric: the result for -P is exactly minus the result for P, so both ends of an edge agree."""
    cols = []
    for c in range(P.shape[-1]):  # static loop over the (small) rank
        v = P[..., c]
        for u in cols:
            v = v - jnp.sum(u * v, axis=-1, keepdims=True) * u
        cols.append(v / (jnp.sqrt(jnp.sum(v * v, axis=-1, keepdims=True)) + eps))
    return jnp.stack(cols, axis=-1)


def _edge_difference(Y, index, rev):
    """For every slot (i, k): worker i's product minus its neighbour's, ``Y[i, k] - Y[j, rev[i, k]]`` (the message)."""
    return Y - Y[index, rev]


def _low_rank(M, q, index, rev, live):
    """One power iteration on every edge of one matrix.

    Args:
      M: (n, rows, cols) the workers' matrices; q: (n, K, cols, r) warm-started factors; live: (n, K) real edges.
    Returns:
      (p_hat, q_new, q_keep): p_hat (n, K, rows, r) orthonormal with p_hat q_new^T ~ M_i - M_j; q_keep the factor to
      carry to the next step (q_new orthonormalized, or the old q where the difference vanished and q_new is zero).
    """
    A = jnp.einsum("irc,ikcs->ikrs", M, q, precision=_HIGHEST)  # worker i sends M_i q to each neighbour
    p_hat = _orthonormal(_edge_difference(A, index, rev))  # (M_i - M_j) q, orthonormalized
    B = jnp.einsum("irc,ikrs->ikcs", M, p_hat, precision=_HIGHEST)  # worker i sends M_i^T p_hat
    q_new = B + B[index, rev]  # (M_i - M_j)^T p_hat; the neighbour's p_hat is -p_hat, so its B is -M_j^T p_hat
    q_new = q_new * live[..., None, None]
    alive = jnp.any(q_new != 0, axis=(-2, -1), keepdims=True)
    # carried orthonormalized (same span, so the same next P; well conditioned, as the authors' alternation keeps it)
    return p_hat, q_new, jnp.where(alive, _orthonormal(q_new), q)


def _as_matrix(X, m):
    n = X.shape[0]
    flat = X[:, m.offset : m.offset + m.size]
    pad = m.rows * m.cols - m.size
    if pad:
        flat = jnp.concatenate([flat, jnp.zeros((n, pad), X.dtype)], axis=1)
    return flat.reshape(n, m.rows, m.cols)


def _gossip(plan, X, qs, mixing, iterations):
    """PowerGossip's replacement of W X: ``iterations`` power iterations, each applied to the current models."""
    matrices, vectors = plan
    n, d = X.shape
    index, weight = _slots(mixing)
    rev = _reverse(index)
    live = (weight != 0).astype(X.dtype)
    pieces = {}  # offset -> (n, size) new values
    for (offset, size) in vectors:  # sent uncompressed, once per step: plain gossip of those coordinates
        pieces[offset] = mixing(X[:, offset : offset + size])
    new_q = []
    for m, q in zip(matrices, qs):
        M = _as_matrix(X, m)
        for _ in range(iterations):  # static loop
            p_hat, q_full, q = _low_rank(M, q, index, rev, live)
            # M_i <- M_i - sum_k W_ik p_hat q^T  (= (W M)_i when the approximation is exact)
            M = M - jnp.einsum("ikrs,ikcs->irc", p_hat * weight[..., None, None].astype(M.dtype), q_full,
                               precision=_HIGHEST)
        new_q.append(q)
        pieces[m.offset] = M.reshape(n, m.rows * m.cols)[:, : m.size]
    covered = sorted(pieces)
    out, at = [], 0
    for offset in covered:  # parameters in their flat order; nothing else is left (layouts cover all d)
        if offset > at:
            out.append(X[:, at:offset])
        out.append(pieces[offset])
        at = offset + pieces[offset].shape[1]
    if at < d:
        out.append(X[:, at:])
    return jnp.concatenate(out, axis=1), tuple(new_q)


# ---- init / step -----------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _functions(rank: int, iterations: int):
    """init and step for a static (rank, iterations): one function object each, so one compile per pair."""

    def init(algo, X0, ctx):
        n, d = X0.shape
        matrices, _ = matrix_plan(ctx.problem.layout, d, rank)
        index, _ = _slots(ctx.mixing)
        i = jnp.arange(n, dtype=jnp.int32)[:, None]
        pair = jnp.minimum(i, index) * n + jnp.maximum(i, index)  # both ends of an edge draw the same factor
        base = jax.random.key(_INIT_SEED)
        qs = []
        for l, m in enumerate(matrices):
            key = jax.random.fold_in(base, l)
            draw = jax.vmap(jax.vmap(lambda p: jax.random.normal(jax.random.fold_in(key, p), (m.cols, m.rank))))
            qs.append(_orthonormal(draw(pair)).astype(X0.dtype))
        return PowerGossipState(X0, tuple(qs), init_optimizer(algo.optimizer, X0))

    def step(algo, state, key, ctx):
        n, d = state.x.shape
        plan = matrix_plan(ctx.problem.layout, d, rank)
        update, opt = local_step(algo, state, key, ctx)
        mixed, qs = _gossip(plan, state.x, state.q, ctx.mixing, iterations)
        return PowerGossipState(mixed - update, qs, opt), gossip_rounds(key, ctx, *round_bits(plan, iterations))

    return init, step


def round_bits(plan, iterations: int):
    """Bits of one message of each gossip round of a step: per power iteration, the P half (sum of rows r floats,
    plus the uncompressed vectors in the first) and the Q half (sum of cols r floats)."""
    matrices, vectors = plan
    p_floats = sum(m.rows * m.rank for m in matrices)
    q_floats = sum(m.cols * m.rank for m in matrices)
    vec = sum(size for _, size in vectors)
    rounds = []
    for it in range(iterations):
        rounds += [FLOAT_BITS * (p_floats + (vec if it == 0 else 0)), FLOAT_BITS * q_floats]
    return [float(b) for b in rounds]


def check_static(algo, problem, topology):
    """PowerGossip keeps one factor per edge: it needs a static, doubly stochastic, symmetric mixing matrix."""
    check_doubly_stochastic(algo, problem, topology)
    if getattr(topology, "topologies", None) is not None:
        raise ValueError(f"{algo.name}: keeps warm-started factors per edge, so it needs a static topology; "
                         f"{getattr(topology, 'name', 'this one')} is time-varying.")
    W = np.asarray(topology.W) if getattr(topology, "n", 0) <= 2048 else None  # undirected builders are symmetric
    if W is not None and W.size and not np.allclose(W, W.T, atol=1e-7):
        raise ValueError(f"{algo.name}: needs a symmetric mixing matrix (both ends of an edge apply the same weight).")


def powergossip(lr=0.1, rank: int = 1, iterations: int = 1, optimizer=None) -> Algorithm:
    """PowerGossip (Vogels, Karimireddy, Jaggi 2020, Alg. 1 and 2) on top of D-PSGD's paper order::

        x_i^{t+1} = x_i^t - sum_j W_ij P_ij Q_ij^T - lr g_i(x_i^t),

    per parameter matrix M (see :func:`matrix_plan`), with for every edge (i, j) and power iteration
    (warm-started Q_ij from the previous step, the same on both ends)::

        P_ij = orthonormalize((M_i - M_j) Q_ij)      # i sends M_i Q_ij, j sends M_j Q_ij
        Q_ij = (M_i - M_j)^T P_ij                     # i sends M_i^T P_ij, j sends M_j^T P_ij

    so P Q^T = P P^T (M_i - M_j), a rank-r projection of the difference. ``iterations`` > 1 repeats this inside the
    step, each iteration on the models the previous one produced (the authors' code does the same, one half at a
    time). Vectors (biases) are gossiped uncompressed; a problem without a layout is one near-square matrix.
    At rank >= min(rows, cols) the projection is exact and every step is D-PSGD's ``W X - lr G``.

    Bits: every worker sends each neighbour, per power iteration, r (rows + cols) floats per matrix (two messages,
    priced as two gossip rounds), plus the vectors once per step. State: the models plus one (cols x r) factor per
    neighbour slot and matrix, O(n deg (cols r)); P is recomputed each step. Differences that vanish exactly (the
    first step, identical initial models) leave the warm start unchanged.

    Args:
      lr: step size (traced), or a schedule.
      rank: static rank r of each approximation (an integer >= 1), capped per matrix at min(rows, cols).
      iterations: static number of power iterations per step (an integer >= 1).
      optimizer: optional optax direction transformation (see ``dpsgd``).

    References:
      T. Vogels, S. P. Karimireddy, M. Jaggi, "Practical low-rank communication compression in decentralized deep
      learning", NeurIPS 2020 (Algorithms 1-2; code: github.com/epfml/powergossip, ``PowerGossip``).
    """
    for arg, v in (("rank", rank), ("iterations", iterations)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"powergossip: {arg} must be an integer >= 1, got {v!r}.")
    init, step = _functions(int(rank), int(iterations))
    hyper = {"lr": as_float("powergossip", "lr", lr, 0, low_open=False)}
    return Algorithm(hyper, "powergossip", init, step, "decentralized", check_optimizer("powergossip", optimizer),
                     check_fn=check_static)
