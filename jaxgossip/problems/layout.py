"""A model's parameter pytree <-> one flat d-vector (a row of the (n, d) stack), with the layers kept visible.

Algorithms and compressors see one flat d-vector per worker; a network's parameters are a pytree. :class:`Layout`
is the static map between the two: the tree structure, each leaf's name, shape, dtype, size and offset in the flat
vector. ``unravel`` is static slices plus reshapes (what ``jax.flatten_util.ravel_pytree`` does), and the segments
let layerwise compressors and users see the layers (epfml/ChocoSGD's ``tensor_buffer`` keeps the same offsets).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["Layout", "Segment"]


@dataclasses.dataclass(frozen=True)
class Segment:
    """One parameter tensor inside the flat vector: ``x[offset : offset + size].reshape(shape)``."""

    name: str
    shape: tuple
    offset: int
    size: int


def _path_name(path) -> str:
    parts = []
    for p in path:
        for attr in ("key", "name", "idx"):
            if hasattr(p, attr):
                parts.append(str(getattr(p, attr)))
                break
        else:
            parts.append(str(p))
    parts = [p for p in parts if p != "value"]  # nnx Variables' own attribute
    return "/".join(parts) or "x"


@dataclasses.dataclass(frozen=True)
class Layout:
    """The static layout of a parameter pytree in a flat float32 vector.

    Attributes:
      treedef: the pytree structure of the parameters.
      segments: one :class:`Segment` per leaf, in the tree's leaf order.
      dtypes: the leaves' dtypes (restored by ``unravel``).
    """

    treedef: object
    segments: tuple
    dtypes: tuple

    @classmethod
    def of(cls, tree) -> "Layout":
        """The layout of ``tree`` (arrays or ShapeDtypeStructs as leaves)."""
        leaves_with_path, treedef = jax.tree_util.tree_flatten_with_path(tree)
        segments, offset = [], 0
        for path, leaf in leaves_with_path:
            shape = tuple(int(s) for s in np.shape(leaf))
            size = int(np.prod(shape, dtype=np.int64))
            segments.append(Segment(_path_name(path), shape, offset, size))
            offset += size
        dtypes = tuple(str(np.dtype(getattr(leaf, "dtype", np.float32))) for _, leaf in leaves_with_path)
        for (path, _), dt in zip(leaves_with_path, dtypes):
            if not np.issubdtype(np.dtype(dt), np.floating):
                raise TypeError(f"parameters must be floating point arrays; {_path_name(path)} is {dt}.")
        return cls(treedef, tuple(segments), dtypes)

    @property
    def d(self) -> int:
        return sum(s.size for s in self.segments)

    @property
    def names(self) -> tuple:
        return tuple(s.name for s in self.segments)

    def ravel(self, tree) -> jax.Array:
        """The flat float32 vector of a parameter tree (host NumPy in, NumPy out; device arrays in, device out)."""
        leaves = jax.tree.leaves(tree)
        if all(isinstance(a, np.ndarray) or np.isscalar(a) for a in leaves):
            return np.concatenate([np.asarray(a, np.float32).reshape(-1) for a in leaves]) if leaves else np.zeros(0, np.float32)
        return jnp.concatenate([jnp.asarray(a, jnp.float32).reshape(-1) for a in leaves])

    def unravel(self, x):
        """The parameter tree of a flat vector x (d,): static slices and reshapes."""
        leaves = [x[s.offset : s.offset + s.size].reshape(s.shape).astype(dt) for s, dt in zip(self.segments, self.dtypes)]
        return jax.tree.unflatten(self.treedef, leaves)

    def split(self, x) -> list:
        """The flat segments of x, one per parameter tensor."""
        return [x[s.offset : s.offset + s.size] for s in self.segments]

    def table(self):
        """A DataFrame with one row per parameter tensor: name, shape, size, offset."""
        import pandas as pd

        return pd.DataFrame([dataclasses.asdict(s) for s in self.segments])

    def __repr__(self) -> str:
        return f"Layout({len(self.segments)} tensors, d={self.d})"
