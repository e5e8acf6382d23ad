"""Asynchronous DSGD and ASGD: reductions to the synchronous methods, event-by-event references, staleness, time."""

import jax
import numpy as np
import pytest

import jaxgossip as jg
from jaxgossip.simulate import TRACE_COUNT

NET = jg.Network(latency=2e-3, bandwidth=2e5)  # a message of a 6-vector: ~3 ms, comparable to the compute times


def _quadratic(n, batch=4):
    return jg.problems.quadratic(n_workers=n, dim=6, samples_per_worker=20, batch_size=batch, seed=1)


# ---- references: plain Python event loops in float64 over absolute times ---------------------------------------------
@jax.jit
def _draws(problem, compute, seed, t, X):
    """Event t's stochastic gradients of the stack at X and computation times, from the keys simulate gives step t."""
    key = jax.random.fold_in(jax.random.key(seed), t)
    G, _ = problem.stochastic_grads(jax.random.fold_in(key, 0), X)
    return G, compute.times(jax.random.fold_in(key, 2), X.shape[0], problem.batch_size)


def _ref_async_dsgd(problem, topo, compute, lr, seed, events):
    """Keeps every model each worker ever sent with its arrival time and reads the latest arrived one."""
    n, d = problem.n, problem.d
    W = np.asarray(topo.W, np.float64)
    send = np.asarray(topo.degrees, np.float64) * (NET.latency + 32 * d / 8 / NET.bandwidth)
    X = np.tile(np.asarray(problem.x0, np.float64), (n, 1))
    sent = [[(-np.inf, X[j].copy())] for j in range(n)]
    start, finish = send.copy(), np.full(n, np.nan)  # each worker first sends x0, then computes
    times, stale_reads, tie_events = [], 0, 0
    for t in range(events):
        G, dur = (np.asarray(a, np.float64) for a in _draws(problem, compute, seed, t, X.astype(np.float32)))
        finish = np.where(np.isnan(finish), start + dur, finish)
        now = finish.min()
        active = np.flatnonzero(finish == now)
        tie_events += len(active) > 1
        new = {}
        for i in active:
            seen = np.stack([X[i] if j == i else [m for a, m in sent[j] if a <= now][-1] for j in range(n)])
            stale_reads += sum(sent[j][-1][0] > now for j in range(n) if j != i and W[i, j] > 0)
            new[i] = W[i] @ seen - lr * G[i]
        for i in active:
            X[i] = new[i]
            sent[i].append((now + send[i], X[i].copy()))
            start[i], finish[i] = now + send[i], np.nan
        times.append(now)
    return X, np.array(times), stale_reads, tie_events


def _ref_asgd(problem, compute, lr, seed, events):
    """One server with a receive and a send link, each serving messages one at a time in arrival order."""
    n, d = problem.n, problem.d
    msg = NET.latency + 32 * d / 8 / NET.bandwidth
    x = np.asarray(problem.x0, np.float64)
    pulled, version, t = np.tile(x, (n, 1)), np.zeros(n, int), 0
    start, finish = msg * np.arange(1, n + 1), np.full(n, np.nan)
    recv_free, send_free = 0.0, n * msg
    times, stale = [], []
    for s in range(events):
        G, dur = (np.asarray(a, np.float64) for a in _draws(problem, compute, seed, s, pulled.astype(np.float32)))
        finish = np.where(np.isnan(finish), start + dur, finish)
        i = int(np.argmin(finish))
        recv_free = max(finish[i], recv_free) + msg
        send_free = max(recv_free, send_free) + msg
        x = x - lr * G[i]
        stale.append(t - version[i])
        t += 1
        pulled[i], version[i], start[i], finish[i] = x, t, send_free, np.nan
        times.append(recv_free)
    return x, np.array(times), np.array(stale)


# ---- asynchronous DSGD -----------------------------------------------------------------------------------------------
def test_async_dsgd_with_equal_constant_speeds_is_dpsgd():
    """On a regular graph every worker finishes at once: one step is one D-PSGD round (paper order), exactly."""
    p, topo, comp = _quadratic(8), jg.topology.ring(8), jg.ComputeModel.given([400.0] * 8)
    kw = dict(steps=12, eval_every=3, network=NET, compute=comp, seed=3)
    sync = jg.simulate(p, jg.algorithms.dpsgd(lr=0.05, order="paper"), topo, **kw)
    asyn = jg.simulate(p, jg.algorithms.async_dsgd(lr=0.05), topo, **kw)
    before = TRACE_COUNT["chunk"]
    other = jg.simulate(p, jg.algorithms.async_dsgd(lr=0.02), topo, **kw)
    assert TRACE_COUNT["chunk"] == before  # lr is traced: no recompile
    np.testing.assert_array_equal(np.asarray(asyn.state.x), np.asarray(sync.state.x))
    np.testing.assert_array_equal(asyn.metrics["loss"], sync.metrics["loss"])
    np.testing.assert_allclose(asyn.metrics["sim_time"], sync.metrics["sim_time"], rtol=1e-6)
    np.testing.assert_array_equal(asyn.metrics["bits"], sync.metrics["bits"])
    np.testing.assert_array_equal(np.asarray(asyn.state.updates), np.full(8, 12))
    assert not np.allclose(np.asarray(other.state.x), np.asarray(asyn.state.x))


