"""Every step is priced on its own graph, by the busiest sender and the busiest receiver (issue 22, item 5).

Before: ``simulate`` priced every step on ``topology.degrees`` (the maximum over a time-varying sequence, the
in-degrees of a directed graph), and a sweep over ``grid["topology"]`` priced every graph as the first one. A
[ring(6), complete(6)] gradient-tracking run was charged 17,280 bits on the ring steps that send 6,912, and SGP on a
hub-and-cycle digraph whose hub pushes 5 messages was priced as 2.
"""

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import pytest

import jaxgossip as jg
from jaxgossip.cost import Pricing

A, T = jg.algorithms, jg.topology
N, D, BATCH = 6, 9, 2
NET = jg.Network(latency=1e-3, bandwidth=1e6)
COMPUTE = jg.ComputeModel.constant(1000.0)
STEP_COMPUTE = BATCH / 1000.0
KW = dict(eval_every=1, seed=0, network=NET, compute=COMPUTE, shard=False, progress=False)


def message(bits):
    return NET.latency + bits / 8 / NET.bandwidth


def per_step(res):
    """(bits, seconds) of every step (eval_every=1: the increments of the cumulative metrics)."""
    metrics = res.metrics
    return np.diff(np.asarray(metrics["bits"], np.float64)), np.diff(np.asarray(metrics["sim_time"], np.float64))


def per_step_sweep(df):
    """[(bits, seconds) per step] of a sweep's frame, one entry per configuration, in the grid's order."""
    out = []
    for _, g in df.groupby("config_key", sort=False):
        g = g.sort_values("step")
        out.append((np.diff(g["bits"].to_numpy(np.float64)), np.diff(g["sim_time"].to_numpy(np.float64))))
    return out


@pytest.fixture(scope="module")
def problem():
    return jg.problems.quadratic(n_workers=N, dim=D, samples_per_worker=8, batch_size=BATCH, seed=0)


def hub_and_cycle():
    """Worker 0 pushes to everybody (5 messages); the cycle 0 -> 1 -> ... -> 5 -> 0 closes it. In-degrees are at most
    2, out-degrees 5 (the hub) and 1."""
    g = nx.DiGraph()
    g.add_edges_from([(0, i) for i in range(1, N)] + [(i, i + 1) for i in range(1, N - 1)] + [(N - 1, 0)])
    return T.from_digraph(g, name="hub_and_cycle(6)")


def test_degree_helpers_read_rows_and_columns():
    dg = hub_and_cycle()
    assert dg.out_degrees.tolist() == [5, 1, 1, 1, 1, 1] and dg.in_degrees.tolist() == [1, 1, 2, 2, 2, 2]
    sends, receives = T.step_degrees(T.time_varying([T.ring(N), T.complete(N)]))
    assert sends.tolist() == receives.tolist() == [[2] * N, [N - 1] * N]
    ring = T.ring(N)
    assert ring.out_degrees.tolist() == ring.in_degrees.tolist() == ring.degrees.tolist()


def test_time_varying_gradient_tracking_is_priced_on_each_steps_graph(problem):
    """[ring(6), complete(6)]: the ring steps send 2 x 12 messages of d floats (6,912 bits), the complete steps
    2 x 30 (17,280 bits); each round lasts 2 or 5 messages."""
    tv = T.time_varying([T.ring(N), T.complete(N)])
    bits, secs = per_step(jg.simulate(problem, A.gradient_tracking(lr=0.05), tv, steps=4, **KW))
    msg = 32 * D
    assert 2 * 12 * msg == 6912 and 2 * 30 * msg == 17280
    np.testing.assert_array_equal(bits, [6912, 17280, 6912, 17280])
    ring, complete = STEP_COMPUTE + 2 * 2 * message(msg), STEP_COMPUTE + 2 * 5 * message(msg)
    np.testing.assert_allclose(secs, [ring, complete, ring, complete], rtol=1e-6)


