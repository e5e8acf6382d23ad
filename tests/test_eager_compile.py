"""Eager calls of compressors (and csgd's per-partition compression) run as one compiled program per shape
(jaxgossip/_eager.py), give the same values as inside a trace, and keep their eager errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgossip as jg
from jaxgossip._eager import compiled_when_eager, traced
from jaxgossip.compressors import _base


def test_an_eager_compress_is_one_compiled_program_per_shape():
    comp = jg.compressors.quantize(bits=3)
    before = _base._compress_compiled._cache_size()
    x = jnp.linspace(-1.0, 1.0, 7)
    a = comp.compress(jax.random.key(1), x)
    after_one = _base._compress_compiled._cache_size()
    comp.compress(jax.random.key(2), x + 1.0)  # same shape, other values and key: no new program
    assert after_one == before + 1 and _base._compress_compiled._cache_size() == after_one
    # inside a trace the function is inlined (no call of the compiled one), with the same numbers
    inside = jax.jit(lambda k, v: comp.compress(k, v))(jax.random.key(1), x)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(inside))
    jaxpr = jax.make_jaxpr(lambda k, v: comp.compress(k, v))(jax.random.key(1), x)
    assert "_compress_compiled" not in str(jaxpr)


def test_eager_compress_keeps_its_errors_and_accepts_lists():
    with pytest.raises(ValueError, match="k must satisfy"):
        jg.compressors.top_k(k=5).compress(jax.random.key(0), jnp.ones(3))
    out = jg.compressors.quantize(bits=8).compress(jax.random.key(0), [0.0, 0.5, 1.0])
    assert out.shape == (3,) and float(out[0]) == 0.0 and float(out[2]) == 1.0


def test_compiled_when_eager_traces_inside_and_compiles_outside():
    calls = []

    @compiled_when_eager(static_argnames=("n",))
    def f(x, n):
        calls.append(traced(x))
        return x * n

    np.testing.assert_array_equal(np.asarray(f(jnp.arange(3.0), n=2)), [0.0, 2.0, 4.0])
    f(jnp.arange(3.0) + 1, n=2)  # cached: not traced again
    assert calls == [True]  # traced once, by jax.jit
    jax.jit(lambda x: f(x, n=3))(jnp.arange(3.0))
    assert calls == [True, True]
    assert not traced(1.0, np.ones(2), {"a": jnp.ones(1)})