# fixed speeds, equal within each degree class (degrees 3, 3, 2, 3, 3, 2) and chosen so that no model arrives at the
# very instant of an event (where float rounding of the clocks would decide whether it counts)
_GIVEN = jg.ComputeModel.given([1000.0, 1000.0, 937.0, 1000.0, 1000.0, 937.0])


@pytest.mark.parametrize("compute", [_GIVEN, jg.ComputeModel.uniform(500.0, 2000.0)], ids=["given-ties", "uniform"])
def test_async_dsgd_matches_event_reference(compute):
    """Event times, models, bits and update counts against a Python event loop that keeps every sent model.

    On the irregular graph, workers of equal degree finish together (the all-worker path) and others alone (the
    one-row path); with random speeds every event is one worker. Both reach neighbours' models still in flight.
    """
    p = _quadratic(6)
    adj = np.zeros((6, 6), bool)
    for i, j in [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 0), (0, 3), (1, 4)]:
        adj[i, j] = adj[j, i] = True
    topo = jg.topology.from_adjacency(adj)
    events, lr, seed = 60, 0.05, 7
    res = jg.simulate(p, jg.algorithms.async_dsgd(lr=lr), topo, steps=events, eval_every=1, network=NET,
                      compute=compute, seed=seed)
    X, times, stale_reads, ties = _ref_async_dsgd(p, topo, compute, lr, seed, events)
    assert stale_reads > 0
    assert (ties > 0) == (compute.distribution == "given")
    np.testing.assert_allclose(res.metrics["sim_time"][1:], times, rtol=1e-5)
    assert np.all(np.diff(res.metrics["sim_time"]) > 0)
    np.testing.assert_allclose(np.asarray(res.state.x), X, rtol=1e-4, atol=1e-5)
    updates = np.asarray(res.state.updates)
    assert updates.sum() >= events and updates.min() > 0
    np.testing.assert_allclose(res.metrics["bits"][-1], 32 * p.d * np.sum(updates * topo.degrees))
    assert res.metrics["loss"][-1] < res.metrics["loss"][0]


def test_async_dsgd_beats_synchronous_rounds_under_stragglers():
    """Two workers 10x slower: synchronous D-PSGD waits for them every round, the others run on asynchronously.
    (The same static configuration as the test above, so nothing recompiles.)"""
    p, topo = _quadratic(8), jg.topology.ring(8)
    comp = jg.ComputeModel.given([40.0, 400.0, 400.0, 400.0, 40.0, 400.0, 400.0, 400.0])
    kw = dict(steps=12, eval_every=3, network=NET, compute=comp, seed=0)
    sync = jg.simulate(p, jg.algorithms.dpsgd(lr=0.05, order="paper"), topo, **kw)
    asyn = jg.simulate(p, jg.algorithms.async_dsgd(lr=0.05), topo, **kw)
    sync_rate = 8 * 12 / sync.metrics["sim_time"][-1]
    updates = np.asarray(asyn.state.updates)
    assert updates.sum() / asyn.metrics["sim_time"][-1] > 3 * sync_rate  # updates per simulated second
    assert updates[[0, 4]].max() < updates[[1, 2, 3, 5, 6, 7]].min()


