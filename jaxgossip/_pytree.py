"""Frozen dataclasses that are pytrees: ``flax.struct``'s two names, built on ``jax.tree_util.register_dataclass``.

The records of the simulator (Problem, Algorithm, Compressor, Mixing, Network, ...) hold traced arrays plus static
fields (names, functions, shapes). jax registers such dataclasses itself, so the core imports no flax (importing
``flax.struct`` loads flax's whole package, ~0.3 s of every start).
"""

from __future__ import annotations

import dataclasses

import jax

__all__ = ["dataclass", "field"]


def field(pytree_node: bool = True, **kwargs):
    """A dataclass field; ``pytree_node=False`` makes it static (part of the compiled program's cache key)."""
    return dataclasses.field(metadata={"static": not pytree_node, **kwargs.pop("metadata", {})}, **kwargs)


def dataclass(cls):
    """A frozen dataclass registered as a pytree (non-static fields are its leaves), with ``.replace(**changes)``."""
    cls = dataclasses.dataclass(frozen=True)(cls)
    cls.replace = lambda self, **changes: dataclasses.replace(self, **changes)
    return jax.tree_util.register_dataclass(cls)
