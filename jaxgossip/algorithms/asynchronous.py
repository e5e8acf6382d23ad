"""Asynchronous DSGD and asynchronous parameter-server SGD (ASGD), event-driven on the simulated clock.

Neither algorithm has rounds: every worker runs at its own speed (the compute model's ``times``), and one ``step`` of
the scan is one *event time*. The state keeps every worker's clock relative to the current simulated time, so the
step's ``Cost.seconds`` is exactly how far the clock moves and the ``sim_time`` metric is the true event time (the
clocks stay small numbers, so float32 keeps its resolution over long runs).

Event rule: a step draws a computation time for every worker that has just started a gradient, finds the earliest
finishing time ``dt = min_i clock_i`` (an argmin over a vector) and processes *every* worker that finishes exactly at
that time together. With random speeds that is one worker per step (a cheap one-row update); with identical constant
speeds on a regular graph it is all workers at once, so one step is one synchronous round and asynchronous DSGD
reproduces D-PSGD exactly. No tolerance window is used: merging workers that finish at different times would move
their updates in time.

Communication (alpha-beta network, one send at a time per worker): a worker that updates sends its new model to its
``deg_i`` neighbours, ``deg_i (alpha + B beta)`` seconds, waits for the sends to finish (Liu & Zhang, Sec. 4.1, phase 4)
and then starts its next gradient; the neighbours hold the new model from the end of those sends. Receives are not
queued (a worker may receive from several neighbours at once). For ASGD the server has one receive and one send link,
each serving one message at a time in order of arrival.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxgossip.algorithms._base import Algorithm, as_float, check_optimizer, init_optimizer, local_direction
from jaxgossip.algorithms._base import hyper_at
from jaxgossip.compressors._base import FLOAT_BITS
from jaxgossip.cost import Cost

__all__ = ["async_dsgd", "asgd", "AsyncDSGDState", "ASGDState", "one_worker_grad"]

#: Key streams inside a step: gradients use fold_in(key, 0) (as every algorithm), computation times fold_in(key, 2).
_GRAD, _TIMES = 0, 2


def one_worker_grad(problem, key, i, x):
    """Worker i's stochastic gradient at its model x (d,): row i of ``problem.stochastic_grads(key, X)`` when X[i] = x.

    Costs one worker's batch instead of the whole stack's (an event updates one worker); see ``Problem.worker_grad``.
    """
    return problem.worker_grad(key, i, x)


def _row_direction(optimizer, g, opt, i, x):
    """The local direction of worker i alone (its row of the per-worker optax state is updated in place)."""
    if optimizer is None:
        return g, opt
    opt_i = jax.tree.map(lambda a: a[i], opt)
    u, opt_i = optimizer.update(g, opt_i, x)
    return u, jax.tree.map(lambda a, b: a.at[i].set(b), opt, opt_i)


def _where_rows(mask, new, old):
    """``new`` on the rows where the (n,) ``mask`` holds, else ``old`` (any trailing shape)."""
    return jnp.where(mask.reshape((-1,) + (1,) * (new.ndim - 1)), new, old)


def _start_clocks(clock, pending, key, ctx):
    """Workers that have just started a gradient (``pending``: clock = seconds until they start) get its duration."""
    n = clock.shape[0]
    durations = ctx.pricing.compute.times(jax.random.fold_in(key, _TIMES), n, ctx.problem.batch_size)
    return jnp.where(pending, clock + durations, clock)


# ---- asynchronous DSGD -----------------------------------------------------------------------------------------------
class AsyncDSGDState(NamedTuple):
    """State of asynchronous DSGD; all times are seconds from the current simulated time.

    Attributes:
      x: (n, d) each worker's current model, which is also the last model it sent.
      prev: (n, d) the model each worker sent before ``x``; its neighbours use it until ``x`` reaches them.
      arrives: (n,) seconds until ``x`` has reached all neighbours (<= 0: it has).
      clock: (n,) seconds until the worker finishes its gradient, or, where ``pending``, until it starts it.
      pending: (n,) bool, the worker's next gradient time is not drawn yet.
      updates: (n,) int32 number of updates each worker has made (stragglers make fewer).
      opt: per-worker optax state (empty for plain SGD).
    """

    x: jax.Array
    prev: jax.Array
    arrives: jax.Array
    clock: jax.Array
    pending: jax.Array
    updates: jax.Array
    opt: tuple


def _send_seconds(ctx, d):
    """(n,) seconds each worker needs to send a float32 d-vector to all its neighbours, one at a time, on the graph of
    ``ctx.mixing`` (``pricing.degrees``: the messages each worker sends; at init, step 0's graph)."""
    pricing = ctx.pricing.on(ctx.mixing)
    return pricing.network.gossip(pricing.degrees, FLOAT_BITS * d)


def _async_dsgd_init(algo, X0, ctx):
    n, d = X0.shape
    send = _send_seconds(ctx, d)  # every worker first sends its initial model, then starts computing
    return AsyncDSGDState(X0, X0, send, send, jnp.ones((n,), bool), jnp.zeros((n,), jnp.int32),
                          init_optimizer(algo.optimizer, X0))


def _mix_all(algo, state, seen, active, key, ctx):
    """Every worker's update (used when several finish together), kept where ``active``."""
    G, _ = ctx.problem.stochastic_grads(jax.random.fold_in(key, _GRAD), state.x)
    U, opt = local_direction(algo.optimizer, G, state.opt, state.x)
    # W_ii x_i + sum_{j != i} W_ij seen_j: a worker always has its own current model.
    mixed = ctx.mixing(seen) + ctx.mixing.diag[:, None] * (state.x - seen)
    x = _where_rows(active, mixed - hyper_at(algo, "lr", ctx.t) * U, state.x)
    opt = jax.tree.map(lambda new, old: _where_rows(active, new, old), opt, state.opt)
    return x, opt


def _mix_one(algo, state, seen, active, key, ctx):
    """The update of the single worker i that finishes now: O(n d) mixing of one row plus one worker's gradient."""
    n = state.x.shape[0]
    i = jnp.argmax(active)
    w = ctx.mixing(jax.nn.one_hot(i, n, dtype=seen.dtype)[:, None])[:, 0]  # column i of W = row i (W is symmetric)
    mixed = jnp.dot(w, seen, precision=jax.lax.Precision.HIGHEST) + ctx.mixing.diag[i] * (state.x[i] - seen[i])
    g = one_worker_grad(ctx.problem, jax.random.fold_in(key, _GRAD), i, state.x[i])
    u, opt = _row_direction(algo.optimizer, g, state.opt, i, state.x[i])
    return state.x.at[i].set(mixed - hyper_at(algo, "lr", ctx.t) * u), opt


def _async_dsgd_step(algo, state, key, ctx):
    d = state.x.shape[1]
    clock = _start_clocks(state.clock, state.pending, key, ctx)
    dt = jnp.min(clock)
    active = clock == dt
    seen = jnp.where((state.arrives <= dt)[:, None], state.x, state.prev)  # what the neighbours hold at time dt
    x, opt = jax.lax.cond(jnp.sum(active) == 1, _mix_one, _mix_all, algo, state, seen, active, key, ctx)
    send = _send_seconds(ctx, d)
    new = AsyncDSGDState(
        x=x,
        prev=jnp.where(active[:, None], state.x, state.prev),
        arrives=jnp.where(active, send, state.arrives - dt),
        clock=jnp.where(active, send, clock - dt),
        pending=active,
        updates=state.updates + active.astype(jnp.int32),
        opt=opt,
    )
    bits = jnp.sum(jnp.where(active, ctx.pricing.on(ctx.mixing).degrees, 0.0)) * FLOAT_BITS * d  # their sends
    return new, Cost(bits, dt)


def async_dsgd(lr=0.1, optimizer=None) -> Algorithm:
    """Asynchronous decentralized SGD (Reisizadeh et al. 2019, Sec. 5, the "Asynchronous DSGD" benchmark):

        x_i <- sum_j W_ij x_j^latest - lr * g_i(x_i)

    when worker i finishes its gradient, x_j^latest being the most recent model of neighbour j that has reached i
    (worker i's own current model for j = i); models are sent unquantized. Event-driven on the simulated clock (see
    the module docstring): a step is one event time, and every worker finishing at that time updates in it. With
    identical constant speeds on a regular graph every step is one round of D-PSGD, X_{t+1} = W X_t - lr G(X_t)
    (``dpsgd(order="paper")``), exactly, at the same simulated times.

    The state (:class:`AsyncDSGDState`) also counts each worker's updates. The bits of a step are the models sent by
    the workers that updated in it (each to its deg_i neighbours). A neighbour's model that arrives at the very instant
    of an event counts as received; the clocks are float32, so such exact coincidences (constant speeds on an
    irregular graph produce them) may resolve either way.

    Faults: ``jg.faults`` is refused (``jg.faults.REFUSED``): the events read the fixed graph and the compute model
    decides which worker acts when; a lost message would leave a neighbour's x_j^latest older than the event model
    assumes, which this method does not model.

    Args:
      lr: step size alpha (traced), >= 0.
      optimizer: optional optax transformation giving each worker's local direction (see ``dpsgd``).
    """
    hyper = {"lr": as_float("async_dsgd", "lr", lr, 0, low_open=False)}
    return Algorithm(hyper, "async_dsgd", _async_dsgd_init, _async_dsgd_step, "decentralized",
                     check_optimizer("async_dsgd", optimizer))


# ---- ASGD ------------------------------------------------------------------------------------------------------------
class ASGDState(NamedTuple):
    """State of ASGD; all times are seconds from the current simulated time (the server's last update).

    Attributes:
      x: (n, d) the server's model on every row (what the metrics read; consensus is 0).
      pulled: (n, d) the model each worker is computing its gradient at.
      version: (n,) int32 the server version (number of updates) each worker pulled.
      t: int32 number of updates the server has applied.
      clock: (n,) seconds until the worker finishes its gradient, or, where ``pending``, until it starts it.
      pending: (n,) bool, the worker's next gradient time is not drawn yet.
      send_free: seconds until the server's send link is free.
      staleness: (bins,) int32 histogram of t - D(t) over the updates applied (the last bin counts >= bins - 1).
      stale_sum: (n,) int32 sum of the staleness of each worker's pushes.
      pushes: (n,) int32 number of each worker's gradients the server applied.
      opt: the server's optax state (empty for plain SGD).
    """

    x: jax.Array
    pulled: jax.Array
    version: jax.Array
    t: jax.Array
    clock: jax.Array
    pending: jax.Array
    send_free: jax.Array
    staleness: jax.Array
    stale_sum: jax.Array
    pushes: jax.Array
    opt: tuple


def _message_seconds(ctx, d):
    return ctx.pricing.network.message(FLOAT_BITS * d)


@functools.lru_cache(maxsize=None)
def _asgd_init(bins):
    """The init function for a histogram of ``bins`` bins (one function object per size, so one compile per size)."""

    def init(algo, X0, ctx):
        n, d = X0.shape
        down = _message_seconds(ctx, d)
        # the server sends the initial model to the workers one at a time
        clock = (jnp.arange(n, dtype=jnp.float32) + 1.0) * down
        opt = () if algo.optimizer is None else algo.optimizer.init(X0[0])
        zeros = jnp.zeros((n,), jnp.int32)
        return ASGDState(X0, X0, zeros, jnp.zeros((), jnp.int32), clock, jnp.ones((n,), bool), n * down,
                         jnp.zeros((bins,), jnp.int32), zeros, zeros, opt)

    return init


def _asgd_step(algo, state, key, ctx):
    n, d = state.x.shape
    clock = _start_clocks(state.clock, state.pending, key, ctx)
    i = jnp.argmin(clock)  # the earliest finishing worker pushes next (the server serves pushes in arrival order)
    up = down = _message_seconds(ctx, d)
    received = jnp.maximum(clock[i], 0.0) + up  # the receive link is free from the last update (time 0) on
    replied = jnp.maximum(received, state.send_free) + down
    g = one_worker_grad(ctx.problem, jax.random.fold_in(key, _GRAD), i, state.pulled[i])
    if algo.optimizer is None:
        u, opt = g, state.opt
    else:
        u, opt = algo.optimizer.update(g, state.opt, state.x[0])
    server = state.x[0] - hyper_at(algo, "lr", ctx.t) * u  # x_{t+1} = x_t - gamma g(x_{D(t)})
    stale = state.t - state.version[i]
    bins = state.staleness.shape[0]
    new = ASGDState(
        x=jnp.broadcast_to(server, (n, d)),
        pulled=state.pulled.at[i].set(server),
        version=state.version.at[i].set(state.t + 1),
        t=state.t + 1,
        clock=(clock - received).at[i].set(replied - received),
        pending=jnp.arange(n) == i,
        send_free=replied - received,
        staleness=state.staleness.at[jnp.minimum(stale, bins - 1)].add(1),
        stale_sum=state.stale_sum.at[i].add(stale),
        pushes=state.pushes.at[i].add(1),
        opt=opt,
    )
    return new, Cost(jnp.asarray(2.0 * FLOAT_BITS * d, jnp.float32), received)


def asgd(lr=0.05, staleness_bins: int = 64, optimizer=None) -> Algorithm:
    """Asynchronous SGD on one parameter server (Liu & Zhang, Sec. 4.1-4.2):

        x_{t+1} = x_t - gamma g(x_{D(t)}),

    t counting the server's updates. Each worker pulls the model, computes a stochastic gradient at it (for the
    compute model's time), pushes it, and pulls again once the server's reply arrives; the server applies every push
    on arrival, one at a time. The staleness t - D(t) is whatever the compute times and the network make it: the
    state (:class:`ASGDState`) keeps its histogram and each worker's total, so stragglers show up as large staleness.
    A step is one server update; ``sim_time`` is the time the server applied it. With one worker, ASGD is SGD and
    matches ``cpsgd(pattern="parameter_server")`` step for step, in models and simulated time.

    Faults: ``jg.faults`` is refused (``jg.faults.REFUSED``): there is no graph, and a worker that goes away is not
    modelled in the event queue.

    Args:
      lr: step size gamma (traced), >= 0.
      staleness_bins: static number of bins of the staleness histogram (an integer >= 2).
      optimizer: optional optax transformation the server applies to each incoming gradient (direction at unit step).
    """
    if isinstance(staleness_bins, bool) or not isinstance(staleness_bins, int) or staleness_bins < 2:
        raise ValueError(f"asgd: staleness_bins must be an integer >= 2, got {staleness_bins!r}.")
    hyper = {"lr": as_float("asgd", "lr", lr, 0, low_open=False)}
    return Algorithm(hyper, "asgd", _asgd_init(staleness_bins), _asgd_step, "centralized",
                     check_optimizer("asgd", optimizer))
