"""Sparsifiers: random sparsification (keep with probability p), random-k (scaled or not), top-k.

Every k here is *traced*: the kept set is found by a 32-step bitwise binary search for the k-th largest key (random
bits for random-k, the magnitude's float32 bit pattern for top-k) rather than by ``lax.top_k`` (static k) or a sort,
so k (or the fraction k / d) is an ordinary array leaf of the compressor and a sweep over it is a vmap, not a
recompile; exactly k values are kept. A sparse message carries, for each kept value, the float32 value and its index
(ceil(log2 d) bits).

References:
  Liu & Zhang (survey), Sec. 3.1 (randomized sparsification, Wangni et al. 2018) and Sec. 3.2 (top-k, biased);
  Stich, Cordonnier & Jaggi 2018 (random-k / top-k contraction ||C(x) - x||^2 <= (1 - k/d) ||x||^2).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxgossip.compressors._base import FLOAT_BITS, Compressor, check_range
from jaxgossip.compressors._util import check_k_le_d, index_bits

__all__ = ["sparsify", "random_k", "top_k"]


# ---- random sparsification ------------------------------------------------------------------------------------------
def _sparsify_fn(key, x, p):
    keep = jax.random.uniform(key, x.shape) < p
    return jnp.where(keep, x / p, jnp.zeros_like(x))


def _sparsify_bits(d, p):
    return p * d * (FLOAT_BITS + index_bits(d))


def _sparsify_omega(d, p):
    del d
    return 1.0 / jnp.asarray(p, jnp.float32) - 1.0


def sparsify(p=0.1) -> Compressor:
    """Random sparsification: keep each value with probability p, scaled by 1/p (survey Sec. 3.1); unbiased.

    E[C(x)] = x and E||C(x) - x||^2 = (1/p - 1) ||x||^2 (``omega``). The message length is random; ``bits(d)`` is its expectation,
    p * d kept values of a float32 plus a ceil(log2 d)-bit index each.

    Args:
      p: keep probability, 0 < p <= 1 (traced).
    """
    check_range("sparsify", "p", p, 0, 1, low_open=True)
    return Compressor({"p": jnp.asarray(p, jnp.float32)}, "sparsify", _sparsify_fn, _sparsify_bits, unbiased=True,
                      omega_fn=_sparsify_omega)


# ---- k from either k or a fraction of d ------------------------------------------------------------------------------
def _k_from_fraction(fraction, d):
    """k = max(1, round(fraction * d)): the traced k of the fraction formulation."""
    return jnp.maximum(1.0, jnp.round(fraction * d))


def _largest_mask(u, k):
    """Mask of the k largest entries of a uint32 vector u (k traced; ties broken by the lowest index).

    A bitwise binary search finds t, the k-th largest value (the largest t with #{u >= t} >= k): 32 passes of a
    compare-and-count over u, no sort. Then every u > t is kept, and of the u == t the first k - #{u > t}.
    """

    def set_bit(i, t):
        cand = t | jnp.left_shift(jnp.uint32(1), (31 - i).astype(jnp.uint32))
        return jnp.where(jnp.sum(u >= cand) >= k, cand, t)

    t = jax.lax.fori_loop(0, 32, set_bit, jnp.uint32(0))
    above = u > t
    tie = u == t
    return above | (tie & (jnp.cumsum(tie) <= k - jnp.sum(above)))


def _magnitude_order(x):
    """|x| as uint32 words: for non-negative float32 values the bit pattern orders like the value."""
    return jax.lax.bitcast_convert_type(jnp.abs(x).astype(jnp.float32), jnp.uint32)


def _sparse_bits(d, k):
    return k * (FLOAT_BITS + index_bits(d))


# ---- random-k --------------------------------------------------------------------------------------------------------
def _random_k_core(key, x, k, scaled):
    flat = x.reshape(-1)
    d = flat.shape[0]
    keep = _largest_mask(jax.random.bits(key, (d,), jnp.uint32), k)
    scale = d / k if scaled else 1.0
    return jnp.where(keep, flat * scale, jnp.zeros_like(flat)).reshape(x.shape)


def _random_k_fn(key, x, scaled, k):
    check_k_le_d("random_k", k, x.size)
    return _random_k_core(key, x, k, scaled)


def _random_k_fraction_fn(key, x, scaled, fraction):
    return _random_k_core(key, x, _k_from_fraction(fraction, x.size), scaled)


def _random_k_bits(d, scaled, k):
    del scaled
    check_k_le_d("random_k", k, d)
    return _sparse_bits(d, k)


def _random_k_fraction_bits(d, scaled, fraction):
    del scaled
    return _sparse_bits(d, _k_from_fraction(fraction, d))


# ---- top-k -----------------------------------------------------------------------------------------------------------
def _top_k_core(x, k):
    flat = x.reshape(-1)
    keep = _largest_mask(_magnitude_order(flat), k)
    return jnp.where(keep, flat, jnp.zeros_like(flat)).reshape(x.shape)


def _top_k_fn(key, x, k):
    del key
    check_k_le_d("top_k", k, x.size)
    return _top_k_core(x, k)


def _top_k_fraction_fn(key, x, fraction):
    del key
    return _top_k_core(x, _k_from_fraction(fraction, x.size))


def _top_k_bits(d, k):
    check_k_le_d("top_k", k, d)
    return _sparse_bits(d, k)


def _top_k_fraction_bits(d, fraction):
    return _sparse_bits(d, _k_from_fraction(fraction, d))


# ---- the contract: omega (scaled random-k) and delta (random-k unscaled, top-k) -------------------------------------------
def _k_of(d, k=None, fraction=None):
    """The number of kept values on a d-vector, from either parameterization (traced-friendly)."""
    return jnp.asarray(k, jnp.float32) if fraction is None else _k_from_fraction(fraction, d)


def _random_k_omega(d, scaled, k=None, fraction=None):
    """d / k - 1: the variance of the scaled (unbiased) random-k."""
    del scaled
    return d / _k_of(d, k, fraction) - 1.0


def _k_over_d(d, *unused, k=None, fraction=None):
    """k / d: the contraction of top-k (always) and of the unscaled random-k (in expectation)."""
    del unused
    return _k_of(d, k, fraction) / d


# ---- Compressor.check(d) ---------------------------------------------------------------------------------------------
def _random_k_check(d, scaled, k):
    del scaled
    check_k_le_d("random_k", k, d)


def _top_k_check(d, k):
    check_k_le_d("top_k", k, d)


# ---- factories -------------------------------------------------------------------------------------------------------
def _k_params(name, k, fraction, d):
    """Validate exactly one of k / fraction and return the traced params dict."""
    if (k is None) == (fraction is None):
        raise ValueError(f"{name}: give exactly one of k (an integer, 1 <= k <= d) or fraction (0 < fraction <= 1).")
    if fraction is not None:
        check_range(name, "fraction", fraction, 0, 1, low_open=True)
        return {"fraction": jnp.asarray(fraction, jnp.float32)}
    check_range(name, "k", k, 1, 2**24, integer=True)
    if d is not None:
        check_range(name, "d", d, 1, float("inf"), integer=True)
        check_k_le_d(name, k, d)
    return {"k": jnp.asarray(k, jnp.float32)}


def random_k(k=None, *, fraction=None, scaled: bool = True, d: int | None = None) -> Compressor:
    """Random-k sparsification: keep k coordinates drawn uniformly without replacement.

    ``scaled=True`` multiplies the kept values by d/k: unbiased, with E||C(x) - x||^2 = (d/k - 1) ||x||^2 (``omega``).
    ``scaled=False`` keeps them as they are: biased, a contraction in expectation, E||C(x) - x||^2 = (1 - k/d) ||x||^2
    (``delta = k/d``); it is the scaled one rescaled by 1 / (1 + omega) (Koloskova et al. 2019's ``random-biased``).
    A message is k float32 values plus k indices of ceil(log2 d) bits.

    Args:
      k: number of kept coordinates, 1 <= k <= d (traced; checked against d when the vector is concrete).
      fraction: instead of k, keep k = max(1, round(fraction * d)) coordinates, 0 < fraction <= 1 (traced).
      scaled: scale by d/k (static).
      d: optional vector length, to check k <= d now instead of at the first compress / bits call (or call
        ``.check(d)`` on the compressor, as ``simulate`` does before compiling).
    """
    params = _k_params("random_k", k, fraction, d)
    if not isinstance(scaled, bool):
        raise ValueError(f"random_k: scaled must be True or False, got {scaled!r}.")
    if "k" in params:
        fn, bits_fn, check_fn = _random_k_fn, _random_k_bits, _random_k_check
    else:  # k = max(1, round(fraction d)) <= d for every d
        fn, bits_fn, check_fn = _random_k_fraction_fn, _random_k_fraction_bits, None
    return Compressor(params, "random_k" if scaled else "random_k_unscaled", fn, bits_fn, unbiased=scaled,
                      static=(scaled,), check_fn=check_fn, omega_fn=_random_k_omega if scaled else None,
                      delta_fn=None if scaled else _k_over_d)


def top_k(k=None, *, fraction=None, d: int | None = None) -> Compressor:
    """Top-k sparsification: keep the k coordinates of largest magnitude (survey Sec. 3.2); biased, deterministic.

    A contraction: ||C(x) - x||^2 <= (1 - k/d) ||x||^2 for every x (``delta = k/d``). Ties are broken by index (the lower index wins),
    so exactly k values are kept. A message is k float32 values plus k indices of ceil(log2 d) bits.

    Args:
      k: number of kept coordinates, 1 <= k <= d (traced; checked against d when the vector is concrete).
      fraction: instead of k, keep k = max(1, round(fraction * d)) coordinates, 0 < fraction <= 1 (traced).
      d: optional vector length, to check k <= d now instead of at the first compress / bits call (or call
        ``.check(d)`` on the compressor, as ``simulate`` does before compiling).
    """
    params = _k_params("top_k", k, fraction, d)
    if "k" in params:
        fn, bits_fn, check_fn = _top_k_fn, _top_k_bits, _top_k_check
    else:  # k = max(1, round(fraction d)) <= d for every d
        fn, bits_fn, check_fn = _top_k_fraction_fn, _top_k_fraction_bits, None
    return Compressor(params, "top_k", fn, bits_fn, unbiased=False, check_fn=check_fn, delta_fn=_k_over_d)
