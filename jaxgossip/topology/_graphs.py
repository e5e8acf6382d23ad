"""The graph builders: ring, torus, complete, star, hypercube, exponential, Erdos-Renyi, any adjacency, time-varying.

Each builds its edge list (never an n x n matrix), weights it (uniform, Metropolis-Hastings or ``I - L / kappa``) and
records, for shift-structured graphs, W's decomposition into weighted permutations for the ``shift`` gossip backend.
"""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np

from jaxgossip._registry import build
from jaxgossip.topology._matrix import TimeVarying, Topology, _canonical

WEIGHTS = ("uniform", "metropolis", "laplacian")


def _check_n(n, name, minimum=1):
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < minimum:
        raise ValueError(f"{name}: n must be an integer >= {minimum}, got {n!r}.")
    return int(n)


def _symmetric_edges(n: int, i, j) -> tuple[np.ndarray, np.ndarray]:
    """The off-diagonal edge list ``(i, j)`` made symmetric and unique, sorted by (row, col)."""
    i, j = np.asarray(i, np.int64), np.asarray(j, np.int64)
    i, j = np.concatenate([i, j]), np.concatenate([j, i])
    key = np.unique((i * n + j)[i != j])
    return key // n, key % n


def _weighted(n: int, edges, weights: str, name: str, kappa: float | None = None) -> Topology:
    """The topology of an undirected graph (its symmetric edge list) with the given weight rule."""
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {WEIGHTS}, got {weights!r}.")
    i, j = edges
    deg = np.bincount(i, minlength=n).astype(np.float64)
    if weights == "uniform":
        w = np.full(len(i), 1.0 / (deg.max() + 1.0))
    elif weights == "metropolis":
        w = 1.0 / (1.0 + np.maximum(deg[i], deg[j]))
    else:  # W = I - L / kappa: off-diagonal 1 / kappa on every edge
        if kappa is None:
            kappa = deg.max() + 1.0
        lmax = _laplacian_lambda_max(n, i, j, deg)
        if not kappa > lmax / 2:
            raise ValueError(f"laplacian weights: kappa must exceed lambda_max(L) / 2 = {lmax / 2:.4g}, got {kappa}.")
        w = np.full(len(i), 1.0 / kappa)
    diag = 1.0 - np.bincount(i, weights=w, minlength=n)
    idx = np.arange(n)
    return Topology._from_entries(n, np.concatenate([i, idx]), np.concatenate([j, idx]), np.concatenate([w, diag]),
                                  name)


def _laplacian_lambda_max(n, i, j, deg) -> float:
    if n <= 2048:
        L = np.diag(deg)
        L[i, j] -= 1.0
        return float(np.linalg.eigvalsh(L).max())
    from scipy.sparse import csr_matrix
    from scipy.sparse.linalg import eigsh

    idx = np.arange(n)
    L = csr_matrix((np.concatenate([-np.ones(len(i)), deg]), (np.concatenate([i, idx]), np.concatenate([j, idx]))),
                   shape=(n, n))
    return float(eigsh(L, k=1, which="LA", tol=1e-10, v0=np.ones(n) + np.arange(n) / n, return_eigenvectors=False)[0])


def _first_row(topo: Topology) -> np.ndarray:
    """W's row 0, dense (O(n))."""
    row0 = np.zeros(topo.n)
    first = topo._rows == 0
    row0[topo._cols[first]] = topo._vals[first]
    return row0


def _permutations_if_uniform(topo: Topology, perms: list[np.ndarray]):
    """``(w_0, ((perm, w), ...))`` if W equals w_0 I + sum_k w_k P_k with constant weights, else None."""
    n = topo.n
    row0 = _first_row(topo)
    w0 = row0[0]
    out = [(p.astype(np.int32), float(row0[p[0]])) for p in perms]
    idx = np.arange(n)
    rows = np.concatenate([idx] + [idx for _ in perms])
    cols = np.concatenate([idx] + [p for p, _ in out])
    vals = np.concatenate([np.full(n, w0)] + [np.full(n, w) for _, w in out])
    r, c, v = _canonical(n, rows, cols, vals)
    if (np.array_equal(r, topo._rows) and np.array_equal(c, topo._cols)
            and np.max(np.abs(v - topo._vals), initial=0.0) <= 1e-8 + 1e-5 * np.max(np.abs(topo._vals))):
        return (float(w0), tuple(out))
    return None


