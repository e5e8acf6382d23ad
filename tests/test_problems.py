import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgossip as jg
from jaxgossip.problems import data as D


def test_quadratic_optimum_is_exact():
    p = jg.problems.quadratic(n_workers=4, dim=6, samples_per_worker=10, reg=0.1, seed=3)
    g = jax.grad(p.objective)(p.x_star)
    assert float(jnp.linalg.norm(g)) < 1e-5
    assert abs(float(p.objective(p.x_star)) - float(p.f_star)) < 1e-5
    assert p.mu <= p.L and p.mu >= 0.1 - 1e-9


def test_quadratic_without_optimum_skips_the_hessian_but_keeps_L():
    solved = jg.problems.quadratic(n_workers=4, dim=6, samples_per_worker=10, reg=0.1, seed=3)
    fast = jg.problems.quadratic(n_workers=4, dim=6, samples_per_worker=10, reg=0.1, seed=3, solve_optimum=False)
    assert fast.x_star is None and fast.f_star is None and fast.mu == pytest.approx(0.1)
    assert fast.L == pytest.approx(solved.L, rel=1e-9)
    np.testing.assert_array_equal(fast.data_x, solved.data_x)


def test_gram_top_eigenvalue_by_lanczos_matches_the_dense_one():
    from jaxgossip.problems.models import _gram_top_eigenvalue

    A = np.random.default_rng(0).standard_normal((1500, 1100)) * np.sqrt(np.logspace(0, -1, 1100))
    dense = np.linalg.eigvalsh(A.T @ A / len(A)).max()
    assert _gram_top_eigenvalue(A) == pytest.approx(dense, rel=1e-6)  # d > 1024: the Lanczos path


def test_full_and_stochastic_gradients_are_consistent():
    p = jg.problems.quadratic(n_workers=3, dim=5, samples_per_worker=8, batch_size=8, seed=0)
    X = jax.random.normal(jax.random.key(0), (3, 5))
    full = p.full_grads(X)
    # the mean of many stochastic gradients approaches the full local gradient (sampling with replacement)
    keys = jax.random.split(jax.random.key(1), 3000)
    G = jax.vmap(lambda k: p.stochastic_grads(k, X)[0])(keys).mean(0)
    np.testing.assert_allclose(G, full, atol=0.08 * float(jnp.abs(full).max()))


def test_zero_samples_give_zero_gradient():
    p = jg.problems.logistic_regression("breast_cancer", n_workers=4, batch_size=5, solve_optimum=False)
    X = jnp.ones((4, p.d)) * 0.1
    G, _ = p.stochastic_grads(jax.random.key(0), X, sizes=jnp.array([0, 1, 5, 0]))
    assert float(jnp.abs(G[0]).max()) == 0 and float(jnp.abs(G[3]).max()) == 0
    assert float(jnp.abs(G[1]).max()) > 0


def test_logistic_optimum_and_constants():
    p = jg.problems.logistic_regression("breast_cancer", n_workers=4, batch_size=4, reg=1e-2)
    g = jax.grad(p.objective)(p.x_star)
    assert float(jnp.linalg.norm(g)) < 1e-4
    assert p.mu == pytest.approx(1e-2) and p.L > p.mu
    m = p.evaluate(jnp.tile(p.x_star, (4, 1)))
    assert float(m["suboptimality"]) < 1e-5 and 0.9 < float(m["accuracy"]) <= 1


def test_multinomial_digits_and_mlp_shapes():
    p = jg.problems.logistic_regression("digits", n_workers=8, batch_size=4, solve_optimum=False)
    assert p.d == 64 * 10 + 10 and p.classification
    m = jg.problems.mlp("digits", n_workers=8, hidden=(16,), batch_size=4)
    assert m.d == 64 * 16 + 16 + 16 * 10 + 10
    G, losses = m.stochastic_grads(jax.random.key(0), jnp.tile(m.x0, (8, 1)))
    assert G.shape == (8, m.d) and bool(jnp.all(jnp.isfinite(G)))


