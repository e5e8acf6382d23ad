"""Directed graphs with column-stochastic mixing, for push-sum methods (Assran, Loizou, Ballas, Rabbat, ICML 2019).

On a directed graph worker j *pushes* a share P_ij of its value to each out-neighbour i (and keeps P_jj), so the
columns of P sum to 1 (``P^T 1 = 1``: mass is conserved) but its rows need not: plain gossip ``X <- P X`` then drifts
to a Perron-weighted average instead of the average. Push-sum carries a weight w alongside (``w <- P w``, w_0 = 1) and
de-biases by ``z = x / w`` (Kempe, Dobra, Gehrke 2003). A :class:`DirectedGraph` holds P in the same sparse form as a
:class:`Topology` (row i lists what worker i receives, so every gossip backend computes ``P @ X``) and is checked to be
non-negative, column stochastic, strongly connected and aperiodic (positive self weights), which makes P primitive.
"""

from __future__ import annotations

import functools

import numpy as np

from jaxgossip.topology._matrix import EIGEN_CHECK_MAX, Topology, _canonical

__all__ = ["DirectedGraph", "directed_ring", "directed_exponential", "from_digraph"]


class DirectedGraph(Topology):
    """A directed communication graph with a column-stochastic mixing matrix P (``P[i, j]``: the share worker j sends
    to worker i). ``degrees`` (= ``in_degrees``) counts each worker's in-neighbours (the messages it receives per
    step), ``out_degrees`` its out-neighbours (the messages it pushes); a step is priced on both (the busiest sender
    and the busiest receiver, :class:`jaxgossip.cost.Pricing`).

    Attributes:
      symmetric: whether P == P^T.
      doubly_stochastic: whether P's rows sum to 1 too (then plain gossip, D-PSGD and gradient tracking apply).
    """

    def _set(self, n, rows, cols, vals, name, permutations):
        self._n, self._rows, self._cols, self._vals = int(n), rows, cols, vals
        self.name, self.permutations = name, permutations
        if not np.all(np.isfinite(vals)) or np.any(vals < 0):
            raise ValueError(f"{name}: P must be finite and non-negative.")
        col = np.bincount(cols, vals, n)
        if not np.allclose(col, 1.0, atol=1e-9):
            raise ValueError(f"{name}: P must be column stochastic (each worker pushes shares summing to 1); column "
                             f"sums range over [{col.min():.6g}, {col.max():.6g}].")
        row = np.bincount(rows, vals, n)
        self.doubly_stochastic = bool(np.allclose(row, 1.0, atol=1e-9))
        *_, asym = _canonical(n, np.concatenate([rows, cols]), np.concatenate([cols, rows]),
                              np.concatenate([vals, -vals]))
        self.symmetric = bool(np.max(np.abs(asym), initial=0.0) <= 1e-12)
        if np.any(self.self_weights <= 0):
            i = int(np.argmin(self.self_weights))
            raise ValueError(f"{name}: every worker needs a positive self weight (aperiodic P); P[{i}, {i}] = 0.")
        from scipy.sparse import csr_matrix
        from scipy.sparse.csgraph import connected_components

        A = csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
        if n > 1 and connected_components(A, directed=True, connection="strong")[0] > 1:
            raise ValueError(f"{name}: the directed graph is not strongly connected; push-sum cannot reach every "
                             f"worker.")

    @functools.cached_property
    def eigenvalues(self) -> np.ndarray:
        """Eigenvalues of P (complex in general), by decreasing modulus."""
        lam = np.linalg.eigvals(self.W)
        return lam[np.argsort(-np.abs(lam), kind="stable")]

    @functools.cached_property
    def extreme_eigenvalues(self) -> tuple[float, float]:
        """``(lambda_2, lambda_n)`` by real part (meaningful for symmetric P only)."""
        lam = np.sort(np.real(self.eigenvalues))[::-1]
        return (float(lam[1]), float(lam[-1])) if self.n > 1 else (1.0, 1.0)

    @property
    def rho(self) -> float:
        """|lambda_2(P)|, the second largest eigenvalue modulus (dense: n <= EIGEN_CHECK_MAX; else by Arnoldi)."""
        if self.n == 1:
            return 0.0
        if self.n <= EIGEN_CHECK_MAX:
            return float(np.abs(self.eigenvalues[1]))
        from scipy.sparse.linalg import eigs

        lam = eigs(self.csr(), k=2, which="LM", tol=1e-10, v0=np.ones(self.n) + np.arange(self.n) / self.n,
                   return_eigenvectors=False)
        return float(np.sort(np.abs(lam))[0])

    @functools.cached_property
    def perron(self) -> np.ndarray:
        """The Perron vector pi of P (P pi = pi, sum pi = 1). P^t -> pi 1^T, so plain gossip X <- P X tends to
        n pi xbar^T (row i scaled by n pi_i, no consensus unless pi = 1 / n); push-sum's weights tend to n pi and
        z = x / w to xbar."""
        lam, vec = np.linalg.eig(self.W)
        v = np.real(vec[:, np.argmin(np.abs(lam - 1.0))])
        return v / v.sum()


