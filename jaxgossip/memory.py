"""How many bytes a run needs, from the shapes alone (``jax.eval_shape``: nothing runs or compiles).

The parts are what the run keeps for n workers: the stacked parameters X (n, d), the optimizer state, the model state
(BatchNorm statistics), the rest of the algorithm's state (compressors' replicas, error memories, trackers) and the
problem's data. A step also holds a new state and the gradients next to the old state, so the check against the
device counts three copies of the per-worker state; activations inside a step are not counted (XLA reuses their
buffers and they depend on the batch, not on n d).
"""

from __future__ import annotations

import os

import jax
import numpy as np

__all__ = ["estimate", "device_limit", "check_fits", "LIVE_COPIES"]

#: Copies of the per-worker state alive inside one step (state, new state, gradients and messages).
LIVE_COPIES = 3


def _bytes(tree) -> int:
    return int(sum(int(np.prod(a.shape)) * np.dtype(a.dtype).itemsize for a in jax.tree.leaves(tree)
                   if hasattr(a, "shape") and hasattr(a, "dtype") and not jax.dtypes.issubdtype(a.dtype,
                                                                                                 jax.dtypes.prng_key)))


def estimate(prep) -> dict:
    """Bytes of each part of a prepared run: ``params``, ``optimizer``, ``model_state``, ``other_state`` (the
    compressors' and trackers' state), ``state`` (all the per-worker state), ``data`` and ``total`` (data plus
    LIVE_COPIES times the state)."""
    from jaxgossip.simulate import initial_model_state, state_shapes

    shapes = state_shapes(prep)
    params = _bytes(getattr(shapes, "x", None))
    optimizer = _bytes(getattr(shapes, "opt", None))
    model_state = _bytes(initial_model_state(prep.problem))
    algo_state = _bytes(shapes)
    data = _bytes([a for a in jax.tree.leaves(prep.problem) if hasattr(a, "shape")])
    state = algo_state + model_state
    return {"params": params, "optimizer": optimizer, "model_state": model_state,
            "other_state": algo_state - params - optimizer, "state": state, "data": data,
            "total": data + LIVE_COPIES * state}


def device_limit() -> int:
    """The bytes one run may use: 90% of the first device's memory where it reports one (accelerators), else 90% of
    the host's RAM (CPU devices share it)."""
    try:
        stats = jax.devices()[0].memory_stats() or {}
    except Exception:  # noqa: BLE001 (CPU backends may not report)
        stats = {}
    if "bytes_limit" in stats:
        return int(0.9 * stats["bytes_limit"])
    try:
        return int(0.9 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError):  # pragma: no cover
        return 1 << 40


def _mib(b: int) -> str:
    return f"{b / 2**20:.1f} MiB"


def check_fits(prep, limit=None) -> dict:
    """Raise a ValueError with the numbers when the run will not fit ``limit`` bytes (default :func:`device_limit`)."""
    est = estimate(prep)
    limit = device_limit() if limit is None else int(limit)
    if est["total"] > limit:
        n, d = prep.problem.n, prep.problem.d
        raise ValueError(
            f"simulate: the run does not fit: it needs about {_mib(est['total'])} (n={n} workers x d={d}: parameters "
            f"{_mib(est['params'])}, optimizer state {_mib(est['optimizer'])}, model state {_mib(est['model_state'])}, "
            f"other algorithm state {_mib(est['other_state'])}, {LIVE_COPIES} live copies, data {_mib(est['data'])}) "
            f"but {_mib(limit)} are available. Use fewer workers, a smaller model or data set, or more devices.")
    return est