def test_hub_pushing_five_messages_is_priced_as_five_sgp_and_its_weight(problem):
    """SGP on the hub-and-cycle digraph: a message is d + 1 floats (numerator and weight), sent once per out-edge (10
    edges); the step lasts the computation plus the hub's 5 sends, one after the other."""
    dg = hub_and_cycle()
    edges = int(dg.out_degrees.sum())
    assert edges == 10
    bits, secs = per_step(jg.simulate(problem, A.sgp(lr=0.05), dg, steps=3, **KW))
    msg = 32 * (D + 1)
    np.testing.assert_array_equal(bits, [edges * msg] * 3)
    np.testing.assert_allclose(secs, STEP_COMPUTE + 5 * message(msg), rtol=1e-6)
    # the busiest receiver counts too: the transposed graph receives 5 messages at the hub and sends at most 2
    rev = T.from_digraph(nx.reverse(nx.DiGraph([(0, i) for i in range(1, N)] + [(i, i + 1) for i in range(1, N - 1)]
                                               + [(N - 1, 0)])), name="reversed")
    assert max(rev.out_degrees) == 2 and max(rev.in_degrees) == 5
    bits, secs = per_step(jg.simulate(problem, A.sgp(lr=0.05), rev, steps=2, **KW))
    np.testing.assert_allclose(secs, STEP_COMPUTE + 5 * message(msg), rtol=1e-6)


def test_one_peer_and_mixed_sequences_price_each_step(problem):
    """One-peer exponential graphs send one message per step; a sequence that alternates a one-peer graph with a ring
    is priced 1 and 2 messages on alternate steps (not 2 on every step); D-PSGD, one d-float message."""
    one_peer = T.one_peer_exponential(8)
    prob8 = jg.problems.quadratic(n_workers=8, dim=D, samples_per_worker=8, batch_size=BATCH, seed=0)
    msg = 32 * D
    bits, secs = per_step(jg.simulate(prob8, A.dpsgd(lr=0.05), one_peer, steps=3, **KW))
    np.testing.assert_array_equal(bits, [8 * msg] * 3)
    np.testing.assert_allclose(secs, STEP_COMPUTE + message(msg), rtol=1e-6)
    mixed = T.time_varying([one_peer.topologies[0], T.ring(8)])
    bits, secs = per_step(jg.simulate(prob8, A.dpsgd(lr=0.05), mixed, steps=4, **KW))
    np.testing.assert_array_equal(bits, [8 * msg, 16 * msg] * 2)
    one, two = STEP_COMPUTE + message(msg), STEP_COMPUTE + 2 * message(msg)
    np.testing.assert_allclose(secs, [one, two, one, two], rtol=1e-6)


@pytest.mark.default_codegen
@pytest.mark.parametrize("topo", [T.ring(N), T.star(N), T.erdos_renyi(N, 0.5, seed=1)], ids=lambda t: t.name)
def test_static_undirected_costs_are_unchanged(problem, topo):
    """On a static symmetric graph every step costs what the degree formula gives, bit for bit in float32: bits
    sum(deg) x message, seconds compute + max(deg) x message (one and two rounds)."""
    msg = 32 * D
    deg = jnp.asarray(topo.degrees, jnp.float32)
    old = Pricing(NET, COMPUTE, deg, N)  # the degree-only pricing (no receives): the formula before per-step graphs
    one = old.gossip(jax.random.key(0), jnp.float32(msg), BATCH)
    bits, secs = per_step(jg.simulate(problem, A.dpsgd(lr=0.05), topo, steps=2, **KW))
    np.testing.assert_array_equal(bits, float(np.float32(one.bits)))
    np.testing.assert_array_equal(secs, float(np.float32(one.seconds)))
    two_bits = np.float32(one.bits) + np.float32(jnp.sum(deg) * msg)
    two_secs = np.float32(one.seconds) + np.float32(NET.gossip(jnp.max(deg), jnp.float32(msg)))
    bits, secs = per_step(jg.simulate(problem, A.gradient_tracking(lr=0.05), topo, steps=2, **KW))
    np.testing.assert_array_equal(bits, float(two_bits))
    np.testing.assert_allclose(secs, float(two_secs), rtol=1e-7)


