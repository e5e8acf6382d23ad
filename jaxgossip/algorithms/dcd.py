"""DCD-PSGD: difference-compressed decentralized parallel SGD (Tang et al. 2018, Alg. 1)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from jaxgossip.algorithms._base import Algorithm, check_optimizer, hyperparameter, make_algorithm, resolve_lr
from jaxgossip.algorithms._base import error_feedback_hint
from jaxgossip.algorithms.dpsgd import SGDState, _init, local_step
from jaxgossip.compressors._base import Compressor, compress_rows

__all__ = ["dcd_psgd", "LR", "computed_once"]

#: ``lr`` in (0, inf).
LR = hyperparameter("lr", low=0, doc="step size gamma (or a multiplier of an optax update)")


def computed_once(X: jax.Array, key: jax.Array) -> jax.Array:
    """X, unchanged, computed into a buffer of its own that every later use reads.

    A compressor reads its input twice (a stochastic quantizer: the row's min and max, then the rounding), and XLA's
    CPU fusion recomputes an elementwise producer inside each consumer instead of storing it: DCD-PSGD's Z = W X -
    gamma G - X was recomputed from the gathered neighbour rows and the gradient's sample in both passes, and
    CHOCO-SGD's X_{t+1} in both the compressor's passes and the new state (``lax.optimization_barrier`` does not
    survive XLA's CPU pipeline). A conditional is a boundary fusion does not cross: its predicate ``(k | 1) != 0``, k a
    word of ``key``, is always true but not known to XLA, so X is stored once. The other branch is never taken; it
    returns NaN rather than anything that could pass for X. Under ``vmap`` over keys (a sweep over seeds) the
    conditional becomes a select of the same X: the same numbers, only the speed differs. On other platforms than
    the CPU, X is returned as it is (see the comment in the code).

    At n = 64, d = 1000 (benchmarks/bench_compressed_step.py) this took DCD-PSGD's step with the 16-bit quantizer from
    about 2.3x D-PSGD's to about 1.6x, CHOCO-SGD's from about 3.5x to about 2.3x (with the quantizer's single min/max
    pass, :func:`jaxgossip.compressors.quantize.min_max`).

    Args:
      X: any array, typically the (n, d) stack a compressor will read.
      key: a jax.random key of this step (typed or raw); only used to form the predicate.

    Returns:
      X, bit for bit.
    """
    word = jax.random.key_data(key).reshape(-1)[0]

    def stored(a):
        return lax.cond((word | 1) != 0, lambda b: b, lambda b: jnp.full_like(b, jnp.nan), a)

    # CPU only: XLA's GPU backend runs a conditional with a device-to-host read of its predicate, and its fusion is
    # not the CPU's (on an H200, DCD-PSGD ran 29,600 steps/s with this conditional and the quantizer's changes of the
    # same round against 40,800 before them; benchmarks/gpu-runs/)
    return lax.platform_dependent(X, cpu=stored, default=lambda a: a)


def _dcd_step(algo, state, key, ctx):
    """Z = W X - gamma G - X; X <- X + C(Z); every replica of x^(j) receives the same C(z^(j))."""
    comp = algo.hyper["compressor"]
    step, opt = local_step(algo, state, key, ctx)
    Z = computed_once(ctx.mixing(state.x) - step - state.x, key)
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
