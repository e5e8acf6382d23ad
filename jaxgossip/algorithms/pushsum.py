"""Stochastic gradient push (SGP): SGD with push-sum gossip on directed graphs (Assran, Loizou, Ballas, Rabbat 2019).

Push-sum (Kempe, Dobra, Gehrke 2003) gossips a numerator u and a scalar weight w with the same column-stochastic P;
u / w converges to the average even though P's rows do not sum to 1. SGP takes the gradient step at the de-biased
model z = u / w and pushes the numerator.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxgossip.algorithms._base import Algorithm, as_float, hyper_at
from jaxgossip.compressors._base import FLOAT_BITS

__all__ = ["sgp", "PushSumState"]


class PushSumState(NamedTuple):
    x: jax.Array  # (n, d) de-biased models z_t = u_t / w_t (what the metrics read)
    u: jax.Array  # (n, d) push-sum numerators
    w: jax.Array  # (n,) push-sum weights


def _init(algo, X0, ctx):
    return PushSumState(X0, X0, jnp.ones(X0.shape[:1], X0.dtype))


def _step(algo, state, key, ctx):
    G, _ = ctx.problem.stochastic_grads(jax.random.fold_in(key, 0), state.x)
    u = ctx.mixing(state.u - hyper_at(algo, "lr", ctx.t) * G)  # u_{t+1} = P (u_t - lr grad F(z_t))
    w = ctx.mixing(state.w[:, None])[:, 0]  # w_{t+1} = P w_t
    # one message per out-edge: the numerator (d floats) and the weight (1 float), priced on the step's graph
    cost = ctx.pricing.gossip(key, FLOAT_BITS * (state.x.shape[1] + 1), ctx.problem.batch_size)
    return PushSumState(u / w[:, None], u, w), cost


def sgp(lr=0.05) -> Algorithm:
    """Stochastic gradient push (Assran, Loizou, Ballas, Rabbat, ICML 2019, Alg. 1), one gossip round per step::

        u_{t+1/2} = u_t - lr grad F(z_t);   u_{t+1} = P u_{t+1/2};   w_{t+1} = P w_t;   z_{t+1} = u_{t+1} / w_{t+1},

    with u_0 = z_0 = X_0, w_0 = 1 and P column stochastic (``jg.topology.directed_exponential``, ``directed_ring``,
    ``from_digraph``; any symmetric topology too). A message carries the numerator and the weight: d + 1 floats,
    sent once along every out-edge of the step's graph (worker j pushes to each i with P_ij != 0, i != j): the bits
    are (number of edges) x 32 (d + 1), and the step lasts the slowest computation plus max(most messages a worker
    pushes, most it receives) x (alpha + 32 (d + 1) / 8 beta) (a hub pushing to k workers sends k messages one after
    the other). On a doubly stochastic W the weights stay 1 (still sent: the algorithm does not know it) and SGP is
    D-PSGD in the survey's order, X_{t+1} = W (X_t - lr G_t).

    Faults (``jg.faults``): in push-sum a message lost without the sender knowing takes its share of u and w out of
    the system, which biases the average; ``jg.faults`` therefore needs a symmetric graph (a directed one is refused)
    and drops a link in both directions, its weight moving to both ends' own u and w, so P_t stays doubly stochastic,
    the mass is conserved and the weights stay 1. An offline worker keeps its u and w.

    Args:
      lr: step size gamma (traced).

    References:
      M. Assran, N. Loizou, N. Ballas, M. Rabbat, "Stochastic gradient push for distributed deep learning", ICML 2019.
      D. Kempe, A. Dobra, J. Gehrke, "Gossip-based computation of aggregate information", FOCS 2003 (push-sum).
    """
    return Algorithm({"lr": as_float("sgp", "lr", lr, 0, low_open=False)}, "sgp", _init, _step, "decentralized")
