"""Gradient tracking: DIGing (Nedic, Olshevsky, Shi 2017) and GT-DSGD / DSGT (Pu & Nedic 2021).

Each worker keeps a second gossiped variable Y that tracks the average gradient, so the models move along an estimate
of the *global* gradient instead of the local one: with heterogeneous data and a constant step size the iterates reach
the exact optimum (full gradients), where D-PSGD stalls at a bias floor of order lr^2 zeta^2 / (1 - rho)^2.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxgossip.algorithms._base import Algorithm, as_float, hyper_at
from jaxgossip.algorithms._rounds import gossip_rounds
from jaxgossip.compressors._base import FLOAT_BITS

__all__ = ["gradient_tracking", "TrackingState", "ORDERS", "check_doubly_stochastic"]

ORDERS = ("diging", "atc")


class TrackingState(NamedTuple):
    x: jax.Array  # (n, d) models X_t
    d: jax.Array  # (n, d) the tracker's correction D_t = Y_t - G_t = W_{t-1} Y_{t-1} - G_{t-1} (0 at t = 0)
    g: jax.Array  # (n, d) the previous step's gradients G_{t-1} (zeros before the first step)

    @property
    def wy(self):
        """The previous step's tracker as received, W_{t-1} Y_{t-1} = G_{t-1} + D_t (zeros before the first step)."""
        return self.g + self.d


def _init(algo, X0, ctx):
    zeros = jnp.zeros_like(X0)
    return TrackingState(X0, zeros, zeros)


def _track(state, key, ctx):
    """G_t, the tracker Y_t = G_t + D_t (= W_{t-1} Y_{t-1} + G_t - G_{t-1}; Y_0 = G_0) and the next correction
    D_{t+1} = W_t Y_t - G_t = D_t + (W_t - I) Y_t, in difference form (``mixing.delta``): its worker-mean, 0 in exact
    arithmetic, then moves only by the round-off of the neighbour differences, not by the rounding of Y or of W's
    float32 row sums (the tracker's mean is the average gradient at every step)."""
    G, _ = ctx.problem.stochastic_grads(jax.random.fold_in(key, 0), state.x)
    Y = G + state.d
    return G, Y, state.d + ctx.mixing.delta(Y)


def _step_diging(algo, state, key, ctx):
    G, Y, d_next = _track(state, key, ctx)
    x = ctx.mixing.difference(state.x) - hyper_at(algo, "lr", ctx.t) * Y  # X_{t+1} = W_t X_t - lr Y_t
    d = state.x.shape[1]
    return TrackingState(x, d_next, G), gossip_rounds(key, ctx, FLOAT_BITS * d, FLOAT_BITS * d)


def _step_atc(algo, state, key, ctx):
    G, Y, d_next = _track(state, key, ctx)
    x = ctx.mixing.difference(state.x - hyper_at(algo, "lr", ctx.t) * Y)  # X_{t+1} = W_t (X_t - lr Y_t)
    d = state.x.shape[1]
    return TrackingState(x, d_next, G), gossip_rounds(key, ctx, FLOAT_BITS * d, FLOAT_BITS * d)


def gradient_tracking(lr=0.05, order: str = "diging") -> Algorithm:
    """Gradient tracking (DIGing; stochastic GT-DSGD / DSGT).

    Both orders track the average gradient with Y (the DIGing iteration of Nedic, Olshevsky, Shi 2017; the DSGT
    iteration of Pu & Nedic 2021)::

        Y_0 = G_0,    Y_{t+1} = W Y_t + G_{t+1} - G_t,

    so that mean_i y_t^(i) = mean_i g_t^(i) at every step, and move the models along it:

    * ``order="diging"``: X_{t+1} = W X_t - lr Y_t (DIGing; the "paper" order of D-PSGD);
    * ``order="atc"``: X_{t+1} = W (X_t - lr Y_t) (adapt-then-combine, as in Pu & Nedic's DSGT). With the
      complete graph's W = J and full gradients every row is x_{t+1} = x_t - lr grad f(x_t): centralized gradient
      descent.

    G_t are the stochastic gradients at X_t (Pu & Nedic) or the exact local gradients under a full-batch problem
    (DIGing). On a time-varying topology both messages of step t (X_t and Y_t) use step t's graph W_t, as in
    DIGing over time-varying graphs (Nedic et al. 2017). Every step gossips two full-precision messages per worker and
    neighbour (the model and the tracker) and is priced as two rounds on the step's graph: twice the bits and twice the
    network time of D-PSGD.

    Precision: both mixings use the difference form x_i + sum_j w_ij (x_j - x_i) (``mixing.difference``), exact on a
    consensus stack and exactly doubly stochastic whatever float32 does to the weights, and the state keeps the
    tracker's correction D_t = Y_t - G_t (mean 0) rather than W Y, updated by (W - I) Y in difference form, so the
    tracker's average stays the average gradient up to round-off of the disagreement, with no drift over long float32
    runs (tests/test_mixing_stability.py).

    Faults (``simulate(..., faults=jg.faults...)``): a lost message would break the tracking invariant for good if only
    one direction were lost (the sum of the trackers would no longer be the sum of the gradients). ``jg.faults`` drops a
    link in both directions and moves its weight to both ends' own models, so W_t stays symmetric and doubly
    stochastic and (W_t - I) Y sums to 0 over the workers: D keeps its zero mean and mean_i y^(i) = mean_i g^(i) at
    every step; a dropped link only slows the mixing. An offline worker keeps its x, D and G rows (its tracker
    frozen) and rejoins with them.

    Args:
      lr: step size (traced), or a schedule (``jg.schedules``); the exactness claims need a constant one.
      order: ``"diging"`` or ``"atc"`` (static).

    References:
      A. Nedic, A. Olshevsky, W. Shi, "Achieving geometric convergence for distributed optimization over time-varying
      graphs", SIAM J. Optim. 27(4), 2017 (DIGing). S. Pu, A. Nedic, "Distributed stochastic gradient tracking
      methods", Math. Program. 187, 2021 (DSGT).
    """
    if order not in ORDERS:
        raise ValueError(f"gradient_tracking: order must be one of {ORDERS}, got {order!r}.")
    step = _step_diging if order == "diging" else _step_atc
    hyper = {"lr": as_float("gradient_tracking", "lr", lr, 0, low_open=False)}
    return Algorithm(hyper, "gradient_tracking", _init, step, "decentralized", check_fn=check_doubly_stochastic)


def check_doubly_stochastic(algo, problem, topology):
    """Raise for a directed graph whose mixing matrix is only column stochastic (push-sum methods need it:
    ``jg.algorithms.sgp``); tracking the average gradient needs a doubly stochastic W."""
    for topo in getattr(topology, "topologies", (topology,)):
        if topo is not None and not getattr(topo, "doubly_stochastic", True):
            raise ValueError(f"{algo.name}: needs a doubly stochastic mixing matrix; {topo.name} is only column "
                             f"stochastic (use jg.algorithms.sgp, push-sum, on it).")