def test_logistic_model_is_features_times_weights_plus_bias():
    p = jg.problems.logistic_regression("digits", n_workers=8, batch_size=4, solve_optimum=False)
    X = np.asarray(p.data_x[0])
    assert X.shape[-1] == 65 and np.all(X[:, -1] == 1)  # 64 features, then the bias's constant feature
    x = np.asarray(jax.random.normal(jax.random.key(0), (p.d,)))
    W, b = x[: 64 * 10].reshape(64, 10), x[64 * 10 :]
    np.testing.assert_allclose(p.model(jnp.asarray(x), jnp.asarray(X)), X[:, :64] @ W + b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("how", ["iid", "label", "dirichlet"])
def test_partitions_cover_the_data(how):
    X, y, _, _ = D.load("digits", seed=0)
    sh = D.partition(X, y, 7, how, alpha=0.3, seed=1)
    Xs, ys, counts = sh
    assert counts.sum() == len(X) and (counts >= 1).all() and Xs.shape[:2] == (7, counts.max())
    seen = np.concatenate([ys[i, : counts[i]] for i in range(7)])
    assert np.array_equal(np.sort(seen), np.sort(y))
    if how == "label":
        assert np.mean([len(np.unique(ys[i, : counts[i]])) for i in range(7)]) < 4


def test_unequal_shares_are_weighted_per_worker():
    X = np.arange(10, dtype=np.float32)[:, None]
    y = np.arange(10) % 2
    p = jg.problems.logistic_regression((X, y, X[:0], y[:0]), n_workers=3, batch_size=1, solve_optimum=False)
    assert sorted(np.asarray(p.counts).tolist()) == [3, 3, 4]
    x = jnp.array([0.3, -0.1])
    loc = np.asarray(p.local_objectives(jnp.tile(x, (3, 1))))
    assert float(p.objective(x)) == pytest.approx(loc.mean(), rel=1e-6)


def test_user_arrays_and_synthetic():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] > 0).astype(int)
    p = jg.problems.logistic_regression((X, y), n_workers=4, batch_size=2)
    assert p.d == 4 and p.test_x.shape[0] == 40
    s = jg.problems.logistic_regression("synthetic", n_workers=4, batch_size=2, solve_optimum=False)
    assert s.d == 21


def test_bad_inputs():
    with pytest.raises(ValueError, match="batch_size=500 is larger than the smallest worker"):
        jg.problems.logistic_regression("digits", n_workers=16, batch_size=500, solve_optimum=False)
    with pytest.raises(ValueError, match="n_workers=50 is more than the 40 training samples"):
        jg.problems.logistic_regression((np.zeros((50, 2)), np.arange(50) % 2), n_workers=50, solve_optimum=False)
    with pytest.raises(ValueError, match="more than the"):
        D.partition(np.zeros((3, 1)), np.zeros(3), 5)
    with pytest.raises(ValueError, match="dataset must be one of"):
        jg.problems.logistic_regression("imagenet")
    with pytest.raises(ValueError, match="partition must be one of"):
        jg.problems.logistic_regression("digits", partition="weird")
    with pytest.raises(ValueError, match="problem must be one of"):
        jg.problems.get("svm")
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        jg.problems.quadratic(batch_size=0)


@pytest.mark.parametrize("noise", [0.0, 0.5])
def test_one_worker_gradient_is_its_row_of_the_stack(noise):
    p = jg.problems.quadratic(n_workers=5, dim=4, samples_per_worker=7, batch_size=3, seed=2, grad_noise=noise)
    X = jax.random.normal(jax.random.key(0), (5, 4))
    key = jax.random.key(9)
    G, _ = p.stochastic_grads(key, X)
    for i in range(5):
        np.testing.assert_array_equal(np.asarray(p.worker_grad(key, i, X[i])), np.asarray(G[i]))
    sizes = jnp.array([0, 1, 2, 3, 3])
    G, _ = p.stochastic_grads(key, X, sizes)
    np.testing.assert_array_equal(np.asarray(p.worker_grad(key, 1, X[1], size=1)), np.asarray(G[1]))
    assert float(jnp.abs(p.worker_grad(key, 0, X[0], size=0)).max()) == 0


def test_minibatches_stay_inside_each_share():
    """Dirichlet shares are padded to the largest; no draw lands on padding (here poisoned with NaN)."""
    p = jg.problems.logistic_regression("digits", n_workers=6, partition="dirichlet", alpha=0.2, batch_size=64,
                                        solve_optimum=False, seed=1)
    m = p.data_x.shape[1]
    assert int(p.counts.min()) < m
    pad = jnp.arange(m)[None, :] >= p.counts[:, None]
    p = p.replace(data_x=jnp.where(pad[:, :, None], jnp.nan, p.data_x))
    X = jnp.tile(p.x0, (p.n, 1))
    G = jax.vmap(lambda k: p.stochastic_grads(k, X)[0])(jax.random.split(jax.random.key(3), 200))
    assert bool(jnp.all(jnp.isfinite(G)))
