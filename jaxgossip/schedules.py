"""Learning-rate schedules whose numbers stay traced, so a sweep still vmaps over the peak rate (``jg.schedules``).

A :class:`Schedule` is a pytree: its magnitudes (``value``, ``factor``, ``end_value``) are traced leaves and its step
counts (boundaries, warm-up and decay lengths) static, as ``optax.inject_hyperparams`` keeps numbers traced and
optax's own constructors keep step counts in Python. Any algorithm's ``lr`` accepts one, and ``hyper_at(algo, "lr",
t)`` evaluates it at the (0-based) step t. Sweeping ``"lr"`` over an algorithm whose ``lr`` is a schedule sweeps its
``value`` (the peak); ``"lr.factor"`` and the other numbers can be swept by name.

An optax schedule (any callable ``count -> rate``) is accepted too; its numbers are then fixed in the compiled program
(a sweep over them recompiles: use these schedules to sweep).
"""

from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxgossip import _pytree as struct
from jaxgossip._host import to_device

__all__ = ["Schedule", "constant", "step_decay", "warmup_cosine", "from_callable", "as_schedule"]


def _constant(t, value):
    return value + 0.0 * jnp.asarray(t, jnp.float32)


def _step_decay(t, boundaries, value, factor):
    t = jnp.asarray(t)
    drops = sum(jnp.asarray(t >= b, jnp.float32) for b in boundaries) if boundaries else 0.0
    return value * factor ** drops


def _warmup_cosine(t, warmup_steps, decay_steps, value, end_value):
    t = jnp.asarray(t, jnp.float32)
    warm = value * (t + 1.0) / warmup_steps if warmup_steps else value
    progress = jnp.clip((t - warmup_steps) / max(decay_steps, 1), 0.0, 1.0)
    cosine = end_value + 0.5 * (value - end_value) * (1.0 + jnp.cos(math.pi * progress))
    return jnp.where(t < warmup_steps, warm, cosine)


def _from_callable(t, fn, description, scale):
    return scale * fn(t)


#: The steps at which a callable schedule is evaluated for its description (so a run's config shows its numbers).
PROBE_STEPS = (0, 1, 10, 100, 1000, 10000, 100000)


def _number_text(v) -> str:
    """A float32 number's shortest exact text (``0.1``, not ``0.100000001``), or ``<traced>``."""
    try:
        return str(np.float32(float(v)))
    except (TypeError, ValueError, jax.errors.ConcretizationTypeError):
        return "<traced>"


def describe_callable_schedule(fn) -> str:
    """A callable schedule with every number it holds: its closures read recursively (``cosine_decay_schedule(
    init_value=0.001, decay_steps=100, ...)``) and its values at :data:`PROBE_STEPS` (which also catches numbers a
    function reads from module globals), e.g. ``cosine_decay_schedule(...) at (0, 1, 10, ...) = (0.001, ...)``."""
    from jaxgossip._record import describe_callable

    text = describe_callable(fn)
    try:
        with jax.ensure_compile_time_eval():
            values = [_number_text(np.asarray(fn(t))) for t in PROBE_STEPS]
    except Exception:  # noqa: BLE001 (a schedule that only runs traced: its closures must do)
        return text
    return f"{text} at {PROBE_STEPS} = ({', '.join(values)})"