def _check_n(n, name):
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 2:
        raise ValueError(f"{name}: n must be an integer >= 2, got {n!r}.")
    return int(n)


def _from_out_edges(n, senders, receivers, name, shifts=None) -> DirectedGraph:
    """P with worker j keeping and sending 1 / (out_degree_j + 1) to itself and each out-neighbour."""
    senders, receivers = np.asarray(senders, np.int64), np.asarray(receivers, np.int64)
    keep = senders != receivers
    key = np.unique(senders[keep] * n + receivers[keep])
    senders, receivers = key // n, key % n
    share = 1.0 / (np.bincount(senders, minlength=n) + 1.0)
    idx = np.arange(n)
    perms = None
    if shifts is not None:  # (P X)[i] = w X[i] + sum_k w X[i - s_k] with one weight w (uniform out-degree)
        w = float(share[0])
        perms = (w, tuple((((idx - s) % n).astype(np.int32), w) for s in shifts))
    return DirectedGraph._from_entries(n, np.concatenate([receivers, idx]), np.concatenate([senders, idx]),
                                       np.concatenate([share[senders], share]), name, perms)


def directed_ring(n: int) -> DirectedGraph:
    """Directed ring: worker i keeps 1/2 and pushes 1/2 to i + 1 (mod n). Doubly stochastic, not symmetric."""
    n = _check_n(n, "directed_ring")
    idx = np.arange(n)
    return _from_out_edges(n, idx, (idx + 1) % n, f"directed_ring({n})", shifts=(1,) if n > 1 else ())


def directed_exponential(n: int) -> DirectedGraph:
    """Directed exponential graph (Assran et al. 2019, Sec. 5): worker i pushes to i + 2^k (mod n) for every 2^k < n,
    keeping the same share 1 / (tau + 1) as each of its tau out-neighbours; tau in-neighbours each."""
    n = _check_n(n, "directed_exponential")
    shifts = [1 << k for k in range(max(1, (n - 1).bit_length())) if (1 << k) < n]
    idx = np.arange(n)
    return _from_out_edges(n, np.tile(idx, len(shifts)), np.concatenate([(idx + s) % n for s in shifts]),
                           f"directed_exponential({n})", shifts=shifts)


def from_digraph(graph, name: str = "digraph") -> DirectedGraph:
    """A directed topology from a networkx ``DiGraph`` (edge u -> v: u pushes to v), nodes in sorted order; worker j
    splits its value equally over itself and its out-neighbours (column stochastic; rows sum to 1 only when every
    in-degree pattern matches, so push-sum weights are needed in general)."""
    import networkx as nx

    if not isinstance(graph, nx.DiGraph):
        raise ValueError(f"from_digraph: graph must be a networkx DiGraph, got {type(graph).__name__}.")
    nodes = sorted(graph.nodes)
    pos = {v: k for k, v in enumerate(nodes)}
    edges = np.array([(pos[u], pos[v]) for u, v in graph.edges()], np.int64).reshape(-1, 2)
    return _from_out_edges(len(nodes), edges[:, 0], edges[:, 1], name)


def as_given(topology: DirectedGraph) -> DirectedGraph:
    """A copy of a directed graph that every decentralized algorithm takes as it is, outside its theory.

    ``simulate`` refuses a matrix that is only column stochastic for every method but push-sum (``sgp``): plain gossip
    on it biases the average without a word. This is the explicit opt-out for experiments that show that bias (Assran
    et al. 2019's "plain gossip" baseline); the run's ``Result.config`` records it (the graph's name reads
    ``as_given(...)``).

    Raises:
      ValueError: ``topology`` is not a :class:`DirectedGraph`.
    """
    import copy

    if not isinstance(topology, DirectedGraph):
        raise ValueError(f"as_given: topology must be a directed graph (jg.topology.from_digraph, directed_ring, "
                         f"directed_exponential), got {type(topology).__name__}.")
    out = copy.copy(topology)
    out.given = True
    out.name = f"as_given({topology.name})"
    return out
