"""Centralized and decentralized parallel SGD: C-PSGD, D-PSGD (both orders), naive compressed D-PSGD."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxgossip.algorithms._base import (Algorithm, check_optimizer, hyperparameter, init_optimizer, local_direction,
                                        local_update, make_algorithm, resolve_lr)
from jaxgossip.compressors._base import FLOAT_BITS, Compressor, compress_rows

__all__ = ["cpsgd", "dpsgd", "naive_compressed", "SGDState", "local_step"]

ORDERS = ("paper", "survey")
PATTERNS = ("allreduce", "parameter_server")
#: ``lr`` in [0, inf) (0 allowed: a run that only gossips).
LR = hyperparameter("lr", low=0, low_open=False, doc="step size gamma (or a multiplier of an optax update)")


class SGDState(NamedTuple):
    x: jax.Array  # (n, d) models
    opt: tuple  # per-worker optax state (empty for plain SGD)


def _init(algo, X0, ctx):
    return SGDState(X0, init_optimizer(algo.optimizer, X0))


def local_step(algo, state, key, ctx):
    """``lr(t) * U`` where U is the local direction at the current models (the stochastic gradient for plain SGD), or
    ``-lr(t) * U`` for an optax optimizer's updates, ``lr`` multiplying them (see
    :func:`jaxgossip.algorithms._base.local_update`).

    Gradients use ``fold_in(key, 0)``'s per-worker keys; compressors should use ``fold_in(key, 1)`` and up.
    """
    G, _ = ctx.problem.stochastic_grads(jax.random.fold_in(key, 0), state.x)
    U, opt = local_direction(algo.optimizer, G, state.opt, state.x)
    return local_update(algo, U, ctx.t), opt


# ---- C-PSGD ----------------------------------------------------------------------------------------------------------
def _cpsgd_update(algo, state, key, ctx):
    step, opt = local_step(algo, state, key, ctx)
    return SGDState(state.x - jnp.mean(step, axis=0, keepdims=True), opt)


def _cpsgd_step_allreduce(algo, state, key, ctx):
    d = state.x.shape[1]
    return _cpsgd_update(algo, state, key, ctx), ctx.pricing.allreduce(key, FLOAT_BITS * d, ctx.problem.batch_size)


def _cpsgd_step_ps(algo, state, key, ctx):
    d = state.x.shape[1]
    cost = ctx.pricing.parameter_server(key, FLOAT_BITS * d, FLOAT_BITS * d, ctx.problem.batch_size)
    return _cpsgd_update(algo, state, key, ctx), cost


def cpsgd(lr=None, pattern: str = "allreduce", optimizer=None) -> Algorithm:
    """Centralized parallel (mini-batch) SGD: x_{t+1} = x_t - lr * mean_i g_i (Liu & Zhang, Sec. 2).

    All workers hold the same model; the average is exact, priced as a ring AllReduce or one parameter server.

    Args:
      lr: step size gamma (traced), default 0.1; with an optax optimizer in the ``"updates"`` convention, a multiplier
        of the optimizer's own update, default 1 (see ``jg.algorithms._base.resolve_lr``).
      pattern: ``"allreduce"`` or ``"parameter_server"`` (static).
      optimizer: optional optax transformation: a direction at unit step size (``optax.scale_by_adam()``,
        ``optax.trace(0.9)``; the update is ``-lr * direction``) or an optax optimizer with its own learning rate
        (``optax.sgd(0.05, momentum=0.9)``, ``optax.adam(1e-2)``; the update is ``lr`` times the optimizer's).
    """
    if pattern not in PATTERNS:
        raise ValueError(f"cpsgd: pattern must be one of {PATTERNS}, got {pattern!r}.")
    step = _cpsgd_step_allreduce if pattern == "allreduce" else _cpsgd_step_ps
    optimizer = check_optimizer("cpsgd", optimizer)
    lr = resolve_lr("cpsgd", lr, optimizer, 0.1)
    return make_algorithm("cpsgd", _init, step, {"lr": lr}, specs=(LR,), kind="centralized", optimizer=optimizer)


# ---- D-PSGD ----------------------------------------------------------------------------------------------------------
def _gossip_cost(key, ctx, msg_bits):
    return ctx.pricing.gossip(key, msg_bits, ctx.problem.batch_size)


def _dpsgd_step_paper(algo, state, key, ctx):
    step, opt = local_step(algo, state, key, ctx)
    x = ctx.mixing(state.x) - step
    return SGDState(x, opt), _gossip_cost(key, ctx, FLOAT_BITS * state.x.shape[1])


def _dpsgd_step_survey(algo, state, key, ctx):
    step, opt = local_step(algo, state, key, ctx)
    x = ctx.mixing(state.x - step)
    return SGDState(x, opt), _gossip_cost(key, ctx, FLOAT_BITS * state.x.shape[1])


def dpsgd(lr=None, order: str = "paper", optimizer=None) -> Algorithm:
    """Decentralized parallel SGD (Lian et al. 2017).

    ``order="paper"``: X_{t+1} = W X_t - gamma G(X_t) (Tang et al. 2018, Sec. 3);
    ``order="survey"``: X_{t+1} = W (X_t - gamma G(X_t)) (Liu & Zhang, eq. 5.2).

    Args:
      lr: step size gamma (traced), default 0.1; with an optax optimizer in the ``"updates"`` convention
        (``optax.sgd(0.05, momentum=0.9)``, ``optax.adam(1e-2)``) a multiplier of the optimizer's own update, default 1,
        so sweeping ``"lr"`` sweeps the effective step.
      order: ``"paper"`` or ``"survey"`` (static).
      optimizer: optional optax transformation, a direction or an optimizer with its own learning rate (see
        :func:`cpsgd`).
    """
    if order not in ORDERS:
        raise ValueError(f"dpsgd: order must be one of {ORDERS}, got {order!r}.")
    step = _dpsgd_step_paper if order == "paper" else _dpsgd_step_survey
    optimizer = check_optimizer("dpsgd", optimizer)
    lr = resolve_lr("dpsgd", lr, optimizer, 0.1)
    return make_algorithm("dpsgd", _init, step, {"lr": lr}, specs=(LR,), optimizer=optimizer)


# ---- naive compressed D-PSGD -----------------------------------------------------------------------------------------
def _naive_step(algo, state, key, ctx):
    comp = algo.hyper["compressor"]
    step, opt = local_step(algo, state, key, ctx)
    CX = compress_rows(comp, jax.random.fold_in(key, 1), state.x)
    # W_ii x_i + sum_{j != i} W_ij C(x_j) = (W C(X))_i + W_ii (x_i - C(x_i))
    x = ctx.mixing(CX) + ctx.mixing.diag[:, None] * (state.x - CX) - step
    return SGDState(x, opt), _gossip_cost(key, ctx, comp.bits(state.x.shape[1]))


def naive_compressed(lr=None, compressor: Compressor | None = None, optimizer=None) -> Algorithm:
    """Naive compressed D-PSGD (Tang et al. 2018, Sec. 3, Fig. 1): neighbours exchange compressed models,

        x_{t+1}^(i) = W_ii x_t^(i) + sum_{j != i} W_ij C(x_t^(j)) - gamma g_i.

    The compression error enters the models directly and never shrinks, so the iterates stall at an error floor.

    Args:
      lr: step size gamma (traced), default 0.1; with an optax optimizer in the ``"updates"`` convention a multiplier
        of the optimizer's own update, default 1 (see :func:`cpsgd`).
      compressor: the compressor C applied to the models sent.
      optimizer: optional optax transformation (see :func:`cpsgd`).
    """
    if not isinstance(compressor, Compressor):
        raise ValueError("naive_compressed: compressor must be a jg.compressors.Compressor (e.g. quantize(bits=4)).")
    optimizer = check_optimizer("naive_compressed", optimizer)
    lr = resolve_lr("naive_compressed", lr, optimizer, 0.1)
    return make_algorithm("naive_compressed", _init, _naive_step, {"lr": lr, "compressor": compressor}, specs=(LR,),
                          optimizer=optimizer)
