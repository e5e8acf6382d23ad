"""Adapters that make any network a problem's model: flax linen, flax nnx, or a plain JAX function.

Each adapter is a frozen, hashable record (a static field of the problem: equal configurations compile once) with one
call, the network protocol of :class:`jaxgossip.problems.Problem`:

    net(x, X, state=None, key=None, train=False) -> (outputs, new_state)

``x`` is one worker's flat parameter vector (its :class:`~jaxgossip.problems.layout.Layout` turns it back into the
parameter pytree), ``X`` a batch, ``state`` the worker's mutable model state (BatchNorm statistics; None when the
model has none), ``key`` the worker's model key for this step (dropout; None in evaluation), ``train`` the mode.
In evaluation mode the state is returned unchanged.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable

import jax
import numpy as np

from jaxgossip.problems.layout import Layout

__all__ = ["LinenNet", "NNXNet", "FunctionNet", "train_flag", "conv_lowering"]

#: Keyword arguments of ``__call__`` that switch a module between training and evaluation, and whether the value
#: passed in training is True (``train=True``) or False (``deterministic=False``).
TRAIN_FLAGS = {"train": True, "training": True, "is_training": True, "deterministic": False,
               "use_running_average": False, "inference": False}


def train_flag(fn, given: str | None | bool = "auto") -> str | None:
    """The keyword of ``fn`` that selects the mode: ``given`` if a name, else the first of TRAIN_FLAGS it takes."""
    if given is None or given is False:
        return None
    if isinstance(given, str) and given != "auto":
        if given not in TRAIN_FLAGS:
            raise ValueError(f"train_arg must be one of {sorted(TRAIN_FLAGS)} or None, got {given!r}.")
        return given
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return None
    return next((name for name in TRAIN_FLAGS if name in params), None)


def _im2col_interceptor(next_fun, args, kwargs, context):
    """A linen interceptor that lowers every ``nn.Conv`` left at XLA's default convolution as im2col."""
    from flax import linen as nn

    from jaxgossip.models.conv import im2col_conv

    module = context.module
    if (isinstance(module, nn.Conv) and context.method_name == "__call__" and module.conv_general_dilated is None
            and module.conv_general_dilated_cls is None):
        object.__setattr__(module, "conv_general_dilated", im2col_conv)  # this apply's own instance
    return next_fun(*args, **kwargs)


def conv_lowering(conv: str) -> str:
    """``"im2col"`` or ``"xla"`` for a problem's ``conv`` option (``"auto"``: im2col on CPU; see
    :mod:`jaxgossip.models.conv`)."""
    from jaxgossip.models.conv import resolve

    return resolve(conv)


def _mode_kwargs(flag, train):
    return {} if flag is None else {flag: train if TRAIN_FLAGS[flag] else not train}


def _same_structure(template, new):
    """``new`` in ``template``'s exact pytree structure (flax may hand back dicts where it was given others)."""
    if template is None:
        return None
    return jax.tree.unflatten(jax.tree.structure(template), jax.tree.leaves(new))


@dataclasses.dataclass(frozen=True)
class LinenNet:
    """A flax linen module: ``module.apply({"params": ..., **state}, X, rngs=..., mutable=...)``.

    Attributes:
      module: the linen module (hashable: equal modules share a compiled program).
      layout: the layout of its ``params`` collection.
      flag: the ``__call__`` keyword that selects the mode (``train``, ``deterministic``, ...), or None.
      mutable: the collections updated in training (every non-``params`` collection ``init`` made, e.g.
        ``batch_stats``).
      rng_names: the rng streams handed to the module in training, each ``fold_in(key, j)``.
      conv: ``"im2col"``: every ``nn.Conv`` that uses XLA's default convolution is computed as im2col and one matrix
        product (:func:`jaxgossip.models.im2col_conv`; same numbers, one batched matmul per layer across workers);
        ``"xla"``: as written.
    """

    module: Any
    layout: Layout
    flag: str | None
    mutable: tuple
    rng_names: tuple
    conv: str = "xla"

    def __call__(self, x, X, state=None, key=None, train=False):
        if self.conv == "im2col":
            from flax import linen as nn

            with nn.intercept_methods(_im2col_interceptor):
                return self._apply(x, X, state, key, train)
        return self._apply(x, X, state, key, train)

    def _apply(self, x, X, state, key, train):
        variables = {"params": self.layout.unravel(x), **(state or {})}
        rngs = None
        if train and key is not None and self.rng_names:
            rngs = {name: jax.random.fold_in(key, j) for j, name in enumerate(self.rng_names)}
        kwargs = _mode_kwargs(self.flag, train)
        if train and self.mutable:
            out, new = self.module.apply(variables, X, rngs=rngs, mutable=list(self.mutable), **kwargs)
            return out, _same_structure(state, {k: new[k] for k in state})
        return self.module.apply(variables, X, rngs=rngs, **kwargs), state


