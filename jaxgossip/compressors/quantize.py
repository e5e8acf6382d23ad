"""Identity and randomized uniform quantization (survey eq. 3.1)."""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from jaxgossip.compressors import _dither as dither
from jaxgossip.compressors._base import FLOAT_BITS, Compressor, check_range

__all__ = ["identity", "quantize"]


def _identity_fn(key, x):
    del key
    return x


def _identity_bits(d):
    return FLOAT_BITS * d


def _identity_omega(d):
    del d
    return 0.0


def _identity_delta(d):
    del d
    return 1.0


def identity() -> Compressor:
    """No compression: a float32 message of d values (unbiased with omega = 0, a contraction with delta = 1)."""
    return Compressor({}, "identity", _identity_fn, _identity_bits, unbiased=True, omega_fn=_identity_omega,
                      delta_fn=_identity_delta)


def _stochastic_round(key, u):
    """Round u (in level units) down or up at random so that E[result] = u (up to 2^-24 of a level: the dither's
    grid, :mod:`jaxgossip.compressors._dither`)."""
    low = jnp.floor(u)
    return low + (dither.uniform(key, u.shape) < (u - low)).astype(u.dtype)


def min_max(v):
    """Row minima and maxima of a 2-D array, ``(v.min(1, keepdims=True), v.max(1, keepdims=True))``, in one variadic
    reduction: one pass over v (XLA fuses v's producer into it) instead of two. NaN propagates as in jnp.min/max."""
    init = (jnp.array(jnp.inf, v.dtype), jnp.array(-jnp.inf, v.dtype))
    lo, hi = lax.reduce((v, v), init, lambda a, b: (lax.min(a[0], b[0]), lax.max(a[1], b[1])), (1,))
    return lo[:, None], hi[:, None]


def _quantize_fn(key, x, bucket, bits):
    shape = x.shape
    flat = x.reshape(-1)
    d = flat.shape[0]
    size = d if bucket is None else bucket
    pad = (-d) % size
    v = (jnp.pad(flat, (0, pad), mode="edge") if pad else flat).reshape(-1, size)
    lo, hi = min_max(v)
    levels = jnp.exp2(jnp.asarray(bits, x.dtype)) - 1.0
    width = jnp.where(hi > lo, hi - lo, 1.0)
    u = (v - lo) / width * levels  # XLA turns / width into one reciprocal per row
    # * (1 / levels), one reciprocal per call: no division per value (within 1 ulp of / levels; width / levels per row
    # would be as cheap but underflows for 32 bits and widths below ~1e-29)
    q = lo + _stochastic_round(key, u) * width * (1.0 / levels)
    return q.reshape(-1)[:d].reshape(shape)


def _quantize_omega(d, bucket, bits):
    """B / (2 (2^b - 1)^2), B = min(bucket, d): each value's variance is at most h^2 / 4 with h = (max - min) / (2^b - 1)
    and (max - min)^2 <= 2 ||x_bucket||^2; x = (1, 0, ..., 0, -1) attains (B - 2) / (2 (2^b - 1)^2)."""
    size = d if bucket is None else min(bucket, d)
    levels = jnp.exp2(jnp.asarray(bits, jnp.float32)) - 1.0
    return size / (2.0 * levels**2)


def _quantize_bits(d, bucket, bits):
    buckets = 1 if bucket is None else -(-d // bucket)
    return d * bits + 2 * FLOAT_BITS * buckets


def quantize(bits=8, bucket: int | None = None) -> Compressor:
    """Randomized quantization to 2^b uniform knobs over [min x, max x] (Liu & Zhang, eq. 3.1); unbiased.

    Each value is rounded to one of its two neighbouring knobs c_i <= x < c_{i+1}, up with probability
    (x - c_i) / (c_{i+1} - c_i). A message is ``d * bits`` for the knob indices plus two float32 values (min, max) per
    bucket. Variance: E||C(x) - x||^2 <= omega ||x||^2 with omega = B / (2 (2^b - 1)^2), B the bucket size (d without
    buckets); the bound is attained up to (B - 2) / B by x = (1, 0, ..., 0, -1), so without buckets the quantizer is not
    a contraction for large d, and the algorithms that need one rescale it by 1 / (1 + omega): small buckets keep omega
    small (``bucket=64`` at 4 bits: omega = 0.14).

    Args:
      bits: bits per value b, an integer 1 <= b <= 32 (an integral float such as 4.0 is fine; traced: a sweep over
        it is a vmap). A fractional b is refused: 2^b - 1 would not be a whole number of knobs, the rounding would
        produce more than 2^b distinct values and values above max x, and d * b bits could not carry them.
      bucket: optional bucket size; each bucket of this many consecutive values gets its own [min, max] (static).
    """
    check_range("quantize", "bits", bits, 1, 32, integer=True)
    if bucket is not None and (not isinstance(bucket, int) or bucket < 1):
        raise ValueError(f"quantize: bucket must be a positive integer or None, got {bucket!r}.")
    return Compressor({"bits": jnp.asarray(bits, jnp.float32)}, "quantize", _quantize_fn, _quantize_bits,
                      unbiased=True, static=(bucket,), omega_fn=_quantize_omega)
