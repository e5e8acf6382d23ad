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

import dataclasses
import math

from typing import Any, Callable, NamedTuple

import jax
import numpy as np
from jaxgossip import _pytree as struct
from jaxgossip._host import to_device
from jaxgossip.compressors._base import FLOAT_BITS, check_range, compress_rows, worker_keys

from jaxgossip.cost import Cost, Pricing
from jaxgossip.gossip import Mixing
from jaxgossip.problems._base import Problem

__all__ = ["Algorithm", "Context", "split_key", "local_direction", "init_optimizer", "KINDS", "hyper_at", "local_update",
           "LocalOptimizer", "updates", "direction", "describe_transform", "resolve_lr", "lr_role",
           "inert_hyperparameters", "stochastic_gradients", "peer_message", "Hyperparameter", "hyperparameter",
           "make_algorithm", "compress_rows", "worker_keys", "Cost", "FLOAT_BITS", "as_float", "check_range"]

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
      specs: static tuple of :class:`Hyperparameter` declarations (:func:`make_algorithm`): their ranges are checked
        by :meth:`replace_hyper` (and so by ``jg.sweep``'s grid check); empty when none were declared.
      optimizer: static :class:`LocalOptimizer` (an optax transformation and its convention), or None for SGD. In the
        ``"direction"`` convention ``lr`` is the step size; in the ``"updates"`` convention it multiplies the
        optimizer's own update (see :func:`resolve_lr`).
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
    specs: tuple = struct.field(pytree_node=False, default=())

    def init(self, X0, ctx):
        return self.init_fn(self, X0, ctx)

    def step(self, state, key, ctx):
        return self.step_fn(self, state, key, ctx)

    def replace_hyper(self, **kwargs) -> "Algorithm":
        """A copy with some hyperparameters changed (same static structure, so no recompile).

        Every new value passes the range check of the factory argument of the same name before anything compiles: the
        factory that built this algorithm (``jaxgossip.algorithms.REGISTRY[self.name]``; a hyperparameter is the
        argument of the same name) is called again with the new values and the current ones, and its ValueError comes
        through as it is. Static arguments (``order``, ``optimizer``) are not part of ``hyper`` and take the factory's
        defaults in that check; traced values are not checked (as in the factories). A hyperparameter declared with
        :func:`hyperparameter` (an algorithm built by :func:`make_algorithm`, registered or not) is checked against its
        declared range first.
        """
        unknown = set(kwargs) - set(self.hyper)
        if unknown:
            raise ValueError(f"{self.name}: unknown hyperparameters {sorted(unknown)}; it has {sorted(self.hyper)}.")
        declared = {spec.name: spec for spec in self.specs}
        for k, v in kwargs.items():
            if k in declared:
                declared[k].check(self.name, v)
        from jaxgossip.algorithms import REGISTRY  # late: the registry's modules import this one

        factory = REGISTRY.get(self.name)
        if factory is not None and kwargs:
            import inspect

            signature = inspect.signature(factory)
            args = {k: v for k, v in {**self.hyper, **kwargs}.items() if k in signature.parameters}
            try:
                signature.bind(**args)
            except TypeError:  # the factory needs arguments the record does not keep: nothing to check against
                args = None
            if args is not None:
                factory(**args)
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
            if k == "lr" and is_updates(self.optimizer):
                parts[-1] += " (multiplier of the optimizer's update)"
        if self.optimizer is not None:
            parts.append(f"optimizer={self.optimizer!r}")
        return f"{self.name}({', '.join(parts)})"


def hyper_at(algo, name: str, t):
    """Hyperparameter ``name`` of ``algo`` at (0-based, traced) step ``t``: a schedule is evaluated at t, a number is
    returned as it is. Every step reads its learning rate through this, so ``lr`` may be a schedule."""
    from jaxgossip.schedules import Schedule

    value = algo.hyper[name]
    return value.at(t) if isinstance(value, Schedule) else value


def split_key(key, n=2):
    """``n`` independent keys from a step's key (``jax.random.split``).

    The built-in steps derive their randomness by ``fold_in`` instead: the gradients from ``fold_in(key, 0)``
    (:func:`stochastic_gradients`), a compressor from ``fold_in(key, 1)`` and up (:func:`compress_rows` then gives
    worker i the key ``fold_in(fold_in(key, 1), i)``), and ``ctx.pricing`` reads the compute speeds from ``key``
    itself. A step that follows the same convention draws the same numbers as the built-in ones.
    """
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
    :func:`jaxgossip.compressors._base.check_range`. ``None`` bounds are unbounded. ``lr`` may also be a schedule
    (:mod:`jaxgossip.schedules`, or an optax schedule), returned as a :class:`~jaxgossip.schedules.Schedule`."""
    if isinstance(value, jax.core.Tracer):
        return value
    if arg == "lr":
        from jaxgossip.schedules import as_schedule

        schedule = as_schedule(name, arg, value)
        if schedule is not None:
            return schedule
    lo, hi = -math.inf if low is None else low, math.inf if high is None else high
    check_range(name, arg, value, lo, hi, low_open=low_open and low is not None, high_open=high_open and high is not None)
    return to_device(float(value), np.float32)


#: Algorithms that apply ``lr`` after compressing or averaging the local directions: an optax optimizer with its own
#: learning rate (``optax.sgd(0.1)``) has no meaning there; they take direction transforms only.
DIRECTIONS_ONLY = ("csgd", "ec_sgd", "doublesqueeze", "asgd", "async_dsgd")
CONVENTIONS = ("direction", "updates")


@dataclasses.dataclass(frozen=True)
class LocalOptimizer:
    """A worker's local optax transformation and what its output means.

    ``convention="updates"``: optax's own (``optax.sgd(0.1, momentum=0.9)``, ``optax.adamw(1e-3)``): the update u
    holds its learning rate and sign (``apply_updates`` is p + u); the model moves by ``lr * u``, the algorithm's
    ``lr`` being a *multiplier* of the optimizer's own update (default 1: optax's step as it is). Sweeping ``"lr"``
    therefore sweeps the effective step (``lr`` x the optimizer's learning rate) in one compiled program.
    ``convention="direction"``: a ``scale_by_*`` / ``trace`` transformation at unit step size; the model moves by
    ``-lr * direction``, ``lr`` being the step size (the factory's default when not given).

    The factories resolve ``lr=None`` by :func:`resolve_lr`; ``Result.config`` records which of the two ``lr`` is
    (:func:`lr_role`).
    """

    tx: Any
    convention: str
    description: str

    def init(self, params):
        return self.tx.init(params)

    def update(self, grads, state, params):
        return self.tx.update(grads, state, params)

    def __repr__(self) -> str:
        return f"{self.description} [{self.convention}]"


def describe_transform(tx) -> str:
    """A description of an optax transformation with every number it holds, read recursively from its closures
    (schedules included: ``optax.adam(optax.cosine_decay_schedule(1e-3, 100))`` shows ``init_value=0.001,
    decay_steps=100``), e.g. ``chain(update_fns=(... trace(decay=0.9, nesterov=False) ... scale(step_size=-0.1)))``:
    two runs with other optimizers or other schedules have other configurations (see
    :func:`jaxgossip._record.describe_transformation`)."""
    from jaxgossip._record import describe_transformation

    return describe_transformation(tx)


def _convention(name, tx):
    """Which convention an optax transformation follows, from one update of a gradient of ones at zero parameters:
    all negative -> ``"updates"`` (it descends and holds a learning rate), all positive -> ``"direction"``."""
    import jax.numpy as jnp

    params = jnp.zeros(3, jnp.float32)
    try:
        u, _ = tx.update(jnp.ones(3, jnp.float32), tx.init(params), params)
        u = np.asarray(u)
    except Exception as e:  # noqa: BLE001
        raise ValueError(f"{name}: the optimizer fails on a flat parameter vector ({type(e).__name__}: {e}); "
                         "jaxgossip's workers hold flat float32 vectors.") from e
    if np.all(u < 0):
        return "updates"
    if np.all(u > 0):
        return "direction"
    raise ValueError(f"{name}: cannot tell whether the optimizer returns updates to add (optax.sgd, optax.adamw) or "
                     "directions to scale by -lr (optax.trace, optax.scale_by_adam); declare it with "
                     "jg.algorithms.updates(tx) or jg.algorithms.direction(tx).")


def updates(tx) -> LocalOptimizer:
    """Declare an optax optimizer whose output is added to the model and holds its learning rate (optax's own
    convention: ``optax.sgd(0.1, momentum=0.9)``, ``optax.adamw(1e-3)``)."""
    return LocalOptimizer(_optax_transform("updates", tx), "updates", describe_transform(tx))


def direction(tx) -> LocalOptimizer:
    """Declare an optax transformation whose output is a direction at unit step size, scaled by ``-lr``
    (``optax.trace(0.9)``, ``optax.scale_by_adam()``)."""
    return LocalOptimizer(_optax_transform("direction", tx), "direction", describe_transform(tx))


def _optax_transform(name, tx):
    import optax  # only when one is given: optax takes ~0.1 s to import

    if not isinstance(tx, optax.GradientTransformation):
        raise ValueError(f"{name}: optimizer must be an optax.GradientTransformation or None, got {type(tx).__name__}.")
    return tx


def error_feedback_hint(compressor) -> str:
    """The extra sentence for an ErrorFeedback passed where a compressor is expected."""
    if type(compressor).__name__ != "ErrorFeedback":
        return ""
    return (" with_error_feedback(...) is the building block of the error-compensated algorithms, not a compressor; "
            "pass the plain compressor to ec_sgd / doublesqueeze / deepsqueeze, which apply error feedback themselves.")


def check_optimizer(name, optimizer):
    """The optimizer as a :class:`LocalOptimizer` (its convention told by :func:`_convention` unless declared)."""
    if optimizer is None:
        return None
    if not isinstance(optimizer, LocalOptimizer):
        tx = _optax_transform(name, optimizer)
        optimizer = LocalOptimizer(tx, _convention(name, tx), describe_transform(tx))
    if optimizer.convention == "updates" and name in DIRECTIONS_ONLY:
        raise ValueError(f"{name}: applies lr after compressing or averaging the workers' directions, so it takes a "
                         f"direction transform (optax.trace(0.9), optax.scale_by_adam()) with lr=..., not an optax "
                         f"optimizer with its own learning rate ({optimizer.description}).")
    return optimizer


def is_updates(optimizer) -> bool:
    """Whether ``optimizer`` returns optax updates (holding their own learning rate and sign)."""
    return optimizer is not None and getattr(optimizer, "convention", "direction") == "updates"


def resolve_lr(name: str, lr, optimizer, default):
    """The ``lr`` a factory stores: ``lr`` itself when given, else 1 (a multiplier of the optimizer's own update) for an
    optimizer in the ``"updates"`` convention (``optax.sgd(0.05, momentum=0.9)``, ``optax.adam(1e-2)``), else the
    factory's ``default`` step size (plain SGD and direction transforms).

    So ``lr`` acts for every optimizer (see :class:`LocalOptimizer`): with ``optax.adam(1e-2)`` and ``lr=0.5`` the
    model moves by half of Adam's update, and a sweep over ``"lr"`` sweeps the effective step.

    Args:
      name: the factory's name (for errors).
      lr: the factory's ``lr`` argument (a number, a schedule, or None).
      optimizer: the factory's optimizer, already through :func:`check_optimizer` (a raw optax transformation is
        checked here).
      default: the factory's default step size for plain SGD and direction transforms.
    """
    if optimizer is not None and not isinstance(optimizer, LocalOptimizer):
        optimizer = check_optimizer(name, optimizer)
    if lr is not None:
        return lr
    return 1.0 if is_updates(optimizer) else default


def lr_role(optimizer) -> str:
    """What ``lr`` means for this optimizer, as ``Result.config`` records it next to the value."""
    return "multiplier of the optimizer's update" if is_updates(optimizer) else "step size"


def local_update(algo, U, t):
    """What a worker subtracts from its model for local direction U at step t: ``lr(t) * U``; for an optimizer in the
    ``"updates"`` convention (optax updates, holding their learning rate and sign) ``-lr(t) * U``, ``lr`` being a
    multiplier of the optimizer's own update (default 1; see :func:`resolve_lr`)."""
    if is_updates(algo.optimizer):
        return -hyper_at(algo, "lr", t) * U
    return hyper_at(algo, "lr", t) * U


#: Algorithm name -> ``fn(hyper) -> {hyperparameter: reason}``: the hyperparameters that, in this configuration, are
#: only range-checked and never reach the steps (IADE's ``L`` once ``eta`` is given). ``jg.sweep`` refuses to sweep
#: them (a sweep whose rows would all be the same run). Filled by the algorithms' modules.
INERT = {}


def inert_hyperparameters(algo) -> dict:
    """``{hyperparameter: why it does not change the run}`` for ``algo`` as configured (see :data:`INERT`)."""
    fn = INERT.get(algo.name)
    return {} if fn is None else dict(fn(algo.hyper))


# ---- the toolkit of a step, and the factory helper (see jaxgossip.algorithms' module docstring) -----------------------
def stochastic_gradients(key, ctx, X):
    """(n, d) stochastic gradients of every worker at its own model: ``ctx.problem.stochastic_grads(fold_in(key, 0),
    X)[0]``, the key and the call every built-in step uses (so a step written with it draws the same samples as
    ``dpsgd``). The full call ``ctx.problem.stochastic_grads(key, X)`` returns the pair ``(G, losses)`` with the (n,)
    minibatch losses; see :meth:`jaxgossip.problems.Problem.stochastic_grads` for sample counts and sampling without
    replacement."""
    return ctx.problem.stochastic_grads(jax.random.fold_in(key, 0), X)[0]


def peer_message(key, ctx, msg_bits, batch=None) -> Cost:
    """Cost of a synchronous step in which every worker sends ONE message of ``msg_bits`` bits to one peer it chooses
    (and receives one, a permutation, as on the one-peer exponential graph of Ying et al. 2021): ``n * msg_bits`` bits
    on the wire, and the slowest worker's computation of ``batch`` samples (default the problem's batch size) plus
    one message's network time ``alpha + B beta``. Equals ``ctx.pricing.gossip`` on a graph where every worker has
    one out- and one in-neighbour.

    Args:
      key: the step's key (the compute speeds derive from it, as in ``ctx.pricing.gossip``).
      ctx: the step's :class:`Context`.
      msg_bits: bits of the one message (a number or a traced scalar).
      batch: samples each worker computes on (default ``ctx.problem.batch_size``).
    """
    pricing = ctx.pricing
    batch = ctx.problem.batch_size if batch is None else batch
    return Cost(pricing.n * msg_bits, pricing.compute_time(key, batch) + pricing.network.message(msg_bits))


@dataclasses.dataclass(frozen=True)
class Hyperparameter:
    """A declared numeric hyperparameter: its name and range (see :func:`hyperparameter`).

    Attributes:
      name: the key in ``Algorithm.hyper`` (and the factory's argument of the same name).
      low, high: bounds (None: unbounded).
      low_open, high_open: whether the bound itself is excluded (default ``(low, high]``, as :func:`as_float`).
      integer: whether the value must be a whole number (still stored as a traced float32).
      doc: one line on what it does (for the reader of the code).
    """

    name: str
    low: float | None = None
    high: float | None = None
    low_open: bool = True
    high_open: bool = False
    integer: bool = False
    doc: str = ""

    def check(self, owner: str, value):
        """``value`` range-checked (a ValueError naming ``owner`` and the hyperparameter) and converted to a float32
        array; ``lr`` may also be a schedule; a traced value (inside ``jg.sweep``) passes unchecked."""
        if self.integer and not isinstance(value, jax.core.Tracer):
            lo, hi = -math.inf if self.low is None else self.low, math.inf if self.high is None else self.high
            check_range(owner, self.name, value, lo, hi, low_open=self.low_open and self.low is not None,
                        high_open=self.high_open and self.high is not None, integer=True)
        return as_float(owner, self.name, value, self.low, self.high, self.low_open, self.high_open)


def hyperparameter(name: str, low=None, high=None, *, low_open: bool = True, high_open: bool = False,
                   integer: bool = False, doc: str = "") -> Hyperparameter:
    """Declare a hyperparameter and its range once, for :func:`make_algorithm`.

    The algorithm built with it checks the value before anything compiles (a ValueError such as ``my_method: lr must
    be a number in (0, inf], got -1``), stores it as a float32 array (a leaf of the algorithm, so ``jg.sweep`` vmaps
    over it in one compiled program), and :meth:`Algorithm.replace_hyper` (hence ``jg.sweep``'s grid check and
    ``jg.compare``) checks new values against the same range.

    Example::

        LR = jg.algorithms.hyperparameter("lr", low=0, doc="step size")            # lr in (0, inf]
        MOMENTUM = jg.algorithms.hyperparameter("momentum", 0, 1, low_open=False, high_open=True)  # [0, 1)

    Args:
      name: the hyperparameter's key in ``Algorithm.hyper``.
      low, high: bounds; None for unbounded.
      low_open: exclude ``low`` itself (default True, ``(low, ...``).
      high_open: exclude ``high`` itself (default False, ``..., high]``).
      integer: require a whole number.
      doc: what it does (for readers of the code).
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"hyperparameter: name must be an identifier string, got {name!r}.")
    for arg, v in (("low", low), ("high", high)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v != v):
            raise ValueError(f"hyperparameter {name!r}: {arg} must be a number or None, got {v!r}.")
    if low is not None and high is not None and low > high:
        raise ValueError(f"hyperparameter {name!r}: low = {low} is above high = {high}.")
    return Hyperparameter(name, low, high, bool(low_open), bool(high_open), bool(integer), str(doc))


def make_algorithm(name: str, init_fn: Callable, step_fn: Callable, hyper: dict, *, specs=(),
                   kind: str = "decentralized", optimizer=None, check_fn: Callable | None = None) -> Algorithm:
    """Build an :class:`Algorithm` from a step, checking every declared hyperparameter before anything compiles.

    The built-in factories build their algorithms through this function (cpsgd, dpsgd, naive_compressed, dcd_psgd,
    ecd_psgd, choco_sgd, deepsqueeze, beer, ef21, csgd, ec_sgd, doublesqueeze, q_dsgd, quantimed_dsgd, powergossip;
    the star-network, IADE, tracking, diffusion, push-sum and asynchronous ones still check with :func:`as_float`
    themselves), and a user's factory does the same (see the module docstring of :mod:`jaxgossip.algorithms`)::

        def my_method(lr=0.1, momentum=0.9):
            return jg.algorithms.make_algorithm("my_method", init, step, {"lr": lr, "momentum": momentum},
                                                specs=(LR, MOMENTUM))

    Args:
      name: the algorithm's name (``Result.config``, labels, ``jg.algorithms.register``).
      init_fn: ``init_fn(algo, X0, ctx) -> state``, a NamedTuple with field ``x`` (the (n, d) models).
      step_fn: ``step_fn(algo, state, key, ctx) -> (state, jg.Cost)``; a module-level function, so two algorithms
        with other hyperparameter values share one compiled program.
      hyper: ``{name: value}``: a number is checked against the declaration of the same name in ``specs`` (any
        number when undeclared; NaN refused) and stored as a float32 array (traced, sweepable); ``lr`` may be a
        schedule; anything else (a compressor, a pytree of arrays) is stored as it is.
      specs: :class:`Hyperparameter` declarations (:func:`hyperparameter`); each must name a key of ``hyper``.
      kind: one of :data:`KINDS` (``"decentralized"``, ``"centralized"``, ``"star"``).
      optimizer: None (plain SGD) or an optax transformation / :class:`LocalOptimizer` (see :func:`updates`,
        :func:`direction`); with an optimizer in the ``"updates"`` convention ``lr`` multiplies its update
        (:func:`resolve_lr` gives the default).
      check_fn: optional ``check_fn(algo, problem, topology)`` that ``simulate`` calls before compiling.

    Raises:
      ValueError: naming the algorithm and the argument, before anything compiles.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"make_algorithm: name must be a non-empty string, got {name!r}.")
    for arg, fn in (("init_fn", init_fn), ("step_fn", step_fn)):
        if not callable(fn):
            raise ValueError(f"{name}: {arg} must be a function, got {type(fn).__name__}.")
    if check_fn is not None and not callable(check_fn):
        raise ValueError(f"{name}: check_fn must be a function or None, got {type(check_fn).__name__}.")
    if kind not in KINDS:
        raise ValueError(f"{name}: kind must be one of {KINDS}, got {kind!r}.")
    if not isinstance(hyper, dict) or not all(isinstance(k, str) for k in hyper):
        raise ValueError(f"{name}: hyper must be a dict of name -> value, got {type(hyper).__name__}.")
    specs = tuple(specs)
    for spec in specs:
        if not isinstance(spec, Hyperparameter):
            raise ValueError(f"{name}: specs must be jg.algorithms.hyperparameter(...) declarations, got {spec!r}.")
        if spec.name not in hyper:
            raise ValueError(f"{name}: hyperparameter {spec.name!r} is declared but not in hyper "
                             f"({sorted(hyper)}).")
    optimizer = check_optimizer(name, optimizer)
    declared = {spec.name: spec for spec in specs}
    values = {}
    for k, v in hyper.items():
        if k in declared:
            values[k] = declared[k].check(name, v)
        elif isinstance(v, (bool, np.bool_, str, bytes)) or v is None:
            raise ValueError(f"{name}: hyperparameter {k} must be a number, a schedule or a pytree of arrays, "
                             f"got {v!r}.")
        elif isinstance(v, (int, float, np.number)):
            values[k] = as_float(name, k, v)
        else:
            values[k] = v
    return Algorithm(values, name, init_fn, step_fn, kind, optimizer, check_fn, specs)
