"""Communication graphs and their mixing matrices.

A :class:`Topology` is data plus static structure, computed once in NumPy: the mixing matrix ``W`` (n x n, symmetric,
doubly stochastic, ``W_ij = 0`` unless i and j are neighbours), the neighbour lists, the degrees, the spectrum
(``rho = max(|lambda_2|, |lambda_n|)``, the spectral gap ``1 - rho``), and, for shift-structured graphs (ring, torus,
hypercube, exponential), a decomposition ``W = w_0 I + sum_k w_k P_k`` into permutations that the ``ppermute`` gossip
backend uses.

Weights:
  * ``"uniform"``: ``W_ij = 1 / (deg_max + 1)`` on every edge, the rest on the diagonal (1/3 on a ring).
  * ``"metropolis"``: Metropolis-Hastings, ``W_ij = 1 / (1 + max(deg_i, deg_j))``.
  * ``"laplacian"``: ``W = I - L / kappa`` (Reisizadeh et al. 2019, Sec. 5), ``kappa > lambda_max(L) / 2``;
    the default ``kappa = deg_max + 1`` also keeps every weight non-negative.

References:
  Tang et al. (2018), Sec. 3 (W symmetric, doubly stochastic, rho); Liu & Zhang, Sec. 5 (spectral gap).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Sequence

import numpy as np

from jaxgossip._registry import build

WEIGHTS = ("uniform", "metropolis", "laplacian")

__all__ = [
    "Topology",
    "TimeVarying",
    "ring",
    "torus",
    "complete",
    "star",
    "hypercube",
    "exponential",
    "erdos_renyi",
    "from_adjacency",
    "time_varying",
    "ring_rho",
    "BUILDERS",
    "get",
]


@dataclasses.dataclass(frozen=True, eq=False)
class Topology:
    """A communication graph with its mixing matrix.

    Attributes:
      W: (n, n) mixing matrix, symmetric and doubly stochastic.
      name: a short description, e.g. ``"ring(16)"``.
      permutations: optional ``((w_0, ((perm_1, w_1), ...)))`` with ``(W X)[i] = w_0 X[i] + sum_k w_k X[perm_k[i]]``,
        for graphs whose mixing is a weighted sum of permutations (used by the ``ppermute`` backend).
    """

    W: np.ndarray
    name: str = "custom"
    permutations: tuple | None = None

    def __post_init__(self):
        W = np.asarray(self.W, dtype=np.float64)
        object.__setattr__(self, "W", W)
        eigenvalues = _validate_mixing(W)
        if eigenvalues is not None:  # computed by the check: cache them (the eigenvalues property)
            self.__dict__["eigenvalues"] = eigenvalues

    @property
    def n(self) -> int:
        return self.W.shape[0]

    @functools.cached_property
    def adjacency(self) -> np.ndarray:
        A = (self.W != 0) & ~np.eye(self.n, dtype=bool)
        return A

    @functools.cached_property
    def degrees(self) -> np.ndarray:
        """Number of neighbours of each worker (self excluded), shape (n,)."""
        return self.adjacency.sum(axis=1).astype(np.int64)

    @property
    def max_degree(self) -> int:
        return int(self.degrees.max()) if self.n > 1 else 0

    @functools.cached_property
    def neighbors(self) -> list[np.ndarray]:
        """``neighbors[i]``: the indices j != i with ``W_ij != 0``."""
        return [np.flatnonzero(row) for row in self.adjacency]

    @functools.cached_property
    def eigenvalues(self) -> np.ndarray:
        """Eigenvalues of W, sorted in decreasing order (lambda_1 = 1)."""
        return np.sort(np.linalg.eigvalsh(self.W))[::-1]

    @property
    def rho(self) -> float:
        """``max(|lambda_2|, |lambda_n|)``: the contraction of one gossip step on the disagreement."""
        if self.n == 1:
            return 0.0
        lam = self.eigenvalues
        return float(max(abs(lam[1]), abs(lam[-1])))

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
        weight[:, 0] = np.diag(self.W)
        for i, nbrs in enumerate(self.neighbors):
            index[i, 1 : 1 + len(nbrs)] = nbrs
            weight[i, 1 : 1 + len(nbrs)] = self.W[i, nbrs]
        return index.astype(np.int32), weight

    def to_networkx(self):
        import networkx as nx

        return nx.from_numpy_array(self.adjacency.astype(int))

    def __repr__(self) -> str:
        return f"Topology({self.name}, n={self.n}, max_degree={self.max_degree}, rho={self.rho:.4f})"


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
        return np.max(np.stack([t.degrees for t in self.topologies]), axis=0)

    @property
    def max_degree(self) -> int:
        return int(self.degrees.max())

    @property
    def rho(self) -> float:
        """rho of the product of one period of mixing matrices, per step (geometric mean)."""
        P = np.eye(self.n)
        for t in self.topologies:
            P = t.W @ P
        lam = np.sort(np.abs(np.linalg.eigvals(P - np.ones((self.n, self.n)) / self.n)))[::-1]
        return float(lam[0] ** (1.0 / len(self.topologies)))

    @property
    def spectral_gap(self) -> float:
        return 1.0 - self.rho

    def __repr__(self) -> str:
        return f"TimeVarying({len(self.topologies)} graphs, n={self.n})"


def _validate_mixing(W: np.ndarray, atol: float = 1e-8) -> None:
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise ValueError(f"Topology: W must be a square (n, n) matrix, got shape {W.shape}.")
    if not np.all(np.isfinite(W)):
        raise ValueError("Topology: W has non-finite entries.")
    if np.max(np.abs(W - W.T)) > atol:  # (not np.allclose: its temporaries dominate at n = 4096)
        raise ValueError("Topology: W must be symmetric (W == W.T); got an asymmetric matrix.")
    if np.any(W < -atol):
        i, j = np.argwhere(W < -atol)[0]
        raise ValueError(f"Topology: W must have non-negative weights; W[{i}, {j}] = {W[i, j]:.3g}.")
    rows = W.sum(axis=1)
    if not np.allclose(rows, 1.0, atol=1e-6):
        raise ValueError(
            f"Topology: W must be doubly stochastic (rows and columns sum to 1); row sums range over "
            f"[{rows.min():.6g}, {rows.max():.6g}]."
        )
    n = W.shape[0]
    if n <= 1:
        return None
    if n > EIGEN_CHECK_MAX:  # O(n^3) eigenvalues are slow at this size: check the graph instead (same verdicts)
        _check_connected_and_not_bipartite(W, atol)
        return None
    lam = np.sort(np.linalg.eigvalsh(W))[::-1]
    if lam[1] > 1 - 1e-9:
        raise ValueError(DISCONNECTED)
    if lam[-1] < -1 + 1e-9:
        raise ValueError(MINUS_ONE)
    return lam


#: Largest n whose mixing matrix is checked through its eigenvalues (above it, by graph search).
EIGEN_CHECK_MAX = 512
DISCONNECTED = "Topology: the graph is disconnected (lambda_2(W) = 1, so rho = 1); gossip cannot reach consensus."
MINUS_ONE = "Topology: W has eigenvalue -1 (rho = 1, e.g. a bipartite graph with no self weight); add self weight."


def _check_connected_and_not_bipartite(W: np.ndarray, atol: float) -> None:
    """For a symmetric doubly stochastic W >= 0: lambda_2 = 1 iff its graph is disconnected, and -1 is an eigenvalue iff
    the graph (self weights as self-loops) has a bipartite component. Checked by breadth-first search in O(n^2)."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import breadth_first_order, connected_components

    A = csr_matrix(W > atol)
    if connected_components(A, directed=False)[0] > 1:
        raise ValueError(DISCONNECTED)
    if np.any(np.diag(W) > atol):  # a self-loop is an odd cycle
        return
    order, pred = breadth_first_order(A, 0, directed=False, return_predecessors=True)
    level = np.zeros(W.shape[0], np.int64)
    for v in order[1:]:
        level[v] = level[pred[v]] + 1
    i, j = A.nonzero()
    if np.all((level[i] - level[j]) % 2 == 1):
        raise ValueError(MINUS_ONE)


