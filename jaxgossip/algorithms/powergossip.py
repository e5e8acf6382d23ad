"""PowerGossip: low-rank compression of the model differences between neighbours (Vogels, Karimireddy, Jaggi 2020).

D-PSGD's gossip step ``x_i <- x_i - sum_j W_ij (x_i - x_j)`` with each edge's difference, one parameter matrix at a
time, replaced by a rank-r approximation found by power iteration. The factors are warm-started: every edge keeps its
own P and Q per matrix in the state. Two schedules (``powergossip(schedule=...)``):

* ``"alternating"`` (default), the authors' code (epfml/powergossip ``algorithms.PowerGossip``, ``num_iterations=1``):
  each step runs *half* a power iteration, the P half (``P = (M_i - M_j) orth(Q)``, update ``P orth(Q)^T``) at odd
  half-iteration counts and the Q half (``Q = (M_i - M_j)^T orth(P)``, update ``orth(P) Q^T``) at even ones, the
  low-rank update applied after every half; step 0 sends nothing (no disagreement yet, their ``iteration == 0``).
* ``"full"``: a whole power iteration per step (P, then Q from the new P), the update ``orth(P) Q^T`` applied after
  the Q half: twice the traffic of one alternating step.

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

from jaxgossip.algorithms._base import Algorithm, init_optimizer, make_algorithm, resolve_lr
from jaxgossip.algorithms.dpsgd import LR
from jaxgossip.algorithms._rounds import gossip_rounds
from jaxgossip.algorithms.dpsgd import local_step
from jaxgossip.algorithms.tracking import check_doubly_stochastic
from jaxgossip.compressors._base import FLOAT_BITS
from jaxgossip.cost import Cost

__all__ = ["powergossip", "PowerGossipState", "matrix_plan", "SCHEDULES", "half_bits", "round_bits"]

#: Fixed key of the initial factors (the same for every run: both ends of an edge must draw the same Q).
_INIT_SEED = 20200803
_HIGHEST = jax.lax.Precision.HIGHEST


class PowerGossipState(NamedTuple):
    x: jax.Array  # (n, d) models
    q: tuple  # per parameter matrix, (n, K, cols, r) the warm-started right factors, one per neighbour slot
    opt: tuple  # per-worker optax state (empty for plain SGD)
    p: tuple  # per parameter matrix, (n, K, rows, r) the left factors, as seen from the slot's worker (alternating)


#: ``alternating``: the authors' half power iteration per step (default); ``full``: one whole iteration per step.
SCHEDULES = ("alternating", "full")


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
    """The ``"full"`` schedule's replacement of W X: ``iterations`` whole power iterations, each applied to the
    current models."""
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
    return _assemble(X, pieces), tuple(new_q)


def _kept(new, old):
    """``new``, or ``old`` on the edges where ``new`` vanished (the difference was exactly zero): an all-zero factor
    would stay zero for ever (orthonormalizing it gives zero), so the warm start is kept instead."""
    return jnp.where(jnp.any(new != 0, axis=(-2, -1), keepdims=True), new, old)


def _p_half(M, p, q, index, rev, live, weight):
    """The authors' odd half: P = (M_i - M_j) orth(Q) (i sends M_i orth(Q)), M_i -= W_ij P orth(Q)^T.

    Returns (M, p, q) with q orthonormalized and p the new P (both stored, as the authors' in-place buffers)."""
    q = _orthonormal(q)
    A = jnp.einsum("irc,ikcs->ikrs", M, q, precision=_HIGHEST)
    P = _edge_difference(A, index, rev) * live[..., None, None]
    M = M - jnp.einsum("ikrs,ikcs->irc", P * weight[..., None, None].astype(M.dtype), q, precision=_HIGHEST)
    return M, _kept(P, p), q


def _q_half(M, p, q, index, rev, live, weight):
    """The authors' even half: Q = (M_i - M_j)^T orth(P) (i sends M_i^T orth(P)), M_i -= W_ij orth(P) Q^T."""
    p = _orthonormal(p)
    B = jnp.einsum("irc,ikrs->ikcs", M, p, precision=_HIGHEST)
    Q = (B + B[index, rev]) * live[..., None, None]  # the neighbour's factor is -p, so its product is -M_j^T p
    M = M - jnp.einsum("ikrs,ikcs->irc", p * weight[..., None, None].astype(M.dtype), Q, precision=_HIGHEST)
    return M, p, _kept(Q, q)


def _half_is_p(t, halves, j):
    """Whether half j of step t is a P half: the authors' global half count t * halves + j is odd (static when
    ``halves`` is even)."""
    if halves % 2 == 0:
        return j % 2 == 1
    return (t * halves + j) % 2 == 1


def _gossip_alternating(plan, X, ps, qs, mixing, t, halves):
    """The authors' schedule: ``halves`` half power iterations at step t >= 1 (half counts t * halves ... t * halves +
    halves - 1, P halves at odd counts), each applied to the current models; nothing at step 0 (and, as in their code,
    the half counts 1 ... halves - 1 never run). Vectors are gossiped in full every step, step 0 included."""
    matrices, vectors = plan
    n, d = X.shape
    index, weight = _slots(mixing)
    rev = _reverse(index)
    live = (weight != 0).astype(X.dtype)
    pieces = {offset: mixing(X[:, offset : offset + size]) for offset, size in vectors}
    new_p, new_q = [], []
    for m, p0, q0 in zip(matrices, ps, qs):
        M = M0 = _as_matrix(X, m)
        p, q = p0, q0
        for j in range(halves):  # static loop
            is_p = _half_is_p(t, halves, j)
            args = (index, rev, live, weight)
            if isinstance(is_p, bool):
                M, p, q = (_p_half if is_p else _q_half)(M, p, q, *args)
            else:
                M, p, q = jax.lax.cond(is_p, lambda a: _p_half(*a, *args), lambda a: _q_half(*a, *args), (M, p, q))
        skip = t == 0
        M, p, q = (jnp.where(skip, a, b) for a, b in ((M0, M), (p0, p), (q0, q)))
        new_p.append(p)
        new_q.append(q)
        pieces[m.offset] = M.reshape(n, m.rows * m.cols)[:, : m.size]
    return _assemble(X, pieces), tuple(new_p), tuple(new_q)


def _assemble(X, pieces):
    """The (n, d) models from the new values of some slices (offset -> (n, size)); the rest of X as it is."""
    d = X.shape[1]
    out, at = [], 0
    for offset in sorted(pieces):  # parameters in their flat order
        if offset > at:
            out.append(X[:, at:offset])
        out.append(pieces[offset])
        at = offset + pieces[offset].shape[1]
    if at < d:
        out.append(X[:, at:])
    return jnp.concatenate(out, axis=1)


def half_bits(plan):
    """Bits of one message of a P half, of a Q half (sum of rows r, resp. cols r, floats over the matrices) and of
    the uncompressed vectors (sent every step)."""
    matrices, vectors = plan
    return (float(FLOAT_BITS * sum(m.rows * m.rank for m in matrices)),
            float(FLOAT_BITS * sum(m.cols * m.rank for m in matrices)),
            float(FLOAT_BITS * sum(size for _, size in vectors)))


def _alternating_cost(key, ctx, plan, halves):
    """Step t >= 1: one gossip round per half (its P or Q message; the vectors ride on the first); step 0: the
    vectors alone, or only the computation when there are none."""
    t = ctx.t
    p_bits, q_bits, vec_bits = half_bits(plan)
    rounds = [jnp.where(_half_is_p(t, halves, j), p_bits, q_bits) + (vec_bits if j == 0 else 0.0)
              for j in range(halves)]
    later = gossip_rounds(key, ctx, *rounds)
    if vec_bits:
        first = gossip_rounds(key, ctx, vec_bits)
    else:
        first = Cost(jnp.zeros((), jnp.float32), ctx.pricing.compute_time(key, ctx.problem.batch_size))
    return jax.tree.map(lambda a, b: jnp.where(t == 0, a, b), first, later)


# ---- init / step -----------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _functions(rank: int, iterations: int, schedule: str = "alternating"):
    """init and step for a static (rank, iterations, schedule): one function object each, so one compile each."""

    def init(algo, X0, ctx):
        n, d = X0.shape
        matrices, _ = matrix_plan(ctx.problem.layout, d, rank)
        index, _ = _slots(ctx.mixing)
        i = jnp.arange(n, dtype=jnp.int32)[:, None]
        pair = jnp.minimum(i, index) * n + jnp.maximum(i, index)  # both ends of an edge draw the same factor
        side = jnp.sign(i - index).astype(X0.dtype)[..., None, None]  # P is seen as M_i - M_j: -1 at the lower end
        base = jax.random.key(_INIT_SEED)
        qs, ps = [], []
        for l, m in enumerate(matrices):
            key = jax.random.fold_in(base, l)
            draw = jax.vmap(jax.vmap(lambda p: jax.random.normal(jax.random.fold_in(key, p), (m.cols, m.rank))))
            qs.append(_orthonormal(draw(pair)).astype(X0.dtype))
            key_p = jax.random.fold_in(jax.random.fold_in(base, l), 1 << 30)
            draw_p = jax.vmap(jax.vmap(lambda p: jax.random.normal(jax.random.fold_in(key_p, p), (m.rows, m.rank))))
            ps.append(side * draw_p(pair).astype(X0.dtype))
        return PowerGossipState(X0, tuple(qs), init_optimizer(algo.optimizer, X0), tuple(ps))

    def step(algo, state, key, ctx):
        n, d = state.x.shape
        plan = matrix_plan(ctx.problem.layout, d, rank)
        update, opt = local_step(algo, state, key, ctx)
        if schedule == "full":
            mixed, qs = _gossip(plan, state.x, state.q, ctx.mixing, iterations)
            cost = gossip_rounds(key, ctx, *round_bits(plan, iterations))
            return PowerGossipState(mixed - update, qs, opt, state.p), cost
        mixed, ps, qs = _gossip_alternating(plan, state.x, state.p, state.q, ctx.mixing, ctx.t, iterations)
        return PowerGossipState(mixed - update, qs, opt, ps), _alternating_cost(key, ctx, plan, iterations)

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


def powergossip(lr=None, rank: int = 1, iterations: int = 1, optimizer=None,
                schedule: str = "alternating") -> Algorithm:
    """PowerGossip (Vogels, Karimireddy, Jaggi 2020, Alg. 1 and 2) on top of D-PSGD's paper order::

        x_i^{t+1} = x_i^t - sum_j W_ij P_ij Q_ij^T - lr g_i(x_i^t),

    per parameter matrix M (see :func:`matrix_plan`); P_ij Q_ij^T is a rank-r projection of M_i - M_j from
    warm-started factors (the same on both ends of the edge, up to P's sign).

    ``schedule="alternating"`` (default) is the authors' code (github.com/epfml/powergossip, ``algorithms.PowerGossip``
    with ``num_iterations=iterations``, ``warm_start=True``; ``DPSGD`` applies the gossip to x^t and then the gradient
    step of x^t): every step runs ``iterations`` *half* power iterations, numbered globally h = t * iterations + j::

        odd h  (P half):  Q_ij <- orth(Q_ij);  P_ij = (M_i - M_j) Q_ij     # i sends M_i Q_ij
                          M_i <- M_i - W_ij P_ij Q_ij^T
        even h (Q half):  P_ij <- orth(P_ij);  Q_ij = (M_i - M_j)^T P_ij   # i sends M_i^T P_ij
                          M_i <- M_i - W_ij P_ij Q_ij^T

    each half on the models the previous half produced; step 0 sends nothing for the matrices (their ``iteration ==
    0``: "no disagreement yet"; with ``iterations`` > 1 their half counts 1 ... iterations - 1 never run, and so here).
    One step's traffic is one message of r rows (P half) or r cols (Q half) floats per matrix. At rank >= min(rows,
    cols) only the halves whose orthonormalized factor is square are exact.

    ``schedule="full"`` is jaxgossip's earlier schedule (not the authors'): a whole power iteration per step, P_ij =
    orth((M_i - M_j) Q_ij), then Q_ij = (M_i - M_j)^T P_ij, the update applied once after the Q half (Alg. 1-2 of the
    paper read as one iteration per step). It sends twice the traffic of an alternating step; at rank >= min(rows,
    cols) every step is D-PSGD's ``W X - lr G`` exactly; ``iterations`` > 1 repeats it inside the step. At equal
    traffic the two schedules give different models.

    Vectors (biases) are gossiped uncompressed every step, step 0 included, as the authors' ``OnlyOnLargeParameters``
    does (they ride on the step's first message here; the authors send them as a separate message). A problem without
    a layout is one near-square matrix. Where an edge's difference vanishes exactly, the factor computed from it is
    zero and the previous one is kept (the authors' buffer would stay zero for ever).

    Bits: per worker and neighbour, each round's message (alternating: rows r or cols r floats per matrix per half;
    full: both per iteration, two rounds), plus the vectors once per step. State: the models plus one (cols x r) and
    one (rows x r) factor per neighbour slot and matrix, O(n deg (rows + cols) r).

    Args:
      lr: step size (traced), or a schedule; default 0.1. With an optax optimizer in the ``"updates"`` convention
        (``optax.sgd(0.05, momentum=0.9)``) a multiplier of the optimizer's own update, default 1 (see ``dpsgd``).
      rank: static rank r of each approximation (an integer >= 1), capped per matrix at min(rows, cols).
      iterations: static number of half power iterations per step (``"alternating"``, the authors'
        ``num_iterations``) or of whole ones (``"full"``), an integer >= 1.
      optimizer: optional optax transformation, a direction or an optimizer with its own learning rate (see
        ``dpsgd``).
      schedule: ``"alternating"`` (default, the authors' code) or ``"full"`` (static; see above).

    References:
      T. Vogels, S. P. Karimireddy, M. Jaggi, "Practical low-rank communication compression in decentralized deep
      learning", NeurIPS 2020 (Algorithms 1-2; code: github.com/epfml/powergossip, ``PowerGossip``).
    """
    for arg, v in (("rank", rank), ("iterations", iterations)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"powergossip: {arg} must be an integer >= 1, got {v!r}.")
    if schedule not in SCHEDULES:
        raise ValueError(f"powergossip: schedule must be one of {SCHEDULES}, got {schedule!r}.")
    init, step = _functions(int(rank), int(iterations), schedule)
    hyper = {"lr": resolve_lr("powergossip", lr, optimizer, 0.1)}
    return make_algorithm("powergossip", init, step, hyper, specs=(LR,), optimizer=optimizer, check_fn=check_static)
