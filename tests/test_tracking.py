"""Gradient tracking: centralized GD under W = J, the tracking invariant, two priced rounds, one compile, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgossip as jg
from jaxgossip import gossip
from jaxgossip.algorithms._base import Context
from jaxgossip.cost import ComputeModel, Network, Pricing
from jaxgossip.simulate import TRACE_COUNT

from _full_batch import full_quadratic

A = jg.algorithms
N, D = 6, 5


def trajectory(algo, prob, topo, steps, seed=3, X0=None):
    """All states of ``steps`` iterations with simulate's key derivation (step t's key is fold_in(key(seed), t))."""
    mixing = gossip.make_mixing(topo, "dense")
    pricing = Pricing(Network(), ComputeModel(), jnp.asarray(topo.degrees, jnp.float32), prob.n)
    base = jax.random.key(seed)
    if X0 is None:
        X0 = jnp.broadcast_to(prob.x0, (prob.n, prob.d))

    @jax.jit
    def run(algo, prob, X0):
        state = algo.init(X0, Context(prob, mixing, pricing, jnp.zeros((), jnp.int32)))

        def body(s, t):
            new, _ = algo.step(s, jax.random.fold_in(base, t), Context(prob, mixing, pricing, t))
            return new, new

        return jax.lax.scan(body, state, jnp.arange(steps, dtype=jnp.int32))[1]

    return run(algo, prob, X0)


@pytest.fixture(scope="module")
def hetero():
    return full_quadratic(n_workers=N, dim=D, samples_per_worker=8, heterogeneity=3.0, reg=0.1, seed=2)


def test_complete_graph_and_full_gradients_give_centralized_gradient_descent(hetero):
    """W = J: adapt-then-combine tracking is x_{t+1} = x_t - lr grad f(x_t) on every row, step for step."""
    lr, steps = 0.1, 30
    states = trajectory(A.gradient_tracking(lr=lr, order="atc"), hetero, jg.topology.complete(N), steps)
    x = np.asarray(hetero.x0, np.float64)
    grad = jax.jit(jax.grad(hetero.objective))
    for t in range(steps):
        x = x - lr * np.asarray(grad(jnp.asarray(x, jnp.float32)), np.float64)
        np.testing.assert_allclose(np.asarray(states.x[t]), np.broadcast_to(x, (N, D)), rtol=0, atol=5e-6)
    # the models moved (the comparison means something) and the tracker's average is the global gradient
    assert np.abs(x - np.asarray(hetero.x0)).max() > 0.1
    g_last = np.asarray(grad(states.x[-2][0]))
    np.testing.assert_allclose(np.asarray(states.wy[-1].mean(axis=0)), g_last, rtol=0, atol=5e-6)


def test_tracker_average_is_the_average_gradient_on_a_ring():
    """mean_i y_t^(i) = mean_i g_t^(i) at every step (Nedic et al. 2017), with stochastic gradients, both orders."""
    prob = jg.problems.quadratic(n_workers=N, dim=D, samples_per_worker=8, batch_size=2, heterogeneity=3.0, seed=1)
    topo = jg.topology.ring(N)
    X0 = 0.5 * jax.random.normal(jax.random.key(4), (N, D))
    for order in ("diging", "atc"):
        s = trajectory(A.gradient_tracking(lr=0.05, order=order), prob, topo, 20, X0=X0)
        np.testing.assert_allclose(np.asarray(s.wy.mean(axis=1)), np.asarray(s.g.mean(axis=1)), rtol=0, atol=2e-6)
        assert np.abs(np.asarray(s.wy) - np.asarray(s.g)).max() > 1e-3  # Y is not the local gradient


def test_diging_first_step_from_a_common_start_is_dpsgd(hetero):
    """Y_0 = G_0, so the first DIGing step is D-PSGD's, X_1 = W X_0 - lr G_0; later steps differ."""
    topo = jg.topology.ring(N)
    gt = np.asarray(trajectory(A.gradient_tracking(lr=0.05), hetero, topo, 3).x)
    dp = np.asarray(trajectory(A.dpsgd(lr=0.05), hetero, topo, 3).x)
    np.testing.assert_allclose(gt[0], dp[0], rtol=0, atol=1e-6)
    assert np.abs(gt[2] - dp[2]).max() > 1e-4


def test_exact_optimum_where_dpsgd_stalls(hetero):
    topo = jg.topology.ring(N)
    kw = dict(steps=1500, eval_every=500, seed=0, shard=False)
    gt = jg.simulate(hetero, A.gradient_tracking(lr=0.1), topo, **kw)
    dp = jg.simulate(hetero, A.dpsgd(lr=0.1), topo, **kw)
    assert float(dp.metrics["suboptimality"][-1]) > 1e-3
    assert float(gt.metrics["dist_to_opt"][-1]) < 1e-4 * max(1.0, float(np.linalg.norm(np.asarray(hetero.x_star))))


def test_two_messages_per_step_are_priced(hetero):
    """Twice D-PSGD's bits, and twice its network time (two rounds) on top of one computation."""
    topo = jg.topology.ring(N)
    net, comp = Network(latency=1e-3, bandwidth=1e6), ComputeModel.constant(1000.0)
    kw = dict(steps=10, eval_every=10, network=net, compute=comp, shard=False)
    gt = jg.simulate(hetero, A.gradient_tracking(lr=0.05), topo, **kw)
    dp = jg.simulate(hetero, A.dpsgd(lr=0.05), topo, **kw)
    np.testing.assert_allclose(float(gt.metrics["bits"][-1]), 2 * float(dp.metrics["bits"][-1]), rtol=1e-6)
    compute = 10 * hetero.batch_size / 1000.0
    np.testing.assert_allclose(float(gt.metrics["sim_time"][-1]) - compute,
                               2 * (float(dp.metrics["sim_time"][-1]) - compute), rtol=1e-5)


def test_compiles_once_across_learning_rates(hetero):
    topo = jg.topology.ring(N)
    kw = dict(steps=20, eval_every=10, shard=False)
    before = TRACE_COUNT["chunk"]
    for lr in (0.01, 0.02, 0.03):
        jg.simulate(hetero, A.gradient_tracking(lr=lr), topo, **kw)
    assert TRACE_COUNT["chunk"] - before == 1


def test_bad_arguments_fail_clearly():
    with pytest.raises(ValueError, match="order must be one of"):
        A.gradient_tracking(lr=0.1, order="push")
    with pytest.raises(ValueError, match="lr"):
        A.gradient_tracking(lr=-1.0)
    assert A.get("gradient_tracking", lr=0.2).name == "gradient_tracking"
