"""The algorithm record: ``init`` / ``step`` pure functions built by a factory, hyperparameters traced.

An :class:`Algorithm` is a pytree whose leaves are its hyperparameters (``hyper``: learning rate, consensus step,
compressor parameters, ...), so ``simulate`` passes it into the compiled loop as an argument and ``sweep`` vmaps over
a stack of them. The step function, the name and the communication pattern are static; step functions live at module
level so that two algorithms built with different hyperparameter values share one compiled program.

Contract:
  ``init_fn(hyper, X0, ctx) -> state``: X0 is the (n, d) stack of initial models; state is a NamedTuple with field ``x``
  (the (n, d) models the metrics read).
  ``step_fn(hyper, state, key, ctx) -> (state, Cost)``: one iteration for the whole stack. ``key`` is the step's key;
  per-worker keys are ``fold_in(key, i)``. Cost says what was sent (bits, all workers) and how long the step took in
  simulated seconds (``ctx.pricing`` prices the standard patterns).
"""

from __future__ import annotations

import math

from typing import Any, Callable, NamedTuple

import jax
import numpy as np
from jaxgossip import _pytree as struct
from jaxgossip._host import to_device
from jaxgossip.compressors._base import check_range

from jaxgossip.cost import Pricing
from jaxgossip.gossip import Mixing
from jaxgossip.problems._base import Problem

__all__ = ["Algorithm", "Context", "split_key", "local_direction", "init_optimizer", "KINDS"]

#: ``decentralized`` algorithms gossip over the topology; ``centralized`` ones average exactly (AllReduce or server);
#: ``star`` ones talk to one server.
KINDS = ("decentralized", "centralized", "star")


class Context(NamedTuple):
    """What a step may read besides its state: the problem (data, gradient oracle), this step's mixing operator,
    the pricing of messages, and the step counter t (0-based, traced)."""

    problem: Problem
    mixing: Mixing
    pricing: Pricing
    t: jax.Array


@struct.dataclass
class Algorithm:
    """An algorithm: traced hyperparameters plus static init/step functions.

    Attributes:
      hyper: dict of traced hyperparameters (may hold a Compressor, itself a pytree).
      name: static name.
      init_fn, step_fn: static pure functions (see the module docstring).
      kind: static, one of KINDS.
      optimizer: static optax transformation giving the local update direction at unit step size, or None for SGD.
      check_fn: optional static ``check_fn(algorithm, problem, topology)`` that ``simulate`` calls before compiling
        (e.g. to warn when a theoretical condition fails); None for no check.
    """

    hyper: dict
    name: str = struct.field(pytree_node=False)
    init_fn: Callable = struct.field(pytree_node=False)
    step_fn: Callable = struct.field(pytree_node=False)
    kind: str = struct.field(pytree_node=False, default="decentralized")
    optimizer: Any = struct.field(pytree_node=False, default=None)
    check_fn: Callable | None = struct.field(pytree_node=False, default=None)

    def init(self, X0, ctx):
        return self.init_fn(self, X0, ctx)

    def step(self, state, key, ctx):
        return self.step_fn(self, state, key, ctx)

    def replace_hyper(self, **kwargs) -> "Algorithm":
        """A copy with some hyperparameters changed (same static structure, so no recompile)."""
        unknown = set(kwargs) - set(self.hyper)
        if unknown:
            raise ValueError(f"{self.name}: unknown hyperparameters {sorted(unknown)}; it has {sorted(self.hyper)}.")
        hyper = dict(self.hyper)
        hyper.update({k: to_device(v, np.float32) if isinstance(v, (int, float)) else v for k, v in kwargs.items()})
        return self.replace(hyper=hyper)

    def __repr__(self) -> str:
        parts = []
        for k, v in self.hyper.items():
            try:
                parts.append(f"{k}={float(v):g}")
            except (TypeError, ValueError):
                parts.append(f"{k}={v!r}")
        return f"{self.name}({', '.join(parts)})"


def split_key(key, n=2):
    return jax.random.split(key, n)


def init_optimizer(optimizer, X):
    """Per-worker optax state for the stack (an empty tuple for plain SGD)."""
    if optimizer is None:
        return ()
    return jax.vmap(optimizer.init)(X)


def local_direction(optimizer, G, opt_state, X):
    """The local update direction U (to be scaled by -lr): the gradient itself for SGD, else the optax transform's."""
    if optimizer is None:
        return G, opt_state
    U, opt_state = jax.vmap(optimizer.update)(G, opt_state, X)
    return U, opt_state


def as_float(name: str, arg: str, value, low=None, high=None, low_open=True, high_open=False):
    """A hyperparameter as a float32 array, range-checked in Python (clear errors before compiling); see
    :func:`jaxgossip.compressors._base.check_range`. ``None`` bounds are unbounded."""
    if isinstance(value, jax.core.Tracer):
        return value
    lo, hi = -math.inf if low is None else low, math.inf if high is None else high
    check_range(name, arg, value, lo, hi, low_open=low_open and low is not None, high_open=high_open and high is not None)
    return to_device(float(value), np.float32)


def check_optimizer(name, optimizer):
    if optimizer is None:
        return None
    import optax  # only when one is given: optax takes ~0.1 s to import

    if not isinstance(optimizer, optax.GradientTransformation):
        raise ValueError(f"{name}: optimizer must be an optax.GradientTransformation or None, got {type(optimizer).__name__}.")
    return optimizer
