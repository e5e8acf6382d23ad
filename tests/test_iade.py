"""IADE / AIADE / IADE-SGD (Ye, Xiao, Sun 2020) and the bounded-error encoder: rates vs theory, bits, errors."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgossip as jg
from jaxgossip.compressors.bounded import bits_for, encode, encode_random, lower_bound

STEPS = 1500
KAPPAS = (10.0, 30.0, 100.0, 1000.0)


# ---- the encoder -------------------------------------------------------------------------------------------------------
def test_bounded_error_within_radius_for_traced_radii():
    key = jax.random.key(0)
    V = jax.random.normal(key, (64, 17)) * jnp.logspace(-3, 2, 64)[:, None]
    radii = jnp.logspace(-4, 1, 64)
    Q = jax.jit(jax.vmap(encode))(V, radii)  # one compile, the radius traced per row
    err = jnp.linalg.norm(Q - V, axis=1)
    assert bool(jnp.all(err <= radii * (1 + 1e-5)))
    Qr = jax.vmap(encode_random)(jax.random.split(key, 64), V, radii)
    assert bool(jnp.all(jnp.linalg.norm(Qr - V, axis=1) <= radii * (1 + 1e-5)))
    x = V[40]
    comp = jg.compressors.bounded(e=0.05, radius=float(jnp.linalg.norm(x)))  # the compressor enforces its radius
    assert float(jnp.linalg.norm(comp.compress(key, x) - x)) <= 0.05 * (1 + 1e-6)


def test_randomized_encoder_is_unbiased():
    v = jnp.array([0.3, -1.7, 2.2, 0.05])
    keys = jax.random.split(jax.random.key(1), 8000)
    Q = jax.vmap(encode_random, (0, None, None))(keys, v, 0.5)
    h = 0.5 / 2.0  # grid step e / sqrt(d)
    se = h / 2 / np.sqrt(8000)  # rounding std <= h / 2
    assert np.all(np.abs(np.asarray(Q.mean(axis=0) - v)) < 5 * se)


@pytest.mark.parametrize("d", [2, 3])
def test_bit_count_covers_every_codeword_and_exceeds_lower_bound(d):
    """Count the grid points Q can output for ||v|| <= M exactly (small d): log2(count) <= Lemma 2.1's bits."""
    e = 1.0
    h = 2 * e / np.sqrt(d)
    for M in (0.5, 3.0, 20.0):
        r = int(np.ceil((M + e) / h)) + 1
        pts = np.array(list(itertools.product(range(-r, r + 1), repeat=d))) * h
        count = np.sum(np.linalg.norm(pts, axis=1) <= M + e)
        v = jnp.zeros(d).at[0].set(M)
        bits = float(bits_for(v, e)) - 32  # without the radius header
        assert np.log2(count) <= bits
        assert bits >= float(lower_bound(d, M, e))
        # and the gap to the lower bound is Lemma 2.1's: 1.05 d + d log2(1 + 2 e / M) (+ rounding)
        assert bits - d * np.log2(M / e) <= 1.05 * d + d * np.log2(1 + 2 * e / M) + 1


def test_bounded_compressor_rejects_bad_radius():
    for e in (0.0, -1.0):
        with pytest.raises(ValueError, match="e must"):
            jg.compressors.bounded(e=e)
    assert "bounded" in jg.compressors.REGISTRY


# ---- the algorithms ----------------------------------------------------------------------------------------------------
def _quad(kappa, **kw):
    p = jg.problems.as_float64(jg.problems.quadratic(n_workers=4, dim=8, samples_per_worker=20,
                                                     condition_number=kappa, seed=0, **kw))
    return p, float(p.L), float(p.mu)


def _slope(dist, lo=1e-10, hi=1e-3):
    k = np.arange(len(dist))
    m = (dist > lo) & (dist < hi)
    return np.polyfit(k[m], np.log(dist[m]), 1)[0] if m.sum() >= 5 else np.nan


@pytest.fixture(scope="module")
def runs():
    """IADE and AIADE at several condition numbers: L, mu passed (traced) so each algorithm compiles once."""
    out = {}
    with jax.enable_x64(True):
        for kappa in KAPPAS:
            p, L, mu = _quad(kappa)
            blank = p.replace(L=None, mu=None)  # same static structure for every kappa
            for name, algo in (("iade", jg.algorithms.iade(L=L, mu=mu)), ("aiade", jg.algorithms.aiade(L=L, mu=mu))):
                r = jg.simulate(blank, algo, steps=STEPS, eval_every=1)
                out[name, kappa] = (L, mu, np.asarray(r.metrics["dist_to_opt"]), np.asarray(r.metrics["bits"]))
    return out


@pytest.mark.parametrize("kappa", KAPPAS[:3])
def test_iade_at_least_as_fast_as_c_prime(runs, kappa):
    L, mu, dist, _ = runs["iade", kappa]
    c = (L - mu) / (L + mu)
    c_prime = (1 + c) / 2
    slope = _slope(dist)
    assert slope <= 0.97 * np.log(c_prime), (slope, np.log(c_prime))
    # Thm. 3.1's bound itself, with s = 1
    xi = max(0.0, dist[0] - c / (c_prime - c)) + c_prime / (c_prime - c)
    k = np.arange(len(dist))
    ok = dist > 1e-12
    assert np.all(dist[ok] <= c_prime ** k[ok] * xi * (1 + 1e-9))


