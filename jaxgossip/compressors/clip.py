"""Clipping of the low bits: zero the k lowest mantissa bits of each float32 value; deterministic and biased.

References:
  Liu & Zhang (survey), Sec. 3.2, "Clipping: for any real number z, directly set its lower k bits to zero ...
  This compression operator is biased."
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxgossip.compressors._base import FLOAT_BITS, Compressor, check_range

__all__ = ["clip_low_bits", "MANTISSA_BITS"]

#: Mantissa bits of a float32; clearing more would eat into the exponent.
MANTISSA_BITS = 23


def _clip_fn(key, x, low_bits):
    del key
    word = jax.lax.bitcast_convert_type(x.astype(jnp.float32), jnp.uint32)
    k = jnp.asarray(low_bits).astype(jnp.uint32)
    mask = ~((jnp.uint32(1) << k) - jnp.uint32(1))
    return jax.lax.bitcast_convert_type(word & mask, jnp.float32).astype(x.dtype)


def _clip_delta(d, low_bits):
    """1 - r^2 with r = u / (1 + u), u = 2^(k - 23): a normal float32 x = 2^e (1 + f) loses less than u 2^e <= r |x|
    (relative to |x| >= 2^e (1 + lost part))."""
    del d
    u = jnp.exp2(jnp.asarray(low_bits, jnp.float32) - MANTISSA_BITS)
    return 1.0 - (u / (1.0 + u)) ** 2


def _clip_bits(d, low_bits):
    return d * (FLOAT_BITS - low_bits)


def clip_low_bits(low_bits=16) -> Compressor:
    """Zero the ``low_bits`` lowest mantissa bits of each float32 value (survey Sec. 3.2); biased, deterministic.

    Truncation toward zero: |C(x)_i| <= |x_i| and |C(x)_i - x_i| < r |x_i| with r = u / (1 + u), u = 2^(k - 23), for
    k cleared bits: a contraction with ``delta = 1 - r^2`` (for normal float32 values; a subnormal value, below
    1.2e-38, may lose all its bits). A message is
    32 - k bits per value (the cleared bits are not sent).

    Args:
      low_bits: bits cleared per value k, an integer 0 <= k <= 23 (the mantissa; traced).
    """
    check_range("clip_low_bits", "low_bits", low_bits, 0, MANTISSA_BITS, integer=True)
    return Compressor({"low_bits": jnp.asarray(low_bits, jnp.float32)}, "clip_low_bits", _clip_fn, _clip_bits,
                      unbiased=False, delta_fn=_clip_delta)
