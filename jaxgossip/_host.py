"""Arrays built on the host and sent to the device whole.

``jnp.asarray(x, dtype)`` of a host array converts on the device, and jax compiles that conversion (and the transfer of
a non-canonical dtype) as a small program for every new shape: ~6 ms each, paid by every problem, topology or run of a
new size. NumPy converts on the host for nothing, and ``jax.device_put`` only copies.
"""

from __future__ import annotations

import jax
import numpy as np

__all__ = ["to_device"]


def to_device(x, dtype=None) -> jax.Array:
    """``x`` as a device array of ``dtype`` (default: jax's canonical dtype for x's, e.g. int64 -> int32 without x64),
    converted on the host. A device array that already has the dtype is returned as it is."""
    if isinstance(x, jax.Array) and (dtype is None or x.dtype == np.dtype(dtype)):
        return x
    a = np.asarray(x) if dtype is None else np.asarray(x, dtype)
    return jax.device_put(a.astype(jax.dtypes.canonicalize_dtype(a.dtype), copy=False))
