"""Mixing matrices: :class:`Topology` (one graph, stored sparse) and :class:`TimeVarying` (a periodic sequence).

A Topology holds W's nonzero entries (O(n + edges) memory), checks them (symmetric, non-negative, doubly stochastic,
connected, no eigenvalue -1) and derives what the simulator needs: degrees, neighbour lists, the padded gather table,
``rho`` (from the FFT of a circulant W, the dense spectrum for n <= 512, or Lanczos iterations above), and the dense
W only when asked for.

References:
  Tang et al. (2018), Sec. 3 (W symmetric, doubly stochastic, rho); Liu & Zhang, Sec. 5 (spectral gap).
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

__all__ = ["Topology", "TimeVarying", "EIGEN_CHECK_MAX", "DISCONNECTED", "MINUS_ONE", "step_degrees"]


class Topology:
    """A communication graph with its mixing matrix, stored sparse: O(n + edges) memory, so a ring of 100,000 workers
    costs kilobytes, not the 80 GB of a dense W.

    Args:
      W: the (n, n) mixing matrix, symmetric and doubly stochastic: a NumPy array or a SciPy sparse matrix.
      name: a short description, e.g. ``"ring(16)"``.
      permutations: optional ``((w_0, ((perm_1, w_1), ...)))`` with ``(W X)[i] = w_0 X[i] + sum_k w_k X[perm_k[i]]``,
        for graphs whose mixing is a weighted sum of permutations (used by the ``ppermute`` backend).

    The dense ``W`` and ``adjacency`` are built on first use (O(n^2)); the gather and shift gossip backends, the
    degrees, neighbours and ``rho`` never build them.
    """

    def __init__(self, W, name: str = "custom", permutations: tuple | None = None):
        n, rows, cols, vals = _entries(W)
        self._set(n, rows, cols, vals, name, permutations)

    @classmethod
    def _from_entries(cls, n, rows, cols, vals, name, permutations=None) -> "Topology":
        topo = cls.__new__(cls)
        topo._set(n, *_canonical(n, rows, cols, vals), name, permutations)
        return topo

    def _set(self, n, rows, cols, vals, name, permutations):
        self._n, self._rows, self._cols, self._vals = int(n), rows, cols, vals
        self.name, self.permutations = name, permutations
        eigenvalues = _validate_mixing(self)
        if eigenvalues is not None:  # computed by the check: cache them (the eigenvalues property)
            self.__dict__["eigenvalues"] = eigenvalues

    @property
    def n(self) -> int:
        return self._n

    @property
    def entries(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(rows, cols, values)`` of the nonzero entries of W, sorted by row then column."""
        return self._rows, self._cols, self._vals

    @functools.cached_property
    def W(self) -> np.ndarray:
        """(n, n) dense mixing matrix (built on first use: O(n^2) memory)."""
        W = np.zeros((self.n, self.n))
        W[self._rows, self._cols] = self._vals
        return W

    @functools.cached_property
    def self_weights(self) -> np.ndarray:
        """``W_ii``, shape (n,)."""
        out = np.zeros(self.n)
        on = self._rows == self._cols
        out[self._rows[on]] = self._vals[on]
        return out

    @functools.cached_property
    def _off(self) -> np.ndarray:
        return self._rows != self._cols

    @functools.cached_property
    def adjacency(self) -> np.ndarray:
        """(n, n) boolean adjacency, self excluded (dense: O(n^2))."""
        A = np.zeros((self.n, self.n), bool)
        A[self._rows[self._off], self._cols[self._off]] = True
        return A

    @functools.cached_property
    def degrees(self) -> np.ndarray:
        """Number of neighbours of each worker (self excluded), shape (n,): the off-diagonal nonzeros of row i, the
        workers whose values worker i receives (its in-degree; for a symmetric W also its out-degree)."""
        return np.bincount(self._rows[self._off], minlength=self.n).astype(np.int64)

    @property
    def in_degrees(self) -> np.ndarray:
        """(n,) messages each worker receives per gossip round: row i's off-diagonal nonzeros (= ``degrees``)."""
        return self.degrees

    @functools.cached_property
    def out_degrees(self) -> np.ndarray:
        """(n,) messages each worker sends per gossip round: column j's off-diagonal nonzeros (``W @ X`` sends x_j
        to every i with W_ij != 0). Equal to ``degrees`` for a symmetric W."""
        return np.bincount(self._cols[self._off], minlength=self.n).astype(np.int64)

    @property
    def max_degree(self) -> int:
        return int(self.degrees.max()) if self.n > 1 else 0

    @functools.cached_property
    def neighbors(self) -> list[np.ndarray]:
        """``neighbors[i]``: the indices j != i with ``W_ij != 0``, increasing."""
        return np.split(self._cols[self._off], np.cumsum(self.degrees)[:-1])

    @functools.cached_property
    def eigenvalues(self) -> np.ndarray:
        """Eigenvalues of W, sorted in decreasing order (lambda_1 = 1). All n of them: O(n^3), dense."""
        return np.sort(np.linalg.eigvalsh(self.W))[::-1]

    @functools.cached_property
    def extreme_eigenvalues(self) -> tuple[float, float]:
        """``(lambda_2, lambda_n)``: from the spectrum when it is known or small, else by Lanczos on the sparse W."""
        if self.n == 1:
            return 1.0, 1.0
        if "eigenvalues" in self.__dict__ or self.n <= EIGEN_CHECK_MAX:
            lam = self.eigenvalues
            return float(lam[1]), float(lam[-1])
        return _lanczos_extremes(self)

    @property
    def rho(self) -> float:
        """``max(|lambda_2|, |lambda_n|)``: the contraction of one gossip step on the disagreement."""
        if self.n == 1:
            return 0.0
        lam2, lamn = self.extreme_eigenvalues
        return float(max(abs(lam2), abs(lamn)))

    @property
    def spectral_gap(self) -> float:
        return 1.0 - self.rho

    @functools.cached_property
    def gather_index(self) -> tuple[np.ndarray, np.ndarray]:
        """Padded neighbour table for the gather backend.

        Returns ``(index, weight)``, both (n, deg_max + 1): column 0 is the worker itself with ``W_ii``; padding points at
        the worker itself with weight 0. ``(W X)[i] = sum_k weight[i, k] X[index[i, k]]``.
        """
        k = self.max_degree + 1
        index = np.tile(np.arange(self.n)[:, None], (1, k))
        weight = np.zeros((self.n, k))
        weight[:, 0] = self.self_weights
        rows, cols, vals = self._rows[self._off], self._cols[self._off], self._vals[self._off]
        slot = 1 + np.arange(len(rows)) - np.repeat(np.cumsum(self.degrees) - self.degrees, self.degrees)
        index[rows, slot] = cols
        weight[rows, slot] = vals
        return index.astype(np.int32), weight

    def csr(self):
        """W as a SciPy CSR matrix (O(n + edges))."""
        from scipy.sparse import csr_matrix

        return csr_matrix((self._vals, (self._rows, self._cols)), shape=(self.n, self.n))

    def to_networkx(self):
        import networkx as nx

        g = nx.Graph()
        g.add_nodes_from(range(self.n))
        g.add_edges_from(zip(self._rows[self._off].tolist(), self._cols[self._off].tolist()))
        return g

    def __repr__(self) -> str:
        return f"Topology({self.name}, n={self.n}, max_degree={self.max_degree}, rho={self.rho:.4f})"