def _circulant_first_row(topo: Topology):
    """W's first row if W is circulant (``W_ij = r[(j - i) mod n]``), else None."""
    n = topo.n
    row0 = _first_row(topo)
    if len(topo._vals) == n * np.count_nonzero(topo._rows == 0) and np.array_equal(row0[(topo._cols - topo._rows) % n],
                                                                                   topo._vals):
        return row0
    return None


def _shift_topology(n, shifts, weights, name):
    idx = np.arange(n)
    edges = _symmetric_edges(n, np.tile(idx, len(shifts)), np.concatenate([(idx + s) % n for s in shifts]))
    topo = _weighted(n, edges, weights, name)
    offsets = sorted({s % n for s in shifts} | {(-s) % n for s in shifts} - {0})
    topo.permutations = _permutations_if_uniform(topo, [(idx + s) % n for s in offsets])
    row0 = _circulant_first_row(topo)
    if "eigenvalues" not in topo.__dict__ and row0 is not None:
        # circulant W: its eigenvalues are the DFT of its first row (real, W being symmetric), O(n log n)
        topo.__dict__["eigenvalues"] = np.sort(np.fft.fft(row0).real)[::-1]
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
    edges = _symmetric_edges(n, np.tile(np.arange(n), len(perms)), np.concatenate(perms))
    topo = _weighted(n, edges, weights, f"torus({rows}x{cols})")
    uniq = {tuple(p) for p in perms if not np.array_equal(p, np.arange(n))}
    topo.permutations = _permutations_if_uniform(topo, [np.array(p) for p in sorted(uniq)])
    return topo


def complete(n: int) -> Topology:
    """Complete graph: W = 11^T / n, exact averaging in one step (rho = 0)."""
    n = _check_n(n, "complete", 1)
    if n == 1:
        return Topology(np.ones((1, 1)), "complete(1)")
    return _shift_topology(n, list(range(1, n)), "uniform", f"complete({n})")


def star(n: int, weights: str = "metropolis") -> Topology:
    """Star: worker 0 is the hub, joined to every other worker."""
    n = _check_n(n, "star", 2)
    leaves = np.arange(1, n)
    return _weighted(n, _symmetric_edges(n, np.zeros_like(leaves), leaves), weights, f"star({n})")


def hypercube(n: int, weights: str = "uniform") -> Topology:
    """Hypercube on n = 2^k workers: i and j are neighbours when they differ in one bit."""
    n = _check_n(n, "hypercube", 2)
    if n & (n - 1):
        raise ValueError(f"hypercube: n must be a power of two, got {n}.")
    k = n.bit_length() - 1
    idx = np.arange(n)
    perms = [idx ^ (1 << b) for b in range(k)]
    topo = _weighted(n, _symmetric_edges(n, np.tile(idx, k), np.concatenate(perms)), weights, f"hypercube({n})")
    topo.permutations = _permutations_if_uniform(topo, perms)
    return topo


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
            i, j = np.array(list(g.edges()), np.int64).reshape(-1, 2).T
            return _weighted(n, _symmetric_edges(n, i, j), weights, f"erdos_renyi({n}, {p})", kappa)
    raise ValueError(f"erdos_renyi: no connected G({n}, {p}) in 1000 draws; raise p.")


