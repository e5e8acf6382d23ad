"""The unrolled CPU Threefry lowering (jaxgossip/_threefry_cpu.py) gives exactly jax's random bits."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgossip  # noqa: F401  (installs the lowering)
from jaxgossip import _threefry_cpu
from _fresh import outputs_per_value

pytestmark = pytest.mark.skipif(not _threefry_cpu.installed(), reason="the unrolled lowering is not installed "
                                "(JAXGOSSIP_ROLLED_THREEFRY=1, or this jax has no rolled CPU Threefry lowering)")


def test_hash_equals_the_rolled_reference():
    from jax._src.random import threefry2x32 as tf

    k1, k2 = jnp.uint32(0x12345678), jnp.uint32(0x9ABCDEF0)
    x1 = jnp.arange(4096, dtype=jnp.uint32) * jnp.uint32(2654435761)
    x2 = jnp.arange(4096, dtype=jnp.uint32) ^ jnp.uint32(0xDEADBEEF)
    rolled = jax.jit(lambda *a: tf._threefry2x32_lowering(*a, use_rolled_loops=True))(k1, k2, x1, x2)
    fast = jax.jit(lambda a, b, c, d: tf.threefry2x32_p.bind(a, b, c, d))(k1, k2, x1, x2)
    for r, f in zip(rolled, fast):
        np.testing.assert_array_equal(np.asarray(r), np.asarray(f))


def test_no_while_loop_left_in_the_compiled_hash():
    text = jax.jit(lambda k: jax.random.uniform(k, (64, 100))).lower(jax.random.key(0)).compile().as_text()
    assert " while(" not in text


def test_random_numbers_equal_with_the_lowering_turned_off():
    code = ("import jaxgossip, jax, numpy as np; k = jax.random.key(7); "
            "a = jax.jit(lambda k: jax.random.uniform(k, (257,)))(k); b = jax.jit(lambda k: jax.random.normal(k, (3, 5)))(k);"
            "c = jax.random.split(jax.random.fold_in(k, 3), 4); "
            "print(jaxgossip._threefry_cpu.installed(), np.asarray(a).tobytes().hex(), np.asarray(b).tobytes().hex(), "
            "np.asarray(jax.random.key_data(c)).tobytes().hex())")
    outs = outputs_per_value(code, "JAXGOSSIP_ROLLED_THREEFRY", ("0", "1"))
    assert outs[0][0] == "True" and outs[1][0] == "False"
    assert outs[0][1:] == outs[1][1:]
