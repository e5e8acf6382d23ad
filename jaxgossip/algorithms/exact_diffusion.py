"""Bias-corrected gossip for heterogeneous data: exact diffusion (Yuan, Ying, Zhao, Sayed 2019) and D² (Tang, Lian,
Yan, Zhang, Liu, ICML 2018).

Both add a correction X_t - psi_t (the last step's adapt output) before mixing, which removes D-PSGD's bias from data
heterogeneity: with full local gradients and a constant step size they converge to the exact optimum. They differ in
the mixing matrix: exact diffusion combines with W_bar = (I + W) / 2 (always positive definite), D² with W itself
(which must have every eigenvalue above -1/3).

Precision. The correction integrates: the mean of X_t - psi_t must stay exactly 0, and nothing pulls it back. Two
things break that. (1) The gossip backends keep the mixing weights in float32 (also under ``jax.enable_x64``), and
weights such as 1/3 rounded to float32 make W's rows sum to 1 +- 3e-8; the correction turns that into a drift away
from the optimum that grows with time (measured: ||xbar - x*|| ~ 1e-2 after 2000 steps on a heterogeneous quadratic,
float64 data, ring(8) with weights 1/3). Weights that are exact in binary (1/2, 1/4:
the ring with W = I - L / 4, ``jg.topology.from_adjacency(nx.cycle_graph(n), weights="laplacian", kappa=4.0)``)
avoid it. (2) Round-off of order eps ||x|| per step random-walks in the correction: float32 runs stall near
||xbar - x*|| ~ 1e-3 ||x*||; float64 (``jax.enable_x64``, ``jg.problems.as_float64``) reaches ~1e-12. Gradient
tracking accumulates gradient-sized round-off instead and is far less sensitive.
"""

from __future__ import annotations

from typing import NamedTuple

import jax

from jaxgossip.algorithms._base import Algorithm, as_float, hyper_at
from jaxgossip.compressors._base import FLOAT_BITS

__all__ = ["exact_diffusion", "d2", "DiffusionState", "D2_MIN_EIGENVALUE", "smallest_eigenvalue"]

#: D² converges when every eigenvalue of W exceeds this (Tang et al. 2018, Assumption 1 / Thm. 1).
D2_MIN_EIGENVALUE = -1.0 / 3.0


class DiffusionState(NamedTuple):
    x: jax.Array  # (n, d) models X_t
    psi: jax.Array  # (n, d) the previous adapt step psi_t = X_{t-1} - lr G_{t-1} (X_0 before the first step)


def _init(algo, X0, ctx):
    return DiffusionState(X0, X0)


def _adapt_correct(algo, state, key, ctx):
    """psi_{t+1} = X_t - lr G_t (adapt), phi_{t+1} = psi_{t+1} + X_t - psi_t (correct); psi_0 = X_0: phi_1 = psi_1."""
    G, _ = ctx.problem.stochastic_grads(jax.random.fold_in(key, 0), state.x)
    psi = state.x - hyper_at(algo, "lr", ctx.t) * G
    return psi, psi + state.x - state.psi


def _cost(key, ctx, d):
    return ctx.pricing.gossip(key, FLOAT_BITS * d, ctx.problem.batch_size)


def _step_exact_diffusion(algo, state, key, ctx):
    psi, phi = _adapt_correct(algo, state, key, ctx)
    x = 0.5 * (phi + ctx.mixing(phi))  # combine with W_bar = (I + W) / 2
    return DiffusionState(x, psi), _cost(key, ctx, state.x.shape[1])


def _step_d2(algo, state, key, ctx):
    psi, phi = _adapt_correct(algo, state, key, ctx)
    return DiffusionState(ctx.mixing(phi), psi), _cost(key, ctx, state.x.shape[1])


def exact_diffusion(lr=0.05) -> Algorithm:
    """Exact diffusion (Yuan, Ying, Zhao, Sayed 2019, Part I, Alg. 1: adapt, correct, combine)::

        psi_{t+1} = X_t - lr G_t;   phi_{t+1} = psi_{t+1} + X_t - psi_t;   X_{t+1} = W_bar phi_{t+1},

    with W_bar = (I + W) / 2 and psi_0 = X_0 (so the first step is diffusion, X_1 = W_bar (X_0 - lr G_0)).
    Equivalently X_{t+1} = W_bar (2 X_t - X_{t-1} - lr G_t + lr G_{t-1}): D² with W_bar in place of W. One
    full-precision message per worker and neighbour per step (phi), priced as D-PSGD's.

    Args:
      lr: constant step size mu (traced).

    References:
      K. Yuan, B. Ying, X. Zhao, A. H. Sayed, "Exact diffusion for distributed optimization and learning - Part I:
      algorithm development", IEEE Trans. Signal Process. 67(3), 2019.
    """
    hyper = {"lr": as_float("exact_diffusion", "lr", lr, 0, low_open=False)}
    return Algorithm(hyper, "exact_diffusion", _init, _step_exact_diffusion, "decentralized", check_fn=_check_symmetric)


def d2(lr=0.05) -> Algorithm:
    """D² (Tang, Lian, Yan, Zhang, Liu, ICML 2018, Alg. 1)::

        X_1 = W (X_0 - lr G_0);   X_{t+1} = W (2 X_t - X_{t-1} - lr G_t + lr G_{t-1}),

    written as exact diffusion's adapt / correct with W itself as the combination (psi_0 = X_0). Converges when every
    eigenvalue of W exceeds -1/3 (Assumption 1); ``simulate`` raises before compiling when it does not. An even ring
    with weights 1/3 sits exactly on the boundary (lambda_min = -1/3: a consensus mode of D² then has a root -1 and
    never decays), so it is refused; ``(I + W) / 2`` or an odd ring passes. The eigenvalues come from the Topology
    (NumPy, computed once at build time). One full-precision message per worker and neighbour per step.

    Args:
      lr: constant step size gamma (traced).

    References:
      H. Tang, X. Lian, M. Yan, C. Zhang, J. Liu, "D²: Decentralized training over decentralized data", ICML 2018.
    """
    hyper = {"lr": as_float("d2", "lr", lr, 0, low_open=False)}
    return Algorithm(hyper, "d2", _init, _step_d2, "decentralized", check_fn=_check_d2)


def _graphs(topology):
    return getattr(topology, "topologies", (topology,))


def _check_symmetric(algo, problem, topology):
    for topo in _graphs(topology):
        if topo is not None and not getattr(topo, "symmetric", True):
            raise ValueError(f"{algo.name}: needs a symmetric mixing matrix W; {topo.name} is directed.")


def smallest_eigenvalue(topology) -> float:
    """lambda_min(W) of a Topology (NumPy, at build time; the smallest over a time-varying sequence)."""
    return min(float(t.extreme_eigenvalues[1]) for t in _graphs(topology))


def _check_d2(algo, problem, topology):
    """Raise when some eigenvalue of W is <= -1/3 (Tang et al. 2018, Assumption 1), naming the graph."""
    _check_symmetric(algo, problem, topology)
    for topo in _graphs(topology):
        lam = float(topo.extreme_eigenvalues[1])
        if not lam > D2_MIN_EIGENVALUE + 1e-9:
            raise ValueError(
                f"d2: the mixing matrix of {topo.name} has smallest eigenvalue {lam:.4g} <= -1/3, so D² may diverge "
                f"(Tang et al. 2018, Assumption 1). Give W more self weight, e.g. "
                f"jg.topology.Topology((np.eye(n) + topo.W) / 2), or use jg.algorithms.exact_diffusion, which mixes "
                f"with (I + W) / 2 itself.")

