"""Q-DSGD and QuanTimed-DSGD (Reisizadeh, Taheri, Mokhtari, Hassani & Pedarsani, NeurIPS 2019).

Both exchange quantized models z_j = Q(x_j) and update with eq. 8,

    x_i <- (1 - eps + eps w_ii) x_i + eps sum_{j in N_i} w_ij z_j - alpha eps g_i,

for the whole stack at once: ``sum_{j != i} w_ij z_j = (W Z)_i - w_ii z_i``. Q-DSGD computes g_i on a fixed batch of
b samples (the problem's ``batch_size``) and waits for the slowest worker (b / min_i V_i,t). QuanTimed-DSGD (Alg. 1)
stops every worker at the deadline T_d: worker i averages the gradients of the |S_i,t| = min(m, floor(V_i,t T_d))
samples it reached (eq. 6; zero samples give a zero gradient), so an iteration always costs T_d plus the
communication. The samples are a subset S_i,t of the worker's m local samples drawn without replacement, and m is the
worker's local data size (eq. 6, Remark 1: a deadline that reaches every sample gives the exact local gradient);
``sampling="with_replacement"`` keeps the earlier reading (draws with replacement, capped at the problem's
``batch_size``).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jaxgossip.algorithms._base import Algorithm, hyperparameter, make_algorithm
from jaxgossip.algorithms.dpsgd import SGDState
from jaxgossip.compressors._base import Compressor, compress_rows
from jaxgossip.compressors.low_precision import low_precision

__all__ = ["q_dsgd", "quantimed_dsgd", "deadline_sizes", "paper_step_sizes"]

SETTINGS = ("nonconvex", "strongly_convex")


def _init(algo, X0, ctx):
    return SGDState(X0, ())


def _eq8(algo, state, G, key, ctx):
    """Eq. 8 for the stack; returns the new models and the bits of one message."""
    comp, eps = algo.hyper["compressor"], algo.hyper["eps"]
    X = state.x
    Z = compress_rows(comp, jax.random.fold_in(key, 1), X)
    neighbours = ctx.mixing(Z) - ctx.mixing.diag[:, None] * Z  # sum_{j != i} w_ij z_j
    x = (1.0 - eps + eps * ctx.mixing.diag[:, None]) * X + eps * neighbours - algo.hyper["alpha"] * eps * G
    return x, comp.bits(X.shape[1])


def deadline_sizes(speeds, deadline, cap):
    """|S_i,t| = min(m, floor(V_i,t T_d)) (Reisizadeh et al. 2019, Sec. 3), as int32 (n,)."""
    return jnp.minimum(jnp.floor(speeds * deadline), cap).astype(jnp.int32)


def _q_dsgd_step(algo, state, key, ctx):
    G, _ = ctx.problem.stochastic_grads(jax.random.fold_in(key, 0), state.x)
    x, msg_bits = _eq8(algo, state, G, key, ctx)
    return SGDState(x, ()), ctx.pricing.gossip(key, msg_bits, ctx.problem.batch_size)


def _quantimed_step(algo, state, key, ctx):
    """With replacement, at most ``batch_size`` samples (``sampling="with_replacement"``)."""
    deadline = algo.hyper["deadline"]
    sizes = deadline_sizes(ctx.pricing.speeds(key), deadline, ctx.problem.batch_size)
    G, _ = ctx.problem.stochastic_grads(jax.random.fold_in(key, 0), state.x, sizes)
    x, msg_bits = _eq8(algo, state, G, key, ctx)
    return SGDState(x, ()), ctx.pricing.gossip_deadline(deadline, msg_bits)


def _quantimed_subset_step(algo, state, key, ctx):
    """A subset of the worker's own samples without replacement, at most its local data size (eq. 6, Remark 1)."""
    deadline = algo.hyper["deadline"]
    m = ctx.problem.data_x.shape[1]
    sizes = deadline_sizes(ctx.pricing.speeds(key), deadline, m)
    G, _ = ctx.problem.stochastic_grads(jax.random.fold_in(key, 0), state.x, sizes, replace=False, batch=m)
    x, msg_bits = _eq8(algo, state, G, key, ctx)
    return SGDState(x, ()), ctx.pricing.gossip_deadline(deadline, msg_bits)


SAMPLINGS = ("subset", "with_replacement")
ALPHA = hyperparameter("alpha", low=0, doc="gradient step size alpha > 0")
EPS = hyperparameter("eps", low=0, doc="averaging step eps > 0")
DEADLINE = hyperparameter("deadline", low=0, doc="computation deadline T_d > 0 (simulated seconds)")


