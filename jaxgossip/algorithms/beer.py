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

from jaxgossip.algorithms._base import Algorithm, hyper_at, make_algorithm
from jaxgossip.algorithms.dpsgd import LR
from jaxgossip.algorithms._rounds import gossip_rounds
from jaxgossip.algorithms.choco import CONSENSUS, check_consensus, contraction, default_consensus
from jaxgossip.algorithms.tracking import check_doubly_stochastic
from jaxgossip.compressors._base import Compressor, compress_rows

__all__ = ["beer", "BeerState"]


class BeerState(NamedTuple):
    x: jax.Array  # (n, d) models X^t
    h: jax.Array  # (n, d) public surrogates H^t of the models (every neighbour holds the same copy; H^0 = 0)
    v: jax.Array  # (n, d) the previous step's trackers V^{t-1} (zeros before the first step)
    gs: jax.Array  # (n, d) public surrogates G^{t-1} of the trackers (zeros before the first step)
    g: jax.Array  # (n, d) the previous step's gradients grad F(X^{t-1}) (zeros before the first step)


def _init(algo, X0, ctx):
    """The authors' initialization: H^0 = 0 and G^0 = 0 (nothing known before anything is sent), V^0 = grad F(X^0)
    (formed by the first step from V^{-1} = grad F(X^{-1}) = 0)."""
    zeros = jnp.zeros_like(X0)
    return BeerState(X0, zeros, zeros, zeros, zeros)


def _step(algo, state, key, ctx):
    comp, gamma = algo.hyper["compressor"], algo.hyper["consensus"]
    G, _ = ctx.problem.stochastic_grads(jax.random.fold_in(key, 0), state.x)
    # V^t = V^{t-1} + gamma (W - I) G^{t-1} + grad F(X^t) - grad F(X^{t-1});  G^t = G^{t-1} + C(V^t - G^{t-1})
    # (step 0: V^0 = grad F(X^0), and G^0 = 0 stays: the authors send no tracker message before the first update)
    first = ctx.t == 0
    v = state.v + gamma * ctx.mixing.minus_identity(state.gs) + G - state.g
    gs = jnp.where(first, state.gs, state.gs + compress_rows(comp, jax.random.fold_in(key, 1), v - state.gs))
    # X^{t+1} = X^t + gamma (W - I) H^t - lr V^t;  H^{t+1} = H^t + C(X^{t+1} - H^t)
    x = state.x + gamma * ctx.mixing.minus_identity(state.h) - hyper_at(algo, "lr", ctx.t) * v
    h = state.h + compress_rows(comp, jax.random.fold_in(key, 2), x - state.h)
    b = comp.bits(state.x.shape[1])
    one, two = gossip_rounds(key, ctx, b), gossip_rounds(key, ctx, b, b)  # step 0 sends C(X^1 - H^0) only
    return BeerState(x, h, v, gs, G), jax.tree.map(lambda a, c: jnp.where(first, a, c), one, two)


def beer(lr=0.05, compressor: Compressor | None = None, consensus=None) -> Algorithm:
    """BEER (Zhao, Li, Li, Richtarik, Chi 2022, Alg. 1), models and trackers as rows::

        X^{t+1} = X^t + gamma (W - I) H^t - eta V^t,          H^{t+1} = H^t + C(X^{t+1} - H^t),
        V^{t+1} = V^t + gamma (W - I) G^t + grad F(X^{t+1}) - grad F(X^t),   G^{t+1} = G^t + C(V^{t+1} - G^t).

    Initialization as the authors' (Alg. 1 and liboyue/beer, both the convex ``experiments/BEER.py`` and the network
    ``beer/optim/BEER.py``): H^0 = 0, G^0 = 0, V^0 = grad F(X^0) (here the problem's gradient oracle at X^0, a minibatch
    for stochastic problems, where the authors' network code averages the worker's whole share). So step 0 sends one
    compressed message per worker and neighbour, C(X^1 - H^0) = C(X^1), and X^1 = X^0 - eta V^0 mixes nothing; every
    later step computes one gradient and sends two (C(V^t - G^{t-1}) and C(X^{t+1} - H^t)), priced as two gossip
    rounds. (Before, H^0 = X^0 and G^0 = C(V^0): per-worker initial models were known to the neighbours without a bit
    sent.) With the identity compressor and gamma = 1, H = X after every step and G = V from step 1 on, and BEER is
    one local gradient step followed by gradient tracking (``gradient_tracking(order="diging")`` started from X^1).

    The compressor must be a contraction (Zhao et al., Def. 1): top-k, the scaled sign, ...; an unbiased compressor of
    known variance omega is rescaled by 1 / (1 + omega) (as the authors' ``gsgd`` quantizer divides by ``tau``; see
    ``jg.algorithms.choco.contraction``), anything else is refused. The default consensus step comes from the
    compressor as CHOCO-SGD's does: ``jg.theory.suggest_consensus(compressor, "beer")``, omega / (2 - omega) of its
    quality omega, rounded down (1 for the identity, 0.2 for top-k at 10 %, 0.03 at 1 %). Measured on logistic
    regression (digits, 16 workers, ring, lr 0.05, 1000 steps), BEER with top-k converged up to c ~ 1.2-1.4 omega
    (top-k 10 %: 0.5, top-k 1 %: 0.1) and diverged beyond (the old default 1.0 gave NaN with both); ``simulate`` warns
    when c is more than twice the suggestion for the problem's own messages.

    Args:
      lr: step size eta (traced).
      compressor: a contractive compressor (top-k is what it is for), or an unbiased one of known variance (rescaled).
      consensus: mixing parameter gamma in (0, 1] (traced); None (default): chosen from the compressor (see above).

    References:
      H. Zhao, B. Li, Z. Li, P. Richtarik, Y. Chi, "BEER: Fast O(1/T) rate for decentralized nonconvex optimization
      with communication compression", NeurIPS 2022; code: github.com/liboyue/beer (``beer/optim/BEER.py``,
      ``experiments/BEER.py``).
    """
    compressor = contraction("beer", compressor)
    consensus = default_consensus("beer", compressor, consensus)
    hyper = {"lr": lr, "compressor": compressor, "consensus": consensus}
    return make_algorithm("beer", _init, _step, hyper, specs=(LR, CONSENSUS), check_fn=_check)


def _check(algo, problem, topology):
    """A doubly stochastic W (it tracks the average gradient), and a warning when the consensus step is large for
    the compressor (:func:`jaxgossip.theory.warn_if_consensus_too_large`)."""
    check_doubly_stochastic(algo, problem, topology)
    check_consensus(algo, problem, topology)