@dataclasses.dataclass(frozen=True)
class NNXNet:
    """A flax nnx module, split once into its graph, ``Param`` state, rng state and the rest (BatchStat, ...).

    Randomness comes from jaxgossip's keys, not from the module's own ``Rngs``: before a training call every rng key
    in the module is replaced by ``fold_in(key, j)`` (its counters set to zero), so worker i's dropout at step t
    depends only on the run seed, t and i, as every other draw does.

    Attributes:
      graphdef: the module's static graph (``nnx.split``).
      layout: the layout of its ``Param`` state.
      rng_def: the tree structure of its rng state; ``rng_kinds`` says per leaf "key" or the dtype of a counter;
        ``rng_shapes`` the leaves' shapes; ``rng_impls`` the key implementations.
      conv: ``"im2col"``: every ``nnx.Conv`` using ``lax.conv_general_dilated`` is computed as im2col and one matrix
        product instead (see :class:`LinenNet`); ``"xla"``: as written.
    """

    graphdef: Any
    layout: Layout
    rng_def: Any
    rng_kinds: tuple
    rng_shapes: tuple
    rng_impls: tuple
    conv: str = "xla"

    def _rng_state(self, key):
        if key is None:
            key = jax.random.key(0)
        leaves = []
        for j, (kind, shape, impl) in enumerate(zip(self.rng_kinds, self.rng_shapes, self.rng_impls)):
            if kind == "key":
                k = jax.random.fold_in(key, j)
                k = jax.random.wrap_key_data(jax.random.key_data(k), impl=impl) if impl else k
                leaves.append(k if not shape else jax.random.split(k, int(np.prod(shape))).reshape(shape))
            else:
                leaves.append(jax.numpy.zeros(shape, kind))
        return jax.tree.unflatten(self.rng_def, leaves)

    def __call__(self, x, X, state=None, key=None, train=False):
        from flax import nnx

        params = self.layout.unravel(x)
        parts = [params, self._rng_state(key)] + ([state] if state is not None else [])
        model = nnx.merge(self.graphdef, *parts, copy=True)
        if self.conv == "im2col":
            _lower_nnx_convs(model)
        model.train() if train else model.eval()
        out = model(X)
        if not train or state is None:
            return out, state
        _, _, _, new_state = nnx.split(model, nnx.Param, nnx.RngState, ...)
        return out, _same_structure(state, new_state)


def _lower_nnx_convs(model):
    """Point every ``nnx.Conv`` of a (freshly merged) nnx model that uses XLA's convolution at im2col."""
    from flax import nnx
    from jax import lax

    from jaxgossip.models.conv import im2col_conv

    for _, module in nnx.iter_modules(model):
        if isinstance(module, nnx.Conv) and module.conv_general_dilated is lax.conv_general_dilated:
            module.conv_general_dilated = im2col_conv


@dataclasses.dataclass(frozen=True)
class FunctionNet:
    """A plain JAX model: ``apply_fn(params, X, **kw) -> outputs``, or with state
    ``apply_fn(params, state, X, **kw) -> (outputs, new_state)``; ``kw`` holds ``key=`` and ``train=`` when the
    function takes them (``key`` is None in evaluation)."""

    apply_fn: Callable
    layout: Layout
    stateful: bool
    takes_key: bool
    takes_train: bool

    def __call__(self, x, X, state=None, key=None, train=False):
        params = self.layout.unravel(x)
        kwargs = {}
        if self.takes_key:
            kwargs["key"] = key if train else None
        if self.takes_train:
            kwargs["train"] = train
        if self.stateful:
            out, new = self.apply_fn(params, state, X, **kwargs)
            return out, (_same_structure(state, new) if train else state)
        return self.apply_fn(params, X, **kwargs), state
