"""The stochastic quantizers' dither: uniforms from one Threefry draw per call and a cheap counter-based hash.

Stochastic rounding needs one uniform per coordinate (``u < frac`` rounds up). Drawing them with
``jax.random.uniform`` costs a full Threefry-2x32 block (20 rounds) per coordinate, and inside a compiled step XLA also
fuses each worker's key derivation (``fold_in``: another Threefry block) into the element loop, so it is recomputed for
every coordinate: the dither of a 16-bit quantizer at n = 64, d = 1000 cost more than the rest of a D-PSGD step.

:func:`uniform` instead draws a 64-bit seed ``(k0, k1)`` with one Threefry call on the key (``jax.random.bits``) and
hashes the coordinate index c with it, in uint32 vector arithmetic (2 multiplies, 3 xor-shifts, 2 key operations)::

    h = c ^ k0;  h ^= h >> 16;  h *= 0x85ebca6b;  h ^= h >> 13;  h += k1;  h *= 0xc2b2ae35;  h ^= h >> 16

This is MurmurHash3's 32-bit finalizer ``fmix32`` (A. Appleby, constants and shifts unchanged) with the seed words
injected before it and between its two multiplies. Every step is a bijection of 32-bit integers, hence:

* for one seed, the hashes of distinct coordinates are distinct, and over the full counter range each 24-bit value
  appears exactly 256 times;
* for one coordinate and a uniformly random seed word k0 (Threefry's output), ``h`` is exactly uniform on 2^32 values.

The top 24 bits give ``u = (h >> 8) 2^-24``, a uniform on the grid {0, 2^-24, ..., 1 - 2^-24}
(``jax.random.uniform`` for float32 has 2^-23). Two workers', or two steps', streams share nothing but their
Threefry-derived seeds; a second seed word k1 enters between the multiplies, so two streams whose k0 differ only in the
low bits (their counters then meet the same inputs, permuted) still hash them differently.

Bias bound. By the second point, for a fractional part f in [0, 1), ``P(u < f) = ceil(2^24 f) / 2^24``: the rounding-up
probability exceeds f by less than 2^-24, and is exactly 0 at f = 0 (values on a knob stay put). A stochastic rounding
with this dither is unbiased up to 2^-24 of one level per coordinate, below float32's own rounding of the level
(``tests/test_dither_rng.py`` checks the bijection, uniformity, unbiasedness of the quantizers, independence across
workers and steps, layout-independence and reproducibility across processes).

The seed is materialized once per call (one value per worker under ``vmap``): it passes through an integer division by
a traced 1, which XLA's fusion treats as expensive and therefore does not duplicate into the element loop (an
``optimization_barrier`` does not survive XLA's CPU pipeline). The numbers do not depend on this; only the speed does.

This is a change of random stream (a breaking change, README "Breaking changes"): the same seed gives other rounding
draws than ``jax.random.uniform`` did; the statistics are the same.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

__all__ = ["uniform", "hash32", "seed_words", "RESOLUTION_BITS"]

#: Bits of each dither uniform: u lies on the grid of step 2^-RESOLUTION_BITS in [0, 1).
RESOLUTION_BITS = 24

_M1 = 0x85EBCA6B  # MurmurHash3 fmix32's multipliers (Appleby)
_M2 = 0xC2B2AE35


def hash32(c: jax.Array, k0: jax.Array, k1: jax.Array) -> jax.Array:
    """The keyed fmix32 of the module docstring on uint32 counters c with seed words k0, k1 (wrapping arithmetic)."""
    h = c ^ k0
    h = h ^ (h >> 16)
    h = h * jnp.uint32(_M1)
    h = h ^ (h >> 13)
    h = h + k1
    h = h * jnp.uint32(_M2)
    return h ^ (h >> 16)


def seed_words(key: jax.Array) -> jax.Array:
    """The two uint32 seed words of one dither stream: ``jax.random.bits(key, (2,), uint32)``, materialized (see the
    module docstring: a division by a traced 1 keeps XLA from recomputing the draw for every coordinate)."""
    words = jax.random.bits(key, (2,), jnp.uint32)
    probe = words[0] | jnp.uint32(1)
    one = lax.div(probe, probe)  # == 1; an integer division by a non-constant is "expensive" to XLA's fusion
    return lax.div(words, one)


def uniform(key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
    """Dither uniforms on [0, 1) (grid step 2^-24) for stochastic rounding: coordinate c (row-major) gets
    ``(hash32(c, k0, k1) >> 8) 2^-24`` with ``(k0, k1)`` one Threefry draw from ``key`` (:func:`seed_words`).

    Args:
      key: a jax.random key (typed or raw); each call with the same key gives the same numbers.
      shape: the output shape; at most 2^32 values.
      dtype: a floating dtype; the values are computed in float32 and cast (exact for float32 and float64; the
        quantizers keep float32 and compare it with their fractional parts, promoted, so a bfloat16 input is not
        rounded on a coarser grid).
    """
    shape = tuple(int(s) for s in shape)
    size = 1
    for s in shape:
        size *= s
    if size > 2**32:
        raise ValueError(f"dither uniform: at most 2^32 values per key, got shape {shape}.")
    k = seed_words(key)
    c = lax.iota(jnp.uint32, size).reshape(shape) if size else jnp.zeros(shape, jnp.uint32)
    h = hash32(c, k[0], k[1])
    top = lax.bitcast_convert_type(h >> (32 - RESOLUTION_BITS), jnp.int32)  # < 2^24: exact in float32
    return (top.astype(jnp.float32) * jnp.float32(2.0**-RESOLUTION_BITS)).astype(dtype)
