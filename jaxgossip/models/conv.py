"""Convolution as im2col and one matrix product: how n workers' convolutions become one batched matmul.

``jax.vmap`` of ``lax.conv_general_dilated`` over the workers' inputs *and* kernels becomes a grouped convolution
(``feature_group_count = n``), which XLA's CPU backend runs several times slower than n separate convolutions
(``benchmarks/README.md``, item 9). Written as im2col instead (the input's windows gathered by strided slices into a
``(B, out..., k1*...*kr*C_in)`` array, then one ``dot_general`` with the kernel reshaped to ``(k1*...*kr*C_in,
C_out)``), the same vmap becomes one *batched* matrix product per layer, ``(n, B*out, K) x (n, K, C_out)``, which the
CPU runs at matmul speed; its gradient is again slices, pads and batched matmuls. The numbers are the convolution's
(the same sums in another order: equal to float32 rounding, tested in ``tests/test_conv_lowering.py``).

:func:`im2col_conv` has ``lax.conv_general_dilated``'s signature, so any flax convolution takes it::

    nn.Conv(32, (3, 3), conv_general_dilated=jg.models.im2col_conv)          # linen
    nnx.Conv(16, 32, (3, 3), conv_general_dilated=jg.models.im2col_conv, rngs=rngs)  # nnx

and :func:`conv_fn` picks the lowering per backend, which the zoo's models do (``conv="auto"``): im2col on CPU and GPU
(on an H200, XLA's vmapped convolution, a grouped one, took 1.1-3.1x im2col's time for every LeNet-5 and ResNet-20 shape
measured: benchmarks/RESULTS-gpu.md), XLA's own convolution on TPU (not measured). That fixed rule is the fallback: a problem built by :func:`jaxgossip.problems.from_flax` with a model (or
``conv=``) left at ``"auto"`` times both lowerings for its real shapes on the device at hand, once, and fixes the
fastest on the model (:mod:`jaxgossip.lowering`).
"""

from __future__ import annotations

import itertools
import math

import jax
import numpy as np
from jax import lax

__all__ = ["im2col_conv", "conv_fn", "LOWERINGS", "resolve"]

#: The convolution lowerings a zoo model's ``conv`` attribute takes.
LOWERINGS = ("auto", "im2col", "xla")


def resolve(lowering: str = "auto", backend: str | None = None) -> str:
    """``"im2col"`` or ``"xla"``: ``"auto"`` is im2col on the CPU and GPU backends and XLA's convolution elsewhere
    (TPU): the platform rule, used where ``JAXGOSSIP_LOWERING=platform``; ``from_flax`` measures instead, see
    :mod:`jaxgossip.lowering`. On an H200 the measurement picked im2col for LeNet-5 (n = 4, 16) and ResNet-20 (n = 1
    to 64) every time, XLA's vmapped (grouped) convolution taking 1.1-3.1x as long (benchmarks/RESULTS-gpu.md)."""
    if lowering not in LOWERINGS:
        raise ValueError(f"conv must be one of {LOWERINGS}, got {lowering!r}.")
    if lowering != "auto":
        return lowering
    return "im2col" if (backend or jax.default_backend()) in ("cpu", "gpu", "cuda", "rocm") else "xla"


def conv_fn(lowering: str = "auto"):
    """The ``conv_general_dilated`` function of a lowering (see :func:`resolve`), for ``nn.Conv(...,
    conv_general_dilated=conv_fn(lowering))``."""
    return im2col_conv if resolve(lowering) == "im2col" else lax.conv_general_dilated


def _all_ones(v):
    return v is None or all(int(a) == 1 for a in v)


def im2col_conv(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None, dimension_numbers=None,
                feature_group_count=1, batch_group_count=1, precision=None, preferred_element_type=None,
                out_sharding=None):
    """``lax.conv_general_dilated`` computed as im2col (strided slices) and one ``dot_general``.

    Any number of spatial dimensions, strides, explicit or ``"SAME"``/``"VALID"`` padding, kernel dilation and any
    dimension numbers. Transposed convolutions (``lhs_dilation``) and grouped ones (``feature_group_count`` or
    ``batch_group_count`` > 1) and ones with an ``out_sharding`` are handed to ``lax.conv_general_dilated``
    unchanged.
    """
    if (not _all_ones(lhs_dilation) or feature_group_count != 1 or batch_group_count != 1
            or out_sharding is not None):
        extra = {} if out_sharding is None else {"out_sharding": out_sharding}
        return lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                                        dimension_numbers, feature_group_count, batch_group_count, precision,
                                        preferred_element_type, **extra)
    dn = lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
    x = lax.transpose(lhs, (dn.lhs_spec[0], *dn.lhs_spec[2:], dn.lhs_spec[1]))  # (B, spatial..., C_in)
    w = lax.transpose(rhs, (*dn.rhs_spec[2:], dn.rhs_spec[1], dn.rhs_spec[0]))  # (k..., C_in, C_out)
    rank = x.ndim - 2
    kernel = w.shape[:rank]
    strides = tuple(window_strides) if window_strides is not None else (1,) * rank
    dilation = (1,) * rank if rhs_dilation is None else tuple(int(a) for a in rhs_dilation)
    spread = tuple((k - 1) * r + 1 for k, r in zip(kernel, dilation))
    if isinstance(padding, str):
        padding = lax.padtype_to_pads(x.shape[1:-1], spread, strides, padding)
    pads = [(0, 0, 0)] + [(int(lo), int(hi), 0) for lo, hi in padding] + [(0, 0, 0)]
    if any(lo or hi for lo, hi, _ in pads):
        x = lax.pad(x, np.zeros((), x.dtype), pads)
    out = tuple((size - s) // st + 1 for size, s, st in zip(x.shape[1:-1], spread, strides))
    windows = []
    for offset in itertools.product(*(range(k) for k in kernel)):
        start = (0, *(o * r for o, r in zip(offset, dilation)), 0)
        limit = (x.shape[0], *(b + (m - 1) * st + 1 for b, m, st in zip(start[1:-1], out, strides)), x.shape[-1])
        windows.append(lax.slice(x, start, limit, (1, *strides, 1)))
    patches = windows[0] if len(windows) == 1 else lax.concatenate(windows, x.ndim - 1)
    w = w.reshape(math.prod(kernel) * w.shape[-2], w.shape[-1])
    y = lax.dot_general(patches, w, (((x.ndim - 1,), (0,)), ((), ())), precision=precision,
                        preferred_element_type=preferred_element_type)  # (B, out..., C_out)
    return lax.transpose(y, tuple(int(a) for a in np.argsort((dn.out_spec[0], *dn.out_spec[2:], dn.out_spec[1]))))
