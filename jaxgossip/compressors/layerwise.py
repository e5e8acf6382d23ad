"""Compression per layer: any compressor applied to each parameter tensor of the model separately.

QSGD-style per-layer scaling and top-k per layer (Alistarh et al. 2017, Sec. 3.1 and 5: "we quantize each layer
separately"; epfml/ChocoSGD's ``tensor_buffer`` compresses each tensor's slice and sums the bits): the flat d-vector
is cut at the layout's offsets, segment l is compressed with key ``fold_in(key, l)``, and one message carries every
segment, so its bits are the sum of the per-layer messages' bits, each with its own header (scales, norms, indices).

The contract is the inner compressor's, layer by layer: omega = max_l omega(s_l) for an unbiased inner compressor,
delta = min_l delta(s_l) for a contractive one (s_l the segment sizes); rescaled (:meth:`Compressor.to_contraction`),
each segment is divided by its own 1 + omega(s_l).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxgossip import _pytree as struct
from jaxgossip.compressors._base import Compressor, rescaled_repr

__all__ = ["layerwise", "Layerwise"]


def _segments_of(layout, d=None):
    if layout is None:
        return None if d is None else ((0, int(d)),)
    if hasattr(layout, "segments"):
        return tuple((int(s.offset), int(s.size)) for s in layout.segments)
    return tuple((int(o), int(s)) for o, s in layout)


def _layerwise_fn(key, x, segments, inner_fn, inner_static, *unused, inner_omega=None, **params):
    """Each segment compressed with its own key; divided by 1 + inner_omega(s_l) when inner_omega is given (rescaled)."""
    del unused
    if segments is None:
        raise ValueError("layerwise: the compressor has no layout yet; build it with layerwise(comp, problem.layout) "
                         "or run it through jg.simulate / jg.sweep, which give it the problem's layout.")
    flat = x.reshape(-1)
    parts = []
    for l, (o, s) in enumerate(segments):
        part = inner_fn(jax.random.fold_in(key, l), flat[o : o + s], *inner_static, **params)
        if inner_omega is not None:
            part = part / jnp.asarray(1.0 + inner_omega(s, *inner_static, **params), part.dtype)
        parts.append(part)
    return jnp.concatenate(parts).reshape(x.shape)


def _layer_sizes(d, segments):
    return [s for _, s in (((0, int(d)),) if segments is None else segments)]


def _layerwise_omega(d, segments, inner_fn, inner_static, inner_bits, inner_check, inner_omega, inner_delta, **params):
    """max over layers of the inner omega (each layer's error is at most omega(s_l) times its squared norm)."""
    del inner_fn, inner_bits, inner_check, inner_delta
    values = [inner_omega(s, *inner_static, **params) for s in _layer_sizes(d, segments)]
    return functools.reduce(jnp.maximum, values)


def _layerwise_delta(d, segments, inner_fn, inner_static, inner_bits, inner_check, inner_omega, inner_delta, **params):
    """min over layers of the inner delta."""
    del inner_fn, inner_bits, inner_check, inner_omega
    values = [inner_delta(s, *inner_static, **params) for s in _layer_sizes(d, segments)]
    return functools.reduce(jnp.minimum, values)


def _layerwise_bits(d, segments, inner_fn, inner_static, inner_bits, *unused, **params):
    del inner_fn, unused
    segments = ((0, int(d)),) if segments is None else segments
    return sum(inner_bits(s, *inner_static, **params) for _, s in segments)


def _layerwise_check(d, segments, inner_fn, inner_static, inner_bits, inner_check=None, *unused, **params):
    del inner_fn, inner_bits, unused
    if segments is not None and sum(s for _, s in segments) != d:
        raise ValueError(f"layerwise: the layout covers {sum(s for _, s in segments)} parameters but the model has "
                         f"d={d}.")
    if inner_check is not None:
        for _, s in segments or ((0, d),):
            inner_check(s, *inner_static, **params)


@struct.dataclass
class Layerwise(Compressor):
    """A :class:`Compressor` that applies an inner compressor to each layer (see :func:`layerwise`)."""

    def bind_layout(self, problem) -> "Layerwise":
        """This compressor cut at ``problem.layout`` (one segment for a problem without layers); ``simulate`` calls
        it before compiling. An already bound compressor is kept."""
        segments, *rest = self.static
        if segments is not None:
            return self
        return self.replace(static=(_segments_of(problem.layout, problem.d), *rest))

    def check(self, d) -> "Layerwise":
        segments, inner_fn, inner_static, inner_bits, inner_check = self.static[:5]
        _layerwise_check(d, segments, inner_fn, inner_static, inner_bits, inner_check, **self.params)
        return self

    def compress(self, key, x):
        segments, inner_fn, inner_static = self.static[:3]
        inner_omega = self.static[5] if self.rescaled else None  # rescaled: each layer by its own 1 + omega(s_l)
        return _layerwise_fn(key, x, segments, inner_fn, inner_static, inner_omega=inner_omega, **self.params)

    __call__ = compress

    def bits(self, d):
        segments, inner_fn, inner_static, inner_bits = self.static[:4]
        return _layerwise_bits(d, segments, inner_fn, inner_static, inner_bits, **self.params)

    @property
    def layers(self) -> int | None:
        return None if self.static[0] is None else len(self.static[0])

    def __repr__(self) -> str:
        shown = []
        for k, v in self.params.items():
            try:
                shown.append(f"{k}={float(v):g}")
            except (TypeError, ValueError):
                shown.append(f"{k}=<traced>")
        shown.append(f"layers={self.layers if self.layers is not None else 'unbound'}")
        return rescaled_repr(self, f"{self.name}({', '.join(shown)})")


def layerwise(compressor: Compressor, layout=None) -> Layerwise:
    """Apply ``compressor`` to each parameter tensor separately, with honest bits (the sum over layers, headers
    included), usable by every algorithm that takes a compressor.

    Args:
      compressor: any :class:`Compressor` (``quantize(bits=4)``, ``top_k(fraction=0.01)``, ``sign()``, ...); its
        parameters stay the layerwise compressor's parameters, so ``"compressor.bits"`` still sweeps.
      layout: a :class:`~jaxgossip.problems.Layout` (``problem.layout``) or ``(offset, size)`` pairs; None binds to the
        problem's layout when ``simulate`` / ``sweep`` starts (a problem without layers gives one segment).

    Returns:
      A :class:`Layerwise` compressor.
    """
    if isinstance(compressor, Layerwise):
        raise ValueError("layerwise: the compressor is layerwise already.")
    if not isinstance(compressor, Compressor):
        raise ValueError(f"layerwise: compressor must be a jg.compressors.Compressor, got {type(compressor).__name__}.")
    if compressor.rescaled:
        raise ValueError("layerwise: wrap the plain compressor (layerwise(qsgd(...))); the algorithms that need a "
                         "contraction rescale each layer themselves.")
    omega, delta = compressor.omega_fn if compressor.unbiased else None, compressor.delta_fn
    static = (_segments_of(layout), compressor.fn, compressor.static, compressor.bits_fn,
              getattr(compressor, "check_fn", None), omega, delta)
    return Layerwise(dict(compressor.params), f"layerwise({compressor.name})", _layerwise_fn, _layerwise_bits,
                     compressor.unbiased, static, omega_fn=None if omega is None else _layerwise_omega,
                     delta_fn=None if delta is None else _layerwise_delta)
