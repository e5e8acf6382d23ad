"""Bias-corrected gossip for heterogeneous data: exact diffusion (Yuan, Ying, Zhao, Sayed 2019) and D² (Tang, Lian,
Yan, Zhang, Liu, ICML 2018).

Both add a correction X_t - psi_t (the last step's adapt output) before mixing, which removes D-PSGD's bias from data
heterogeneity: with full local gradients and a constant step size they converge to the exact optimum. They differ in
the mixing matrix: exact diffusion combines with W_bar = (I + W) / 2 (always positive definite), D² with W itself
(which must have every eigenvalue above -1/3).

Precision: stable by construction. The correction C_t = X_t - psi_t integrates: its worker-mean is exactly 0 in exact
arithmetic and nothing pulls it back, so any error in the average it picks up moves the fixed point, further every step.
Computed as the difference X_{t+1} - psi_{t+1} with the plain ``W @ X``, it picked up two: float32 weights such as 1/3
make W's rows and columns sum to 1 +- 3e-8, and the rounding of X_{t+1} (eps ||x|| per step) random-walks into it. On
a heterogeneous quadratic (``jg.problems.quadratic(n_workers=8, batch_size="full")``, ring(8), lr 0.05, float32) the
suboptimality climbed from 1.4e-6 at step 1,000 to 5.7e-5 at step 10,000 (exact diffusion) and from 5.7e-6 to 9.7e-4
(D² on (I + W) / 2). Both are removed here, with the same update rule: the state keeps C_t itself (``psi`` is a
property, X_t - C_t) and updates it as C_{t+1} = C_t + (W_c - I)
phi_{t+1}, and the combination is X_{t+1} = phi_{t+1} + (W_c - I) phi_{t+1}, both in the difference form
``mixing.delta`` (row i: sum_j w_ij (phi_j - phi_i)), which is exactly doubly stochastic whatever the float32 weights
and whose round-off scales with the workers' disagreement, not with the models. The rounding of X_{t+1} no longer
reaches C, and C's mean stays at round-off of the disagreement (measured: flat over 10^4 steps, tests/
test_mixing_stability.py). float64 (``jax.enable_x64``, ``jg.problems.as_float64``) still reaches ~1e-12.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxgossip.algorithms._base import Algorithm, as_float, hyper_at
from jaxgossip.compressors._base import FLOAT_BITS

__all__ = ["exact_diffusion", "d2", "DiffusionState", "D2_MIN_EIGENVALUE", "smallest_eigenvalue"]

#: D² converges when every eigenvalue of W exceeds this (Tang et al. 2018, Assumption 1 / Thm. 1).
D2_MIN_EIGENVALUE = -1.0 / 3.0


class DiffusionState(NamedTuple):
    x: jax.Array  # (n, d) models X_t
    c: jax.Array  # (n, d) the correction C_t = X_t - psi_t, psi_t = X_{t-1} - lr G_{t-1} (0 before the first step)

    @property
    def psi(self):
        """psi_t = X_t - C_t, the previous adapt step (X_0 before the first step)."""
        return self.x - self.c


def _init(algo, X0, ctx):
    return DiffusionState(X0, jnp.zeros_like(X0))


def _step(algo, state, key, ctx, half):
    """Adapt psi_{t+1} = X_t - lr G_t, correct phi_{t+1} = psi_{t+1} + C_t, combine X_{t+1} = W_c phi_{t+1} with
    W_c = (I + W) / 2 (``half``, exact diffusion) or W (D²), and C_{t+1} = X_{t+1} - psi_{t+1} = C_t + (W_c - I)
    phi_{t+1}: the combination's (W_c - I) phi computed once, in difference form, for both."""
    G, _ = ctx.problem.stochastic_grads(jax.random.fold_in(key, 0), state.x)
    phi = state.x - hyper_at(algo, "lr", ctx.t) * G + state.c
    step = ctx.mixing.delta(phi)  # (W - I) phi, row i: sum_j w_ij (phi_j - phi_i)
    if half:
        step = 0.5 * step
    cost = ctx.pricing.gossip(key, FLOAT_BITS * state.x.shape[1], ctx.problem.batch_size)
    return DiffusionState(phi + step, state.c + step), cost


def _step_exact_diffusion(algo, state, key, ctx):
    return _step(algo, state, key, ctx, half=True)


def _step_d2(algo, state, key, ctx):
    return _step(algo, state, key, ctx, half=False)


def exact_diffusion(lr=0.05) -> Algorithm:
    """Exact diffusion (Yuan, Ying, Zhao, Sayed 2019, Part I, Alg. 1: adapt, correct, combine)::

        psi_{t+1} = X_t - lr G_t;   phi_{t+1} = psi_{t+1} + X_t - psi_t;   X_{t+1} = W_bar phi_{t+1},

    with W_bar = (I + W) / 2 and psi_0 = X_0 (so the first step is diffusion, X_1 = W_bar (X_0 - lr G_0)).
    Equivalently X_{t+1} = W_bar (2 X_t - X_{t-1} - lr G_t + lr G_{t-1}): D² with W_bar in place of W. One
    full-precision message per worker and neighbour per step (phi), priced as D-PSGD's.

    Faults (``jg.faults``): a lost message (a link down in both directions, its weight moved to both ends' own
    models) leaves W_t symmetric and doubly stochastic, so the average of the models still moves by the gradients
    alone; but the correction X_t - psi_t cancels the heterogeneity bias only for one fixed W (Yuan et al. 2019,
    Part I, Sec. III): with a W_t redrawn at every step a residual bias of the order of the failures remains. An
    offline worker keeps its x and correction rows.

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

    Faults (``jg.faults``): as for :func:`exact_diffusion` (the average is kept, the exactness needs a fixed W); a
    masked W_t has eigenvalues no lower than W's own (lost weight moves to the diagonal), so the -1/3 condition
    checked on W still holds.

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