def _entries(W):
    """``(n, rows, cols, vals)`` of a dense array or a SciPy sparse matrix, canonical (see :func:`_canonical`)."""
    if hasattr(W, "tocoo") and not isinstance(W, np.ndarray):
        coo = W.tocoo()
        if coo.ndim != 2 or coo.shape[0] != coo.shape[1]:
            raise ValueError(f"Topology: W must be a square (n, n) matrix, got shape {coo.shape}.")
        return (coo.shape[0], *_canonical(coo.shape[0], coo.row, coo.col, np.asarray(coo.data, np.float64)))
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise ValueError(f"Topology: W must be a square (n, n) matrix, got shape {W.shape}.")
    if not np.all(np.isfinite(W)):
        raise ValueError("Topology: W has non-finite entries.")
    rows, cols = np.nonzero(W)  # row-major: already sorted
    return W.shape[0], rows.astype(np.int64), cols.astype(np.int64), W[rows, cols]


def _canonical(n, rows, cols, vals):
    """Entries sorted by (row, col), duplicates summed, exact zeros dropped."""
    key = np.asarray(rows, np.int64) * n + np.asarray(cols, np.int64)
    key, inverse = np.unique(key, return_inverse=True)
    summed = np.bincount(inverse.ravel(), weights=np.asarray(vals, np.float64), minlength=len(key))
    keep = summed != 0
    key, summed = key[keep], summed[keep]
    return key // n, key % n, summed


