"""The compressor record: pure functions with an explicit key, and an honest bit count.

A compressor maps one d-vector to its decoded message, ``compress(key, x) -> x_hat`` (same shape), and says how many
bits that message costs on the wire, ``bits(d)``: values, indices, scales and norms all counted. Parameters a user
sweeps (bits, levels, p, ...) live in ``params`` and are traced: a :class:`Compressor` is a pytree whose leaves are
those parameters, so passing it into a jitted function and vmapping over a stack of them is a sweep, not a recompile.
The functions, the name and the ``unbiased`` flag are static.

Liu & Zhang (survey) Sec. 3.1-3.2 give the unbiased family (E[C(x)] = x) and the biased one.

The contract each compressor declares (what algorithms may rely on), both for a d-vector and from the traced params:

* ``unbiased`` with variance ``omega(d)``: E[C(x)] = x and E||C(x) - x||^2 <= omega ||x||^2 (QSGD: min(d / s^2,
  sqrt(d) / s); scaled random-k: d / k - 1; ...). None when no such relative bound holds (``low_precision``,
  ``bounded``: their error is absolute, not relative to ||x||).
* contractive with ``delta(d)``: E||C(x) - x||^2 <= (1 - delta) ||x||^2, delta in (0, 1] (top-k: k / d; the scaled sign:
  1 / d; ...). None when the compressor is not known to contract.

Koloskova, Stich, Jaggi (ICML 2019, Sec. 3, and epfml/ChocoSGD's ``qsgd-biased`` / ``random-biased``) turn an unbiased
compressor of variance omega into a contraction by rescaling, C(x) / (1 + omega), which has delta = 1 / (1 + omega):
:meth:`Compressor.to_contraction` does this (``rescaled=True``), computing the scale inside ``compress`` from the
traced params, so a sweep over ``levels`` rescales each point by its own omega. The algorithms that need a contraction
(CHOCO-SGD, DeepSqueeze, BEER) call it in their factories and refuse, with a ValueError, a compressor that has neither
a contraction nor a variance bound.

Which vectors a compressor can act on: :meth:`Compressor.check` ``(d)`` raises a ValueError when it cannot act on a
d-vector (top-k / random-k with k > d); ``simulate`` calls it before compiling.

Range of inputs. Finite vectors of any shape, with entries of magnitude from 1e-30 to 1e30 (zeros, constants, mixed
magnitudes included), give finite messages of the same shape and dtype, whose content fits the counted bits
(``tests/test_properties.py`` draws such vectors). Norms are computed scaled (``_util.norm2``), so QSGD, the
norm-scaled sign and the bounded encoder neither overflow above ~1e19 nor underflow below ~1e-19.

Non-finite input is not rejected: a compressor runs traced inside the compiled step and cannot raise on its input's
values. A NaN or an inf in x makes the message non-finite for ``identity``, ``quantize``, ``qsgd``, ``sign``,
``terngrad``, ``clip_low_bits``, ``top_k`` (a NaN or inf has the largest magnitude, so it is always kept) and
``bounded``; ``low_precision`` keeps a NaN but saturates an inf to its range end (as fixed-point hardware does); the
sparsifiers ``sparsify`` and ``random_k`` may drop the entry (they choose coordinates without looking at values). The
sender's own model keeps the non-finite value either way, and ``simulate``'s divergence detection stops a run whose
loss becomes non-finite.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jaxgossip import _pytree as struct
from jaxgossip._eager import traced

__all__ = ["Compressor", "compress_rows", "worker_keys", "FLOAT_BITS", "check_range", "rescaled_repr"]

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
      check_fn: static optional ``check_fn(d, *static, **params)`` raising a ValueError when the compressor cannot
        act on a d-vector (top-k's k > d); see :meth:`check`.
      omega_fn: static optional ``omega_fn(d, *static, **params)``: the variance bound omega of an unbiased
        compressor, E||C(x) - x||^2 <= omega ||x||^2 (see :meth:`omega`); None when no relative bound is known.
      delta_fn: static optional ``delta_fn(d, *static, **params)``: the contraction delta, E||C(x) - x||^2 <=
        (1 - delta) ||x||^2 (see :meth:`delta`); None when the compressor is not known to contract.
      rescaled: static flag, True for the rescaling C(x) / (1 + omega(d)) of an unbiased compressor (Koloskova et al.
        2019), built by :meth:`to_contraction`: a biased contraction with delta = 1 / (1 + omega).
      given: static flag set by :func:`as_given`: an algorithm that needs a contraction uses this compressor as it
        is, outside its theory (recorded: the repr reads ``as_given(...)``).
    """

    params: dict
    name: str = struct.field(pytree_node=False)
    fn: Callable = struct.field(pytree_node=False)
    bits_fn: Callable = struct.field(pytree_node=False)
    unbiased: bool = struct.field(pytree_node=False, default=True)
    static: tuple = struct.field(pytree_node=False, default=())
    check_fn: Callable | None = struct.field(pytree_node=False, default=None)
    omega_fn: Callable | None = struct.field(pytree_node=False, default=None)
    delta_fn: Callable | None = struct.field(pytree_node=False, default=None)
    rescaled: bool = struct.field(pytree_node=False, default=False)
    given: bool = struct.field(pytree_node=False, default=False)

    def compress(self, key: jax.Array, x: jax.Array) -> jax.Array:
        """Compress and decode one vector x (any shape; treated as flat); divided by 1 + omega(d) when rescaled.

        Called outside a trace (eagerly, as in a notebook), it runs as one compiled program per compressor and
        shape instead of one compilation per operation (the same operations, compiled together as inside a run's
        step, so a value may differ from an op-by-op evaluation in its last bit); inside a trace it is inlined."""
        if traced(key, x, self):
            return self._compress(key, x)
        x = jnp.asarray(x)
        if x.size:
            self.check(int(x.size))  # the eager call's own error for a vector it cannot act on, before compiling
        return _compress_compiled(self, key, x)

    def _compress(self, key: jax.Array, x: jax.Array) -> jax.Array:
        out = self.fn(key, x, *self.static, **self.params)
        if self.rescaled:
            out = out / jnp.asarray(1.0 + self.omega_fn(x.size, *self.static, **self.params), out.dtype)
        return out

    __call__ = compress

    def bits(self, d: int) -> Any:
        """Bits of one message carrying a compressed d-vector."""
        return self.bits_fn(d, *self.static, **self.params)

    def check(self, d) -> "Compressor":
        """Raise a clear ValueError unless this compressor can act on a d-vector; returns the compressor.

        ``d`` must be a positive integer; then the compressor's own condition applies (``top_k`` / ``random_k``:
        k <= d). Concrete parameters are checked; traced ones (inside jit or a sweep's vmap) are skipped, so the
        caller (``simulate``'s validation, before compiling) checks the concrete compressor.
        """
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1:
            raise ValueError(f"{self.name}: the vector length d must be a positive integer, got {d!r}.")
        if self.check_fn is not None:
            self.check_fn(int(d), *self.static, **self.params)
        return self

    def omega(self, d: int) -> Any:
        """The variance bound of an unbiased compressor on a d-vector: E[C(x)] = x and E||C(x) - x||^2 <= omega ||x||^2
        (a float or, for traced params, a traced scalar). None when the compressor is biased (a rescaled one included)
        or no bound relative to ||x|| holds."""
        if not self.unbiased or self.omega_fn is None:
            return None
        return self.omega_fn(int(d), *self.static, **self.params)

    def delta(self, d: int) -> Any:
        """The contraction on a d-vector: E||C(x) - x||^2 <= (1 - delta) ||x||^2, delta in (0, 1]; 1 / (1 + omega(d))
        for a rescaled compressor. None when the compressor is not known to contract."""
        if self.rescaled:
            return 1.0 / (1.0 + self.omega_fn(int(d), *self.static, **self.params))
        if self.delta_fn is None:
            return None
        return self.delta_fn(int(d), *self.static, **self.params)

    @property
    def contractive(self) -> bool:
        """True when :meth:`delta` is known (static: it does not depend on the traced params)."""
        return self.rescaled or self.delta_fn is not None

    def to_contraction(self, who: str = "this algorithm") -> "Compressor":
        """A contractive version of this compressor, for algorithms that need E||C(x) - x||^2 <= (1 - delta) ||x||^2.

        A contraction is returned as it is; an unbiased compressor of known variance omega is rescaled to
        C(x) / (1 + omega(d)) (Koloskova, Stich, Jaggi, ICML 2019, Sec. 3: delta = 1 / (1 + omega); epfml/ChocoSGD's
        ``qsgd-biased`` and ``random-biased``), the scale computed inside ``compress`` from the (traced) params. Its
        bits are the original message's: both ends know omega(d), so nothing more is sent.

        Raises:
          ValueError: neither a contraction nor an unbiased compressor with a known omega (the message names
            ``who``).
        """
        if self.contractive or self.given:
            return self
        if self.unbiased and self.omega_fn is not None:
            return self.replace(rescaled=True, unbiased=False)
        kind = "unbiased, but its error is not bounded relative to ||x|| (no omega)" if self.unbiased else \
            "biased and not known to be a contraction"
        raise ValueError(
            f"{who}: needs a contractive compressor, E||C(x) - x||^2 <= (1 - delta) ||x||^2 (or an unbiased one of "
            f"known variance omega, which it rescales by 1 / (1 + omega) as Koloskova et al. 2019 do); {self!r} is "
            f"{kind}. Use e.g. top_k(fraction=0.1), sign(), random_k(fraction=0.1), qsgd(levels=4) or "
            f"quantize(bits=4, bucket=64).")

    def ratio(self, d: int) -> Any:
        """Compressed size as a fraction of a float32 message (the slides' c)."""
        return self.bits(d) / (FLOAT_BITS * d)

    def __repr__(self) -> str:
        shown = {k: (float(v) if jnp.ndim(v) == 0 and not isinstance(v, jax.core.Tracer) else v) for k, v in self.params.items()}
        parts = [f"{k}={_exact(v)}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items()]
        parts += [str(s) for s in self.static if s is not None]
        return rescaled_repr(self, f"{self.name}({', '.join(parts)})")


def _exact(v: float) -> str:
    """A parameter as short as ``:g`` prints it when that names the same float32, else every digit float32 has (so
    two compressors that differ in a parameter never share a repr, and so a ``Result.config``)."""
    short = f"{v:g}"
    return short if np.float32(short) == np.float32(v) else str(np.float32(v))


def rescaled_repr(compressor, text: str) -> str:
    """``text``, or for a rescaled compressor ``text / (1 + omega(d))``: the scaling is part of the compressor's repr,
    so ``Result.config`` records it (``qsgd(levels=4) / (1 + omega(d))``); ``as_given(text)`` for :func:`as_given`."""
    if getattr(compressor, "given", False):
        return f"as_given({text})"
    return f"{text} / (1 + omega(d))" if compressor.rescaled else text


def as_given(compressor: "Compressor") -> "Compressor":
    """The compressor, to be used as it is by the algorithms that need a contraction (CHOCO-SGD, DeepSqueeze, BEER,
    EF21), which otherwise rescale an unbiased compressor by 1 / (1 + omega) or refuse one without a bound.

    This is the explicit opt-out for experiments outside those algorithms' theory, such as the DeepSqueeze slides'
    unscaled 2-bit quantizer; the run's ``Result.config`` records it (the compressor's repr reads ``as_given(...)``).

    Raises:
      ValueError: ``compressor`` is not a :class:`Compressor`.
    """
    if not isinstance(compressor, Compressor):
        raise ValueError(f"as_given: compressor must be a jg.compressors.Compressor, got {type(compressor).__name__}.")
    return compressor.replace(given=True)


def worker_keys(key: jax.Array, n: int) -> jax.Array:
    """n keys, worker i's is ``fold_in(key, i)``: the same whatever the device layout."""
    return jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(n))