def _check_n(n, name, minimum=1):
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < minimum:
        raise ValueError(f"{name}: n must be an integer >= {minimum}, got {n!r}.")
    return int(n)


def _weights_from_adjacency(A: np.ndarray, weights: str, kappa: float | None = None) -> np.ndarray:
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {WEIGHTS}, got {weights!r}.")
    A = np.asarray(A, dtype=bool)
    n = A.shape[0]
    deg = A.sum(axis=1)
    if weights == "uniform":
        W = A / (deg.max() + 1.0)
    elif weights == "metropolis":
        W = A / (1.0 + np.maximum(deg[:, None], deg[None, :]))
    else:
        L = np.diag(deg) - A.astype(float)
        if kappa is None:
            kappa = deg.max() + 1.0
        lmax = np.linalg.eigvalsh(L).max()
        if not kappa > lmax / 2:
            raise ValueError(f"laplacian weights: kappa must exceed lambda_max(L) / 2 = {lmax / 2:.4g}, got {kappa}.")
        return np.eye(n) - L / kappa
    W = W.astype(float)
    W[np.diag_indices(n)] = 1.0 - W.sum(axis=1)
    return W


def _adjacency_from_shifts(n: int, shifts) -> np.ndarray:
    A = np.zeros((n, n), dtype=bool)
    idx = np.arange(n)
    for s in shifts:
        A[idx, (idx + s) % n] = True
    A[idx, idx] = False
    return A | A.T


