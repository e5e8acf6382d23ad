"""TernGrad: each value becomes one of {-s, 0, +s}, s = max |x| (per bucket); unbiased.

References:
  Wen, Xu, Yan, Wu, Wang, Chen & Li 2017 (TernGrad), eq. 4-5: tern(x)_i = s sign(x_i) b_i, b_i ~ Bernoulli(|x_i| / s),
  s = ||x||_inf; E[tern(x)] = x. Cited in Liu & Zhang (survey), Sec. 3.2.
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxgossip.compressors import _dither as dither
from jaxgossip.compressors._base import FLOAT_BITS, Compressor
from jaxgossip.compressors._util import check_bucket, from_buckets, n_buckets, to_buckets

__all__ = ["terngrad"]

#: Bits of one ternary value on the wire (fixed width; log2(3) ~ 1.585 would need block coding).
TERNARY_BITS = 2


def _terngrad_fn(key, x, bucket):
    v = to_buckets(x, bucket)
    s = jnp.abs(v).max(axis=1, keepdims=True)
    prob = jnp.abs(v) / jnp.where(s > 0, s, 1.0)
    b = dither.uniform(key, v.shape) < prob  # P(b) exceeds prob by < 2^-24 (_dither's grid)
    out = jnp.where(b, jnp.sign(v) * s, jnp.zeros_like(v))
    # an inf in the bucket would give probabilities 0 and inf / inf: an all-zero message; keep it non-finite instead
    return from_buckets(jnp.where(jnp.isfinite(s), out, jnp.full_like(v, jnp.nan)), x)


def _terngrad_omega(d, bucket):
    """sqrt(B) - 1, B = min(bucket, d): s ||x||_1 - ||x||^2 with s <= ||x||_2 and ||x||_1 <= sqrt(B) ||x||_2."""
    size = d if bucket is None else min(bucket, d)
    return float(size) ** 0.5 - 1.0


def _terngrad_bits(d, bucket):
    return TERNARY_BITS * d + FLOAT_BITS * n_buckets(d, bucket)


def terngrad(bucket: int | None = None) -> Compressor:
    """TernGrad (Wen et al. 2017, eq. 5): C(x)_i = s sign(x_i) b_i with b_i ~ Bernoulli(|x_i| / s), s = max_j |x_j|.

    Unbiased, E||C(x) - x||^2 = s ||x||_1 - ||x||_2^2 <= (sqrt(d) - 1) ||x||^2 (``omega(d)``; d the bucket size with
    buckets). A message is 2 bits per value plus one float32 s per bucket.
    (The paper's optional gradient clipping at 2.5 standard deviations is a training trick, not part of the
    compressor, and is left out: it would make the compressor biased.)

    Note:
      TernGrad's stochastic ternarization is unbiased (Wen et al. 2017, eq. 5), so ``unbiased=True`` here (as
      ALGORITHMS.md lists it; an earlier version of it listed TernGrad among the biased compressors).

    Args:
      bucket: optional bucket size; each bucket of that many consecutive values gets its own s (static).
    """
    check_bucket("terngrad", bucket)
    return Compressor({}, "terngrad", _terngrad_fn, _terngrad_bits, unbiased=True, static=(bucket,),
                      omega_fn=_terngrad_omega)
