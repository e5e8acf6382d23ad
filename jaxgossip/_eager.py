"""Compiled when called eagerly: one program per shape instead of one per operation.

A function of jax operations called outside a trace (in a notebook, a test, a user's script) runs op by op, and jax
compiles each operation for its shapes the first time: a stochastic quantizer is some thirty of them, so every new
vector length costs thirty small compilations. :func:`compiled_when_eager` makes such a call one ``jax.jit`` program
(the same operations, the same numbers), and leaves a call from inside a trace (a run's compiled step, a vmap) as it is,
inlined into the caller's program.
"""

from __future__ import annotations

import functools

import jax

__all__ = ["compiled_when_eager", "traced"]


def traced(*args, **kwargs) -> bool:
    """Whether any array among the arguments (their pytree leaves) is a tracer: the call is inside a trace."""
    return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves((args, kwargs)))


def compiled_when_eager(fn=None, *, static_argnames=()):
    """Decorator: ``fn`` itself inside a trace; a cached ``jax.jit(fn, static_argnames=...)`` when called eagerly."""
    if fn is None:
        return functools.partial(compiled_when_eager, static_argnames=static_argnames)
    jitted = jax.jit(fn, static_argnames=static_argnames)

    @functools.wraps(fn)
    def call(*args, **kwargs):
        return fn(*args, **kwargs) if traced(*args, **kwargs) else jitted(*args, **kwargs)

    return call
