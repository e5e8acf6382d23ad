"""Parameter counts of a flax module without running it: ``jax.eval_shape`` of its ``init``."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

__all__ = ["param_count"]


def param_count(module, input_shape) -> int:
    """The number of trainable parameters (the ``params`` collection) of a linen module on inputs of one shape.

    Nothing is computed or compiled: ``jax.eval_shape`` traces ``module.init`` abstractly. Mutable collections such as
    BatchNorm's ``batch_stats`` are model state, not parameters, and are not counted (nor are they in the (n, d)
    stack that ``jg.problems.from_flax`` builds: its ``d`` equals this count).

    Args:
      module: a ``flax.linen.Module`` whose ``__call__(x, train=False)`` takes a batch ``(B, *input_shape)``.
      input_shape: the shape of one sample, without the batch axis, e.g. ``(28, 28, 1)`` or ``(40, 1)``.

    Returns:
      The total number of scalars in ``params``.
    """
    shape = tuple(int(s) for s in input_shape)
    x = jax.ShapeDtypeStruct((1,) + shape, jnp.float32)
    variables = jax.eval_shape(lambda k, x: module.init(k, x), jax.random.key(0), x)
    return int(sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(variables.get("params", {}))))
