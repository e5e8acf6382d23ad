"""The compressed steps' cheaper form (issue 25): one variadic min/max reduction in the quantizer, and the compressor's
input stored once (``jg.algorithms.dcd.computed_once``), with the same numbers as before."""

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgossip as jg
from jaxgossip.algorithms.dcd import computed_once

quantize_mod = importlib.import_module("jaxgossip.compressors.quantize")


def _rows():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, 33)).astype(np.float32)
    X[1] = 0.0  # a constant row (width 0)
    X[2, 5] = np.nan
    X[3, 7], X[3, 8] = np.inf, -np.inf
    X[4] = -0.0
    X[5, :3] = 1e30
    return X


def test_min_max_matches_jnp_min_and_max():
    X = jnp.asarray(_rows())
    lo, hi = jax.jit(quantize_mod.min_max)(X)
    np.testing.assert_array_equal(np.asarray(lo), np.asarray(X.min(axis=1, keepdims=True)))
    np.testing.assert_array_equal(np.asarray(hi), np.asarray(X.max(axis=1, keepdims=True)))
    assert np.isnan(lo[2, 0]) and np.isnan(hi[2, 0])  # NaN propagates, as in jnp.min / jnp.max


def _primitives(jaxpr):
    """Every equation of a jaxpr and of the jaxprs nested in it (pjit, cond, ...)."""
    for eqn in jaxpr.eqns:
        yield eqn
        for p in eqn.params.values():
            inner = getattr(p, "jaxpr", None)
            if inner is not None and hasattr(inner, "eqns"):
                yield from _primitives(inner)


def test_quantizer_reads_its_input_in_one_reduction():
    """No separate reduce_min / reduce_max: one reduction with two outputs (the old code had two passes)."""
    comp = jg.compressors.quantize(bits=16)
    jaxpr = jax.make_jaxpr(comp.compress)(jax.random.key(0), jnp.ones(50))
    names = [e.primitive.name for e in _primitives(jaxpr.jaxpr)]
    assert "reduce_min" not in names and "reduce_max" not in names
    assert sum(1 for e in _primitives(jaxpr.jaxpr) if e.primitive.name == "reduce" and len(e.outvars) == 2) == 1


def _two_pass_quantize(key, x, bucket, bits):
    """The quantizer as it was written before (two reductions, jnp.pad always): the reference."""
    flat = x.reshape(-1)
    d = flat.shape[0]
    size = d if bucket is None else bucket
    v = jnp.pad(flat, (0, (-d) % size), mode="edge").reshape(-1, size)
    lo, hi = v.min(axis=1, keepdims=True), v.max(axis=1, keepdims=True)
    levels = jnp.exp2(jnp.asarray(bits, x.dtype)) - 1.0
    width = jnp.where(hi > lo, hi - lo, 1.0)
    u = (v - lo) / width * levels
    q = lo + quantize_mod._stochastic_round(key, u) * width / levels
    return q.reshape(-1)[:d].reshape(x.shape)


@pytest.mark.parametrize("bucket", [None, 7, 50])
@pytest.mark.parametrize("bits", [2, 16])
def test_quantize_rounds_as_the_two_pass_form(bucket, bits):
    x = jnp.asarray(np.random.default_rng(bits).standard_normal(50), jnp.float32)
    comp = jg.compressors.quantize(bits=bits, bucket=bucket)
    for seed in range(3):
        key = jax.random.key(seed)
        new = jax.jit(comp.compress)(key, x)
        old = jax.jit(_two_pass_quantize, static_argnums=2)(key, x, bucket, jnp.float32(bits))  # traced, as in
        # the compressor (a constant number of levels lets XLA fold the division another way)
        # The same rounding decisions (knob indices); the decoded values may differ in the last bit, as XLA folds
        # lo + k * width / levels per program (a division by a broadcast becomes a multiply by its reciprocal).
        v = np.asarray(x).reshape(-1)
        size = 50 if bucket is None else bucket
        rows = np.pad(v, (0, (-50) % size), mode="edge").reshape(-1, size)
        lo = np.repeat(rows.min(1), size)[:50]
        width = rows.max(1) - rows.min(1)
        step = np.repeat(np.where(width > 0, width, 1.0) / (2.0**bits - 1), size)[:50]
        k_new = np.rint((np.asarray(new, np.float64) - lo) / step)
        k_old = np.rint((np.asarray(old, np.float64) - lo) / step)
        np.testing.assert_array_equal(k_new, k_old)
        np.testing.assert_allclose(np.asarray(new), np.asarray(old), rtol=0, atol=2 * np.spacing(np.abs(v).max()))


def test_computed_once_is_the_identity():
    X = jnp.asarray(_rows())
    for key in (jax.random.key(3), jax.random.PRNGKey(3), jax.random.key(0)):
        out = jax.jit(computed_once)(X, key)
        np.testing.assert_array_equal(np.asarray(out), np.asarray(X))
    keys = jax.random.split(jax.random.key(1), 4)  # vmapped over keys (a sweep over seeds): a select, same numbers
    out = jax.jit(jax.vmap(computed_once, in_axes=(None, 0)))(X, keys)
    np.testing.assert_array_equal(np.asarray(out), np.broadcast_to(np.asarray(X), out.shape))
    names = [e.primitive.name for e in jax.make_jaxpr(computed_once)(X, jax.random.key(3)).jaxpr.eqns]
    assert "cond" in names  # the boundary XLA's fusion does not cross


@pytest.mark.parametrize("make", [lambda c: jg.algorithms.dcd_psgd(lr=0.1, compressor=c),
                                  lambda c: jg.algorithms.choco_sgd(lr=0.1, compressor=c),
                                  lambda c: jg.algorithms.choco_sgd(lr=0.1, compressor=c, order="survey")],
                         ids=["dcd", "choco", "choco-survey"])
def test_compressed_steps_store_the_compressor_input_once(make, monkeypatch):
    """Each step passes its (n, d) compressor input (DCD's Z, CHOCO's X_{t+1} or X_half) through computed_once, and
    the run's numbers are those of the same step without it, bit for bit."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((64, 7)).astype(np.float32)
    prob = jg.problems.logistic_regression((A, (A[:, 0] > 0).astype(np.int64)), n_workers=4, batch_size=1,
                                           solve_optimum=False)
    algo = make(jg.compressors.quantize(bits=8))
    run = lambda: jg.simulate(prob, algo, jg.topology.ring(4), steps=6, eval_every=3, shard=False)
    dcd_mod = importlib.import_module("jaxgossip.algorithms.dcd")
    choco_mod = importlib.import_module("jaxgossip.algorithms.choco")
    shapes = []

    def spy(X, key):
        shapes.append(X.shape)
        return computed_once(X, key)

    monkeypatch.setattr(dcd_mod, "computed_once", spy)
    monkeypatch.setattr(choco_mod, "computed_once", spy)
    stored = run()
    assert shapes and all(s == (4, prob.d) for s in shapes)
    monkeypatch.setattr(dcd_mod, "computed_once", lambda X, key: X)
    monkeypatch.setattr(choco_mod, "computed_once", lambda X, key: X)
    plain = run()
    np.testing.assert_array_equal(np.asarray(stored.state.x), np.asarray(plain.state.x))
    assert np.all(np.isfinite(np.asarray(stored.metrics["loss"])))
