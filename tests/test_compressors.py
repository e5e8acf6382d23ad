"""Compressor family: unbiasedness, variance and contraction bounds, honest bit counts, errors, tracing, vmap.

Statistical checks draw N keys from a fixed seed and allow 5 standard errors; each compiled sampler is reused for
several assertions to keep the file fast.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgossip import compressors as C

N = 20000
X = jnp.array([0.9, -1.7, 0.31, 2.2, -0.05, 0.0, 1.1, -0.6, 0.45, -2.5, 0.7, 1.6], jnp.float32)  # d = 12, one zero
D = X.shape[0]


def _norm2(v):
    return float(jnp.sum(v * v))


@jax.jit
def _draw(comp, x, seed):
    keys = jax.random.split(jax.random.key(seed), N)
    return jax.vmap(lambda k: comp.compress(k, x))(keys)


def _samples(comp, x=X, seed=0):
    return np.asarray(_draw(comp, x, seed), np.float64)


def _stochastic_round_var(u):
    """Exact variance (in level units) of rounding u at random to floor(u) or floor(u) + 1."""
    f = u - np.floor(u)
    return f * (1 - f)


# ---- expected squared errors, computed by hand from each compressor's definition ------------------------------------
def _mse_quantize(x, bits):
    x = np.asarray(x, np.float64)
    step = (x.max() - x.min()) / (2**bits - 1)
    return float(np.sum(_stochastic_round_var((x - x.min()) / step)) * step**2), step**2 / 4 * x.size


def _mse_qsgd(x, s):
    x = np.asarray(x, np.float64)
    nrm = np.linalg.norm(x)
    exact = float(np.sum(_stochastic_round_var(np.abs(x) / nrm * s)) * (nrm / s) ** 2)
    return exact, min(x.size / s**2, math.sqrt(x.size) / s) * nrm**2


def _mse_low_precision(x, eta):
    x = np.asarray(x, np.float64)
    return float(np.sum(_stochastic_round_var(x / eta)) * eta**2), eta**2 / 4 * x.size


def _mse_terngrad(x):
    x = np.asarray(x, np.float64)
    exact = float(np.abs(x).max() * np.abs(x).sum() - np.sum(x * x))
    return exact, exact


def _mse_scaled(factor):
    exact = factor * _norm2(X)
    return lambda x: (exact, exact)


UNBIASED = [
    ("identity", C.identity(), lambda x: (0.0, 0.0)),
    ("quantize4", C.quantize(bits=4), lambda x: _mse_quantize(x, 4)),
    ("quantize2_bucket5", C.quantize(bits=2, bucket=5), None),
    ("qsgd4", C.qsgd(levels=4), lambda x: _mse_qsgd(x, 4)),
    ("qsgd1", C.qsgd(levels=1), lambda x: _mse_qsgd(x, 1)),
    ("qsgd2_bucket5", C.qsgd(levels=2, bucket=5), None),
    ("sparsify0.3", C.sparsify(p=0.3), _mse_scaled(1 / 0.3 - 1)),
    ("random_k3", C.random_k(k=3), _mse_scaled(D / 3 - 1)),
    ("random_k_frac", C.random_k(fraction=0.25), _mse_scaled(D / 3 - 1)),
    ("terngrad", C.terngrad(), _mse_terngrad),
    ("terngrad_bucket5", C.terngrad(bucket=5), None),
    ("low_precision", C.low_precision(scale=0.25, bits=5), lambda x: _mse_low_precision(x, 0.25)),
]


@pytest.mark.parametrize("name,comp,mse", UNBIASED, ids=[u[0] for u in UNBIASED])
def test_unbiased_mean_and_variance(name, comp, mse):
    """Mean over N keys within 5 standard errors of x; E||C(x) - x||^2 equals its hand formula and meets its bound."""
    assert comp.unbiased
    s = _samples(comp)
    x = np.asarray(X, np.float64)
    mean, sd = s.mean(0), s.std(0)
    assert np.all(np.abs(mean - x) <= 5 * sd / math.sqrt(N) + 1e-5 * (1 + np.abs(x))), (mean, x)
    if mse is None:
        return
    err = np.sum((s - x) ** 2, axis=1)
    exact, bound = mse(X)
    se = err.std() / math.sqrt(N)
    assert abs(err.mean() - exact) <= 5 * se + 1e-6 * (1 + exact), (err.mean(), exact)
    assert exact <= bound * (1 + 1e-9) + 1e-12


BIASED = [
    ("top_k", C.top_k(k=3)),
    ("random_k_unscaled", C.random_k(k=3, scaled=False)),
    ("sign", C.sign()),
    ("sign_norm", C.sign(scale="norm")),
    ("clip_low_bits", C.clip_low_bits(low_bits=20)),
]


@pytest.mark.parametrize("name,comp", BIASED, ids=[b[0] for b in BIASED])
def test_biased_flag_is_honest(name, comp):
    """Compressors flagged biased really are: the mean over N keys misses x by far more than its standard error."""
    assert not comp.unbiased
    s = _samples(comp)
    gap = np.abs(s.mean(0) - np.asarray(X, np.float64)) - 10 * s.std(0) / math.sqrt(N)
    assert gap.max() > 0.01


def test_random_k_unscaled_is_contraction_in_expectation():
    s = _samples(C.random_k(k=3, scaled=False))
    err = np.sum((s - np.asarray(X, np.float64)) ** 2, axis=1)
    assert abs(err.mean() - (1 - 3 / D) * _norm2(X)) <= 5 * err.std() / math.sqrt(N)
    np.testing.assert_allclose(s.mean(0), 3 / D * np.asarray(X), atol=5 * s.std(0).max() / math.sqrt(N))


def test_quantize_per_coordinate_variance_bound_with_buckets():
    """Survey eq. 3.1, per bucket: each value's variance is at most (bucket width / (2^b - 1))^2 / 4."""
    s = _samples(C.quantize(bits=2, bucket=5))
    x = np.asarray(X, np.float64)
    for start in range(0, D, 5):
        v = x[start:start + 5]
        bound = ((v.max() - v.min()) / 3) ** 2 / 4
        var = s[:, start:start + 5].var(0)
        assert np.all(var <= bound * (1 + 5 * math.sqrt(2 / N)) + 1e-12)


