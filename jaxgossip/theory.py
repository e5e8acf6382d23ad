"""Theory helpers for compressed decentralized SGD (Tang et al. 2018, Sec. 4.1, Thm. 1).

* ``rho(W)  = max(|lambda_2|, |lambda_n|)``, the gossip contraction (Assumption 1.3);
* ``mu(W)   = max_{i >= 2} |lambda_i - 1|``;
* ``alpha   = sqrt(sup_Z ||Z - C(Z)||^2 / ||Z||^2)``, the compressor's signal-to-noise parameter, estimated here on
  given data with many keys;
* DCD-PSGD's condition ``(1 - rho)^2 - 4 mu^2 alpha^2 > 0`` (Thm. 1), i.e. ``alpha < (1 - rho) / (2 mu)``.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgossip.compressors._base import Compressor
from jaxgossip.topology import TimeVarying, Topology

__all__ = ["rho", "mu", "estimate_alpha", "dcd_condition", "DCDCondition", "warn_if_dcd_unstable"]


def _extremes(topology) -> list[tuple[float, float]]:
    """``(lambda_2, lambda_n)`` of each mixing matrix with n > 1: a Topology, a TimeVarying, or an (n, n) array."""
    if isinstance(topology, TimeVarying):
        return [t.extreme_eigenvalues for t in topology.topologies if t.n > 1]
    if isinstance(topology, Topology):
        return [topology.extreme_eigenvalues] if topology.n > 1 else []
    W = np.asarray(topology, dtype=np.float64)
    if W.ndim != 2 or W.shape[0] != W.shape[1] or not np.allclose(W, W.T):
        raise ValueError(f"topology must be a jg.topology.Topology or a symmetric (n, n) matrix, got shape {W.shape}.")
    lam = np.sort(np.linalg.eigvalsh(W))[::-1]
    return [(float(lam[1]), float(lam[-1]))] if len(lam) > 1 else []


def rho(topology) -> float:
    """``max(|lambda_2(W)|, |lambda_n(W)|)`` (Tang et al. 2018, Assumption 1.3); the largest over a time-varying set."""
    return float(max((max(abs(l2), abs(ln)) for l2, ln in _extremes(topology)), default=0.0))


def mu(topology) -> float:
    """``max_{i >= 2} |lambda_i(W) - 1|`` (Tang et al. 2018, Thm. 1), which is ``1 - lambda_n``; the largest over a
    time-varying set."""
    return float(max((max(abs(l2 - 1.0), abs(ln - 1.0)) for l2, ln in _extremes(topology)), default=0.0))


def _ratios(compressor, key, Z, num_keys):
    """(num_keys, rows) ratios ||z - C(z)||^2 / ||z||^2, each row and key with its own draw."""
    keys = jax.random.split(key, num_keys)

    def one(k):
        C = jax.vmap(compressor.compress)(jax.random.split(k, Z.shape[0]), Z)
        return jnp.sum((Z - C) ** 2, axis=1) / jnp.sum(Z**2, axis=1)

    return jax.vmap(one)(keys)


def estimate_alpha(compressor: Compressor, data, key=None, num_keys: int = 64, reduce: str = "mean") -> float:
    """Estimate Thm. 1's alpha = sqrt(sup_Z ||Z - C(Z)||^2 / ||Z||^2) for a compressor on given vectors.

    Args:
      compressor: a ``jg.compressors.Compressor``.
      data: the vectors Z to compress, (d,) or (m, d) (rows that are all zero are skipped).
      key: a ``jax.random`` key (default ``key(0)``).
      num_keys: independent compressions per row.
      reduce: ``"mean"``: sup over rows of the mean over keys (the expected squared relative error, what the proofs
        use); ``"max"``: the worst single draw.

    Returns:
      alpha as a Python float (0 for a lossless compressor).

    References:
      Tang et al. (2018), Sec. 4.1 (definition of alpha) and Thm. 1.
    """
    if not isinstance(compressor, Compressor):
        raise ValueError(f"estimate_alpha: compressor must be a jg.compressors.Compressor, got {type(compressor).__name__}.")
    if reduce not in ("mean", "max"):
        raise ValueError(f"estimate_alpha: reduce must be 'mean' or 'max', got {reduce!r}.")
    if not isinstance(num_keys, int) or num_keys < 1:
        raise ValueError(f"estimate_alpha: num_keys must be a positive integer, got {num_keys!r}.")
    Z = jnp.atleast_2d(jnp.asarray(data, jnp.float32))
    Z = Z[np.asarray(jnp.any(Z != 0, axis=1))]
    if Z.shape[0] == 0:
        raise ValueError("estimate_alpha: data must hold at least one non-zero vector.")
    r = np.asarray(_ratios(compressor, jax.random.key(0) if key is None else key, Z, num_keys))
    worst = r.max() if reduce == "max" else r.mean(axis=0).max()
    return float(np.sqrt(worst))


class DCDCondition(NamedTuple):
    """Thm. 1's condition for DCD-PSGD: ``holds`` iff ``margin = (1 - rho)^2 - 4 mu^2 alpha^2 > 0``.

    ``alpha_max = (1 - rho) / (2 mu)`` is the largest alpha the condition allows on this graph.
    """

    holds: bool
    margin: float
    alpha: float
    rho: float
    mu: float
    alpha_max: float


def dcd_condition(topology, alpha: float) -> DCDCondition:
    """Check DCD-PSGD's compression condition (1 - rho)^2 - 4 mu^2 alpha^2 > 0 (Tang et al. 2018, Thm. 1).

    Args:
      topology: a ``jg.topology.Topology`` (or TimeVarying, or an (n, n) symmetric W).
      alpha: the compressor's alpha (``estimate_alpha``), >= 0.
    """
    a = float(alpha)
    if not a >= 0:
        raise ValueError(f"dcd_condition: alpha must be >= 0, got {alpha!r}.")
    r, m = rho(topology), mu(topology)
    margin = (1.0 - r) ** 2 - 4.0 * m**2 * a**2
    return DCDCondition(bool(margin > 0), float(margin), a, r, m, float((1.0 - r) / (2.0 * m)) if m > 0 else float("inf"))


def _concrete_scalars(compressor) -> bool:
    leaves = jax.tree.leaves(compressor)
    return all(not isinstance(v, jax.core.Tracer) and jnp.ndim(v) == 0 for v in leaves)


def warn_if_dcd_unstable(algorithm, problem, topology, num_keys: int = 16) -> DCDCondition | None:
    """Warn (RuntimeWarning) when a DCD-PSGD run violates Thm. 1's condition.

    alpha is estimated on the messages of the first step, Z_0 = -gamma grad f_i(x_0) (every worker starts at x_0, so
    (W - I) X_0 = 0); the ratio is scale-free for the quantizers. Skipped (returns None) for swept (batched or traced)
    compressor parameters or when the first gradients are all zero.
    """
    comp = algorithm.hyper["compressor"]
    if not _concrete_scalars(comp):
        return None
    X0 = jnp.broadcast_to(problem.x0, (problem.n, problem.d))
    Z = np.asarray(problem.full_grads(X0))
    if not np.any(Z):
        return None
    cond = dcd_condition(topology, estimate_alpha(comp, Z, num_keys=num_keys))
    if not cond.holds:
        warnings.warn(
            f"dcd_psgd with {comp!r} on this topology violates Thm. 1 of Tang et al. (2018): (1 - rho)^2 - 4 mu^2 alpha^2 "
            f"= {cond.margin:.3g} < 0 (alpha ~ {cond.alpha:.3g} estimated on the first step's messages, rho = "
            f"{cond.rho:.4f}, mu = {cond.mu:.4f}; alpha must stay below {cond.alpha_max:.3g}). It may diverge; use more "
            f"bits, a better-connected graph, or ecd_psgd / choco_sgd / deepsqueeze.",
            RuntimeWarning,
            stacklevel=5,
        )
    return cond
