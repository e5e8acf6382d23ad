import networkx as nx
import numpy as np
import pytest

import jaxgossip as jg
from jaxgossip import topology as T


@pytest.mark.parametrize("n", [3, 4, 8, 16, 33])
def test_ring_rho_closed_form(n):
    topo = T.ring(n)
    assert np.allclose(np.diag(topo.W), 1 / 3) and np.allclose(topo.W[0, [1, n - 1]], 1 / 3)
    k = np.arange(1, n)
    closed = np.max(np.abs(1 + 2 * np.cos(2 * np.pi * k / n)) / 3)
    assert abs(topo.rho - closed) < 1e-12
    assert abs(T.ring_rho(n) - closed) < 1e-12
    assert abs(topo.spectral_gap - (1 - closed)) < 1e-12


BUILT = [
    T.ring(8), T.torus(3, 4), T.complete(5), T.star(6), T.hypercube(8), T.exponential(16),
    T.erdos_renyi(20, 0.3, seed=1), T.ring(10, weights="metropolis"), T.ring(10, weights="laplacian"),
    T.from_adjacency(nx.path_graph(6)), T.from_adjacency(nx.cycle_graph(7), weights="uniform"),
]


@pytest.mark.parametrize("topo", BUILT, ids=lambda t: t.name)
def test_mixing_matrices_are_valid(topo):
    W = topo.W
    assert np.allclose(W, W.T)
    assert np.allclose(W.sum(0), 1) and np.allclose(W.sum(1), 1)
    assert (W >= -1e-12).all()
    assert 0 <= topo.rho < 1
    assert np.array_equal(topo.degrees, topo.adjacency.sum(1))
    for i, nb in enumerate(topo.neighbors):
        assert i not in nb and all(W[i, j] > 0 for j in nb)
    if topo.permutations is not None:
        w0, perms = topo.permutations
        M = w0 * np.eye(topo.n)
        for p, w in perms:
            M[np.arange(topo.n), p] += w
        assert np.allclose(M, W)


def test_known_spectra():
    assert T.complete(6).rho < 1e-12
    assert T.hypercube(16).degrees.tolist() == [4] * 16
    assert T.torus(4, 4).degrees.tolist() == [4] * 16
    assert T.exponential(16).max_degree == 7
    assert T.star(5).degrees.tolist() == [4, 1, 1, 1, 1]


def test_laplacian_weights_match_paper_formula():
    topo = T.erdos_renyi(50, 0.4, seed=0, weights="laplacian")
    A = topo.adjacency.astype(float)
    L = np.diag(A.sum(1)) - A
    kappa = A.sum(1).max() + 1
    assert np.allclose(topo.W, np.eye(50) - L / kappa)
    with pytest.raises(ValueError, match="kappa"):
        T.erdos_renyi(50, 0.4, seed=0, weights="laplacian", kappa=1.0)


@pytest.mark.parametrize(
    "W, match",
    [
        (np.array([[0.5, 0.5], [0.2, 0.8]]), "symmetric"),
        (np.array([[0.5, 0.6], [0.6, 0.5]]), "doubly stochastic"),
        (np.array([[1.2, -0.2], [-0.2, 1.2]]), "non-negative"),
        (np.eye(4), "disconnected"),
        (np.array([[0.0, 1.0], [1.0, 0.0]]), "eigenvalue -1"),
        (np.ones((2, 3)), "square"),
    ],
)
def test_bad_mixing_matrix_errors(W, match):
    with pytest.raises(ValueError, match=match):
        T.Topology(W)


def test_bad_builder_arguments():
    with pytest.raises(ValueError, match="power of two"):
        T.hypercube(6)
    with pytest.raises(ValueError, match="n must be an integer"):
        T.ring(1)
    with pytest.raises(ValueError, match="p must lie"):
        T.erdos_renyi(10, 1.5)
    with pytest.raises(ValueError, match="weights must be one of"):
        T.ring(5, weights="bogus")
    with pytest.raises(ValueError, match="disconnected"):
        T.from_adjacency(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="topology must be one of"):
        T.get("moebius", 8)


def test_time_varying():
    tv = T.time_varying([T.ring(8), T.hypercube(8)])
    assert tv.n == 8 and tv.W.shape == (2, 8, 8)
    P = T.hypercube(8).W @ T.ring(8).W
    expected = np.sqrt(np.sort(np.abs(np.linalg.eigvals(P - 1 / 8)))[-1])
    assert abs(tv.rho - expected) < 1e-9
    with pytest.raises(ValueError, match="same n"):
        T.time_varying([T.ring(8), T.ring(6)])


def test_public_surface_reexports():
    assert jg.topology.ring is T.ring


def _cycle_half(n):
    """An n-cycle with weight 1/2 to each neighbour and no self weight (bipartite when n is even)."""
    W = np.zeros((n, n))
    i = np.arange(n)
    W[i, (i + 1) % n] = W[i, (i - 1) % n] = 0.5
    return W


