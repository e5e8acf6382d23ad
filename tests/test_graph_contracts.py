"""Inputs an algorithm's rule does not allow are refused before compiling; deadline subsets are random samples.

Found by the NumPy reference (tests/reference): D-PSGD and its compressed peers ran on a matrix that is only column
stochastic (biased average, no word), asynchronous DSGD mixed with W^T on a directed ring, DCD / ECD / CHOCO started
their copies of the neighbours' models at per-worker initial models nobody sent, and QuanTimed-DSGD on a full-batch
problem always used the first samples in storage order.
"""

import networkx as nx
import numpy as np
import pytest

import jaxgossip as jg
import sys
sim = sys.modules["jaxgossip.simulate"]


@pytest.fixture(scope="module")
def problem():
    return jg.problems.quadratic(n_workers=6, dim=4, samples_per_worker=8, batch_size="full", seed=0)


def _hub_and_cycle(n=6):
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    g.add_edges_from((0, j) for j in range(1, n))  # the hub pushes to everyone
    g.add_edges_from((j, j % (n - 1) + 1) for j in range(1, n))  # a cycle among the others
    g.add_edge(1, 0)  # and a way back to the hub
    return jg.topology.from_digraph(g, "hub_and_cycle")


NOT_PUSH_SUM = ["dpsgd", "naive_compressed", "dcd_psgd", "ecd_psgd", "choco_sgd", "deepsqueeze", "q_dsgd",
                "quantimed_dsgd", "async_dsgd", "gradient_tracking", "exact_diffusion", "beer", "ad_psgd"]


def _build(name):
    kwargs = {"compressor": jg.compressors.top_k(fraction=0.5)} if name in (
        "naive_compressed", "dcd_psgd", "ecd_psgd", "choco_sgd", "deepsqueeze", "beer") else {}
    return jg.algorithms.get(name, **kwargs)


@pytest.mark.parametrize("name", NOT_PUSH_SUM)
def test_a_column_stochastic_graph_is_refused_except_for_push_sum(problem, name):
    topo = _hub_and_cycle()
    assert not topo.doubly_stochastic
    before = sim.TRACE_COUNT["chunk"]
    with pytest.raises(ValueError, match="doubly stochastic|directed|symmetric"):
        jg.simulate(problem, _build(name), topo, steps=2, eval_every=1)
    assert sim.TRACE_COUNT["chunk"] == before


def test_push_sum_takes_the_column_stochastic_graph(problem):
    res = jg.simulate(problem, jg.algorithms.sgp(lr=0.01), _hub_and_cycle(), steps=2, eval_every=1)
    assert np.all(np.isfinite(res.metrics["loss"]))


@pytest.mark.parametrize("name", ["async_dsgd", "ad_psgd"])
def test_pairwise_and_asynchronous_methods_need_an_undirected_graph(problem, name):
    topo = jg.topology.directed_ring(6)
    assert topo.doubly_stochastic and not topo.symmetric
    with pytest.raises(ValueError, match="undirected"):
        jg.simulate(problem, _build(name), topo, steps=2, eval_every=1)


def test_doubly_stochastic_directed_graphs_stay_allowed_for_dpsgd(problem):
    """A one-peer exponential graph (Ying et al. 2021) is doubly stochastic but asymmetric: D-PSGD's rule allows it."""
    res = jg.simulate(problem, jg.algorithms.dpsgd(lr=0.01), jg.topology.directed_ring(6), steps=2, eval_every=1)
    assert np.all(np.isfinite(res.metrics["loss"]))


@pytest.mark.parametrize("name", ["dcd_psgd", "ecd_psgd", "choco_sgd"])
def test_per_worker_initial_models_are_refused_where_neighbours_keep_copies(problem, name):
    x0 = np.random.default_rng(0).standard_normal((problem.n, problem.d)).astype(np.float32)
    with pytest.raises(ValueError, match="x0"):
        jg.simulate(problem, _build(name), jg.topology.ring(6), steps=2, eval_every=1, x0=x0)
    jg.simulate(problem, _build(name), jg.topology.ring(6), steps=2, eval_every=1, x0=x0[0])  # one shared model


def test_a_deadline_on_a_full_batch_draws_a_random_subset_every_step(problem):
    """QuanTimed-DSGD's S_i,t is "the set of random samples chosen at time t" (Reisizadeh et al. 2019, Sec. 3)."""
    import jax

    X = jax.numpy.asarray(np.random.default_rng(1).standard_normal((problem.n, problem.d)), jax.numpy.float32)
    sizes = jax.numpy.full((problem.n,), 3, jax.numpy.int32)
    grads = [np.asarray(problem.stochastic_grads(jax.random.key(k), X, sizes, replace=False)[0]) for k in range(4)]
    assert any(not np.allclose(grads[0], g) for g in grads[1:])  # a new subset at another step
    full = np.asarray(problem.stochastic_grads(jax.random.key(0), X)[0])
    assert not np.allclose(grads[0], full)  # a subset, not the whole share
    # the whole share when the deadline allows every sample
    every = jax.numpy.full((problem.n,), 8, jax.numpy.int32)
    np.testing.assert_allclose(np.asarray(problem.stochastic_grads(jax.random.key(3), X, every, replace=False)[0]),
                               full, rtol=1e-5, atol=1e-6)


def test_as_given_is_the_explicit_recorded_opt_out(problem):
    """Assran et al. (2019)'s plain-gossip baseline shows the bias on purpose: as_given lets it run, and says so."""
    res = jg.simulate(problem, jg.algorithms.dpsgd(lr=0.01), jg.topology.as_given(_hub_and_cycle()), steps=2,
                      eval_every=1)
    assert res.config["topology"] == "as_given(hub_and_cycle)"
    with pytest.raises(ValueError, match="directed graph"):
        jg.topology.as_given(jg.topology.ring(6))