def _check_binary(values, where: str) -> None:
    """Raise unless every value is 0 or 1 (booleans included): the adjacency of an unweighted graph."""
    v = np.asarray(values)
    if v.dtype == bool:
        return
    if v.dtype.kind not in "iuf":
        raise TypeError(f"from_adjacency: adjacency must hold 0/1 (or boolean) entries, got dtype {v.dtype}.")
    bad = ~((v == 0) | (v == 1))
    if np.any(bad):
        k = np.argwhere(bad)[0]
        raise ValueError(
            f"from_adjacency: adjacency must be a 0/1 (or boolean) matrix, the unweighted graph; got {float(v[tuple(k)]):g} "
            f"{where}{tuple(int(a) for a in k) if where == 'at ' else ''}. The mixing weights come from `weights` "
            f"({', '.join(WEIGHTS)}); for a mixing matrix of your own use Topology(W).")


def from_adjacency(adjacency, weights: str = "metropolis", kappa: float | None = None, name: str = "custom") -> Topology:
    """A topology from the adjacency matrix of an undirected, unweighted graph, or from an undirected networkx graph.

    The graph's mixing weights come from ``weights`` (``"uniform"``, ``"metropolis"``, ``"laplacian"``), never from the
    adjacency's values, so the adjacency must be binary: entries 0 / 1 (or boolean), symmetric (``A == A.T``). Its
    diagonal is ignored (the self weight comes from ``weights`` too). A non-symmetric matrix or a networkx
    ``DiGraph`` is refused rather than made undirected (gossip here needs a symmetric, doubly stochastic W; directed
    graphs need push-sum-style methods), and so is an entry other than 0 or 1 (a -1 is no edge, and a weight 2 would be
    ignored). For a mixing matrix of your own, use ``Topology(W)``; a networkx graph's edge attributes are ignored.

    Args:
      adjacency: an (n, n) NumPy array (0/1 or boolean), a SciPy sparse matrix (stored entries 1), or a networkx
        ``Graph`` (nodes in sorted order).
      weights: the weight rule (see the module docstring).
      kappa: for ``weights="laplacian"``, W = I - L / kappa.
      name: the topology's name.

    Raises:
      ValueError: a non-square, non-symmetric or non-binary adjacency, or a directed networkx graph.
    """
    import networkx as nx

    if isinstance(adjacency, nx.Graph):
        if adjacency.is_directed():
            raise ValueError(
                f"from_adjacency: the graph is directed ({type(adjacency).__name__}); these topologies require an "
                "undirected graph (a symmetric, doubly stochastic W). Pass nx.Graph(g) or g.to_undirected() if the "
                "undirected version is what you mean.")
        nodes = sorted(adjacency.nodes)
        pos = {v: k for k, v in enumerate(nodes)}
        n = len(nodes)
        i, j = np.array([(pos[a], pos[b]) for a, b in adjacency.edges()], np.int64).reshape(-1, 2).T
    else:
        if hasattr(adjacency, "tocoo") and not isinstance(adjacency, np.ndarray):
            coo = adjacency.tocoo()
            _check_binary(coo.data, "among the stored entries")
            shape, i, j = coo.shape, coo.row[coo.data != 0], coo.col[coo.data != 0]
        else:
            A = np.asarray(adjacency)
            shape = A.shape
            if len(shape) != 2 or shape[0] != shape[1]:
                raise ValueError(f"from_adjacency: adjacency must be square, got shape {shape}.")
            _check_binary(A, "at ")
            i, j = np.nonzero(A)
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ValueError(f"from_adjacency: adjacency must be square, got shape {shape}.")
        n = shape[0]
        forward, backward = np.unique(i * n + j), np.unique(j * n + i)
        if not np.array_equal(forward, backward):
            raise ValueError("from_adjacency: adjacency must be symmetric (A == A.T: an undirected graph); got a "
                             "non-symmetric matrix. Directed graphs are not made undirected silently.")
    edges = _symmetric_edges(n, i, j)
    topo = _weighted(n, edges, weights, name, kappa)
    shifts = np.unique(edges[1][edges[0] == 0])  # worker 0's neighbours: the candidate shifts
    perms = [(np.arange(n) + s) % n for s in shifts]
    topo.permutations = _permutations_if_uniform(topo, perms) if perms else None
    return topo


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
