"""The compressor record: pure functions with an explicit key, and an honest bit count.

A compressor maps one d-vector to its decoded message, ``compress(key, x) -> x_hat`` (same shape), and says how many
bits that message costs on the wire, ``bits(d)``: values, indices, scales and norms all counted. Parameters a user
sweeps (bits, levels, p, ...) live in ``params`` and are traced: a :class:`Compressor` is a pytree whose leaves are
those parameters, so passing it into a jitted function and vmapping over a stack of them is a sweep, not a recompile.
The functions, the name and the ``unbiased`` flag are static.

Liu & Zhang (survey) Sec. 3.1-3.2 give the unbiased family (E[C(x)] = x) and the biased one.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jaxgossip import _pytree as struct

__all__ = ["Compressor", "compress_rows", "worker_keys", "FLOAT_BITS", "check_range"]

#: Bits of one full-precision value on the wire (float32).
FLOAT_BITS = 32


@struct.dataclass
class Compressor:
    """A compressor: ``compress(key, x)`` on one d-vector, ``bits(d)`` for the size of that message.

    Attributes:
      params: dict of traced hyperparameters (``{"bits": 4.0}``, ``{"p": 0.1}``, ...).
      name: static name, e.g. ``"quantize"``.
      fn: static ``fn(key, x, **params) -> x_hat``.
      bits_fn: static ``bits_fn(d, **params) -> bits`` (a float or a traced scalar).
      unbiased: static flag, True when ``E[compress(key, x)] = x`` for every x.
      static: static hashable extras that change shapes (bucket size, top-k's k), passed to fn and bits_fn.
    """

    params: dict
    name: str = struct.field(pytree_node=False)
    fn: Callable = struct.field(pytree_node=False)
    bits_fn: Callable = struct.field(pytree_node=False)
    unbiased: bool = struct.field(pytree_node=False, default=True)
    static: tuple = struct.field(pytree_node=False, default=())

    def compress(self, key: jax.Array, x: jax.Array) -> jax.Array:
        """Compress and decode one vector x (any shape; treated as flat)."""
        return self.fn(key, x, *self.static, **self.params)

    __call__ = compress

    def bits(self, d: int) -> Any:
        """Bits of one message carrying a compressed d-vector."""
        return self.bits_fn(d, *self.static, **self.params)

    def ratio(self, d: int) -> Any:
        """Compressed size as a fraction of a float32 message (the slides' c)."""
        return self.bits(d) / (FLOAT_BITS * d)

    def __repr__(self) -> str:
        shown = {k: (float(v) if jnp.ndim(v) == 0 and not isinstance(v, jax.core.Tracer) else v) for k, v in self.params.items()}
        parts = [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items()]
        parts += [str(s) for s in self.static if s is not None]
        return f"{self.name}({', '.join(parts)})"


def worker_keys(key: jax.Array, n: int) -> jax.Array:
    """n keys, worker i's is ``fold_in(key, i)``: the same whatever the device layout."""
    return jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(n))


def compress_rows(compressor: Compressor, key: jax.Array, X: jax.Array) -> jax.Array:
    """Compress each row of an (n, d) stack with its own key (worker i uses ``fold_in(key, i)``)."""
    return jax.vmap(compressor.compress)(worker_keys(key, X.shape[0]), X)


def check_range(name: str, arg: str, value, low, high, low_open=False, high_open=False, integer=False):
    """Raise a clear ValueError unless ``value`` lies in the interval (checked in Python, before compiling)."""
    if isinstance(value, jax.core.Tracer):
        return value
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: {arg} must be a number, got {value!r}.") from None
    bad = (v < low or (low_open and v == low)) or (v > high or (high_open and v == high))
    if integer and v != int(v):
        bad = True
    if bad or v != v:
        lo = "(" if low_open or low == -float("inf") else "["
        hi = ")" if high_open or high == float("inf") else "]"
        kind = "an integer" if integer else "a number"
        raise ValueError(f"{name}: {arg} must be {kind} in {lo}{low}, {high}{hi}, got {value!r}.")
    return value