def test_qsgd_bucket_variance_bound():
    """Lemma 3.1 of QSGD per bucket (d = bucket size)."""
    s = _samples(C.qsgd(levels=2, bucket=5))
    x = np.asarray(X, np.float64)
    for start in range(0, D, 5):
        v = x[start:start + 5]
        err = np.sum((s[:, start:start + 5] - v) ** 2, axis=1)
        exact, bound = _mse_qsgd(v, 2)
        assert abs(err.mean() - exact) <= 5 * err.std() / math.sqrt(N) + 1e-9
        assert exact <= bound


# ---- deterministic contraction bounds -------------------------------------------------------------------------------
def _random_vectors(m=300, d=40, seed=1):
    """Gaussian, heavy-tailed (Cauchy) and sparse rows, plus one row of +-1 ties: (3m + 1, d)."""
    rng = np.random.default_rng(seed)
    gauss = rng.standard_normal((m, d))
    heavy = rng.standard_cauchy((m, d))
    sparse = rng.standard_normal((m, d)) * (rng.random((m, d)) < 0.1)
    ties = np.tile([1.0, -1.0], (1, d // 2))
    return jnp.asarray(np.concatenate([gauss, heavy, sparse, ties]), jnp.float32)


@jax.jit
def _apply_rows(comp, V):
    """The compressor applied to each row of V (deterministic compressors: one fixed key)."""
    return jax.vmap(lambda v: comp.compress(jax.random.key(0), v))(V)


def test_top_k_contraction_and_count():
    V = _random_vectors()
    d = V.shape[1]
    mag = jnp.abs(V)
    for k in (1, 7, 40):  # k is traced: one compiled program for the three
        out = _apply_rows(C.top_k(k=k), V)
        err = jnp.sum((out - V) ** 2, axis=1)
        assert bool(jnp.all(err <= (1 - k / d) * jnp.sum(V * V, axis=1) * (1 + 1e-6) + 1e-6))
        kept = jnp.sum(out != 0, axis=1)
        assert bool(jnp.all(kept == jnp.minimum(k, jnp.sum(V != 0, axis=1))))
        # the kept values are the largest: the smallest kept magnitude >= the largest dropped one
        kept_min = jnp.min(jnp.where(out != 0, mag, jnp.inf), axis=1)
        dropped_max = jnp.max(jnp.where(out == 0, mag, 0.0), axis=1)
        assert bool(jnp.all(kept_min >= dropped_max))
        assert bool(jnp.all((out == V) | (out == 0)))
    tie = _apply_rows(C.top_k(k=3), jnp.ones((1, 8)))
    np.testing.assert_array_equal(tie[0], [1, 1, 1, 0, 0, 0, 0, 0])  # ties: exactly k, lowest indices first


def test_sign_contraction_and_norm_variant():
    V = _random_vectors()
    d = V.shape[1]
    out = _apply_rows(C.sign(), V)
    sq = jnp.sum(V * V, axis=1)
    l1 = jnp.sum(jnp.abs(V), axis=1)
    err = jnp.sum((out - V) ** 2, axis=1)
    np.testing.assert_allclose(err, sq - l1**2 / d, rtol=1e-4, atol=1e-4)
    assert bool(jnp.all(err <= (1 - 1 / d) * sq * (1 + 1e-5)))
    np.testing.assert_allclose(jnp.abs(out), jnp.broadcast_to((l1 / d)[:, None], V.shape), rtol=1e-5)
    out_n = _apply_rows(C.sign(scale="norm"), V)
    np.testing.assert_allclose(jnp.sum(out_n**2, axis=1), sq, rtol=1e-4)
    assert bool(jnp.all(jnp.where(V != 0, jnp.sign(out_n) == jnp.sign(V), True)))


def test_sign_buckets_use_their_own_scale():
    x = jnp.arange(1.0, 8.0) * jnp.array([1, -1, 1, -1, 1, -1, 1.0])  # d = 7, buckets of 3: sizes 3, 3, 1
    out = C.sign(bucket=3).compress(jax.random.key(0), x)
    np.testing.assert_allclose(jnp.abs(out), [2, 2, 2, 5, 5, 5, 7], rtol=1e-6)
    assert bool(jnp.all(jnp.sign(out) == jnp.sign(x)))


def test_clip_low_bits_error_bound_and_zeroed_bits():
    V = _random_vectors().reshape(-1)
    for k in (0, 8, 16, 23):
        out = C.clip_low_bits(low_bits=k).compress(jax.random.key(0), V)
        word = jax.lax.bitcast_convert_type(out, jnp.uint32)
        assert bool(jnp.all(word & jnp.uint32((1 << k) - 1) == 0))
        assert bool(jnp.all(jnp.abs(out) <= jnp.abs(V)))
        assert bool(jnp.all(jnp.abs(out - V) <= 2.0 ** (k - 23) * jnp.abs(V)))
        if k == 0:
            assert bool(jnp.all(out == V))
    np.testing.assert_allclose(C.clip_low_bits(low_bits=16).compress(None, jnp.array([1.23456])), [1.234375])


def test_low_precision_grid_and_saturation():
    comp = C.low_precision(scale=0.5, bits=3)  # grid {-2, -1.5, ..., 1.5}
    x = jnp.array([-7.0, -2.0, -0.3, 0.0, 0.74, 1.5, 1.6, 9.0])
    s = np.asarray(_draw(comp, x, 3))
    idx = s / 0.5
    assert np.all(idx == np.round(idx)) and idx.min() >= -4 and idx.max() <= 3
    np.testing.assert_array_equal(s[:, [0, 1, 7]], np.broadcast_to([-2.0, -2.0, 1.5], (N, 3)))
    np.testing.assert_array_equal(s[:, 6], 1.5)  # saturated: the only bias
    np.testing.assert_allclose(s[:, 2:6].mean(0), [-0.3, 0.0, 0.74, 1.5], atol=5 * 0.25 / math.sqrt(N))


# ---- honest bit counts ----------------------------------------------------------------------------------------------
BITS_100 = [  # hand counts for d = 100 (ceil(log2 100) = 7 index bits; float32 = 32)
    (C.identity(), 3200),
    (C.quantize(bits=4), 100 * 4 + 2 * 32),
    (C.quantize(bits=4, bucket=30), 100 * 4 + 4 * 2 * 32),
    (C.qsgd(levels=4), 100 * (1 + 3) + 32),  # sign + level in {0..4} (3 bits) + one norm
    (C.qsgd(levels=3), 100 * (1 + 2) + 32),
    (C.qsgd(levels=1), 100 * (1 + 1) + 32),
    (C.qsgd(levels=4, bucket=25), 100 * 4 + 4 * 32),
    (C.low_precision(scale=0.1, bits=8), 800),
    (C.sparsify(p=0.1), 10 * (32 + 7)),  # expected: 10 values and their indices
    (C.random_k(k=10), 10 * (32 + 7)),
    (C.random_k(k=10, scaled=False), 10 * (32 + 7)),
    (C.random_k(fraction=0.1), 10 * (32 + 7)),
    (C.top_k(k=10), 10 * (32 + 7)),
    (C.top_k(fraction=0.1), 10 * (32 + 7)),
    (C.sign(), 100 + 32),
    (C.sign(scale="norm", bucket=30), 100 + 4 * 32),
    (C.terngrad(), 2 * 100 + 32),
    (C.terngrad(bucket=50), 2 * 100 + 2 * 32),
    (C.clip_low_bits(low_bits=16), 100 * 16),
    (C.with_error_feedback(C.top_k(k=10)), 10 * (32 + 7)),
]


@pytest.mark.parametrize("comp,bits", BITS_100, ids=[repr(b[0]) for b in BITS_100])
def test_bits_match_hand_count(comp, bits):
    assert float(comp.bits(100)) == bits
    assert float(jax.jit(lambda c: c.bits(100))(comp)) == bits


def test_messages_fit_their_bit_counts():
    """What is decoded can be written in the counted bits: values lie on 2^b knobs, s + 1 levels, {-s, 0, s}, ..."""
    x = np.asarray(X, np.float64)
    q = _samples(C.quantize(bits=3))
    knob = (q - x.min()) / ((x.max() - x.min()) / 7)
    assert np.allclose(knob, np.round(knob), atol=1e-3) and knob.min() > -1e-3 and knob.max() < 7 + 1e-3
    g = _samples(C.qsgd(levels=5))
    level = np.abs(g) / np.linalg.norm(x) * 5
    assert np.allclose(level, np.round(level), atol=1e-3) and level.max() < 5 + 1e-3
    t = _samples(C.terngrad())
    assert set(np.unique(np.round(t, 5))) <= {-2.5, 0.0, 2.5}
    for comp, k in ((C.random_k(k=4), 4), (C.top_k(k=4), 4)):
        nz = (_samples(comp) != 0).sum(1)
        assert nz.max() <= k  # X has one zero, so a random-k message may decode to k - 1 nonzeros
        assert np.all((_samples(comp, X + 10.0) != 0).sum(1) == k)  # no zeros in x: exactly k values sent
    nz = (_samples(C.sparsify(p=0.25)) != 0).sum(1)
    assert abs(nz.mean() - 0.25 * (D - 1)) < 5 * nz.std() / math.sqrt(N)


# ---- bad parameters -------------------------------------------------------------------------------------------------
BAD = [
    (lambda: C.quantize(bits=0), "bits"),
    (lambda: C.quantize(bits=33), "bits"),
    (lambda: C.low_precision(scale=0.1, bits=0), "bits"),
    (lambda: C.low_precision(scale=0.1, bits=33), "bits"),
    (lambda: C.low_precision(scale=0.1, bits=2.5), "bits"),
    (lambda: C.low_precision(scale=-0.1, bits=8), "scale"),
    (lambda: C.low_precision(scale=0.0, bits=8), "scale"),
    (lambda: C.qsgd(levels=0), "levels"),
    (lambda: C.qsgd(levels=1.5), "levels"),
    (lambda: C.qsgd(levels=4, bucket=0), "bucket"),
    (lambda: C.sparsify(p=0.0), "p"),
    (lambda: C.sparsify(p=1.5), "p"),
    (lambda: C.sparsify(p=-0.2), "p"),
    (lambda: C.random_k(k=0), "k"),
    (lambda: C.random_k(k=11, d=10), "k"),
    (lambda: C.random_k(k=2.5), "k"),
    (lambda: C.random_k(k=3, fraction=0.5), "exactly one"),
    (lambda: C.random_k(k=3, scaled="yes"), "scaled"),
    (lambda: C.top_k(), "exactly one"),
    (lambda: C.top_k(k=11, d=10), "k"),
    (lambda: C.top_k(fraction=0.0), "fraction"),
    (lambda: C.top_k(fraction=1.5), "fraction"),
    (lambda: C.top_k(k=13).compress(jax.random.key(0), X), "k"),
    (lambda: C.random_k(k=13).compress(jax.random.key(0), X), "k"),
    (lambda: C.top_k(k=101).bits(100), "k"),
    (lambda: C.sign(scale="l2"), "scale"),
    (lambda: C.sign(bucket=2.5), "bucket"),
    (lambda: C.terngrad(bucket=-1), "bucket"),
    (lambda: C.clip_low_bits(low_bits=-1), "low_bits"),
    (lambda: C.clip_low_bits(low_bits=24), "low_bits"),
    (lambda: C.with_error_feedback(3.0), "compressor"),
    (lambda: C.with_error_feedback(C.with_error_feedback(C.sign())), "compressor"),
    (lambda: C.get("nope"), "compressor"),
]


@pytest.mark.parametrize("make,word", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_parameters_raise(make, word):
    with pytest.raises(ValueError, match=word):
        make()


# ---- traced parameters: no recompile, vmap over a stack -------------------------------------------------------------
SWEEPS = [
    (C.quantize, "bits", [2, 6]),
    (C.qsgd, "levels", [2, 9]),
    (C.low_precision, "bits", [3, 7]),
    (lambda **kw: C.low_precision(bits=6, **kw), "scale", [0.1, 0.4]),
    (C.sparsify, "p", [0.2, 0.9]),
    (C.random_k, "k", [2, 7]),
    (C.random_k, "fraction", [0.2, 0.7]),
    (C.top_k, "k", [1, 5]),
    (C.top_k, "fraction", [0.2, 0.7]),
    (C.clip_low_bits, "low_bits", [4, 20]),
]


@pytest.mark.parametrize("make,arg,values", SWEEPS, ids=[f"{s[1]}-{i}" for i, s in enumerate(SWEEPS)])
def test_traced_param_no_recompile_and_vmap(make, arg, values):
    traces = []

    @jax.jit
    def run(comp, key, x):
        traces.append(1)
        return comp.compress(key, x), comp.bits(x.size)

    comps = [make(**{arg: v}) for v in values]
    key = jax.random.key(7)
    singles = [run(c, key, X) for c in comps]
    assert len(traces) == 1
    assert float(singles[0][1]) != float(singles[1][1]) or arg in ("scale", "p")  # p: bits are expected bits (differ too)
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *comps)
    outs, bits = jax.vmap(lambda c: (c.compress(key, X), c.bits(D)))(stacked)
    for i, (out, b) in enumerate(singles):
        np.testing.assert_allclose(outs[i], out, rtol=1e-5, atol=1e-6)
        assert float(bits[i]) == float(b)


# ---- error feedback -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("inner", [C.sign(), C.top_k(k=2), C.qsgd(levels=8)], ids=["sign", "top_k", "qsgd"])
def test_error_feedback_telescopes(inner):
    """sum_t C(x_t + e_t) = sum_t x_t - e_T (e_0 = 0), and the error stays bounded for a contraction.

    (qsgd with 8 levels on d = 12 has E||C(x) - x||^2 <= 0.19 ||x||^2, a contraction in expectation; with 1 level it
    is not, and error feedback around it blows up, as the theory says.)
    """
    ef = C.with_error_feedback(inner)
    xs = jax.random.normal(jax.random.key(3), (200, 3, D))  # 200 steps, 3 workers

    @jax.jit
    def run(ef, xs):
        def body(E, inp):
            t, Xt = inp
            Xhat, E = ef.compress_rows(jax.random.fold_in(jax.random.key(0), t), Xt, E)
            return E, (Xhat, jnp.max(jnp.sum(E * E, axis=1)))

        return jax.lax.scan(body, ef.init_rows(xs[0]), (jnp.arange(xs.shape[0]), xs))

    E, (sent, err) = run(ef, xs)
    np.testing.assert_allclose(sent.sum(0), xs.sum(0) - E, rtol=1e-4, atol=1e-3)
    assert float(err.max()) < 50 * D  # x_t has E||x||^2 = d; a contraction keeps e_t of that order, not growing in t
    assert float(ef.bits(D)) == float(inner.bits(D)) and not ef.unbiased


def test_error_feedback_first_step_and_identity():
    key = jax.random.key(5)
    Xs = jax.random.normal(jax.random.key(6), (4, D))
    inner = C.top_k(k=3)
    ef = C.with_error_feedback(inner)
    Xhat, E = ef.compress_rows(key, Xs, ef.init_rows(Xs))
    np.testing.assert_array_equal(Xhat, C.compress_rows(inner, key, Xs))  # same per-worker keys as compress_rows
    np.testing.assert_array_equal(E, Xs - Xhat)
    idt = C.with_error_feedback(C.identity())
    assert idt.init((4, D)).shape == (4, D) and idt.init_rows(Xs).shape == Xs.shape
    x_hat, e = idt.compress(key, Xs[0], idt.init(Xs[0]))
    np.testing.assert_array_equal(x_hat, Xs[0])
    assert not bool(jnp.any(e))
    assert "top_k" in repr(ef) and ef.name == "ef_top_k"


def test_registry_builds_every_compressor():
    kwargs = {"random_k": {"k": 2}, "top_k": {"k": 2}}
    run = jax.jit(lambda c: (c.compress(jax.random.key(0), X), c.bits(D)))
    for name in C.REGISTRY:
        comp = C.get(name, **kwargs.get(name, {}))
        assert isinstance(comp, C.Compressor)
        out, bits = run(comp)
        assert out.shape == X.shape and bool(jnp.all(jnp.isfinite(out))) and float(bits) > 0
        assert not bool(jnp.any(comp.compress(jax.random.key(1), jnp.zeros(D))))  # 0 -> 0, no NaN from 0 / 0


def test_error_feedback_is_a_building_block_not_a_listed_compressor():
    """Every algorithm rejects an ErrorFeedback as its compressor, so it is not offered as one (REGISTRY, `list`)."""
    assert "with_error_feedback" not in C.REGISTRY
    with pytest.raises(ValueError, match="compressor"):
        C.get("with_error_feedback", compressor=C.sign())
    ef = C.with_error_feedback(C.sign())
    assert not isinstance(ef, C.Compressor) and isinstance(ef, C.ErrorFeedback)
    assert "with_error_feedback" in C.__all__  # still public, as the combinator the EC algorithms are built from


# ---- integer bits only ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda: C.quantize(bits=2.5), lambda: C.quantize(bits=3.999), lambda: C.quantize(bits=np.nan),
                                  lambda: C.quantize(bits=True), lambda: C.quantize(bits="4"),
                                  lambda: C.low_precision(bits=7.5), lambda: C.low_precision(bits=np.inf)])
