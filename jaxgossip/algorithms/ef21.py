"""EF21: error feedback by compressed gradient differences (Richtarik, Sokolov, Fatkhullin, NeurIPS 2021).

Each worker keeps the estimate g_i of its gradient that the server also holds and sends only a compressed correction
C(grad f_i(x) - g_i); the server steps along the average of the estimates. The compressed quantity vanishes as the
estimates converge, so contractive biased compressors (top-k) work without the error memories of EC-SGD.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxgossip.algorithms._base import Algorithm, hyper_at, make_algorithm
from jaxgossip.algorithms.dpsgd import LR
from jaxgossip.algorithms.csgd import check_compressor
from jaxgossip.compressors._base import FLOAT_BITS, Compressor, compress_rows

__all__ = ["ef21", "EF21State"]


class EF21State(NamedTuple):
    x: jax.Array  # (n, d) models, all rows equal
    g: jax.Array  # (n, d) the gradient estimates g_i of the previous step (unused before the first step)


def contraction(name, compressor):
    """EF21 needs a contractive compressor (Richtarik et al. 2021, Def. 1); an unbiased one of known variance omega
    is rescaled by 1 / (1 + omega) (:meth:`jaxgossip.compressors.Compressor.to_contraction`), anything else refused."""
    return check_compressor(name, compressor).to_contraction(name)


def _init(algo, X0, ctx):
    return EF21State(X0, jnp.zeros_like(X0))


def _step(algo, state, key, ctx):
    comp = algo.hyper["compressor"]
    G, _ = ctx.problem.stochastic_grads(jax.random.fold_in(key, 0), state.x)
    first = ctx.t == 0  # the authors' g_i^0 = grad f_i(x^0), sent uncompressed
    g = jnp.where(first, G, state.g + compress_rows(comp, jax.random.fold_in(key, 1), G - state.g))  # g_i += C(...)
    x = state.x - hyper_at(algo, "lr", ctx.t) * jnp.mean(g, axis=0, keepdims=True)  # x <- x - lr mean_i g_i
    d = state.x.shape[1]
    up = jnp.where(first, float(FLOAT_BITS * d), comp.bits(d))  # step 0 uploads the full-precision gradient
    cost = ctx.pricing.parameter_server(key, up, FLOAT_BITS * d, ctx.problem.batch_size)
    return EF21State(x, g), cost


def ef21(lr=0.1, compressor: Compressor | None = None) -> Algorithm:
    """EF21 (Richtarik, Sokolov, Fatkhullin 2021), on a parameter server::

        x^{t+1} = x^t - lr g^t,   g^t = (1/n) sum_i g_i^t,
        g_i^{t+1} = g_i^t + C(grad f_i(x^{t+1}) - g_i^t).

    The estimates start uncompressed, g_i^0 = grad f_i(x^0), as in the authors' experiments
    (github.com/IgorSokoloff/ef21_experiments_source_code, ``biased_diana_top_k_gd``: ``g_ar =
    compute_full_grads(A, x_0, ...)``; Alg. 1 leaves g_i^0 free): step 0 uploads the full-precision gradient
    (32 d bits per worker, priced as such; the authors' plots count only the compressed uploads), and every later step
    t computes the gradients at the current model and uploads C(grad f_i(x^t) - g_i^{t-1}). (Before, g_i^0 =
    C(grad f_i(x^0)).) The server broadcasts the new model in full precision.
    Every worker holds the same model (a per-worker x_0 has no meaning for this centralized method). With the
    identity compressor g_i^t = grad f_i(x^t) and EF21 is C-PSGD (``cpsgd(pattern="parameter_server")``), step for
    step. Contractive compressors (top-k, biased) are what it is for.

    Args:
      lr: step size gamma (traced).
      compressor: a contractive compressor C (e.g. ``jg.compressors.top_k(fraction=0.1)``); an unbiased one of known
        variance omega is rescaled to C / (1 + omega) (recorded in its repr), others are refused.

    References:
      P. Richtarik, I. Sokolov, I. Fatkhullin, "EF21: A new, simpler, theoretically better, and practically faster
      error feedback", NeurIPS 2021.
    """
    hyper = {"lr": lr, "compressor": contraction("ef21", compressor)}
    return make_algorithm("ef21", _init, _step, hyper, specs=(LR,), kind="centralized")
