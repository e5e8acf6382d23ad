"""EF21 and BEER: identity reductions (C-PSGD; gradient tracking), top-k convergence, pricing, one compile."""

import jax
import numpy as np
import pytest

import jaxgossip as jg
from jaxgossip.simulate import TRACE_COUNT

from _full_batch import full_quadratic
from test_exact_diffusion import lazy_ring
from test_tracking import trajectory

A, C = jg.algorithms, jg.compressors
N, D = 6, 20


@pytest.fixture(scope="module")
def noisy():
    return jg.problems.quadratic(n_workers=N, dim=D, samples_per_worker=8, batch_size=2, heterogeneity=2.0, seed=1)


@pytest.fixture(scope="module")
def hetero():
    return full_quadratic(n_workers=N, dim=D, samples_per_worker=30, heterogeneity=1.0, reg=0.1, seed=2)


def test_ef21_with_identity_is_cpsgd_step_for_step(noisy):
    topo = jg.topology.ring(N)
    ef = np.asarray(trajectory(A.ef21(lr=0.05, compressor=C.identity()), noisy, topo, 15).x)
    ps = np.asarray(trajectory(A.cpsgd(lr=0.05, pattern="parameter_server"), noisy, topo, 15).x)
    np.testing.assert_allclose(ef, ps, rtol=0, atol=1e-6)
    assert np.abs(ef[-1] - ef[0]).max() > 1e-2


def test_ef21_with_top_k_converges_where_compressed_gradients_do_not(hetero):
    """Full gradients, top-k at 10%: EF21 goes to the optimum linearly; CSGD (no feedback) stays off."""
    tk = C.top_k(fraction=0.1)
    kw = dict(steps=1500, eval_every=500, seed=0, shard=False)
    ef = jg.simulate(hetero, A.ef21(lr=0.1, compressor=tk), **kw)
    cs = jg.simulate(hetero, A.csgd(lr=0.1, compressor=tk), **kw)
    assert float(ef.metrics["suboptimality"][-1]) < 1e-5 * float(ef.metrics["suboptimality"][0])
    assert float(cs.metrics["suboptimality"][-1]) > 1e3 * float(ef.metrics["suboptimality"][-1])
    # one compressed upload per worker, the model back in full precision
    per_step = N * (float(tk.bits(D)) + 32 * D)
    # (issue 22: step 0 uploads the full-precision gradient, g_i^0 = grad f_i(x^0), as the authors' experiments)
    first = 499 * per_step + N * (32 * D + 32 * D)
    np.testing.assert_allclose(np.diff(np.asarray(ef.metrics["bits"])), [first, 500 * per_step, 500 * per_step],
                               rtol=1e-6)


def test_beer_with_identity_and_unit_consensus_is_gradient_tracking(hetero):
    """From the authors' H^0 = G^0 = 0 (issue 22; before: H^0 = X^0, G^0 = C(V^0), and BEER was gradient tracking
    from step 0): step 0 is a local gradient step X^1 = X^0 - lr grad F(X^0) (nothing known about the neighbours yet),
    then BEER is gradient tracking started from X^1, step for step (exact gradients: the keys do not matter)."""
    topo = jg.topology.ring(N)
    X0 = 0.5 * jax.random.normal(jax.random.key(4), (N, D))
    beer = trajectory(A.beer(lr=0.05, compressor=C.identity(), consensus=1.0), hetero, topo, 15, X0=X0)
    np.testing.assert_allclose(np.asarray(beer.x[0]), np.asarray(X0 - 0.05 * hetero.full_grads(X0)), rtol=0,
                               atol=1e-6)
    gt = trajectory(A.gradient_tracking(lr=0.05), hetero, topo, 14, X0=beer.x[0])
    np.testing.assert_allclose(np.asarray(beer.x[1:]), np.asarray(gt.x), rtol=0, atol=2e-6)
    np.testing.assert_allclose(np.asarray(beer.h), np.asarray(beer.x), rtol=0, atol=1e-6)  # H = X after every step
    np.testing.assert_allclose(np.einsum("ij,tjd->tid", topo.W, np.asarray(beer.v[1:])), np.asarray(gt.wy), rtol=0,
                               atol=2e-6)  # BEER's V^t is the tracker Y_{t-1} of the tracking started at X^1


def test_beer_with_top_k_converges_linearly_where_choco_levels_off(hetero):
    topo = lazy_ring(N)
    tk = C.top_k(fraction=0.1)
    kw = dict(steps=2000, eval_every=500, seed=0, shard=False)
    beer = jg.simulate(hetero, A.beer(lr=0.05, compressor=tk, consensus=0.2), topo, **kw)
    choco = jg.simulate(hetero, A.choco_sgd(lr=0.05, compressor=tk, consensus=0.2), topo, **kw)
    b, c = np.asarray(beer.metrics["suboptimality"]), np.asarray(choco.metrics["suboptimality"])
    assert b[-1] < 1e-5 * b[0], b
    assert c[-1] > 0.9 * c[-2] and c[-1] > 1e3 * max(b[-1], 1e-9), c
    # two compressed messages per step against CHOCO's one, but one at step 0 (G^0 = 0 is not sent; issue 22)
    np.testing.assert_allclose(float(beer.metrics["bits"][-1]), (2 - 1 / 2000) * float(choco.metrics["bits"][-1]),
                               rtol=1e-6)


def test_compile_once_and_errors(hetero):
    topo = lazy_ring(N)
    kw = dict(steps=20, eval_every=10, shard=False)
    before = TRACE_COUNT["chunk"]
    for lr, g, k in ((0.01, 0.5, 0.1), (0.02, 0.3, 0.2)):
        jg.simulate(hetero, A.beer(lr=lr, compressor=C.top_k(fraction=k), consensus=g), topo, **kw)
    assert TRACE_COUNT["chunk"] - before == 1
    before = TRACE_COUNT["chunk"]
    for lr in (0.01, 0.02):
        jg.simulate(hetero, A.ef21(lr=lr, compressor=C.top_k(fraction=0.1)), **kw)
    assert TRACE_COUNT["chunk"] - before == 1
    with pytest.raises(ValueError, match="compressor must be"):
        A.beer(lr=0.1)
    with pytest.raises(ValueError, match="consensus"):
        A.beer(lr=0.1, compressor=C.identity(), consensus=1.5)
    with pytest.raises(ValueError, match="compressor must be"):
        A.ef21(lr=0.1)


def test_same_numbers_on_one_device_or_eight():
    """The worker axis sharded over the 8 fake CPU devices gives the single-device run (DESIGN: keys per worker)."""
    if len(jax.devices()) < 8:
        pytest.skip("needs the 8 fake CPU devices of conftest.py")
    n = 8
    prob = jg.problems.quadratic(n_workers=n, dim=D, samples_per_worker=8, batch_size=2, heterogeneity=2.0, seed=1)
    topo = lazy_ring(n)
    tk = C.top_k(fraction=0.2)
    for algo in (A.beer(lr=0.05, compressor=tk, consensus=0.3),):  # two compressors' keys, two rounds
        kw = dict(steps=20, eval_every=10, seed=5)
        one = jg.simulate(prob, algo, topo, shard=False, **kw)
        eight = jg.simulate(prob, algo, topo, shard=True, **kw)
        np.testing.assert_allclose(np.asarray(eight.metrics["loss"]), np.asarray(one.metrics["loss"]), rtol=1e-5,
                                   err_msg=algo.name)