def test_fractional_or_non_numeric_bits_are_refused(make):
    """2.5 bits per value: 2^2.5 - 1 knobs is no whole number, so the decoded values were neither 2^2.5 nor <= max x."""
    with pytest.raises(ValueError, match="bits"):
        make()


@pytest.mark.parametrize("make", [lambda: C.qsgd(levels=2.5), lambda: C.qsgd(levels=np.nan), lambda: C.qsgd(levels=True)])
def test_fractional_levels_are_refused(make):
    with pytest.raises(ValueError, match="levels"):
        make()


def test_integral_float_bits_are_fine_and_traced_bits_stay_traced():
    assert float(C.quantize(bits=4.0).bits(100)) == float(C.quantize(bits=4).bits(100)) == 4 * 100 + 64
    assert float(C.quantize(bits=np.int64(3)).bits(10)) == 3 * 10 + 64
    bits = jax.jit(lambda b: C.quantize(bits=b).bits(100))(jnp.float32(6.0))  # a sweep's traced value: no check
    assert float(bits) == 6 * 100 + 64


@pytest.mark.parametrize("b", [1, 2, 3, 5])
def test_quantized_values_are_2_to_the_b_knobs_within_min_and_max(b):
    x = jax.random.normal(jax.random.key(3), (200,))
    q = np.asarray(jax.vmap(lambda k: C.quantize(bits=b).compress(k, x))(jax.random.split(jax.random.key(4), 50)))
    assert len(np.unique(q)) <= 2**b
    ulps = 4e-7 * float(jnp.max(jnp.abs(x)))  # the top knob lo + L (hi - lo) / L rounds within an ulp or two of hi
    assert q.min() >= float(x.min()) - ulps and q.max() <= float(x.max()) + ulps