@pytest.mark.parametrize("kappa", KAPPAS)
def test_aiade_close_to_c_power_k(runs, kappa):
    L, mu, dist, _ = runs["aiade", kappa]
    log_c = 0.5 * np.log(1 - np.sqrt(mu / L))
    slope = _slope(dist)
    assert 0.95 * log_c >= slope >= 1.4 * log_c, (slope, log_c)


def test_aiade_beats_iade_for_large_kappa(runs):
    for kappa in (100.0, 1000.0):
        ia, ai = runs["iade", kappa][2], runs["aiade", kappa][2]
        k_ai = int(np.argmax(ai <= 1e-6))
        assert ai[k_ai] <= 1e-6 and ia[k_ai] > 100 * ai[k_ai]


@pytest.mark.parametrize("name", ["iade", "aiade"])
def test_bits_per_iteration_bounded_and_total_linear_in_log_eps(runs, name):
    for kappa in KAPPAS[:2] if name == "iade" else KAPPAS:  # IADE at kappa >= 100 needs more than STEPS to reach 1e-8
        _, _, dist, bits = runs[name, kappa]
        per = np.diff(bits)
        K = int(np.flatnonzero(dist[1:] > 1e-10)[-1]) + 1  # before float64 round-off dominates
        assert K > 40
        assert per[K // 2: K].max() <= 1.25 * per[1: K // 2].max()
        eps = 10.0 ** -np.arange(2, 9)
        ks = np.array([np.argmax(dist <= e) for e in eps])
        assert np.all(dist[ks] <= eps)
        total = bits[ks]
        fit = np.polyval(np.polyfit(np.log(1 / eps), total, 1), np.log(1 / eps))
        assert np.max(np.abs(fit - total)) <= 0.1 * total[-1]  # bits(eps) ~ a + b log(1/eps)


def test_constant_error_quantizer_stalls():
    with jax.enable_x64(True):
        p, L, mu = _quad(30.0)
        res = jg.simulate(p, jg.algorithms.star_qgd(e=1e-3), steps=600, eval_every=1)
    dist = np.asarray(res.metrics["dist_to_opt"])
    assert dist.min() > 1e-5  # never reaches small eps
    assert abs(dist[-1] - dist[300]) < 0.5 * dist[300]  # a floor, not a slow decrease


def test_iade_sgd_linear_under_interpolation():
    with jax.enable_x64(True):
        p, L, mu = _quad(4.0, noise=0.0, heterogeneity=0.0, batch_size=1)
        A = np.asarray(p.data_x).reshape(-1, p.d)
        rho = float((A ** 2).sum(axis=1).max()) / L  # rho L >= every sample's smoothness: WGC holds
        res = jg.simulate(p, jg.algorithms.iade_sgd(rho=rho), steps=1500, eval_every=1, seed=3)
    dist, bits = np.asarray(res.metrics["dist_to_opt"]), np.asarray(res.metrics["bits"])
    c = 1 - mu / (rho * L)
    c_prime = (1 + c) / 2
    slope = np.polyfit(np.arange(200, 1501), np.log(dist[200:]), 1)[0]
    assert slope <= 0.8 * 0.5 * np.log(c_prime)  # E||x - x*||^2 <= c'^k: the distance decays like c'^(k/2)
    per = np.diff(bits)
    assert per[750:].max() <= 1.25 * per[1:750].max()


def test_registered_and_star_kind():
    for name in ("iade", "aiade", "iade_sgd", "star_gd", "star_nesterov", "star_qgd"):
        algo = jg.algorithms.get(name)
        assert algo.kind == "star"


def test_bad_parameters_raise():
    with pytest.raises(ValueError, match="mu < L"):
        jg.algorithms.iade(L=1.0, mu=1.0)
    with pytest.raises(ValueError, match="mu < L"):
        jg.algorithms.aiade(L=1.0, mu=2.0)
    with pytest.raises(ValueError, match="c_prime"):  # c = 1 - 2 mu / (L + mu) = 0.818 for L=10, mu=1
        jg.algorithms.iade(L=10.0, mu=1.0, c_prime=0.5)
    with pytest.raises(ValueError, match="c_prime"):
        jg.algorithms.iade(c_prime=1.0)
    with pytest.raises(ValueError, match="eta"):
        jg.algorithms.iade(L=10.0, mu=1.0, eta=0.5)
    with pytest.raises(ValueError, match="s must"):
        jg.algorithms.iade(s=0.0)
    with pytest.raises(ValueError, match="e must"):
        jg.algorithms.aiade(e=-1.0)
    with pytest.raises(ValueError, match="rho"):
        jg.algorithms.iade_sgd(rho=0.5)
    # L and mu from the problem, checked before compiling
    p = jg.problems.quadratic(n_workers=4, dim=8, samples_per_worker=20, condition_number=10.0)
    with pytest.raises(ValueError, match="c_prime"):
        jg.simulate(p, jg.algorithms.iade(c_prime=0.1), steps=2)
    with pytest.raises(ValueError, match="L=... and mu="):
        jg.simulate(p.replace(L=None, mu=None), jg.algorithms.aiade(), steps=2)
