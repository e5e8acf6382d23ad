import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgossip import gossip
from jaxgossip import topology as T

TOPOS = [T.ring(8), T.torus(4, 4), T.hypercube(16), T.exponential(16), T.star(8), T.erdos_renyi(16, 0.3, seed=2),
         T.complete(8)]


@pytest.mark.parametrize("topo", TOPOS, ids=lambda t: t.name)
def test_backends_agree_with_dense(topo):
    X = jax.random.normal(jax.random.key(0), (topo.n, 37))
    ref = topo.W @ np.asarray(X, np.float64)
    backends = ["dense", "gather", "sparse"] + (["shift"] if topo.permutations is not None else [])
    for b in backends:
        m = gossip.make_mixing(topo, b)
        assert m.backend == b
        np.testing.assert_allclose(np.asarray(m(X)), ref, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(np.asarray(m.diag), np.diag(topo.W), rtol=1e-6)


def test_gather_memory_is_n_deg():
    topo = T.ring(1024)
    m = gossip.make_mixing(topo, "gather")
    assert m.index.shape == (1024, 3) and m.weights.shape == (1024, 3)
    assert gossip.make_mixing(topo).backend == "shift"  # auto: large shift graph
    assert gossip.make_mixing(T.erdos_renyi(128, 0.05, seed=0)).backend == "gather"
    assert gossip.make_mixing(T.ring(16)).backend == "shift"
    assert gossip.make_mixing(T.ring(8)).backend == "dense"  # 3 of 8: a dense graph
    assert gossip.make_mixing(T.erdos_renyi(50, 0.4, seed=0)).backend == "dense"
    star = T.star(5000)  # one hub of degree n - 1 does not make the graph dense
    assert gossip.make_mixing(star).backend == "sparse" and "W" not in star.__dict__


def test_hub_graphs_gossip_over_their_edges_not_a_padded_table():
    import networkx as nx

    topo = T.from_adjacency(nx.barabasi_albert_graph(400, 2, seed=0))  # a few hubs, most workers of degree 2-3
    assert topo.max_degree + 1 > gossip.SPARSE_PADDING * (1 + topo.degrees.mean())
    m = gossip.make_mixing(topo)
    assert m.backend == "sparse" and m.index.shape == (2, topo.degrees.sum())
    X = jax.random.normal(jax.random.key(1), (topo.n, 5))
    np.testing.assert_allclose(np.asarray(m(X)), topo.W @ np.asarray(X, np.float64), rtol=1e-5, atol=1e-5)
    Y = jax.random.normal(jax.random.key(2), (topo.n, 2, 3))  # any trailing shape, as the other backends
    np.testing.assert_allclose(np.asarray(m(Y)), np.einsum("ij,jab->iab", topo.W, np.asarray(Y, np.float64)),
                               rtol=1e-5, atol=1e-5)
    other = T.from_adjacency(nx.barabasi_albert_graph(400, 2, seed=1))
    tv = T.time_varying([topo, other, T.ring(400)])  # edge lists padded to one length, the ring's too
    m = gossip.make_mixing(tv)
    assert m.backend == "sparse" and m.index.shape == (3, 2, max(t.degrees.sum() for t in tv.topologies))
    for t, graph in enumerate(tv.topologies):
        np.testing.assert_allclose(np.asarray(gossip.select(m, t, 3)(X)), graph.W @ np.asarray(X, np.float64),
                                   rtol=1e-5, atol=1e-5)


def test_time_varying_shift_graphs_stack_as_padded_gather_tables():
    tv = T.time_varying([T.ring(64), T.exponential(64), T.torus(8, 8)])
    m = gossip.make_mixing(tv)
    assert m.backend == "gather" and m.index.shape == (3, 64, T.exponential(64).max_degree + 1)
    X = jax.random.normal(jax.random.key(3), (64, 6))
    for t, graph in enumerate(tv.topologies):
        np.testing.assert_allclose(np.asarray(gossip.select(m, t, 3)(X)), graph.W @ np.asarray(X, np.float64),
                                   rtol=1e-5, atol=1e-5)


def test_mixing_is_traced_and_jittable():
    f = jax.jit(lambda m, X: m(X))
    X = jnp.ones((8, 4))
    a = f(gossip.make_mixing(T.ring(8), "dense"), X)
    b = f(gossip.make_mixing(T.ring(8, weights="metropolis"), "dense"), X)
    np.testing.assert_allclose(a, X, rtol=1e-6)
    np.testing.assert_allclose(b, X, rtol=1e-6)
    assert f._cache_size() == 1


def test_time_varying_select():
    tv = T.time_varying([T.ring(8), T.hypercube(8)])
    m = gossip.make_mixing(tv)
    X = jax.random.normal(jax.random.key(1), (8, 5))
    for t in range(4):
        np.testing.assert_allclose(gossip.select(m, t, 2)(X), tv.topologies[t % 2].W @ np.asarray(X), rtol=1e-5, atol=1e-6)


def test_bad_backend():
    with pytest.raises(ValueError, match="backend must be one of"):
        gossip.make_mixing(T.ring(8), "fft")
    with pytest.raises(ValueError, match="shift-structured"):
        gossip.make_mixing(T.star(8), "shift")