def test_sweep_prices_each_step_and_each_topology_on_its_graph(problem):
    """jg.sweep runs the same compiled step: the time-varying sequence per step, a digraph's hub, and every graph of
    grid["topology"] on its own degrees (before: every graph priced as the first)."""
    msg = 32 * D
    kw = dict(steps=4, eval_every=1, network=NET, compute=COMPUTE)
    tv = T.time_varying([T.ring(N), T.complete(N)])
    df = jg.sweep(problem, A.gradient_tracking(lr=0.05), tv, grid={"lr": [0.01, 0.05]}, **kw)
    ring, complete = STEP_COMPUTE + 2 * 2 * message(msg), STEP_COMPUTE + 2 * 5 * message(msg)
    for bits, secs in per_step_sweep(df):
        np.testing.assert_array_equal(bits, [6912, 17280, 6912, 17280])
        np.testing.assert_allclose(secs, [ring, complete, ring, complete], rtol=1e-6)
    df = jg.sweep(problem, A.sgp(lr=0.05), hub_and_cycle(), grid={"lr": [0.01, 0.05]}, **kw)
    for bits, secs in per_step_sweep(df):
        np.testing.assert_array_equal(bits, [10 * 32 * (D + 1)] * 4)
        np.testing.assert_allclose(secs, STEP_COMPUTE + 5 * message(32 * (D + 1)), rtol=1e-6)
    df = jg.sweep(problem, A.dpsgd(lr=0.05), None, grid={"topology": [T.ring(N), T.complete(N)]}, backend="dense",
                  **kw)
    (ring_bits, ring_secs), (comp_bits, comp_secs) = per_step_sweep(df)
    np.testing.assert_array_equal(ring_bits, 12 * msg)
    np.testing.assert_array_equal(comp_bits, 30 * msg)
    np.testing.assert_allclose(ring_secs, STEP_COMPUTE + 2 * message(msg), rtol=1e-6)
    np.testing.assert_allclose(comp_secs, STEP_COMPUTE + 5 * message(msg), rtol=1e-6)


@pytest.mark.parametrize("which", ["time_varying", "digraph"])
def test_reprice_prices_each_steps_graph(problem, which):
    """reproduce._networks.reprice (another network's times for the same runs) agrees with simulate's own pricing on a
    time-varying sequence (intervals of 3 steps mix ring and complete steps) and on the hub digraph."""
    from jaxgossip.reproduce import _networks

    topo, algo = ((T.time_varying([T.ring(N), T.complete(N)]), A.dpsgd(lr=0.05)) if which == "time_varying"
                  else (hub_and_cycle(), A.sgp(lr=0.05)))  # one gossip round per step (what reprice assumes)
    nets = {"a": NET, "b": jg.Network(latency=2e-2, bandwidth=1e5)}
    frame, _ = _networks.run_grid(problem, topo, [("x", algo)], 9, 3, (0,), network=nets["a"], compute=COMPUTE,
                                  shard=False)
    out = _networks.reprice(frame, topo, nets, nets["a"])
    np.testing.assert_allclose(out["sim_time_a"], out["sim_time"], rtol=1e-5, atol=1e-9)
    r = jg.simulate(problem, algo, topo, steps=9, eval_every=3, seed=0, network=nets["b"], compute=COMPUTE,
                    shard=False, progress=False)
    np.testing.assert_allclose(out["sim_time_b"], r.metrics["sim_time"], rtol=1e-5)
    b = nets["b"]
    if which == "time_varying":  # steps 0-2: ring, complete, ring; 3-5: complete, ring, complete; 6-8 as 0-2
        msgs, bits = [2 + 5 + 2, 5 + 2 + 5, 2 + 5 + 2], 32 * D
    else:  # the hub's 5 pushes every step
        msgs, bits = [15, 15, 15], 32 * (D + 1)
    want = [3 * STEP_COMPUTE + m * (b.latency + bits / 8 / b.bandwidth) for m in msgs]
    np.testing.assert_allclose(np.diff(out["sim_time_b"].to_numpy(np.float64)), want, rtol=1e-5)
