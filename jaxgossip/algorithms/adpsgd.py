"""AD-PSGD: asynchronous decentralized parallel SGD (Lian, Zhang, Zhang, Liu, ICML 2018), event-driven.

Every worker runs at its own speed (the compute model's ``times``); one ``step`` of the scan is one *event*: the worker
whose gradient computation finishes first averages its model with one random neighbour (both keep the average, an
atomic pairwise exchange) and then applies its gradient, which it computed at the model it read when it started, so
the gradient is stale by whatever averaging happened meanwhile (Alg. 1). It then reads its model and starts the next
gradient once its exchange is over. Slow workers simply take part in fewer events: nobody waits for them.

Clocks are kept relative to the current simulated time, as in :mod:`jaxgossip.algorithms.asynchronous`, so
``Cost.seconds`` is how far the clock moves and ``sim_time`` is the event time. Ties (identical constant speeds) are
resolved one worker per step, the lowest index first, at zero elapsed time.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxgossip.algorithms._base import Algorithm, as_float, hyper_at
from jaxgossip.algorithms.asynchronous import _start_clocks, one_worker_grad
from jaxgossip.algorithms.powergossip import _slots
from jaxgossip.algorithms.tracking import check_doubly_stochastic
from jaxgossip.compressors._base import FLOAT_BITS
from jaxgossip.cost import Cost

__all__ = ["ad_psgd", "ADPSGDState"]

#: Key streams inside a step: gradients fold_in(key, 0), computation times fold_in(key, 2), the neighbour choice 3.
_GRAD, _PEER = 0, 3


class ADPSGDState(NamedTuple):
    """State of AD-PSGD; all times are seconds from the current simulated time.

    Attributes:
      x: (n, d) the workers' current models.
      read: (n, d) the model each worker read when it started its current gradient (where the gradient is taken).
      clock: (n,) seconds until the worker finishes its gradient, or, where ``pending``, until it starts it.
      pending: (n,) bool, the worker's next gradient time is not drawn yet.
      updates: (n,) int32 number of gradients each worker has applied (stragglers apply fewer).
      last: (2,) int32 the last event's worker i and the neighbour j it averaged with.
    """

    x: jax.Array
    read: jax.Array
    clock: jax.Array
    pending: jax.Array
    updates: jax.Array
    last: jax.Array


def _exchange_seconds(ctx, d):
    """Seconds of one pairwise exchange: the model to the neighbour and the neighbour's model back."""
    return 2.0 * ctx.pricing.network.message(FLOAT_BITS * d)


def _init(algo, X0, ctx):
    n, _ = X0.shape
    return ADPSGDState(X0, X0, jnp.zeros((n,), jnp.float32), jnp.ones((n,), bool), jnp.zeros((n,), jnp.int32),
                       jnp.zeros((2,), jnp.int32))


def _step(algo, state, key, ctx):
    n, d = state.x.shape
    clock = _start_clocks(state.clock, state.pending, key, ctx)
    i = jnp.argmin(clock)  # the first to finish its gradient (lowest index among ties)
    dt = clock[i]
    index, weight = _slots(ctx.mixing, "ad_psgd")
    # a neighbour with probability W_ij / sum_{k != i} W_ik (uniform on graphs with uniform weights)
    w = weight[i]
    slot = jax.random.categorical(jax.random.fold_in(key, _PEER), jnp.where(w > 0, jnp.log(jnp.maximum(w, 1e-30)),
                                                                            -jnp.inf))
    j = index[i, slot]
    g = one_worker_grad(ctx.problem, jax.random.fold_in(key, _GRAD), i, state.read[i])
    avg = 0.5 * (state.x[i] + state.x[j])
    xi = avg - hyper_at(algo, "lr", ctx.t) * g  # x_i <- (x_i + x_j)/2 - lr g(x_hat_i);  x_j <- (x_i + x_j)/2
    x = state.x.at[j].set(avg).at[i].set(xi)
    comm = _exchange_seconds(ctx, d)
    active = jnp.arange(n) == i
    new = ADPSGDState(
        x=x,
        read=state.read.at[i].set(xi),
        clock=jnp.where(active, comm, clock - dt),
        pending=active,
        updates=state.updates + active.astype(jnp.int32),
        last=jnp.stack([i, j]).astype(jnp.int32),
    )
    return new, Cost(jnp.asarray(2.0 * FLOAT_BITS * d, jnp.float32), dt)


def ad_psgd(lr=0.1) -> Algorithm:
    """AD-PSGD (Lian, Zhang, Zhang, Liu 2018, Alg. 1), one event per step: when worker i finishes the stochastic
    gradient g_i it started at model x_hat_i,

        j ~ a random neighbour of i (probability W_ij / (1 - W_ii)),
        x_i, x_j <- (x_i + x_j) / 2,                                  (atomic pairwise averaging)
        x_i <- x_i - lr g_i(x_hat_i),

    and worker i reads x_hat_i <- x_i and starts its next gradient after the exchange (two d-float messages, priced by
    the network model: 2 (alpha + 32 d beta) seconds); the step's duration is the time to the event. The models'
    average moves only by the gradients (averaging preserves it). Each event sends 2 x 32 d bits. ``x_hat_i`` is
    read at the event rather than at the end of the exchange, a difference of one message's time. The state
    (:class:`ADPSGDState`) counts each worker's updates and records the last event's (i, j).

    With ``lr = 0`` an event is one pairwise average (the identity reduction tested: randomized pairwise gossip).

    A mixing matrix that is only column stochastic is refused before compiling (push-sum is ``sgp``); on a
    time-varying topology the neighbour is drawn from the event's graph. The ``sparse`` gossip backend has no neighbour table: use ``backend="gather"``.

    Faults: ``jg.faults`` is refused (``jg.faults.REFUSED``): a lost message in the atomic pairwise average would
    leave one of the two workers unaveraged (the average would move), and the event's neighbour is drawn from the
    fixed graph.

    Args:
      lr: step size gamma (traced), >= 0, or a schedule (evaluated at the event count).

    References:
      X. Lian, W. Zhang, C. Zhang, J. Liu, "Asynchronous decentralized parallel stochastic gradient descent",
      ICML 2018, Algorithm 1.
    """
    hyper = {"lr": as_float("ad_psgd", "lr", lr, 0, low_open=False)}
    return Algorithm(hyper, "ad_psgd", _init, _step, "decentralized", check_fn=check_doubly_stochastic)
