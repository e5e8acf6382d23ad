"""QSGD: stochastic quantization of |x_i| / ||x||_2 to s uniform levels, with the norm and signs sent alongside.

References:
  Alistarh, Grubic, Li, Tomioka & Vojnovic 2017 (QSGD), Sec. 3.1 and Lemma 3.1: E[Q_s(x)] = x and
  E||Q_s(x) - x||^2 <= min(d / s^2, sqrt(d) / s) ||x||^2; cited in Liu & Zhang (survey), Sec. 3.1.
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxgossip.compressors._base import FLOAT_BITS, Compressor, check_range
from jaxgossip.compressors._util import check_bucket, from_buckets, n_buckets, norm2, to_buckets
from jaxgossip.compressors.quantize import _stochastic_round

__all__ = ["qsgd", "level_bits"]


def level_bits(levels):
    """Bits of one level index in {0, ..., s}: the bit length of s (traced-friendly, exact for integer s >= 1)."""
    return jnp.frexp(jnp.asarray(levels, jnp.float32))[1].astype(jnp.float32)


def _qsgd_fn(key, x, bucket, levels):
    v = to_buckets(x, bucket)
    norm = norm2(v, axis=1, keepdims=True)  # scaled: no overflow above |v| ~ 1e19, no underflow below ~1e-19
    safe = jnp.where(norm > 0, norm, 1.0)
    s = jnp.asarray(levels, v.dtype)
    level = _stochastic_round(key, jnp.abs(v) / safe * s)
    return from_buckets(jnp.sign(v) * norm * level / s, x)


def _qsgd_omega(d, bucket, levels):
    """Alistarh et al. 2017, Lemma 3.1: min(B / s^2, sqrt(B) / s), B = min(bucket, d)."""
    size = d if bucket is None else min(bucket, d)
    s = jnp.asarray(levels, jnp.float32)
    return jnp.minimum(size / s**2, jnp.sqrt(float(size)) / s)


def _qsgd_bits(d, bucket, levels):
    return d * (1.0 + level_bits(levels)) + FLOAT_BITS * n_buckets(d, bucket)


def qsgd(levels=4, bucket: int | None = None) -> Compressor:
    """QSGD with s levels (Alistarh et al. 2017): Q_s(x_i) = ||x||_2 sign(x_i) l_i / s; unbiased.

    l_i is |x_i| s / ||x||_2 rounded down or up at random so that E[l_i] equals it; the variance is at most
    min(d / s^2, sqrt(d) / s) ||x||^2 (d: the bucket size when buckets are used): ``omega(d)``. A message is one float32 norm per
    bucket plus, per value, one sign bit and a fixed-width level index of bit_length(s) bits (no Elias coding).

    Args:
      levels: number of levels s, an integer 1 <= s <= 2^24 (traced: a sweep over it is a vmap).
      bucket: optional bucket size; each bucket of that many consecutive values gets its own norm (static).
    """
    check_range("qsgd", "levels", levels, 1, 2**24, integer=True)
    check_bucket("qsgd", bucket)
    return Compressor({"levels": jnp.asarray(levels, jnp.float32)}, "qsgd", _qsgd_fn, _qsgd_bits, unbiased=True,
                      static=(bucket,), omega_fn=_qsgd_omega)
