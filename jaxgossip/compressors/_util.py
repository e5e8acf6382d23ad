"""Small shared pieces of the compressor family: bucketing, index bits, checks on k against the vector length."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

__all__ = ["to_buckets", "from_buckets", "n_buckets", "index_bits", "check_bucket", "check_k_le_d", "is_concrete",
           "norm2"]


def is_concrete(value) -> bool:
    """True when ``value`` is a Python number or a concrete array (not a tracer inside jit / vmap)."""
    return not isinstance(value, jax.core.Tracer)


def check_bucket(name: str, bucket) -> None:
    """Raise unless ``bucket`` is None or a positive Python int."""
    if bucket is not None and (isinstance(bucket, bool) or not isinstance(bucket, int) or bucket < 1):
        raise ValueError(f"{name}: bucket must be a positive integer or None, got {bucket!r}.")


def n_buckets(d: int, bucket) -> int:
    """Number of buckets of size ``bucket`` covering d values (1 when bucket is None)."""
    return 1 if bucket is None else -(-int(d) // bucket)


def to_buckets(x: jax.Array, bucket, fill: float = 0.0) -> jax.Array:
    """Flatten x and cut it into rows of ``bucket`` consecutive values (zero-padded): shape (n_buckets, size)."""
    flat = x.reshape(-1)
    d = flat.shape[0]
    size = d if bucket is None else bucket
    pad = (-d) % size
    return jnp.pad(flat, (0, pad), constant_values=fill).reshape(-1, size)


def from_buckets(v: jax.Array, x: jax.Array) -> jax.Array:
    """Undo :func:`to_buckets`: drop the padding and restore x's shape."""
    return v.reshape(-1)[: x.size].reshape(x.shape)


def index_bits(d: int) -> int:
    """Bits of one coordinate index into a d-vector: ceil(log2 d) (0 for d = 1)."""
    return int(math.ceil(math.log2(d))) if d > 1 else 0


def check_k_le_d(name: str, k, d) -> None:
    """Raise when a concrete k exceeds a concrete vector length d (skipped for traced values)."""
    if k is None or not is_concrete(k) or not is_concrete(d):
        return
    if float(k) > float(d):
        raise ValueError(f"{name}: k must satisfy 1 <= k <= d = {int(d)}, got k={float(k):g}.")


def norm2(v: jax.Array, axis=None, keepdims: bool = False) -> jax.Array:
    """The 2-norm of v (along ``axis``) without overflow or underflow: ``m sqrt(sum (v / m)^2)``, m = max |v|.

    ``sqrt(sum v^2)`` overflows to inf in float32 once |v| exceeds ~1.8e19 and underflows to 0 below ~1e-19, which made
    QSGD's message NaN for large vectors and zero for small ones. A zero vector has norm 0; a non-finite entry gives a
    non-finite norm (inf or NaN), so it reaches the message.
    """
    m = jnp.max(jnp.abs(v), axis=axis, keepdims=True)
    safe = jnp.where((m > 0) & jnp.isfinite(m), m, jnp.ones_like(m))
    out = jnp.where(jnp.isfinite(m), safe * jnp.sqrt(jnp.sum(jnp.square(v / safe), axis=axis, keepdims=True)), m)
    out = jnp.where(m == 0, jnp.zeros_like(out), out)  # (a NaN m is not 0: the NaN stays)
    return out if keepdims else jnp.squeeze(out, axis=axis)