def _check_compressor(name, compressor):
    if compressor is None:
        return low_precision(scale=2.0**-6, bits=8)
    if not isinstance(compressor, Compressor):
        raise ValueError(f"{name}: compressor must be a jg.compressors.Compressor (e.g. low_precision(bits=8)) or None, "
                         f"got {type(compressor).__name__}.")
    return compressor


def q_dsgd(alpha=0.1, eps=0.5, compressor: Compressor | None = None) -> Algorithm:
    """Quantized decentralized SGD, Q-DSGD (Reisizadeh et al. 2019a; paper 001 eq. 8 with a fixed batch).

    x_i <- (1 - eps + eps w_ii) x_i + eps sum_{j in N_i} w_ij Q(x_j) - alpha eps g_i, with g_i the gradient of a fixed
    batch of the problem's ``batch_size`` samples; a step waits for the slowest worker.

    Args:
      alpha: gradient step size alpha > 0 (traced). Paper 001, Thm. 2 (non-convex): a0 / T^(1/6); see
        :func:`paper_step_sizes`.
      eps: averaging step eps > 0 (traced); e0 / T^(1/2) in Thm. 2.
      compressor: the quantizer Q (default: the low-precision quantizer of eq. 7, 8 bits, step 2^-6).
    """
    hyper = {"alpha": alpha, "eps": eps, "compressor": _check_compressor("q_dsgd", compressor)}
    return make_algorithm("q_dsgd", _init, _q_dsgd_step, hyper, specs=(ALPHA, EPS))


def quantimed_dsgd(alpha=0.1, eps=0.5, deadline=1.0, compressor: Compressor | None = None,
                   sampling: str = "subset") -> Algorithm:
    """QuanTimed-DSGD (Reisizadeh et al. 2019, Alg. 1, eq. 6-8): quantized gossip with a computation deadline.

    At the step's speeds V_i,t (from the compute model) worker i averages the gradients of its first
    min(m, floor(V_i,t T_d)) samples (eq. 6; none gives a zero gradient), then applies eq. 8. The step costs T_d plus
    the gossip of one quantized message per neighbour.

    Args:
      alpha: gradient step size alpha > 0 (traced).
      eps: averaging step eps > 0 (traced).
      deadline: T_d in simulated seconds, > 0 (traced, so a deadline sweep is one compiled program). Paper 001 picks
        T_d = b / E[V] for a target mean batch b.
      compressor: the quantizer Q (default: the low-precision quantizer of eq. 7, 8 bits, step 2^-6).
      sampling: ``"subset"`` (the paper: S_i,t a subset of the worker's m local samples, without replacement, m its
        local data size; a deadline past m samples gives the exact local gradient) or ``"with_replacement"`` (draws
        with replacement, capped at the problem's ``batch_size``: cheaper when the share is large). Static.
    """
    if sampling not in SAMPLINGS:
        raise ValueError(f"quantimed_dsgd: sampling must be one of {SAMPLINGS}, got {sampling!r}.")
    hyper = {"alpha": alpha, "eps": eps, "deadline": deadline,
             "compressor": _check_compressor("quantimed_dsgd", compressor)}
    step = _quantimed_subset_step if sampling == "subset" else _quantimed_step
    return make_algorithm("quantimed_dsgd", _init, step, hyper, specs=(ALPHA, EPS, DEADLINE))


def paper_step_sizes(T: int, a0: float = 1.0, e0: float = 1.0, setting: str = "nonconvex", delta: float = 0.25):
    """The step sizes of paper 001's theorems for a horizon of T iterations, as ``(alpha, eps)``.

    ``"nonconvex"`` (Thm. 2): alpha = a0 / T^(1/6), eps = e0 / T^(1/2) (Sec. 5 uses a0 = 0.3, e0 = 15 on MNIST).
    ``"strongly_convex"`` (Thm. 1): alpha = a0 T^(-delta/2), eps = e0 T^(-3 delta/2), delta in (0, 1/2).
    """
    if setting not in SETTINGS:
        raise ValueError(f"paper_step_sizes: setting must be one of {SETTINGS}, got {setting!r}.")
    if not isinstance(T, int) or T < 1:
        raise ValueError(f"paper_step_sizes: T must be an integer >= 1, got {T!r}.")
    if setting == "nonconvex":
        return a0 / T ** (1 / 6), e0 / math.sqrt(T)
    if not 0 < delta < 0.5:
        raise ValueError(f"paper_step_sizes: delta must lie in (0, 0.5), got {delta}.")
    return a0 * T ** (-delta / 2), e0 * T ** (-1.5 * delta)