@struct.dataclass
class Schedule:
    """A step-size schedule: ``at(t)`` is the rate at 0-based step t.

    Attributes:
      params: traced numbers (``{"value": ..., "factor": ...}``).
      name: static name (``"step_decay"``, ...).
      fn: static ``fn(t, *static, **params)``.
      static: static step counts (boundaries, lengths) or an optax callable.
    """

    params: dict
    name: str = struct.field(pytree_node=False)
    fn: Callable = struct.field(pytree_node=False)
    static: tuple = struct.field(pytree_node=False, default=())

    def at(self, t):
        return self.fn(t, *self.static, **self.params)

    __call__ = at

    @property
    def value(self):
        return self.params.get("value", self.params.get("scale"))

    def with_value(self, value) -> "Schedule":
        """The same schedule with another peak value (what sweeping ``lr`` sets)."""
        key = "value" if "value" in self.params else "scale"
        return self.replace(params={**self.params, key: value})

    def __repr__(self) -> str:
        parts = [f"{k}={_number_text(v)}" for k, v in self.params.items()]  # exact float32 numbers (configs)
        if self.name == "step_decay":
            parts.append(f"boundaries={tuple(self.static[0])}")
        elif self.name == "warmup_cosine":
            parts.append(f"warmup_steps={self.static[0]}, decay_steps={self.static[1]}")
        elif self.name == "callable":
            parts.append(f"fn={self.static[1] if len(self.static) > 1 else self.static[0]}")
        return f"{self.name}({', '.join(parts)})"


def _number(name, arg, value, low=0.0, low_open=False):
    from jaxgossip.compressors._base import check_range

    check_range(name, arg, value, low, math.inf, low_open=low_open)
    return value if isinstance(value, jax.core.Tracer) else to_device(float(value), np.float32)


def _steps(name, arg, value, minimum=0):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}: {arg} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def constant(value: float) -> Schedule:
    """The same rate at every step."""
    return Schedule({"value": _number("constant", "value", value)}, "constant", _constant)


def step_decay(value: float, boundaries=(), factor: float = 0.1) -> Schedule:
    """``value * factor ** (number of boundaries <= t)``: the step decay of He et al. (2016) and Tang et al. (2018,
    Sec. 5: the learning rate divided by 10 at given epochs)."""
    bounds = tuple(_steps("step_decay", "boundaries", int(b) if isinstance(b, (np.integer,)) else b, 1)
                   for b in np.atleast_1d(boundaries).tolist()) if len(np.atleast_1d(boundaries)) else ()
    if list(bounds) != sorted(bounds):
        raise ValueError(f"step_decay: boundaries must be increasing, got {bounds}.")
    params = {"value": _number("step_decay", "value", value), "factor": _number("step_decay", "factor", factor)}
    return Schedule(params, "step_decay", _step_decay, (bounds,))


def warmup_cosine(value: float, warmup_steps: int, decay_steps: int, end_value: float = 0.0) -> Schedule:
    """Linear warm-up to ``value`` over ``warmup_steps``, then a cosine decay to ``end_value`` over ``decay_steps``
    (Goyal et al. 2017; Loshchilov & Hutter 2017)."""
    params = {"value": _number("warmup_cosine", "value", value),
              "end_value": _number("warmup_cosine", "end_value", end_value)}
    static = (_steps("warmup_cosine", "warmup_steps", warmup_steps), _steps("warmup_cosine", "decay_steps", decay_steps, 1))
    return Schedule(params, "warmup_cosine", _warmup_cosine, static)


def from_callable(fn: Callable) -> Schedule:
    """An optax schedule (or any ``count -> rate`` callable); its numbers are fixed, ``scale`` (1) is traced.

    Its description (in ``repr`` and a run's config) holds every number it closes over and its values at a few steps
    (:func:`describe_callable_schedule`), so two schedules with other numbers never share a configuration."""
    if not callable(fn):
        raise ValueError(f"from_callable: fn must be a callable count -> rate, got {type(fn).__name__}.")
    return Schedule({"scale": to_device(1.0, np.float32)}, "callable", _from_callable,
                    (fn, describe_callable_schedule(fn)))


def as_schedule(name: str, arg: str, value):
    """``value`` as a Schedule if it is one or a callable (an optax schedule), else None (a number)."""
    if isinstance(value, Schedule):
        for k, v in value.params.items():
            if k != "scale":
                _number(name, f"{arg}.{k}", v)
        return value
    if callable(value) and not hasattr(value, "shape"):
        return from_callable(value)
    return None