# ---- ASGD ------------------------------------------------------------------------------------------------------------
def test_asgd_with_one_worker_is_sgd():
    """n = 1: no staleness; the same models and simulated times as C-PSGD on a parameter server."""
    p = _quadratic(1)
    kw = dict(steps=20, eval_every=5, network=NET, compute=jg.ComputeModel(speed=250.0), seed=2)
    sgd = jg.simulate(p, jg.algorithms.cpsgd(lr=0.1, pattern="parameter_server"), **kw)
    res = jg.simulate(p, jg.algorithms.asgd(lr=0.1), **kw)
    np.testing.assert_allclose(np.asarray(res.state.x), np.asarray(sgd.state.x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(res.metrics["sim_time"], sgd.metrics["sim_time"], rtol=1e-5)
    np.testing.assert_array_equal(res.metrics["bits"], sgd.metrics["bits"])
    assert int(res.state.staleness[0]) == 20 and int(res.state.staleness.sum()) == 20
    assert res.metrics["loss"][-1] < res.metrics["loss"][0]


def test_asgd_matches_event_reference():
    p, comp = _quadratic(4), jg.ComputeModel.uniform(100.0, 1000.0)
    events, lr, seed = 50, 0.05, 5
    res = jg.simulate(p, jg.algorithms.asgd(lr=lr, staleness_bins=8), steps=events, eval_every=1, network=NET,
                      compute=comp, seed=seed)
    x, times, stale = _ref_asgd(p, comp, lr, seed, events)
    np.testing.assert_allclose(res.metrics["sim_time"][1:], times, rtol=1e-5)
    assert np.all(np.diff(res.metrics["sim_time"]) > 0)
    X = np.asarray(res.state.x)
    np.testing.assert_allclose(X, np.tile(x, (4, 1)), rtol=1e-4, atol=1e-5)
    assert res.metrics["consensus"][-1] == 0.0
    np.testing.assert_array_equal(np.asarray(res.state.staleness), np.bincount(np.minimum(stale, 7), minlength=8))
    assert int(res.state.stale_sum.sum()) == stale.sum() and int(res.state.pushes.sum()) == events
    assert stale.max() > 0


def test_asgd_staleness_follows_the_compute_model():
    """Equal constant speeds: every update after the first round is n - 1 versions old. A 10x straggler's pushes are
    far staler (about 10 (n - 1)) and the others' less stale than with equal speeds."""
    p, n, T = _quadratic(4), 4, 200
    kw = dict(steps=T, eval_every=T, network=jg.Network(latency=1e-5, bandwidth=1e9), seed=0)
    equal = jg.simulate(p, jg.algorithms.asgd(lr=0.02), compute=jg.ComputeModel.given([100.0] * n), **kw)
    hist = np.asarray(equal.state.staleness)
    np.testing.assert_array_equal(hist[:n], [1] * (n - 1) + [T - (n - 1)])  # first round: 0, 1, ..., n - 1
    assert hist[n:].sum() == 0
    slow = jg.ComputeModel.given([10.0] + [100.0] * (n - 1))  # the same static configuration: no recompile
    strag = jg.simulate(p, jg.algorithms.asgd(lr=0.02), compute=slow, **kw)
    mean = np.asarray(strag.state.stale_sum) / np.maximum(np.asarray(strag.state.pushes), 1)
    assert mean[0] > 5 * (n - 1) and mean[1:].max() < n - 1
    assert np.asarray(strag.state.pushes)[0] < np.asarray(strag.state.pushes)[1:].min() / 5


# ---- validation ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("factory,kwargs,match", [
    ("async_dsgd", dict(lr=-0.1), "lr"),
    ("async_dsgd", dict(lr="fast"), "lr"),
    ("async_dsgd", dict(optimizer="adam"), "optimizer"),
    ("asgd", dict(lr=float("nan")), "lr"),
    ("asgd", dict(staleness_bins=1), "staleness_bins"),
    ("asgd", dict(staleness_bins=4.0), "staleness_bins"),
    ("asgd", dict(optimizer=3), "optimizer"),
])
def test_bad_parameters_raise(factory, kwargs, match):
    with pytest.raises(ValueError, match=match):
        jg.algorithms.get(factory, **kwargs)


def test_async_dsgd_needs_a_topology():
    with pytest.raises(ValueError, match="topology"):
        jg.simulate(_quadratic(4), jg.algorithms.async_dsgd(lr=0.1), steps=2)


def test_async_dsgd_one_row_path_with_momentum_is_layout_independent():
    """Random speeds (one worker per event, the one-row path) with per-worker momentum: the same numbers whether the
    worker axis is spread over 8 devices or kept on one, and the loss goes down."""
    import optax

    p, topo = _quadratic(8), jg.topology.ring(8)
    algo = jg.algorithms.async_dsgd(lr=0.03, optimizer=optax.trace(0.5))
    kw = dict(steps=40, eval_every=40, network=NET, compute=jg.ComputeModel.uniform(500.0, 2000.0), seed=4)
    spread, single = (jg.simulate(p, algo, topo, shard=s, **kw) for s in (True, False))
    assert spread.config["devices"] == 8 and single.config["devices"] == 1
    np.testing.assert_allclose(np.asarray(spread.state.x), np.asarray(single.state.x), rtol=1e-5, atol=1e-6)
    assert int(np.asarray(spread.state.updates).sum()) == 40
    assert spread.metrics["loss"][-1] < spread.metrics["loss"][0]
