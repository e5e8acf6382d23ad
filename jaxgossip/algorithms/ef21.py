"""EF21: error feedback by compressed gradient differences (Richtarik, Sokolov, Fatkhullin, NeurIPS 2021).

Each worker keeps the estimate g_i of its gradient that the server also holds and sends only a compressed correction
C(grad f_i(x) - g_i); the server steps along the average of the estimates. The compressed quantity vanishes as the
estimates converge, so contractive biased compressors (top-k) work without the error memories of EC-SGD.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxgossip.algorithms._base import Algorithm, as_float, hyper_at
from jaxgossip.algorithms.csgd import check_compressor
from jaxgossip.compressors._base import FLOAT_BITS, Compressor, compress_rows

__all__ = ["ef21", "EF21State"]


class EF21State(NamedTuple):
    x: jax.Array  # (n, d) models, all rows equal
    g: jax.Array  # (n, d) the gradient estimates g_i of the previous step (zeros before the first)


def _init(algo, X0, ctx):
    return EF21State(X0, jnp.zeros_like(X0))


def _step(algo, state, key, ctx):
    comp = algo.hyper["compressor"]
    G, _ = ctx.problem.stochastic_grads(jax.random.fold_in(key, 0), state.x)
    g = state.g + compress_rows(comp, jax.random.fold_in(key, 1), G - state.g)  # g_i <- g_i + C(grad_i - g_i)
    x = state.x - hyper_at(algo, "lr", ctx.t) * jnp.mean(g, axis=0, keepdims=True)  # x <- x - lr mean_i g_i
    d = state.x.shape[1]
    cost = ctx.pricing.parameter_server(key, comp.bits(d), FLOAT_BITS * d, ctx.problem.batch_size)
    return EF21State(x, g), cost


def ef21(lr=0.1, compressor: Compressor | None = None) -> Algorithm:
    """EF21 (Richtarik, Sokolov, Fatkhullin 2021), on a parameter server::

        x^{t+1} = x^t - lr g^t,   g^t = (1/n) sum_i g_i^t,
        g_i^{t+1} = g_i^t + C(grad f_i(x^{t+1}) - g_i^t).

    The estimates start at g_i^0 = C(grad f_i(x^0)) (the initialization of the paper's experiments): every step
    computes the gradients at the current model, updates the estimates, then steps, so step t's upload is
    C(grad f_i(x^t) - g_i^{t-1}) with g_i^{-1} = 0. Workers upload one compressed message each; the server
    broadcasts the new model in full precision. With the identity compressor g_i^t = grad f_i(x^t) and EF21 is C-PSGD
    (``cpsgd(pattern="parameter_server")``), step for step. Contractive compressors (top-k, biased) are what it is for.

    Args:
      lr: step size gamma (traced).
      compressor: a contractive compressor C (e.g. ``jg.compressors.top_k(fraction=0.1)``).

    References:
      P. Richtarik, I. Sokolov, I. Fatkhullin, "EF21: A new, simpler, theoretically better, and practically faster
      error feedback", NeurIPS 2021.
    """
    hyper = {"lr": as_float("ef21", "lr", lr, 0, low_open=False), "compressor": check_compressor("ef21", compressor)}
    return Algorithm(hyper, "ef21", _init, _step, "centralized")