def _permutations_if_uniform(W: np.ndarray, perms: list[np.ndarray]):
    """``(w_0, ((perm, w), ...))`` if W equals w_0 I + sum_k w_k P_k with constant weights, else None."""
    n = W.shape[0]
    w0 = W[0, 0]
    out = []
    acc = w0 * np.eye(n)
    for p in perms:
        w = W[0, p[0]]
        out.append((p.astype(np.int32), float(w)))
        acc[np.arange(n), p] += w
    if np.max(np.abs(acc - W)) <= 1e-8 + 1e-5 * np.max(np.abs(W)):
        return (float(w0), tuple(out))
    return None


def _shift_topology(n, shifts, weights, name, kappa=None):
    A = _adjacency_from_shifts(n, shifts)
    W = _weights_from_adjacency(A, weights, kappa)
    offsets = sorted({s % n for s in shifts} | {(-s) % n for s in shifts} - {0})
    perms = [(np.arange(n) + s) % n for s in offsets]
    topo = Topology(W, name, _permutations_if_uniform(W, perms))
    if "eigenvalues" not in topo.__dict__ and all(np.array_equal(np.roll(W[0], i), W[i]) for i in range(n)):
        # circulant W: its eigenvalues are the DFT of its first row (real, W being symmetric), O(n log n)
        topo.__dict__["eigenvalues"] = np.sort(np.fft.fft(W[0]).real)[::-1]
    return topo


def ring(n: int, weights: str = "uniform") -> Topology:
    """Ring of n workers; with uniform weights each row is (1/3, 1/3, 1/3) on (i-1, i, i+1)."""
    n = _check_n(n, "ring", 2)
    return _shift_topology(n, [1], weights, f"ring({n})")


def ring_rho(n: int) -> float:
    """Closed form of rho for the uniform ring: max over k >= 1 of |1 + 2 cos(2 pi k / n)| / 3."""
    k = np.arange(1, n)
    return float(np.max(np.abs(1 + 2 * np.cos(2 * np.pi * k / n)) / 3))


def torus(rows: int, cols: int | None = None, weights: str = "uniform") -> Topology:
    """2-D torus (wrap-around grid) of rows x cols workers, worker (r, c) at index r * cols + c."""
    cols = rows if cols is None else cols
    rows, cols = _check_n(rows, "torus", 2), _check_n(cols, "torus", 2)
    n = rows * cols
    idx = np.arange(n).reshape(rows, cols)
    perms = [np.roll(idx, s, axis=a).ravel() for a in (0, 1) for s in (1, -1)]
    A = np.zeros((n, n), dtype=bool)
    for p in perms:
        A[np.arange(n), p] = True
    A[np.arange(n), np.arange(n)] = False
    W = _weights_from_adjacency(A, weights)
    uniq = {tuple(p) for p in perms if not np.array_equal(p, np.arange(n))}
    return Topology(W, f"torus({rows}x{cols})", _permutations_if_uniform(W, [np.array(p) for p in sorted(uniq)]))


def complete(n: int) -> Topology:
    """Complete graph: W = 11^T / n, exact averaging in one step (rho = 0)."""
    n = _check_n(n, "complete", 1)
    if n == 1:
        return Topology(np.ones((1, 1)), "complete(1)")
    return _shift_topology(n, list(range(1, n)), "uniform", f"complete({n})")


