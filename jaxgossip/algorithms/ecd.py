"""ECD-PSGD: extrapolation-compressed decentralized parallel SGD (Tang et al. 2018, Alg. 2)."""

from __future__ import annotations

from typing import NamedTuple

import jax

from jaxgossip.algorithms._base import Algorithm, check_optimizer, init_optimizer, make_algorithm, resolve_lr
from jaxgossip.algorithms.dcd import LR, check_compressor
from jaxgossip.algorithms.dpsgd import SGDState, local_step
from jaxgossip.compressors._base import Compressor, compress_rows

__all__ = ["ecd_psgd", "ECDState"]


class ECDState(NamedTuple):
    x: jax.Array  # (n, d) models X_{s-1}
    xhat: jax.Array  # (n, d) the neighbours' estimates Xhat_{s-1} (identical on every neighbour)
    opt: tuple  # per-worker optax state


def _ecd_init(algo, X0, ctx):
    return ECDState(X0, X0, init_optimizer(algo.optimizer, X0))


def _ecd_step(algo, state, key, ctx):
    """One iteration s = t + 1 (1-based) of Alg. 2, eqs. (3)-(4)."""
    comp = algo.hyper["compressor"]
    s = (ctx.t + 1).astype(state.x.dtype)
    step, opt = local_step(algo, SGDState(state.x, state.opt), key, ctx)
    x = ctx.mixing(state.xhat) - step  # X_s = W Xhat_{s-1} - gamma G(X_{s-1})
    z = state.x + 0.5 * s * (x - state.x)  # Z_s = (1 - s/2) X_{s-1} + (s/2) X_s, written without cancellation
    cz = compress_rows(comp, jax.random.fold_in(key, 1), z)
    xhat = state.xhat + (2.0 / s) * (cz - state.xhat)  # (1 - 2/s) Xhat_{s-1} + (2/s) C(Z_s)
    cost = ctx.pricing.gossip(key, comp.bits(state.x.shape[1]), ctx.problem.batch_size)
    return ECDState(x, xhat, opt), cost


def ecd_psgd(lr=None, compressor: Compressor | None = None, optimizer=None) -> Algorithm:
    """ECD-PSGD (Tang, Gan, Zhang, Zhang, Liu, NeurIPS 2018, Alg. 2, eqs. 3-4).

    Workers mix the neighbours' *estimates* and send a compressed extrapolation; with s the 1-based step counter,

        X_s = W Xhat_{s-1} - gamma G(X_{s-1}),
        Z_s = (1 - s/2) X_{s-1} + (s/2) X_s,
        Xhat_s = (1 - 2/s) Xhat_{s-1} + (2/s) C(Z_s).

    For unbiased C, E[Xhat_s] = X_s whenever Xhat_{s-1} = X_{s-1}, and the estimate error decays like 1/s (Lemma 12),
    so there is no limit on the compression level (unlike DCD-PSGD). With the identity compressor Xhat = X and the
    iterates are D-PSGD's (``dpsgd(order="paper")``). The state is ``(x, xhat, opt)``.

    Args:
      lr: step size gamma (traced), default 0.1; with an optax optimizer in the ``"updates"`` convention a multiplier
        of the optimizer's own update, default 1 (see ``jg.algorithms.cpsgd``).
      compressor: an unbiased compressor (Assumption 2), e.g. ``jg.compressors.quantize(bits=4)``.
      optimizer: optional optax transformation, a direction or an optimizer with its own learning rate (see
        ``jg.algorithms.cpsgd``).
    """
    optimizer = check_optimizer("ecd_psgd", optimizer)
    lr = resolve_lr("ecd_psgd", lr, optimizer, 0.1)
    hyper = {"lr": lr, "compressor": check_compressor("ecd_psgd", compressor)}
    return make_algorithm("ecd_psgd", _ecd_init, _ecd_step, hyper, specs=(LR,), optimizer=optimizer)