@jax.jit
def _compress_compiled(compressor: Compressor, key: jax.Array, x: jax.Array) -> jax.Array:
    return compressor._compress(key, x)


def compress_rows(compressor: Compressor, key: jax.Array, X: jax.Array) -> jax.Array:
    """Compress each row of an (n, d) stack with its own key (worker i uses ``fold_in(key, i)``)."""
    return jax.vmap(compressor.compress)(worker_keys(key, X.shape[0]), X)


def check_range(name: str, arg: str, value, low, high, low_open=False, high_open=False, integer=False):
    """Raise a clear ValueError unless ``value`` lies in the interval (checked in Python, before compiling)."""
    if isinstance(value, jax.core.Tracer):
        return value
    if isinstance(value, (bool, np.bool_, str, bytes)):  # float("4") and float(True) would pass
        raise ValueError(f"{name}: {arg} must be a number, got {value!r}.")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: {arg} must be a number, got {value!r}.") from None
    bad = (v < low or (low_open and v == low)) or (v > high or (high_open and v == high))
    if integer and not (math.isfinite(v) and v == int(v)):
        bad = True
    if bad or v != v:
        lo = "(" if low_open or low == -float("inf") else "["
        hi = ")" if high_open or high == float("inf") else "]"
        kind = "an integer" if integer else "a number"
        raise ValueError(f"{name}: {arg} must be {kind} in {lo}{low}, {high}{hi}, got {value!r}.")
    return value
