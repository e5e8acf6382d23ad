"""Per-sample losses for network problems: ``loss(outputs, y) -> (B,)`` losses of a batch of B samples.

Named losses (``loss="..."`` in :func:`jaxgossip.problems.from_flax` / ``from_function``):

* ``"cross_entropy"``: softmax cross-entropy of logits (B, K) against integer classes y (B,) in [0, K).
* ``"binary_logistic"``: logistic loss of one logit per sample, (B,) or (B, 1), against y in {0, 1}.
* ``"squared_error"``: half the squared error summed over each sample's outputs, ``0.5 ||out - y||^2``.

Any callable with the same signature may be passed instead (it must return one loss per sample).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["LOSSES", "cross_entropy", "binary_logistic", "squared_error", "get"]


def cross_entropy(out, y):
    """Softmax cross-entropy: ``-log softmax(out)[y]`` per sample."""
    logp = jax.nn.log_softmax(out, axis=-1)
    return -jnp.take_along_axis(logp, y.reshape(-1, 1).astype(jnp.int32), axis=-1)[:, 0]


def binary_logistic(out, y):
    """``log(1 + e^z) - y z`` for one logit z per sample."""
    z = out.reshape(out.shape[0])
    return jnp.logaddexp(0.0, z) - y.reshape(z.shape).astype(z.dtype) * z


def squared_error(out, y):
    """``0.5 ||out - y||^2`` per sample (outputs reshaped to the targets' shape)."""
    diff = out.reshape(y.shape) - y.astype(out.dtype)
    return 0.5 * jnp.sum(diff.reshape(diff.shape[0], -1) ** 2, axis=1)


LOSSES = {"cross_entropy": cross_entropy, "binary_logistic": binary_logistic, "squared_error": squared_error}
CLASSIFICATION = {"cross_entropy": True, "binary_logistic": True, "squared_error": False}


def get(loss, classification=None):
    """``(loss function, classification)`` for a loss name or callable; ``classification`` overrides the guess
    (a callable loss is taken as a regression loss unless told)."""
    if isinstance(loss, str):
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {sorted(LOSSES)} or a callable loss(outputs, y) -> (B,), got {loss!r}.")
        return LOSSES[loss], CLASSIFICATION[loss] if classification is None else bool(classification)
    if not callable(loss):
        raise ValueError(f"loss must be one of {sorted(LOSSES)} or a callable loss(outputs, y) -> (B,), got "
                         f"{type(loss).__name__}.")
    return loss, bool(classification)
