"""Error feedback: a combinator that makes any compressor remember and resend what it dropped.

Each sender keeps an error e (the part of its past messages the compressor lost). To send x it compresses
v = x + e, sends C(v), and keeps e' = v - C(v). Summed over steps, what was sent equals what was meant to be sent up
to the last residual: sum_t C(v_t) = sum_t x_t + e_0 - e_T. This is what lets biased compressors (sign, top-k)
converge in EC-SGD / DoubleSqueeze and DeepSqueeze.

An :class:`ErrorFeedback` is *not* a :class:`~jaxgossip.compressors.Compressor`: its ``compress`` takes and returns
the error state, so no algorithm takes one as its ``compressor`` (and it is not in ``jg.compressors.REGISTRY`` nor in
``jaxgossip list``). It is the building block of the error-compensated algorithms, which thread that state
themselves and take the plain compressor: ``jg.algorithms.ec_sgd(compressor=top_k(k=10))`` (EC-SGD / DoubleSqueeze)
and ``jg.algorithms.deepsqueeze(compressor=sign())``. Use it directly to write such an algorithm.

Usage (the error is explicit state, threaded by the caller like any other state)::

    ef = jg.compressors.with_error_feedback(jg.compressors.top_k(k=10))
    E = ef.init_rows(X)                       # (n, d) zeros, one error per worker
    Xhat, E = ef.compress_rows(key, X, E)     # worker i uses fold_in(key, i), as compress_rows does
    x_hat, e = ef.compress(key, x, e)         # one vector

References:
  Liu & Zhang (survey), Sec. 3.3 (EC-SGD, the error-compensation rule delta <- v - Q(v), Lemma 3.4.1);
  Seide et al. 2014 (1-bit SGD); Karimireddy et al. 2019 (EF-SGD); Tang et al. 2019 (DeepSqueeze).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxgossip import _pytree as struct

from jaxgossip.compressors._base import Compressor, worker_keys

__all__ = ["ErrorFeedback", "with_error_feedback"]


@struct.dataclass
class ErrorFeedback:
    """A compressor with error feedback. A pytree: its leaves are the wrapped compressor's traced params.

    Attributes:
      compressor: the wrapped :class:`Compressor`.
    """

    compressor: Compressor

    @property
    def name(self) -> str:
        return f"ef_{self.compressor.name}"

    @property
    def unbiased(self) -> bool:
        """False: the message C(x + e) is not an unbiased estimate of x (error feedback trades bias for memory)."""
        return False

    def init(self, x, dtype=jnp.float32) -> jax.Array:
        """A zero error shaped like ``x``: an array (its shape and dtype) or a shape tuple (with ``dtype``)."""
        if isinstance(x, tuple):
            return jnp.zeros(x, dtype)
        return jnp.zeros_like(x)

    def init_rows(self, X, dtype=jnp.float32) -> jax.Array:
        """Zero errors for an (n, d) stack (or an (n, d) shape tuple): one error row per worker."""
        return self.init(X, dtype)

    def compress(self, key: jax.Array, x: jax.Array, error: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Send x with error feedback: returns (C(x + error), x + error - C(x + error))."""
        v = x + error
        x_hat = self.compressor.compress(key, v)
        return x_hat, v - x_hat

    def compress_rows(self, key: jax.Array, X: jax.Array, E: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Row-wise :meth:`compress` for an (n, d) stack with its (n, d) errors; worker i uses ``fold_in(key, i)``."""
        return jax.vmap(self.compress)(worker_keys(key, X.shape[0]), X, E)

    def check(self, d) -> "ErrorFeedback":
        """The wrapped compressor's :meth:`~jaxgossip.compressors.Compressor.check` (a ValueError if it cannot act on
        a d-vector); returns self."""
        self.compressor.check(d)
        return self

    def bits(self, d: int):
        """Bits of one message: the wrapped compressor's (the error never travels)."""
        return self.compressor.bits(d)

    def ratio(self, d: int):
        return self.compressor.ratio(d)

    def __repr__(self) -> str:
        return f"with_error_feedback({self.compressor!r})"


def with_error_feedback(compressor: Compressor | None = None) -> ErrorFeedback:
    """Wrap a compressor with error feedback (survey Sec. 3.3): send C(x + e), keep e <- x + e - C(x + e).

    The result is a building block for writing error-compensated algorithms, not a compressor to pass to one: the
    algorithms that use error feedback (``ec_sgd``, ``doublesqueeze``, ``deepsqueeze``) take the plain compressor.

    Args:
      compressor: any :class:`Compressor` (biased ones such as ``sign()`` or ``top_k(k)`` are the usual choice).

    Returns:
      An :class:`ErrorFeedback` with ``init`` / ``init_rows`` (zero errors), ``compress(key, x, e) -> (x_hat, e)``,
      ``compress_rows(key, X, E) -> (Xhat, E)`` and ``bits(d)``.
    """
    if isinstance(compressor, ErrorFeedback):
        raise ValueError("with_error_feedback: compressor already has error feedback; wrap a plain Compressor.")
    if not isinstance(compressor, Compressor):
        raise ValueError(f"with_error_feedback: compressor must be a jg.compressors.Compressor (e.g. sign(), "
                         f"top_k(k=10)), got {type(compressor).__name__}.")
    return ErrorFeedback(compressor)
