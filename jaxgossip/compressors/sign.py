"""Scaled sign (1-bit) compression: one bit per value plus one float32 scale per bucket; biased.

References:
  Liu & Zhang (survey), Sec. 3.2, "1-Bit Quantization (Bernstein et al. 2018; Wen et al. 2017)": x -> ||x|| sign(x).
  Karimireddy, Rebjock, Stich & Jaggi 2019 (EF-SGD): the scaled sign (||x||_1 / d) sign(x), a contraction with
  ||C(x) - x||^2 = (1 - ||x||_1^2 / (d ||x||_2^2)) ||x||^2 <= (1 - 1/d) ||x||^2.
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxgossip.compressors._base import FLOAT_BITS, Compressor
from jaxgossip.compressors._util import check_bucket, from_buckets, n_buckets, norm2, to_buckets

__all__ = ["sign", "SCALES"]

#: ``mean_abs``: scale ||x||_1 / d (the contraction of EF-SGD); ``norm``: scale ||x||_2 / sqrt(d), so ||C(x)|| = ||x||.
SCALES = ("mean_abs", "norm")


def _signs(v):
    """+1 / -1 per value (0 maps to +1: one bit cannot carry a zero)."""
    return jnp.where(v >= 0, 1.0, -1.0).astype(v.dtype)


def _sign_fn(key, x, scale, bucket):
    del key
    v = to_buckets(x, bucket)
    # Padding zeros are not data: count only the real values of the last bucket.
    real = to_buckets(jnp.ones_like(x), bucket)
    count = jnp.maximum(real.sum(axis=1, keepdims=True), 1.0)
    if scale == "mean_abs":
        s = jnp.abs(v).sum(axis=1, keepdims=True) / count
    else:
        s = norm2(v, axis=1, keepdims=True) / jnp.sqrt(count)  # scaled: no overflow or underflow
    return from_buckets(s * _signs(v), x)


def _sign_delta(d, scale, bucket):
    """1 / B for the mean_abs scale (B = min(bucket, d)): ||C(x) - x||^2 = ||x||^2 - ||x||_1^2 / B per bucket."""
    del scale
    return 1.0 / (d if bucket is None else min(bucket, d))


def _sign_bits(d, scale, bucket):
    del scale
    return d + FLOAT_BITS * n_buckets(d, bucket)


def sign(scale: str = "mean_abs", bucket: int | None = None) -> Compressor:
    """Scaled sign compression C(x) = s * sign(x), one bit per value and one float32 scale s (per bucket).

    ``scale="mean_abs"``: s = ||x||_1 / d, the 1-bit scaled sign; a contraction for every x,
    ||C(x) - x||^2 = ||x||^2 - ||x||_1^2 / d <= (1 - 1/d) ||x||^2.
    ``scale="norm"``: s = ||x||_2 / sqrt(d), so the message keeps the 2-norm of x (the survey's "||x|| sign(x)" with the
    norm spread over the d values); not a contraction in general (x = e_1: ||C(x) - x||^2 = (2 - 2 / sqrt(d)) ||x||^2),
    so ``delta`` is None and the algorithms that need a contraction refuse it.
    Zeros are sent as +s. Biased in both forms.

    Args:
      scale: ``"mean_abs"`` or ``"norm"`` (static).
      bucket: optional bucket size; each bucket of that many consecutive values gets its own scale (static).
    """
    if scale not in SCALES:
        raise ValueError(f"sign: scale must be one of {SCALES}, got {scale!r}.")
    check_bucket("sign", bucket)
    return Compressor({}, "sign", _sign_fn, _sign_bits, unbiased=False, static=(scale, bucket),
                      delta_fn=_sign_delta if scale == "mean_abs" else None)