# ---- Compressor.check(d): can this compressor act on a d-vector? ------------------------------------------------------
@pytest.mark.parametrize("comp", [C.top_k(k=1000), C.random_k(k=1000), C.random_k(k=1000, scaled=False)],
                         ids=["top_k", "random_k", "random_k_unscaled"])
def test_check_refuses_k_above_d(comp):
    """top_k(k=1000) on d = 650 ran inside simulate and counted 1000 x 42 bits per message; check(650) refuses it."""
    with pytest.raises(ValueError, match=r"k must satisfy 1 <= k <= d = 650, got k=1000"):
        comp.check(650)
    assert comp.check(1000) is comp


@pytest.mark.parametrize("d", [0, -3, 2.5, "650", True, None])
def test_check_refuses_a_length_that_is_no_positive_integer(d):
    with pytest.raises(ValueError, match="vector length d"):
        C.quantize(bits=4).check(d)


def test_check_passes_every_compressor_that_can_act():
    comps = [C.get(name, **({"k": 2} if name in ("random_k", "top_k") else {})) for name in C.REGISTRY]
    comps += [C.top_k(fraction=0.5), C.random_k(fraction=1.0), C.quantize(bits=4, bucket=1000), C.sign(bucket=64)]
    for comp in comps:
        for d in (2, 650, np.int64(7)):
            assert comp.check(d) is comp
    assert C.top_k(fraction=0.01).check(1) is not None  # k = max(1, round(fraction d)) <= d for every d


