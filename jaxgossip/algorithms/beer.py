"""BEER: gradient tracking with compressed communication (Zhao, Li, Li, Richtarik, Chi, NeurIPS 2022).

Workers gossip on public surrogates H (of the models X) and G (of the trackers V), each updated by a compressed
difference, EF21-style: what is compressed, X - H and V - G, vanishes as the method converges, so a contractive
biased compressor (top-k) still gives linear convergence on strongly convex problems, where CHOCO-SGD (which tracks no
gradient) stops at the heterogeneity bias.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxgossip.algorithms._base import Algorithm, as_float, hyper_at
from jaxgossip.algorithms._rounds import gossip_rounds
from jaxgossip.algorithms.dcd import check_compressor
from jaxgossip.algorithms.tracking import check_doubly_stochastic
from jaxgossip.compressors._base import Compressor, compress_rows

__all__ = ["beer", "BeerState"]


class BeerState(NamedTuple):
    x: jax.Array  # (n, d) models X^t
    h: jax.Array  # (n, d) public surrogates H^t of the models (every neighbour holds the same copy)
    v: jax.Array  # (n, d) the previous step's trackers V^{t-1} (zeros before the first step)
    gs: jax.Array  # (n, d) public surrogates G^{t-1} of the trackers (zeros before the first step)
    g: jax.Array  # (n, d) the previous step's gradients grad F(X^{t-1}) (zeros before the first step)


def _init(algo, X0, ctx):
    zeros = jnp.zeros_like(X0)
    return BeerState(X0, X0, zeros, zeros, zeros)


def _step(algo, state, key, ctx):
    comp, gamma = algo.hyper["compressor"], algo.hyper["consensus"]
    G, _ = ctx.problem.stochastic_grads(jax.random.fold_in(key, 0), state.x)
    # V^t = V^{t-1} + gamma (W - I) G^{t-1} + grad F(X^t) - grad F(X^{t-1});  G^t = G^{t-1} + C(V^t - G^{t-1})
    v = state.v + gamma * ctx.mixing.minus_identity(state.gs) + G - state.g
    gs = state.gs + compress_rows(comp, jax.random.fold_in(key, 1), v - state.gs)
    # X^{t+1} = X^t + gamma (W - I) H^t - lr V^t;  H^{t+1} = H^t + C(X^{t+1} - H^t)
    x = state.x + gamma * ctx.mixing.minus_identity(state.h) - hyper_at(algo, "lr", ctx.t) * v
    h = state.h + compress_rows(comp, jax.random.fold_in(key, 2), x - state.h)
    b = comp.bits(state.x.shape[1])
    return BeerState(x, h, v, gs, G), gossip_rounds(key, ctx, b, b)


def beer(lr=0.05, compressor: Compressor | None = None, consensus=1.0) -> Algorithm:
    """BEER (Zhao, Li, Li, Richtarik, Chi 2022, Alg. 1), models and trackers as rows::

        X^{t+1} = X^t + gamma (W - I) H^t - eta V^t,          H^{t+1} = H^t + C(X^{t+1} - H^t),
        V^{t+1} = V^t + gamma (W - I) G^t + grad F(X^{t+1}) - grad F(X^t),   G^{t+1} = G^t + C(V^{t+1} - G^t).

    Initialization: H^0 = X^0 (the initial models are public, as CHOCO-SGD's estimates are), V^0 = grad F(X^0) and
    G^0 = C(V^0): the first step sends the compressed tracker (the authors' code starts from G^0 = 0 instead). Each
    step computes one gradient and sends two compressed messages per worker and neighbour (C(V - G) and C(X - H)),
    priced as two gossip rounds. With the identity compressor and gamma = 1, H = X and G = V after every step and BEER
    is gradient tracking (``gradient_tracking(order="diging")``), step for step.

    Args:
      lr: step size eta (traced).
      compressor: any compressor; contractive biased ones (top-k) are what it is for.
      consensus: mixing parameter gamma in (0, 1] (traced); aggressive compression needs a small one.

    References:
      H. Zhao, B. Li, Z. Li, P. Richtarik, Y. Chi, "BEER: Fast O(1/T) rate for decentralized nonconvex optimization
      with communication compression", NeurIPS 2022.
    """
    hyper = {"lr": as_float("beer", "lr", lr, 0, low_open=False), "compressor": check_compressor("beer", compressor),
             "consensus": as_float("beer", "consensus", consensus, 0, 1)}
    return Algorithm(hyper, "beer", _init, _step, "decentralized", check_fn=check_doubly_stochastic)