@pytest.mark.parametrize("n", [40, 600])  # eigenvalue check below EIGEN_CHECK_MAX, graph search above it
def test_large_and_small_graphs_get_the_same_verdicts(n):
    assert (n > jg.topology.EIGEN_CHECK_MAX) == (n == 600)
    with pytest.raises(ValueError, match="eigenvalue -1"):
        jg.topology.Topology(_cycle_half(n))
    jg.topology.Topology(_cycle_half(n + 1))  # odd cycle: not bipartite, accepted
    half = jg.topology.ring(n // 2).W
    two = np.block([[half, np.zeros_like(half)], [np.zeros_like(half), half]])
    with pytest.raises(ValueError, match="disconnected"):
        jg.topology.Topology(two)


def test_circulant_spectrum_without_an_eigendecomposition():
    n = 600  # above EIGEN_CHECK_MAX: rho comes from the DFT of W's first row
    assert jg.topology.ring(n).rho == pytest.approx(jg.topology.ring_rho(n), abs=1e-12)
    e = jg.topology.get("exponential", n)
    lam = np.sort(np.linalg.eigvalsh(e.W))[::-1]
    np.testing.assert_allclose(e.eigenvalues, lam, atol=1e-10)


def test_topologies_are_stored_sparse():
    n = 100_000  # a dense W would be 80 GB
    topo = T.ring(n)
    assert topo.rho == pytest.approx(T.ring_rho(n), abs=1e-12)
    index, weight = topo.gather_index
    assert index.shape == (n, 3) and np.allclose(weight.sum(1), 1)
    assert topo.degrees.tolist()[:3] == [2, 2, 2] and topo.neighbors[0].tolist() == [1, n - 1]
    from jaxgossip import gossip

    assert gossip.make_mixing(topo, "gather").backend == "gather"
    assert "W" not in topo.__dict__ and "adjacency" not in topo.__dict__  # neither was ever built
    assert len(topo.entries[0]) == 3 * n


@pytest.mark.parametrize("topo", [T.torus(24, 25), T.hypercube(1024), T.star(600), T.erdos_renyi(600, 0.02, seed=0)],
                         ids=lambda t: t.name)
def test_lanczos_extremes_above_the_dense_limit_match_the_spectrum(topo):
    assert topo.n > T.EIGEN_CHECK_MAX and "eigenvalues" not in topo.__dict__
    lam = np.sort(np.linalg.eigvalsh(topo.W))[::-1]
    lam2, lamn = topo.extreme_eigenvalues
    assert lam2 == pytest.approx(lam[1], abs=1e-8) and lamn == pytest.approx(lam[-1], abs=1e-8)
    assert jg.theory.rho(topo) == pytest.approx(max(abs(lam[1]), abs(lam[-1])), abs=1e-8)
    assert jg.theory.mu(topo) == pytest.approx(1 - lam[-1], abs=1e-8)


def test_sparse_and_dense_inputs_give_the_same_topology():
    import scipy.sparse as sp

    dense = T.erdos_renyi(30, 0.2, seed=2, weights="metropolis")
    from_sparse = T.Topology(sp.csr_matrix(dense.W))
    np.testing.assert_array_equal(from_sparse.W, dense.W)
    A = dense.adjacency
    np.testing.assert_array_equal(T.from_adjacency(sp.coo_matrix(A)).W, T.from_adjacency(A).W)
    np.testing.assert_array_equal(T.from_adjacency(dense.to_networkx()).W, T.from_adjacency(A).W)


def test_time_varying_rho_above_the_dense_limit_matches_the_dense_product():
    tv = T.time_varying([T.torus(20, 30), T.ring(600), T.exponential(600)])
    assert tv.n > T.EIGEN_CHECK_MAX
    P = tv.topologies[2].W @ tv.topologies[1].W @ tv.topologies[0].W
    expected = np.max(np.abs(np.linalg.eigvals(P - 1 / tv.n))) ** (1 / 3)
    assert tv.rho == pytest.approx(expected, abs=1e-9)


# ---- the undirected constructors refuse what they would otherwise change silently ------------------------------------
def _square(n=5):
    A = np.zeros((n, n), int)
    for k in range(n):
        A[k, (k + 1) % n] = A[(k + 1) % n, k] = 1
    return A


def test_a_directed_networkx_graph_is_refused():
    """A DiGraph is an nx.Graph subclass: it used to be made undirected without a word."""
    with pytest.raises(ValueError, match="directed.*require an undirected graph"):
        T.from_adjacency(nx.DiGraph([(0, 1), (1, 2), (2, 0)]))
    with pytest.raises(ValueError, match="directed"):
        T.from_adjacency(nx.cycle_graph(4, create_using=nx.DiGraph))
    assert T.from_adjacency(nx.DiGraph([(0, 1), (1, 2), (2, 0)]).to_undirected()).n == 3  # the way out


@pytest.mark.parametrize("sparse", [False, True])
def test_a_non_symmetric_adjacency_is_refused(sparse):
    import scipy.sparse as sp

    A = _square()
    A[0, 1] = 0  # edge 1 -> 0 only
    with pytest.raises(ValueError, match="symmetric"):
        T.from_adjacency(sp.coo_matrix(A) if sparse else A)


@pytest.mark.parametrize("value", [-1, 2, 0.5, np.nan, np.inf])
@pytest.mark.parametrize("sparse", [False, True])
def test_an_adjacency_that_is_not_binary_is_refused(value, sparse):
    """The adjacency is a 0/1 pattern (the weights come from `weights`): a -1 is no edge, a 2 no heavier one."""
    import scipy.sparse as sp

    A = _square().astype(float)
    A[0, 1] = A[1, 0] = value
    with pytest.raises(ValueError, match="0/1"):
        T.from_adjacency(sp.csr_matrix(A) if sparse else A)


def test_binary_adjacencies_of_any_dtype_and_a_diagonal_are_accepted():
    A = _square()
    ref = T.from_adjacency(A).W
    for B in (A.astype(bool), A.astype(np.float32), A + np.eye(5, dtype=int)):  # the diagonal is ignored
        np.testing.assert_array_equal(T.from_adjacency(B).W, ref)
    with pytest.raises(TypeError, match="0/1"):
        T.from_adjacency(A.astype(complex))
