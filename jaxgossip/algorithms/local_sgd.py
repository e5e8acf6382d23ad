"""Local SGD / FedAvg with full participation: H local steps per worker, then an exact average (AllReduce).

Stich (ICLR 2019), "Local SGD Converges Fast and Communicates Little", Alg. 1; McMahan, Moore, Ramage, Hampson,
Aguera y Arcas (AISTATS 2017), FederatedAveraging with every client in every round (C = 1) and E B / |data| = H local
steps. Every worker keeps its own model and steps on its own gradients,

    x_i^{t+1} = x_i^t - lr g_i(x_i^t)                       if (t + 1) mod H != 0,
    x_i^{t+1} = (1/n) sum_j (x_j^t - lr g_j(x_j^t))          if (t + 1) mod H == 0,

so the models are averaged exactly after every H-th step (Stich's synchronization set I_T = {H, 2H, ...}). H = 1 is
centralized minibatch SGD (:func:`jaxgossip.algorithms.cpsgd`). The decentralized counterpart, gossip instead of the
exact average, is a gossip algorithm (``dpsgd``, ``gradient_tracking``, ...) on
``jg.topology.local_steps(topology, H)`` (Koloskova et al. 2020).

Implementation: the state keeps the last average ``anchor`` (d,) and each worker's sum of local updates since it,
``moved`` (n, d); a worker's model is ``anchor - moved_i`` and the average is ``anchor - mean_i moved_i``. This is the
same iteration (FedAvg's server adds the clients' mean update to its model) with the rounding of the update sums, and
at H = 1 it is C-PSGD's ``x - mean_i lr g_i``, the same operations (equal up to the order in which XLA sums over the
workers: 1 ulp at most seen). ``H`` is a traced hyperparameter (a sweep over ``"H"``
is one program): both branches are computed and ``jnp.where`` picks one.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgossip.algorithms._base import Algorithm, as_float, check_optimizer, init_optimizer, resolve_lr
from jaxgossip.algorithms.dpsgd import SGDState, local_step
from jaxgossip.compressors._base import FLOAT_BITS
from jaxgossip.cost import Cost

__all__ = ["local_sgd", "LocalSGDState", "communicates"]


class LocalSGDState(NamedTuple):
    x: jax.Array  # (n, d) the workers' models, anchor - moved
    anchor: jax.Array  # (d,) the model of the last average (x0 before the first)
    moved: jax.Array  # (n, d) each worker's sum of local updates since the last average
    opt: tuple  # per-worker optax state (empty for plain SGD); local, never averaged


def _init(algo, X0, ctx):
    return LocalSGDState(X0, X0[0], jnp.zeros_like(X0), init_optimizer(algo.optimizer, X0))


def communicates(H, t):
    """Whether (0-based) step ``t`` ends with the average: ``(t + 1) mod H == 0`` (H traced, a float32 holding an
    integer)."""
    H = jnp.round(jnp.asarray(H)).astype(jnp.int32)
    return (jnp.asarray(t, jnp.int32) + 1) % H == 0


def _step(algo, state, key, ctx):
    step, opt = local_step(algo, SGDState(state.x, state.opt), key, ctx)
    moved = state.moved + step
    average = state.anchor - jnp.mean(moved, axis=0)
    sync = communicates(algo.hyper["H"], ctx.t)
    anchor = jnp.where(sync, average, state.anchor)
    x = jnp.where(sync, jnp.broadcast_to(average, state.x.shape), state.anchor - moved)
    moved = jnp.where(sync, jnp.zeros_like(moved), moved)
    batch = ctx.problem.batch_size
    exchange = ctx.pricing.allreduce(key, FLOAT_BITS * state.x.shape[1], batch)  # the models, float32
    local = ctx.pricing.compute_time(key, batch)  # a local step: computation only, nothing sent
    cost = Cost(jnp.where(sync, exchange.bits, jnp.zeros_like(exchange.bits)),
                jnp.where(sync, exchange.seconds, local))
    return LocalSGDState(x, anchor, moved, opt), cost


def _check_problem(algo, problem, topology):
    """Refuse a problem whose model state (BatchNorm statistics) is averaged after every step (``share_model_state``):
    simulate averages it with an AllReduce at every step, which local SGD's local steps would not do."""
    if getattr(problem, "has_model_state", False) and getattr(problem, "share_model_state", False):
        raise ValueError("local_sgd: the problem averages its model state (BatchNorm statistics) after every step "
                         "(share_model_state=True), but local SGD averages only every H steps; build the problem with "
                         "share_model_state=False (per-worker statistics) or use a model without mutable state.")


def _check_H(H):
    """H as a float32 array, checked to hold an integer >= 1 (a traced value passes unchecked)."""
    if isinstance(H, jax.core.Tracer):
        return H
    message = f"local_sgd: H must be an integer >= 1 (local steps per average), got {H!r}."
    if isinstance(H, (str, bytes, bool, np.bool_)):
        raise ValueError(message)
    try:
        value = np.asarray(H)
    except (TypeError, ValueError):
        raise ValueError(message) from None
    if value.shape != () or value.dtype.kind not in "iuf":
        raise ValueError(message)
    value = float(value)
    if not np.isfinite(value) or not value.is_integer() or not 1 <= value < 2**24:
        raise ValueError(message)
    return as_float("local_sgd", "H", value, 1, low_open=False)


def local_sgd(lr=None, H=4, optimizer=None) -> Algorithm:
    """Local SGD (Stich 2019, Alg. 1) / FedAvg with full participation (McMahan et al. 2017): every worker takes H
    local SGD steps on its own data, then the models are averaged exactly (see the module docstring).

    Cost: a step that ends with the average is priced as a ring AllReduce of the float32 model
    (``ctx.pricing.allreduce``, 2 (n - 1) d 32 bits on the wire); the other steps send nothing: zero bits, and only
    the slowest worker's computation in seconds. So over T steps local SGD sends 1 / H of C-PSGD's bits. H = 1 is
    :func:`jaxgossip.algorithms.cpsgd` (``pattern="allreduce"``): the same bits and seconds, the same models up to float
    rounding.

    Args:
      lr: step size gamma (traced), default 0.1; with an optax optimizer in the ``"updates"`` convention a multiplier
        of the optimizer's own update, default 1 (see :func:`jaxgossip.algorithms.cpsgd`).
      H: local steps per communication round, an integer >= 1 (traced: ``jg.sweep`` over ``"H"`` is one compiled
        program). Step t (0-based) averages when ``(t + 1) mod H == 0``.
      optimizer: optional optax transformation, applied by each worker to its own gradients (a direction or an
        optimizer with its own learning rate, see :func:`jaxgossip.algorithms.cpsgd`); its state stays local to the
        worker and is not averaged.

    Raises:
      ValueError: for an lr out of range or an H that is not an integer >= 1.
    """
    optimizer = check_optimizer("local_sgd", optimizer)
    lr = resolve_lr("local_sgd", lr, optimizer, 0.1)
    hyper = {"lr": as_float("local_sgd", "lr", lr, 0, low_open=False), "H": _check_H(H)}
    return Algorithm(hyper, "local_sgd", _init, _step, "centralized", optimizer, check_fn=_check_problem)
