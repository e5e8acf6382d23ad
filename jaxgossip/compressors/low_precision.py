"""The low-precision (fixed-point) quantizer of paper 001, eq. 7: a grid of step eta with s-bit signed indices.

References:
  Reisizadeh, Taheri, Mokhtari, Hassani & Pedarsani (NeurIPS 2019), Sec. 3, eq. 7: for k eta <= x < (k + 1) eta,
  Q(x) = k eta with probability 1 - (x - k eta) / eta, (k + 1) eta otherwise.
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxgossip.compressors._base import Compressor, check_range
from jaxgossip.compressors.quantize import _stochastic_round

__all__ = ["low_precision", "representable_range"]


def representable_range(scale, bits):
    """(lowest, highest) representable values: -scale 2^(s-1) and scale (2^(s-1) - 1), an s-bit two's complement."""
    half = jnp.exp2(jnp.asarray(bits, jnp.float32) - 1.0)
    return -scale * half, scale * (half - 1.0)


def _low_precision_fn(key, x, scale, bits):
    lo, hi = representable_range(scale, bits)
    u = jnp.clip(x, lo.astype(x.dtype), hi.astype(x.dtype)) / scale
    return _stochastic_round(key, u) * scale


def _low_precision_bits(d, scale, bits):
    del scale
    return d * bits


def low_precision(scale=2.0**-8, bits=8) -> Compressor:
    """Low-precision quantizer Q_(eta, s) (paper 001, eq. 7): stochastic rounding to the grid eta Z; unbiased in range.

    The representable values are the s-bit two's-complement grid {-eta 2^(s-1), ..., -eta, 0, eta, ...,
    eta (2^(s-1) - 1)}. (The paper prints the top as eta (2^s - 1), which would need s + 1 bits; we keep s bits.)
    Within that range E[Q(x)] = x and the variance of each value is at most eta^2 / 4; values outside it saturate to
    the nearest end (as fixed-point hardware does), the only source of bias. A message is s bits per value: eta is a
    fixed hyperparameter both ends know, so it is not sent. Its error is absolute (eta^2 / 4 per value), not relative
    to ||x||: ``omega`` and ``delta`` are None, and the algorithms that need a contraction (CHOCO-SGD, DeepSqueeze,
    BEER) refuse it.

    Args:
      scale: grid step eta > 0 (traced).
      bits: bits per value s, an integer 1 <= s <= 32 (traced).
    """
    check_range("low_precision", "scale", scale, 0, float("inf"), low_open=True, high_open=True)
    check_range("low_precision", "bits", bits, 1, 32, integer=True)
    params = {"scale": jnp.asarray(scale, jnp.float32), "bits": jnp.asarray(bits, jnp.float32)}
    return Compressor(params, "low_precision", _low_precision_fn, _low_precision_bits, unbiased=True)
