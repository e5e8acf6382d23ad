"""DeepSqueeze: decentralized SGD with error-compensated compression (Tang et al. 2019; slides 004)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxgossip.algorithms._base import Algorithm, init_optimizer, make_algorithm, resolve_lr
from jaxgossip.algorithms.choco import CONSENSUS, check_consensus, contraction, default_consensus
from jaxgossip.algorithms.dcd import LR
from jaxgossip.algorithms.dpsgd import SGDState, local_step
from jaxgossip.compressors._base import Compressor, compress_rows

__all__ = ["deepsqueeze", "DeepSqueezeState"]


class DeepSqueezeState(NamedTuple):
    x: jax.Array  # (n, d) models
    delta: jax.Array  # (n, d) each worker's compression error, fed back into its next message
    opt: tuple


def _ds_init(algo, X0, ctx):
    return DeepSqueezeState(X0, jnp.zeros_like(X0), init_optimizer(algo.optimizer, X0))


def _ds_step(algo, state, key, ctx):
    comp = algo.hyper["compressor"]
    step, opt = local_step(algo, SGDState(state.x, state.opt), key, ctx)
    half = state.x - step  # X_half = X - gamma G
    v = half + state.delta  # V = X_half + Delta
    cv = compress_rows(comp, jax.random.fold_in(key, 1), v)
    x = half + algo.hyper["consensus"] * ctx.mixing.minus_identity(cv)  # X_half + c (W - I) C(V)
    cost = ctx.pricing.gossip(key, comp.bits(state.x.shape[1]), ctx.problem.batch_size)
    return DeepSqueezeState(x, v - cv, opt), cost


def deepsqueeze(lr=None, compressor: Compressor | None = None, consensus=None, optimizer=None) -> Algorithm:
    """DeepSqueeze (Tang, Lian, Qiu, Yuan, Zhang, Zhang, Liu 2019; slides 004, "DCD-SGD + error compensation").

        X_half = X_t - gamma G_t;   V = X_half + Delta;   Delta <- V - C(V);   X_{t+1} = X_half + c (W - I) C(V).

    Each worker adds its last compression error to its next message (error compensation), so biased compressors
    (sign, top-k) work and 2-bit quantization converges where DCD-PSGD fails. With the identity compressor and c = 1
    it is D-PSGD in the survey's order, X_{t+1} = W (X_t - gamma G_t) (``dpsgd(order="survey")``).

    The default consensus step depends on the compressor: ``jg.theory.suggest_consensus(compressor, "deepsqueeze")``,
    omega^2 rounded down (omega the compression quality of Koloskova et al. 2019), e.g. 1 for the identity, 0.3 for
    sign, 0.2 for 2-bit quantization. The old default 1.0 with sign ended, on the CLI's example, at consensus distance
    2085 and loss 0.58 (D-PSGD 0.116) after 1000 steps. ``simulate`` warns when c is more than twice the value
    suggested for the problem's own messages.

    Args:
      lr: step size gamma (traced), default 0.1; with an optax optimizer in the ``"updates"`` convention
        (``optax.sgd(0.05, momentum=0.9)``) a multiplier of the optimizer's own update, default 1 (see
        ``jg.algorithms.cpsgd``).
      compressor: a contraction (sign, top-k, ...; biased ones included), or an unbiased compressor of known
        variance omega, rescaled by 1 / (1 + omega) as for CHOCO-SGD (``jg.algorithms.choco.contraction``; recorded
        in the compressor's repr); others are refused with a ValueError.
      consensus: consensus step c (eta in the paper) in (0, 1] (traced); None (default): chosen from the compressor.
      optimizer: optional optax transformation, a direction or an optimizer with its own learning rate (see
        ``jg.algorithms.cpsgd``).
    """
    compressor = contraction("deepsqueeze", compressor)
    consensus = default_consensus("deepsqueeze", compressor, consensus)
    hyper = {"lr": resolve_lr("deepsqueeze", lr, optimizer, 0.1), "compressor": compressor, "consensus": consensus}
    return make_algorithm("deepsqueeze", _ds_init, _ds_step, hyper, specs=(LR, CONSENSUS), optimizer=optimizer,
                          check_fn=check_consensus)