def star(n: int, weights: str = "metropolis") -> Topology:
    """Star: worker 0 is the hub, joined to every other worker."""
    n = _check_n(n, "star", 2)
    A = np.zeros((n, n), dtype=bool)
    A[0, 1:] = A[1:, 0] = True
    return Topology(_weights_from_adjacency(A, weights), f"star({n})")


def hypercube(n: int, weights: str = "uniform") -> Topology:
    """Hypercube on n = 2^k workers: i and j are neighbours when they differ in one bit."""
    n = _check_n(n, "hypercube", 2)
    if n & (n - 1):
        raise ValueError(f"hypercube: n must be a power of two, got {n}.")
    k = n.bit_length() - 1
    idx = np.arange(n)
    perms = [idx ^ (1 << b) for b in range(k)]
    A = np.zeros((n, n), dtype=bool)
    for p in perms:
        A[idx, p] = True
    W = _weights_from_adjacency(A, weights)
    return Topology(W, f"hypercube({n})", _permutations_if_uniform(W, perms))


def exponential(n: int, weights: str = "uniform") -> Topology:
    """Exponential graph: i is joined to i +- 2^k (mod n) for 2^k < n (Assran et al. 2019; Ying et al. 2021)."""
    n = _check_n(n, "exponential", 2)
    shifts = [1 << k for k in range(max(1, (n - 1).bit_length())) if (1 << k) < n]
    return _shift_topology(n, shifts, weights, f"exponential({n})")


def erdos_renyi(n: int, p: float, seed: int = 0, weights: str = "laplacian", kappa: float | None = None) -> Topology:
    """Erdos-Renyi G(n, p), redrawn (with the same seed stream) until connected.

    Reisizadeh et al. (2019), Sec. 5 use n = 50, p = 0.4 and ``W = I - L / kappa``.
    """
    import networkx as nx

    n = _check_n(n, "erdos_renyi", 2)
    if not 0 < p <= 1:
        raise ValueError(f"erdos_renyi: p must lie in (0, 1], got {p}.")
    rng = np.random.default_rng(seed)
    for _ in range(1000):
        g = nx.gnp_random_graph(n, p, seed=int(rng.integers(2**31)))
        if nx.is_connected(g):
            A = nx.to_numpy_array(g, nodelist=range(n)) > 0
            return Topology(_weights_from_adjacency(A, weights, kappa), f"erdos_renyi({n}, {p})")
    raise ValueError(f"erdos_renyi: no connected G({n}, {p}) in 1000 draws; raise p.")


def from_adjacency(adjacency, weights: str = "metropolis", kappa: float | None = None, name: str = "custom") -> Topology:
    """A topology from an adjacency matrix (numpy, 0/1 or boolean) or a networkx graph."""
    import networkx as nx

    if isinstance(adjacency, nx.Graph):
        adjacency = nx.to_numpy_array(adjacency, nodelist=sorted(adjacency.nodes)) > 0
    A = np.asarray(adjacency)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"from_adjacency: adjacency must be square, got shape {A.shape}.")
    if not np.array_equal(A != 0, (A != 0).T):
        raise ValueError("from_adjacency: adjacency must be symmetric (an undirected graph).")
    A = (A != 0) & ~np.eye(A.shape[0], dtype=bool)
    W = _weights_from_adjacency(A, weights, kappa)
    n = A.shape[0]
    perms = [(np.arange(n) + s) % n for s in range(1, n) if A[0, s]]
    return Topology(W, name, _permutations_if_uniform(W, perms) if perms else None)


def time_varying(topologies: Sequence[Topology]) -> TimeVarying:
    """Cycle through ``topologies``: step t mixes with ``topologies[t % K]``."""
    return TimeVarying(tuple(topologies))


BUILDERS = {
    "ring": ring,
    "torus": torus,
    "complete": complete,
    "star": star,
    "hypercube": hypercube,
    "exponential": exponential,
    "erdos_renyi": erdos_renyi,
}


def get(name: str, n: int, **kwargs) -> Topology:
    """Build a topology by name (the CLI's and config files' entry point). A torus takes n = rows * cols, square."""
    if name == "torus":
        r = int(round(np.sqrt(n)))
        if r * r != n:
            raise ValueError(f"torus by name needs a square n, got {n}; call topology.torus(rows, cols).")
        return build("topology", {"torus": lambda weights="uniform": torus(r, r, weights=weights)}, name, kwargs)
    return build("topology", {k: functools.partial(v, n) for k, v in BUILDERS.items()}, name, kwargs)
