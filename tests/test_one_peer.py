"""One-peer exponential graphs: structure, exact averaging after log2(n) steps, pricing, D² refuses them, tracking
converges on them; the ying2021-one-peer reproduction."""

import jax
import numpy as np
import pytest

import jaxgossip as jg

from _full_batch import full_quadratic

T = jg.topology


@pytest.mark.parametrize("n", [2, 8, 12])
def test_structure(n):
    seq = T.one_peer_exponential(n)
    tau = int(np.ceil(np.log2(n)))
    assert len(seq.topologies) == tau and seq.n == n
    for k, g in enumerate(seq.topologies):
        W = g.W
        np.testing.assert_allclose(np.diag(W), 0.5)
        np.testing.assert_allclose(W[np.arange(n), (np.arange(n) + 2**k) % n], 0.5)
        np.testing.assert_allclose(W.sum(0), 1.0)
        np.testing.assert_allclose(W.sum(1), 1.0)
        assert list(g.degrees) == [1] * n
    P = np.eye(n)
    for g in seq.topologies:
        P = g.W @ P
    exact = n & (n - 1) == 0
    assert (np.abs(P - 1.0 / n).max() < 1e-12) == exact
    assert seq.rho == pytest.approx(0.0, abs=1e-6) if exact else 0 < seq.rho < 1
    assert T.get("one_peer_exponential", n).name == f"one_peer_exponential({n})"


def test_bad_inputs():
    for n in (1, 0, 2.5, True):
        with pytest.raises(ValueError, match="n must be an integer >= 2"):
            T.one_peer_exponential(n)
    with pytest.raises(ValueError, match="doubly stochastic"):
        T.PeerGraph(np.array([[1.0, 0.0], [1.0, 0.0]]))


def test_gossip_averages_exactly_after_log2_n_steps_and_sends_one_message():
    n = 16
    prob = full_quadratic(n_workers=n, dim=4, samples_per_worker=4, seed=0)
    X0 = np.asarray(jax.random.normal(jax.random.key(1), (n, 4)))
    res = jg.simulate(prob, jg.algorithms.dpsgd(lr=0.0), T.one_peer_exponential(n), steps=8, eval_every=4, x0=X0,
                      shard=False)
    cons = np.asarray(res.metrics["consensus"])
    assert cons[0] > 0.5 and cons[1] < 1e-10 and cons[2] < 1e-10  # exact average after tau = 4 steps
    ring = jg.simulate(prob, jg.algorithms.dpsgd(lr=0.0), T.ring(n), steps=8, eval_every=4, x0=X0, shard=False)
    np.testing.assert_allclose(np.asarray(res.metrics["bits"])[1:], np.asarray(ring.metrics["bits"])[1:] / 2)


def test_d2_refuses_directed_graphs_and_tracking_converges_on_them():
    n = 8
    prob = full_quadratic(n_workers=n, dim=5, samples_per_worker=8, heterogeneity=3.0, reg=0.1, seed=2)
    with pytest.raises(ValueError, match=r"d2: needs a symmetric mixing matrix W; one_peer_exponential\(8\)\[0\]"):
        jg.simulate(prob, jg.algorithms.d2(lr=0.1), T.one_peer_exponential(n), steps=10)
    kw = dict(steps=900, eval_every=300, shard=False)
    gt = jg.simulate(prob, jg.algorithms.gradient_tracking(lr=0.1), T.one_peer_exponential(n), **kw)
    dp = jg.simulate(prob, jg.algorithms.dpsgd(lr=0.1), T.one_peer_exponential(n), **kw)
    assert float(gt.metrics["dist_to_opt"][-1]) < 1e-4 * np.linalg.norm(np.asarray(prob.x_star))
    assert float(dp.metrics["dist_to_opt"][-1]) > 1e-2 * np.linalg.norm(np.asarray(prob.x_star))


def test_ying2021_reproduction_verdicts_hold():
    rep = jg.reproduce.run("ying2021-one-peer", size="test")
    assert rep.holds, rep.verdicts.to_string()
    assert set(rep.frame.graph) == {"ring", "exponential (static)", "one-peer exponential"}
    assert set(rep.frame.seed) == {0, 1} and rep.figure is not None


def test_tracking_on_a_time_varying_graph_uses_step_ts_graph_for_both_messages():
    """DIGing over time-varying graphs (Nedic et al. 2017): X_{t+1} = W_t X_t - lr Y_t, Y_{t+1} = W_t Y_t + G_{t+1} - G_t,
    against a NumPy loop over the one-peer sequence."""
    import jax.numpy as jnp

    from jaxgossip import gossip
    from jaxgossip.algorithms._base import Context
    from jaxgossip.cost import ComputeModel, Network, Pricing

    n, d, lr, steps = 8, 3, 0.1, 7
    prob = full_quadratic(n_workers=n, dim=d, samples_per_worker=5, heterogeneity=2.0, seed=3)
    seq = T.one_peer_exponential(n)
    mixing = gossip.make_mixing(seq)
    pricing = Pricing(Network(), ComputeModel(), jnp.asarray(seq.degrees, jnp.float32), n)
    algo = jg.algorithms.gradient_tracking(lr=lr)
    X0 = jax.random.normal(jax.random.key(0), (n, d))
    s = algo.init(X0, Context(prob, mixing, pricing, jnp.zeros((), jnp.int32)))
    grads = lambda X: np.asarray(prob.full_grads(jnp.asarray(X, jnp.float32)), np.float64)  # noqa: E731
    X, Y, G = np.asarray(X0, np.float64), grads(X0), grads(X0)
    for t in range(steps):
        ctx = Context(prob, gossip.select(mixing, jnp.int32(t), len(seq.topologies)), pricing, jnp.int32(t))
        s, _ = algo.step(s, jax.random.key(t), ctx)
        W = seq.topologies[t % len(seq.topologies)].W
        X = W @ X - lr * Y
        G_new = grads(X)
        Y, G = W @ Y + G_new - G, G_new
        np.testing.assert_allclose(np.asarray(s.x), X, rtol=0, atol=1e-5)