def _lanczos_extremes(topo: Topology) -> tuple[float, float]:
    """``(lambda_2, lambda_n)`` of a symmetric doubly stochastic W by Lanczos (ARPACK) on its sparse entries.

    lambda_2 is the largest eigenvalue of ``W - 2 (1 1^T) / n``: the consensus vector moves from 1 to -1, below the
    rest of the spectrum, and every other eigenvector is orthogonal to it and keeps its eigenvalue.
    """
    from scipy.sparse.linalg import LinearOperator, eigsh

    n = topo.n
    S = topo.csr()
    deflated = LinearOperator((n, n), matvec=lambda v: S @ v - 2.0 * np.mean(v, axis=0), dtype=np.float64)
    v0 = np.random.default_rng(0).standard_normal(n)  # fixed start: the same rho every time
    lam2 = eigsh(deflated, k=1, which="LA", tol=1e-10, v0=v0, return_eigenvectors=False)[0]
    lamn = eigsh(S, k=1, which="SA", tol=1e-10, v0=v0, return_eigenvectors=False)[0]
    return float(lam2), float(lamn)


@dataclasses.dataclass(frozen=True, eq=False)
class TimeVarying:
    """A periodic sequence of graphs on the same n workers: step t mixes with ``topologies[t % len(topologies)]``."""

    topologies: tuple[Topology, ...]
    name: str = "time_varying"

    def __post_init__(self):
        tops = tuple(self.topologies)
        if not tops:
            raise ValueError("time_varying: `topologies` must hold at least one Topology.")
        ns = {t.n for t in tops}
        if len(ns) != 1:
            raise ValueError(f"time_varying: every topology must have the same n, got {sorted(ns)}.")
        object.__setattr__(self, "topologies", tops)

    @property
    def n(self) -> int:
        return self.topologies[0].n

    @property
    def W(self) -> np.ndarray:
        """(K, n, n) stack of the mixing matrices."""
        return np.stack([t.W for t in self.topologies])

    @property
    def degrees(self) -> np.ndarray:
        """(n,) each worker's largest degree over the sequence (a bound: steps are priced on their own graph, see
        :func:`step_degrees`)."""
        return np.max(np.stack([t.degrees for t in self.topologies]), axis=0)

    @property
    def max_degree(self) -> int:
        return int(self.degrees.max())

    @functools.cached_property
    def rho(self) -> float:
        """rho of the product of one period of mixing matrices, per step (geometric mean): the spectral radius of
        ``W_K ... W_1 - 1 1^T / n`` to the power 1 / K. Dense for n <= EIGEN_CHECK_MAX, else by Arnoldi iterations on
        the sparse matrices (the product is never formed)."""
        K = len(self.topologies)
        if self.n <= EIGEN_CHECK_MAX:
            P = np.eye(self.n)
            for t in self.topologies:
                P = t.W @ P
            lam = np.sort(np.abs(np.linalg.eigvals(P - np.ones((self.n, self.n)) / self.n)))[::-1]
            return float(lam[0] ** (1.0 / K))
        from scipy.sparse.linalg import LinearOperator, eigs

        mats = [t.csr() for t in self.topologies]

        def product_minus_mean(v):  # (P - 1 1^T / n) v = P (v - mean(v)): P keeps the consensus vector
            u = v - np.mean(v, axis=0)
            for S in mats:
                u = S @ u
            return u

        op = LinearOperator((self.n, self.n), matvec=product_minus_mean, dtype=np.float64)
        v0 = np.random.default_rng(0).standard_normal(self.n)
        lam = eigs(op, k=1, which="LM", tol=1e-10, v0=v0, return_eigenvectors=False)
        return float(np.abs(lam[0]) ** (1.0 / K))

    @property
    def spectral_gap(self) -> float:
        return 1.0 - self.rho

    def __repr__(self) -> str:
        return f"TimeVarying({len(self.topologies)} graphs, n={self.n})"


