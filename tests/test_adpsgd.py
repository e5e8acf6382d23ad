"""AD-PSGD: an event-by-event reference, pairwise gossip at lr = 0, the clock, one compile, the straggler claim."""

import jax.numpy as jnp
import numpy as np
import pytest

import jaxgossip as jg
from jaxgossip.simulate import TRACE_COUNT

from _full_batch import full_quadratic
from test_tracking import trajectory

A = jg.algorithms
N = 6


@pytest.fixture(scope="module")
def quad():
    return full_quadratic(n_workers=N, dim=5, samples_per_worker=8, heterogeneity=1.0, reg=0.1, seed=2)


def test_matches_the_event_by_event_reference(quad):
    """Replaying the recorded (i, j) of each event in float64: average the pair, then x_i -= lr g_i(x_hat_i) with the
    gradient at the model worker i read at its previous event (stale: its neighbours may have averaged with it since).
    """
    lr, steps = 0.1, 60
    topo = jg.topology.ring(N)
    states = trajectory(A.ad_psgd(lr=lr), quad, topo, steps)
    X = np.tile(np.asarray(quad.x0, np.float64), (N, 1))
    read = X.copy()
    stale = 0
    for t in range(steps):
        i, j = (int(v) for v in states.last[t])
        assert topo.W[i, j] > 0 and i != j
        g = np.asarray(quad.full_grads(jnp.asarray(read, jnp.float32)), np.float64)[i]
        stale += not np.allclose(read[i], X[i])
        X[i] = X[j] = 0.5 * (X[i] + X[j])
        X[i] -= lr * g
        read[i] = X[i]
        np.testing.assert_allclose(np.asarray(states.x[t]), X, rtol=0, atol=2e-5)
    assert stale > 0  # some gradients were taken at models the neighbours had changed since
    np.testing.assert_array_equal(np.asarray(states.updates[-1]).sum(), steps)


def test_zero_step_size_is_randomized_pairwise_gossip(quad):
    """lr = 0: an event replaces x_i and x_j by their average: the mean is kept and the models reach consensus."""
    rng = np.random.default_rng(0)
    X0 = jnp.asarray(rng.normal(size=(N, quad.d)), jnp.float32)
    states = trajectory(A.ad_psgd(lr=0.0), quad, jg.topology.ring(N), 200, X0=X0)
    np.testing.assert_allclose(np.asarray(states.x.mean(axis=1)), np.broadcast_to(np.asarray(X0.mean(0)),
                                                                                  (200, quad.d)), atol=1e-5)
    spread = np.asarray(((states.x - states.x.mean(axis=1, keepdims=True)) ** 2).sum(axis=(1, 2)))
    assert spread[-1] < 1e-4 * float(((X0 - X0.mean(0)) ** 2).sum())


def test_stragglers_make_fewer_updates_and_the_clock_is_the_event_time(quad):
    """Given speeds, no network time: worker i finishes its k-th gradient at k b / v_i, so over a horizon the update
    counts are proportional to the speeds and sim_time is the last event's time."""
    speeds = np.array([100.0, 100.0, 100.0, 100.0, 100.0, 10.0])
    b = quad.batch_size  # full batch: the largest share
    res = jg.simulate(quad, A.ad_psgd(lr=0.05), jg.topology.ring(N), steps=102, eval_every=51, shard=False,
                      progress=False, network=jg.Network(latency=0.0, bandwidth=1e30),
                      compute=jg.ComputeModel.given(speeds))
    # per period of 10 b / 100 seconds the five fast workers finish 10 gradients each and the straggler one: 51 events
    np.testing.assert_allclose(np.asarray(res.metrics["sim_time"]), [0.0, 10 * b / 100.0, 20 * b / 100.0], rtol=1e-5)
    assert float(res.metrics["bits"][-1]) == 102 * 2 * 32 * quad.d


def test_compiles_once_across_learning_rates(quad):
    before = TRACE_COUNT["chunk"]
    for lr in (0.01, 0.02, 0.03):
        jg.simulate(quad, A.ad_psgd(lr=lr), jg.topology.ring(N), steps=10, eval_every=5, shard=False, progress=False)
    assert TRACE_COUNT["chunk"] - before == 1


def test_bad_arguments_fail_clearly(quad):
    with pytest.raises(ValueError, match="lr"):
        A.ad_psgd(lr=-0.1)
    assert A.get("ad_psgd", lr=0.2).name == "ad_psgd"


def test_with_stragglers_ad_psgd_reaches_dpsgd_loss_sooner_in_simulated_time():
    """Lian et al. 2018 at small size: 8 workers on a ring, two persistent 10x stragglers, two seeds. D-PSGD waits for
    the slowest worker every round; AD-PSGD's fast workers keep going. AD-PSGD reaches D-PSGD's final loss in less
    than half D-PSGD's simulated time."""
    n = 8
    compute = jg.ComputeModel.exponential(1000.0).with_stragglers((0, 4), slowdown=10.0)
    net = jg.Network(latency=1e-4, bandwidth=1e9)
    for seed in (0, 1):
        prob = jg.problems.quadratic(n_workers=n, dim=10, samples_per_worker=40, heterogeneity=0.3, batch_size=4,
                                     seed=seed)
        dp = jg.simulate(prob, A.dpsgd(lr=0.05), jg.topology.ring(n), steps=200, eval_every=20, seed=seed,
                         network=net, compute=compute, shard=False, progress=False)
        ad = jg.simulate(prob, A.ad_psgd(lr=0.05), jg.topology.ring(n), steps=1600, eval_every=20, seed=seed,
                         network=net, compute=compute, shard=False, progress=False)
        target = float(np.mean(np.asarray(dp.metrics["loss"])[-3:]))
        t_dp = float(dp.metrics["sim_time"][-1])
        reached = np.flatnonzero(np.asarray(ad.metrics["loss"]) <= target)
        assert reached.size, (seed, target, np.asarray(ad.metrics["loss"])[-3:])
        t_ad = float(np.asarray(ad.metrics["sim_time"])[reached[0]])
        assert t_ad < 0.5 * t_dp, (seed, t_ad, t_dp)
