"""DCD-PSGD: difference-compressed decentralized parallel SGD (Tang et al. 2018, Alg. 1)."""

from __future__ import annotations

import jax

from jaxgossip.algorithms._base import Algorithm, check_optimizer, hyperparameter, make_algorithm, resolve_lr
from jaxgossip.algorithms._base import error_feedback_hint
from jaxgossip.algorithms.dpsgd import SGDState, _init, local_step
from jaxgossip.compressors._base import Compressor, compress_rows

__all__ = ["dcd_psgd", "LR"]

#: ``lr`` in (0, inf).
LR = hyperparameter("lr", low=0, doc="step size gamma (or a multiplier of an optax update)")


def _dcd_step(algo, state, key, ctx):
    """Z = W X - gamma G - X; X <- X + C(Z); every replica of x^(j) receives the same C(z^(j))."""
    comp = algo.hyper["compressor"]
    step, opt = local_step(algo, state, key, ctx)
    Z = ctx.mixing(state.x) - step - state.x
    x = state.x + compress_rows(comp, jax.random.fold_in(key, 1), Z)
    return SGDState(x, opt), ctx.pricing.gossip(key, comp.bits(state.x.shape[1]), ctx.problem.batch_size)


def _dcd_check(algo, problem, topology):
    """Warn when Thm. 1's condition (1 - rho)^2 - 4 mu^2 alpha^2 > 0 fails (see :mod:`jaxgossip.theory`)."""
    from jaxgossip import theory

    theory.warn_if_dcd_unstable(algo, problem, topology)


def check_compressor(name: str, compressor) -> Compressor:
    if not isinstance(compressor, Compressor):
        raise ValueError(f"{name}: compressor must be a jg.compressors.Compressor (e.g. quantize(bits=8)), "
                         f"got {type(compressor).__name__}." + error_feedback_hint(compressor))
    return compressor


def dcd_psgd(lr=None, compressor: Compressor | None = None, optimizer=None) -> Algorithm:
    """DCD-PSGD (Tang, Gan, Zhang, Zhang, Liu, NeurIPS 2018, Alg. 1).

    Each worker takes the D-PSGD step, compresses the *difference* to its current model and sends it; all replicas
    of x^(j) receive the same C(z^(j)), so one stacked X is both the models and the replicas:

        Z_t = W X_t - gamma G(X_t) - X_t,     X_{t+1} = X_t + C(Z_t).

    Converges when (1 - rho)^2 - 4 mu^2 alpha^2 > 0 (Thm. 1; ``jg.theory.dcd_condition``); ``simulate`` warns when an
    estimate of alpha violates it. With the identity compressor it is D-PSGD (``dpsgd(order="paper")``).

    Args:
      lr: step size gamma (traced), default 0.1; with an optax optimizer in the ``"updates"`` convention a multiplier
        of the optimizer's own update, default 1 (see ``jg.algorithms.cpsgd``).
      compressor: an unbiased compressor C (Assumption 1.6), e.g. ``jg.compressors.quantize(bits=8)``.
      optimizer: optional optax transformation, a direction or an optimizer with its own learning rate (see
        ``jg.algorithms.cpsgd``).
    """
    optimizer = check_optimizer("dcd_psgd", optimizer)
    lr = resolve_lr("dcd_psgd", lr, optimizer, 0.1)
    hyper = {"lr": lr, "compressor": check_compressor("dcd_psgd", compressor)}
    return make_algorithm("dcd_psgd", _init, _dcd_step, hyper, specs=(LR,), optimizer=optimizer, check_fn=_dcd_check)