def test_error_feedback_checks_its_compressor():
    with pytest.raises(ValueError, match="k must satisfy"):
        C.with_error_feedback(C.top_k(k=10)).check(5)
    ef = C.with_error_feedback(C.top_k(k=10))
    assert ef.check(10) is ef


# ---- bounded: the radius is enforced, so bits(d) is what a message costs ---------------------------------------------
def test_bounded_enforces_its_radius_so_its_bit_count_is_honest():
    """||x|| = 5, radius 1, d = 40: bits(40) was the count for the unit ball while x needs more; now x is scaled onto
    the ball the code is sized for, so the decoded message lies in it (up to e) and costs no more than bits(d)."""
    from jaxgossip.compressors.bounded import bits_for

    e, M, d = 0.05, 1.0, 40
    x = jax.random.normal(jax.random.key(0), (d,))
    x = 5.0 * x / jnp.linalg.norm(x)
    for randomized in (False, True):
        comp = C.bounded(e=e, radius=M, randomized=randomized)
        q = comp.compress(jax.random.key(1), x)
        assert float(jnp.linalg.norm(q)) <= M + e * (1 + 1e-6)
        assert float(jnp.linalg.norm(q - x)) <= float(jnp.linalg.norm(x)) - M + e * (1 + 1e-6)
        sent = x * (M / jnp.linalg.norm(x))  # the vector the message encodes
        assert float(bits_for(sent, e / 2 if randomized else e)) <= float(comp.bits(d))
        assert float(bits_for(x, e)) > float(C.bounded(e=e, radius=M).bits(d))  # x itself would not fit
    inside = 0.5 * x / 5.0  # ||inside|| = 0.5 <= M: unchanged behaviour, error <= e
    q = C.bounded(e=e, radius=M).compress(jax.random.key(1), inside)
    assert float(jnp.linalg.norm(q - inside)) <= e * (1 + 1e-6)
    assert not bool(jnp.any(C.bounded(e=e, radius=M).compress(jax.random.key(1), jnp.zeros(d))))  # 0 -> 0


def test_bounded_radius_stays_traced():
    x = jnp.full((16,), 3.0)  # ||x|| = 12
    out = jax.jit(lambda r: C.bounded(e=0.01, radius=r).compress(jax.random.key(0), x))(jnp.float32(2.0))
    assert float(jnp.linalg.norm(out)) == pytest.approx(2.0, abs=0.011)
