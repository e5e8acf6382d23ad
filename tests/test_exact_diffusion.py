"""Exact diffusion and D²: the D² recursion, exact diffusion = D² on (I + W) / 2, the -1/3 eigenvalue check, one
compile."""

import jax.numpy as jnp
import networkx as nx
import numpy as np
import pytest

import jaxgossip as jg
from jaxgossip.algorithms.exact_diffusion import smallest_eigenvalue
from jaxgossip.simulate import TRACE_COUNT

from _full_batch import full_quadratic
from test_tracking import trajectory

A = jg.algorithms
N, D, LR = 6, 5, 0.1


@pytest.fixture(scope="module")
def hetero():
    return full_quadratic(n_workers=N, dim=D, samples_per_worker=8, heterogeneity=3.0, reg=0.1, seed=2)


def lazy_ring(n):
    """A ring with W = I - L / 4 (weights 1/4, 1/2, 1/4: exact in binary, lambda_min = 0)."""
    return jg.topology.from_adjacency(nx.cycle_graph(n), weights="laplacian", kappa=4.0, name=f"lazy_ring({n})")


def test_d2_follows_its_recursion(hetero):
    """X_1 = W (X_0 - lr G_0);  X_{t+1} = W (2 X_t - X_{t-1} - lr G_t + lr G_{t-1}) (Tang et al. 2018, Alg. 1)."""
    topo = lazy_ring(N)
    X = np.asarray(trajectory(A.d2(lr=LR), hetero, topo, 8).x, np.float64)
    W = topo.W
    X0 = np.broadcast_to(np.asarray(hetero.x0), (N, D))
    grads = lambda Y: np.asarray(hetero.full_grads(jnp.asarray(Y, jnp.float32)), np.float64)  # noqa: E731
    np.testing.assert_allclose(X[0], W @ (X0 - LR * grads(X0)), rtol=0, atol=1e-6)
    prev = [X0, X[0]]
    for t in range(1, 8):
        want = W @ (2 * prev[1] - prev[0] - LR * grads(prev[1]) + LR * grads(prev[0]))
        np.testing.assert_allclose(X[t], want, rtol=0, atol=2e-5)
        prev = [prev[1], X[t]]


def test_exact_diffusion_is_d2_on_the_lazy_matrix(hetero):
    """Exact diffusion on W = D² on W_bar = (I + W) / 2, step for step (stochastic gradients, same keys)."""
    prob = jg.problems.quadratic(n_workers=N, dim=D, samples_per_worker=8, batch_size=2, heterogeneity=3.0, seed=1)
    ring = jg.topology.ring(N)
    lazy = jg.topology.Topology((np.eye(N) + ring.W) / 2, name="lazy")
    ed = np.asarray(trajectory(A.exact_diffusion(lr=LR), prob, ring, 12).x)
    d2 = np.asarray(trajectory(A.d2(lr=LR), prob, lazy, 12).x)
    np.testing.assert_allclose(ed, d2, rtol=0, atol=1e-5)
    dp = np.asarray(trajectory(A.dpsgd(lr=LR, order="survey"), prob, lazy, 12).x)
    np.testing.assert_allclose(ed[0], dp[0], rtol=0, atol=1e-6)  # the first step is diffusion (no correction yet)
    assert np.abs(ed[-1] - dp[-1]).max() > 1e-3


def test_exact_optimum_where_dpsgd_stalls(hetero):
    topo = lazy_ring(N)
    kw = dict(steps=1200, eval_every=400, seed=0, shard=False)
    scale = max(1.0, float(np.linalg.norm(np.asarray(hetero.x_star))))
    dp = jg.simulate(hetero, A.dpsgd(lr=LR), topo, **kw)
    assert float(dp.metrics["dist_to_opt"][-1]) > 1e-2 * scale
    for algo in (A.exact_diffusion(lr=LR), A.d2(lr=LR)):
        res = jg.simulate(hetero, algo, topo, **kw)
        assert float(res.metrics["dist_to_opt"][-1]) < 1e-3 * scale, algo.name  # float32: the correction's round-off


def test_d2_refuses_a_matrix_with_eigenvalue_at_or_below_minus_one_third(hetero):
    before = TRACE_COUNT["chunk"]
    with pytest.raises(ValueError, match=r"d2: the mixing matrix of ring\(8\) has smallest eigenvalue -0.3333"):
        p = full_quadratic(n_workers=8, dim=D, samples_per_worker=4, seed=0)
        jg.simulate(p, A.d2(lr=LR), jg.topology.ring(8), steps=10)
    with pytest.raises(ValueError, match=r"torus\(4x4\) has smallest eigenvalue -0.6"):
        p = full_quadratic(n_workers=16, dim=D, samples_per_worker=4, seed=0)
        jg.simulate(p, A.d2(lr=LR), jg.topology.torus(4, 4), steps=10)
    assert TRACE_COUNT["chunk"] == before
    assert A.exact_diffusion(lr=LR).check_fn(A.exact_diffusion(lr=LR), hetero, jg.topology.ring(N)) is None
    assert smallest_eigenvalue(lazy_ring(N)) == pytest.approx(0.0, abs=1e-9)


def test_compiles_once_across_learning_rates(hetero):
    topo = lazy_ring(N)
    kw = dict(steps=20, eval_every=10, shard=False)
    for make in (A.exact_diffusion, A.d2):
        before = TRACE_COUNT["chunk"]
        for lr in (0.01, 0.02, 0.03):
            jg.simulate(hetero, make(lr=lr), topo, **kw)
        assert TRACE_COUNT["chunk"] - before == 1, make.__name__