def step_degrees(topology) -> tuple[np.ndarray, np.ndarray]:
    """``(sends, receives)``, both (K, n) float: the messages each worker sends and receives in one gossip round on
    each graph of the sequence (K = 1 for a single graph; step t uses row ``t % K``). A symmetric graph sends and
    receives its degree; a directed one (row i of W lists what worker i receives) sends its column's off-diagonal
    nonzeros and receives its row's. A gossip round lasts ``max(max sends, max receives)`` messages (each worker
    sends one message at a time and receives one at a time) and puts ``sum(sends)`` messages on the wire."""
    graphs = getattr(topology, "topologies", (topology,))
    sends = np.stack([np.asarray(t.out_degrees, np.float64) for t in graphs])
    receives = np.stack([np.asarray(t.in_degrees, np.float64) for t in graphs])
    return sends, receives


def _validate_mixing(topo: Topology, atol: float = 1e-8):
    """Check W (symmetric, non-negative, doubly stochastic, connected, no eigenvalue -1) on its sparse entries; returns
    the eigenvalues when it computed them (n <= EIGEN_CHECK_MAX), else None."""
    n, rows, cols, vals = topo.n, topo._rows, topo._cols, topo._vals
    if not np.all(np.isfinite(vals)):
        raise ValueError("Topology: W has non-finite entries.")
    *_, asymmetry = _canonical(n, np.concatenate([rows, cols]), np.concatenate([cols, rows]),
                               np.concatenate([vals, -vals]))  # the entries of W - W^T
    if np.max(np.abs(asymmetry), initial=0.0) > atol:
        raise ValueError("Topology: W must be symmetric (W == W.T); got an asymmetric matrix.")
    if np.any(vals < -atol):
        k = int(np.argmax(vals < -atol))
        raise ValueError(f"Topology: W must have non-negative weights; W[{rows[k]}, {cols[k]}] = {vals[k]:.3g}.")
    row_sums = np.bincount(rows, weights=vals, minlength=n)
    if not np.allclose(row_sums, 1.0, atol=1e-6):
        raise ValueError(
            f"Topology: W must be doubly stochastic (rows and columns sum to 1); row sums range over "
            f"[{row_sums.min():.6g}, {row_sums.max():.6g}]."
        )
    if n <= 1:
        return None
    if n > EIGEN_CHECK_MAX:  # O(n^3) eigenvalues are slow at this size: check the graph instead (same verdicts)
        _check_connected_and_not_bipartite(topo, atol)
        return None
    lam = np.sort(np.linalg.eigvalsh(topo.W))[::-1]
    if lam[1] > 1 - 1e-9:
        raise ValueError(DISCONNECTED)
    if lam[-1] < -1 + 1e-9:
        raise ValueError(MINUS_ONE)
    return lam


#: Largest n whose mixing matrix is checked through its eigenvalues (above it, by graph search).
EIGEN_CHECK_MAX = 512
DISCONNECTED = "Topology: the graph is disconnected (lambda_2(W) = 1, so rho = 1); gossip cannot reach consensus."
MINUS_ONE = "Topology: W has eigenvalue -1 (rho = 1, e.g. a bipartite graph with no self weight); add self weight."


def _check_connected_and_not_bipartite(topo: Topology, atol: float) -> None:
    """For a symmetric doubly stochastic W >= 0: lambda_2 = 1 iff its graph is disconnected, and -1 is an eigenvalue iff
    the graph (self weights as self-loops) has a bipartite component. Checked by breadth-first search, O(n + edges)."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import breadth_first_order, connected_components

    big = topo._vals > atol
    i, j = topo._rows[big], topo._cols[big]
    A = csr_matrix((np.ones(len(i), bool), (i, j)), shape=(topo.n, topo.n))
    if connected_components(A, directed=False)[0] > 1:
        raise ValueError(DISCONNECTED)
    if np.any(i == j):  # a self-loop is an odd cycle
        return
    order, pred = breadth_first_order(A, 0, directed=False, return_predecessors=True)
    level = np.zeros(topo.n, np.int64)
    for v in order[1:]:
        level[v] = level[pred[v]] + 1
    if np.all((level[i] - level[j]) % 2 == 1):
        raise ValueError(MINUS_ONE)
