"""Theory helpers for compressed decentralized SGD (Tang et al. 2018, Sec. 4.1, Thm. 1).

* ``rho(W)  = max(|lambda_2|, |lambda_n|)``, the gossip contraction (Assumption 1.3);
* ``mu(W)   = max_{i >= 2} |lambda_i - 1|``;
* ``alpha   = sqrt(sup_Z ||Z - C(Z)||^2 / ||Z||^2)``, the compressor's signal-to-noise parameter, estimated here on
  given data with many keys;
* DCD-PSGD's condition ``(1 - rho)^2 - 4 mu^2 alpha^2 > 0`` (Thm. 1), i.e. ``alpha < (1 - rho) / (2 mu)``.

And for CHOCO-SGD / DeepSqueeze's consensus step (Koloskova, Stich, Jaggi, ICML 2019):

* ``omega``, the compression quality ``E||C(x) - x||^2 <= (1 - omega) ||x||^2`` (their Assumption 1), from alpha:
  ``1 - alpha^2`` for a biased (contracting) compressor, ``1 / (1 + alpha^2)`` for an unbiased one (their rescaling
  ``C / tau`` with ``tau = 1 + alpha^2`` makes it an omega-contraction). Notation: Koloskova et al.'s omega is the
  quality; a compressor's own analytic contract (:mod:`jaxgossip.compressors`) calls it ``delta`` (``comp.delta(d)``)
  and keeps ``omega`` for the variance of an unbiased compressor (``comp.omega(d)``), the omega of the rescaling
  ``C / (1 + omega)`` that CHOCO-SGD, DeepSqueeze and BEER apply (``comp.to_contraction()``);
* the consensus step of their Thm. 2, ``gamma* = delta^2 omega / (16 delta + delta^2 + 4 beta^2 + 2 delta beta^2 -
  8 delta omega)`` with ``delta = 1 - rho`` (the spectral gap) and ``beta = ||I - W||_2 = mu``: sufficient and very
  conservative (about 3e-4 omega on a 16-node ring);
* the practical default :func:`suggest_consensus`, ``omega / (2 - omega)`` rounded down to one significant digit.
"""

from __future__ import annotations

import functools
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgossip.compressors._base import Compressor
from jaxgossip.topology import TimeVarying, Topology

__all__ = ["rho", "mu", "estimate_alpha", "dcd_condition", "DCDCondition", "warn_if_dcd_unstable", "REDUCTIONS",
           "estimate_omega", "choco_gamma", "suggest_consensus", "warn_if_consensus_too_large", "link_failure_gram",
           "link_failure_rate"]

#: How :func:`estimate_alpha` reduces its draws: ``max`` (default), ``quantile``, ``mean``.
REDUCTIONS = ("max", "quantile", "mean")


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
    """(num_keys, rows) ratios ||z - C(z)||^2 / ||z||^2, each row and key with its own draw (compiled once per
    compressor structure; its parameters are traced)."""
    return _ratios_jit(compressor, key, Z, num_keys)


@functools.partial(jax.jit, static_argnums=(3,))
def _ratios_jit(compressor, key, Z, num_keys):
    keys = jax.random.split(key, num_keys)

    def one(k):
        C = jax.vmap(compressor.compress)(jax.random.split(k, Z.shape[0]), Z)
        return jnp.sum((Z - C) ** 2, axis=1) / jnp.sum(Z**2, axis=1)

    return jax.vmap(one)(keys)


def estimate_alpha(compressor: Compressor, data, key=None, num_keys: int = 64, reduce: str = "max",
                   quantile: float = 0.99) -> float:
    """Estimate Thm. 1's alpha = sqrt(sup_Z ||Z - C(Z)||^2 / ||Z||^2) for a compressor on given vectors.

    Thm. 1 of Tang et al. (2018) needs the supremum of the relative squared error, not its mean: a compressor whose
    error is usually small but sometimes large (a heavy tail) has a small mean and a large sup, and a mean would hide
    the violation. So the default is the largest ratio over all rows and all ``num_keys`` draws, an estimate of the
    sup from below (it grows with ``num_keys`` toward the sup on these vectors).

    Args:
      compressor: a ``jg.compressors.Compressor``.
      data: the vectors Z to compress, (d,) or (m, d) (rows that are all zero are skipped).
      key: a ``jax.random`` key (default ``key(0)``).
      num_keys: independent compressions per row.
      reduce: ``"max"`` (default): the worst single draw over rows and keys, the sample supremum Thm. 1 asks for;
        ``"quantile"``: the largest over rows of the ``quantile`` of each row's draws (robust to one freak draw, but
        a violation rarer than ``1 - quantile`` is missed); ``"mean"``: the largest over rows of the mean over draws
        (the expected squared relative error, e.g. for omega in expectation; it misses heavy tails).
      quantile: the quantile for ``reduce="quantile"``, in (0, 1].

    Returns:
      alpha as a Python float (0 for a lossless compressor).

    References:
      Tang et al. (2018), Sec. 4.1 (definition of alpha) and Thm. 1.
    """
    if not isinstance(compressor, Compressor):
        raise ValueError(f"estimate_alpha: compressor must be a jg.compressors.Compressor, got {type(compressor).__name__}.")
    if reduce not in REDUCTIONS:
        raise ValueError(f"estimate_alpha: reduce must be one of {REDUCTIONS}, got {reduce!r}.")
    if isinstance(quantile, bool) or not isinstance(quantile, (int, float)) or not 0 < quantile <= 1:
        raise ValueError(f"estimate_alpha: quantile must be a number in (0, 1], got {quantile!r}.")
    if not isinstance(num_keys, int) or num_keys < 1:
        raise ValueError(f"estimate_alpha: num_keys must be a positive integer, got {num_keys!r}.")
    Z = np.atleast_2d(np.asarray(data, np.float32))  # on the host: op by op on the device, each op compiled once
    Z = Z[np.any(Z != 0, axis=1)]
    if Z.shape[0] == 0:
        raise ValueError("estimate_alpha: data must hold at least one non-zero vector.")
    if getattr(compressor, "layers", 1) is None:  # an unbound layerwise compressor: one layer of the probe's length
        compressor = compressor.bind_layout(_Flat(int(Z.shape[1])))
    r = np.asarray(_ratios(compressor, jax.random.key(0) if key is None else key, Z, num_keys), np.float64)
    if reduce == "max":
        worst = r.max()
    elif reduce == "quantile":
        worst = np.quantile(r, quantile, axis=0).max()
    else:
        worst = r.mean(axis=0).max()
    return float(np.sqrt(worst))


class _Flat:
    """A stand-in problem without layers (``layout`` None) of dimension d, to bind a layerwise compressor."""

    layout = None

    def __init__(self, d: int):
        self.d = d


def estimate_omega(compressor: Compressor, data, key=None, num_keys: int = 64, reduce: str = "max") -> float:
    """The compression quality omega of Koloskova, Stich, Jaggi (ICML 2019, Assumption 1):
    ``E||C(x) - x||^2 <= (1 - omega) ||x||^2``, in [0, 1] (1: lossless).

    From alpha^2 (:func:`estimate_alpha`, sup over draws by default): ``1 - alpha^2`` for a biased compressor (0 when
    it does not contract), a rescaled one (``comp.to_contraction()``, what CHOCO-SGD / DeepSqueeze / BEER run) included;
    ``1 / (1 + alpha^2)`` for an unbiased one, the omega of its rescaling ``C / (1 + alpha^2)`` (Koloskova et al. 2019,
    Sec. 3, "unbiased compressors ... rescaled") on these vectors. The analytic, worst-case counterpart is the
    compressor's ``delta(d)`` (``1 / (1 + omega(d))`` once rescaled), usually much smaller: the estimate measures the
    given vectors, the analytic value bounds every vector.

    Args:
      compressor, data, key, num_keys, reduce: as for :func:`estimate_alpha`.
    """
    a2 = estimate_alpha(compressor, data, key=key, num_keys=num_keys, reduce=reduce) ** 2
    if compressor.unbiased:
        return float(1.0 / (1.0 + a2))
    return float(min(1.0, max(0.0, 1.0 - a2)))


def choco_gamma(topology, omega: float) -> float:
    """The consensus step of Koloskova, Stich, Jaggi (ICML 2019), Thm. 2 (CHOCO-Gossip; Thm. 4 for CHOCO-SGD):

        gamma* = delta^2 omega / (16 delta + delta^2 + 4 beta^2 + 2 delta beta^2 - 8 delta omega),

    with delta = 1 - rho(W) the spectral gap and beta = ||I - W||_2 = mu(W). It guarantees a linear consensus rate but
    is far smaller than the steps that work in practice (see :func:`suggest_consensus`).

    Args:
      topology: a ``jg.topology.Topology`` (or TimeVarying, or a symmetric (n, n) W).
      omega: the compression quality in [0, 1] (:func:`estimate_omega`).
    """
    w = float(omega)
    if not 0 <= w <= 1:
        raise ValueError(f"choco_gamma: omega must be in [0, 1], got {omega!r}.")
    delta, beta = 1.0 - rho(topology), mu(topology)
    if delta <= 0:
        return 0.0
    return float(delta**2 * w / (16 * delta + delta**2 + 4 * beta**2 + 2 * delta * beta**2 - 8 * delta * w))


def _floor_1sig(x: float) -> float:
    """x rounded down to one significant digit (0.48 -> 0.4, 0.029 -> 0.02): a readable, stable default."""
    if x <= 0:
        return 0.0
    e = 10.0 ** np.floor(np.log10(x))
    return float(f"{np.floor(x / e + 1e-9) * e:.1g}")


#: The measured rule of :func:`suggest_consensus`, per algorithm: consensus = rule(omega).
CONSENSUS_RULES = {
    "choco_sgd": lambda w: w / (2.0 - w),
    "deepsqueeze": lambda w: w * w,
    "beer": lambda w: w / (2.0 - w),
}


#: The default consensus step when no omega can be estimated (traced compressor parameters, or a wrapper such as
#: error feedback around something that is not a Compressor).
TRACED_CONSENSUS = 0.1
_PROBE_D = 1024
_SUGGESTED: dict = {}


def _compressor_key(comp):
    leaves = jax.tree.leaves(comp.params)
    return (comp.name, comp.fn, comp.static, comp.unbiased, comp.rescaled, tuple(float(v) for v in leaves))


def suggest_consensus(compressor: Compressor, algorithm: str = "choco_sgd", data=None, num_keys: int = 16) -> float:
    """A consensus step for CHOCO-SGD, DeepSqueeze or BEER with this compressor, from its quality omega
    (:func:`estimate_omega`, worst draw), rounded down to one significant digit:

    * ``choco_sgd``: ``omega / (2 - omega)`` (1 when lossless, about omega / 2 for aggressive compression);
    * ``deepsqueeze``: ``omega^2`` (DeepSqueeze compresses the model itself, not a vanishing difference, and needs
      smaller steps);
    * ``beer``: ``omega / (2 - omega)``, as CHOCO-SGD (BEER with top-k converged up to c ~ 1.2-1.4 omega on the CLI's
      example at lr 0.05 and diverged beyond; Zhao et al. 2022, Thm. 1, take gamma proportional to the compression
      quality).

    The algorithms call it with the compressor they run, an unbiased compressor rescaled to C / (1 + omega(d))
    (:meth:`jaxgossip.compressors.Compressor.to_contraction`, omega its analytic worst case). Such a compressor is
    judged by the quality of its rescaling on the vectors at hand, ``1 / (1 + alpha^2)`` of the unbiased C
    (:func:`estimate_omega`), not by the worst case: measured on a digits MLP (8 workers, ring, lr 0.1, 200 steps)
    and the CLI's example, CHOCO-SGD with the rescaled QSGD (4 levels), random-k (10 %), TernGrad and 2-bit
    quantization converged at these defaults (0.07, 0.03, 0.1, 0.3) and better than at the worst-case ones (0.05,
    0.03, 0.02, 0.01: 2-bit quantization reached loss 0.158 for D-PSGD's 0.116 on the CLI's example, 0.116 at 0.3),
    and diverged at 1 (QSGD, random-k) or 0.3 (random-k).

    A value of 0.95 or more is 1 (a near-lossless compressor gossips like D-PSGD).

    Koloskova et al. (2019), Thm. 2, scale the consensus step with omega (:func:`choco_gamma`), but their gamma* is
    orders of magnitude below what converges in practice; these rules are measured, not proved. On the CLI's example
    (logistic regression on digits, 16 workers, ring, lr 0.1, 1000 to 3000 steps) the steps that converge are about
    c <= omega for CHOCO-SGD and c <= 0.6 omega (c <= 0.3 omega for top-1 %) for DeepSqueeze, with omega measured on
    the gradients; consensus 1 diverges or stalls with sign, 2 bits and top-k (DeepSqueeze with sign: consensus
    distance 2085 after 1000 steps).

    Args:
      compressor: the compressor (concrete parameters; traced ones give :data:`TRACED_CONSENSUS`).
      algorithm: ``"choco_sgd"``, ``"deepsqueeze"`` or ``"beer"`` (:data:`CONSENSUS_RULES`).
      data: vectors to estimate omega on; default a fixed probe of 16 x 1024 standard Gaussian values (so top-k with
        a fixed k is judged at d = 1024). ``simulate`` checks the value on the problem's own first messages and warns
        (:func:`warn_if_consensus_too_large`).
      num_keys: compressions per row.
    """
    if not isinstance(compressor, Compressor):
        raise ValueError(f"suggest_consensus: compressor must be a jg.compressors.Compressor, got "
                         f"{type(compressor).__name__}.")
    if algorithm not in CONSENSUS_RULES:
        raise ValueError(f"suggest_consensus: algorithm must be one of {sorted(CONSENSUS_RULES)}, got {algorithm!r}.")
    if not _concrete_scalars(compressor):
        return TRACED_CONSENSUS
    compressor = _judged(compressor)
    cache = data is None
    if cache:
        k = (algorithm, _compressor_key(compressor))
        if k in _SUGGESTED:
            return _SUGGESTED[k]
        data = np.random.default_rng(0).standard_normal((16, _PROBE_D)).astype(np.float32)
    omega = estimate_omega(compressor, data, num_keys=num_keys)
    c = CONSENSUS_RULES[algorithm](omega)
    c = 1.0 if c >= 0.95 else max(_floor_1sig(c), 1e-3)
    if cache:
        _SUGGESTED[k] = c
    return c


def _judged(compressor):
    """The compressor whose estimated quality sets the consensus step: a rescaled one is judged as the unbiased
    compressor it rescales (whose :func:`estimate_omega` is the quality of its rescaling on the given vectors)."""
    if getattr(compressor, "rescaled", False):
        return compressor.replace(rescaled=False, unbiased=True)
    return compressor


def first_gradients(problem) -> np.ndarray:
    """Every worker's gradient at x_0, (n, d), on which the warnings estimate a compressor's alpha / omega: exact on
    the worker's whole share for the convex problems; one minibatch (the first step's own kind of message) for
    networks, whose whole shares at once would hold every sample's activations (ResNet-20 at CIFAR-10 scale: tens of
    GB)."""
    return np.asarray(_first_gradients(problem))


@jax.jit
def _first_gradients(problem):
    """:func:`first_gradients` as one compiled program (op by op it compiled some forty small ones per call)."""
    X0 = jnp.broadcast_to(problem.x0, (problem.n, problem.d))
    if getattr(problem, "net", False):
        return problem.stochastic_grads(jax.random.key(0), X0)[0]
    return problem.full_grads(X0)


def warn_if_consensus_too_large(algorithm, problem, topology, num_keys: int = 16) -> float | None:
    """Warn (RuntimeWarning) when CHOCO-SGD's, DeepSqueeze's or BEER's consensus step is more than twice the
    :func:`suggest_consensus` value for the compressor's quality omega measured on the first step's messages (the
    first gradients; a rescaled compressor judged as :func:`suggest_consensus` does): in our measurements such steps
    diverge or stall. The message gives the suggestion and
    Koloskova et al.'s gamma* (:func:`choco_gamma`) on this graph. Returns omega, or None when skipped (traced
    parameters, all-zero gradients).
    """
    comp, c = algorithm.hyper["compressor"], algorithm.hyper["consensus"]
    if not isinstance(comp, Compressor) or not _concrete_scalars(comp) or isinstance(c, jax.core.Tracer) \
            or jnp.ndim(c) != 0:
        return None
    Z = first_gradients(problem)
    if not np.any(Z):
        return None
    omega = estimate_omega(_judged(comp), Z, num_keys=num_keys)
    rule = algorithm.name if algorithm.name in CONSENSUS_RULES else "choco_sgd"
    suggestion = 1.0 if omega >= 1.0 - 1e-9 else CONSENSUS_RULES[rule](omega)
    if float(c) > 2 * suggestion:
        warnings.warn(
            f"{algorithm.name} with {comp!r}: consensus step {float(c):.3g} is large for this compressor (quality "
            f"omega ~ {omega:.3g}, E||C(x) - x||^2 <= (1 - omega) ||x||^2 at the worst draw on the first step's "
            f"messages); it may diverge or stall. Try consensus = {max(_floor_1sig(suggestion), 1e-3):.3g} "
            f"(jg.theory.suggest_consensus); Koloskova et al. (2019), Thm. 2, guarantee convergence for consensus "
            f"<= {choco_gamma(topology, omega):.3g} on this graph.",
            RuntimeWarning,
            stacklevel=5,
        )
    return omega


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
    Z = first_gradients(problem)
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


# ---- random link failures ----------------------------------------------------------------------------------------
#: Largest n for which :func:`link_failure_rate` builds the dense n x n matrix E[W_t^T W_t] (O(n^2) memory, O(n^3) time).
LINK_FAILURE_MAX_N = 4096


def _failure_inputs(topology, p, name):
    """(dense symmetric W, p) checked: an undirected Topology or a symmetric (n, n) doubly stochastic array, p in
    [0, 1]."""
    if isinstance(p, (bool, np.bool_)) or not isinstance(p, (int, float, np.integer, np.floating)) \
            or not np.isfinite(p) or not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"{name}: p (the probability that a link is down at a step) must be a number in [0, 1], "
                         f"got {p!r}.")
    if isinstance(topology, TimeVarying):
        raise ValueError(f"{name}: needs one undirected graph, got a time-varying sequence ({topology.name}); call it "
                         f"on each graph.")
    if isinstance(topology, Topology):
        if topology.n > LINK_FAILURE_MAX_N:
            raise ValueError(f"{name}: builds the dense n x n matrix E[W_t^T W_t]; n = {topology.n} is above "
                             f"{LINK_FAILURE_MAX_N}.")
        W = np.asarray(topology.W, np.float64)
    else:
        W = np.asarray(topology, dtype=np.float64)
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise ValueError(f"{name}: topology must be a jg.topology.Topology or a symmetric (n, n) matrix, got shape "
                         f"{W.shape}.")
    if not np.allclose(W, W.T, atol=1e-9):
        raise ValueError(f"{name}: needs an undirected graph (a symmetric W: a link is up or down in both "
                         f"directions); {getattr(topology, 'name', 'this matrix')} is directed.")
    if not np.allclose(W.sum(axis=1), 1.0, atol=1e-9):
        raise ValueError(f"{name}: needs a doubly stochastic W (rows summing to 1).")
    return W, float(p)


def link_failure_gram(topology, p: float) -> np.ndarray:
    """``E[W_t^T W_t]`` (n x n, float64) for i.i.d. link failures with probability ``p`` per link and step.

    Failure model (issue 23, ``jg.faults.link_failures``): each undirected link e = {i, j} of weight ``w_e = W_ij`` is
    up at step t with probability 1 - p (``u_e ~ Bernoulli(1 - p)``, independent over links and steps); a down link's
    weight moves to both ends' self weights, so

        W_t = I - sum_e u_e w_e (e_i - e_j)(e_i - e_j)^T = I - L_u,

    symmetric and doubly stochastic at every step (W itself is ``I - L``, L the weighted Laplacian). With q = 1 - p,
    ``E[u_e u_f] = q^2`` for e != f and ``q`` for e = f, and each link's term ``L_e = w_e b_e b_e^T``
    (``b_e = e_i - e_j``, ``||b_e||^2 = 2``) has ``L_e^2 = 2 w_e^2 b_e b_e^T``, so exactly

        E[W_t^T W_t] = I - 2 q L + q^2 L^2 + 2 q (1 - q) L_{w^2}
                     = (I - q L)^2 + 2 q (1 - q) L_{w^2},

    with ``L_{w^2}`` the Laplacian of the squared weights. At p = 0 it is W^2.

    Args:
      topology: an undirected :class:`~jaxgossip.topology.Topology` or a symmetric doubly stochastic (n, n) array.
      p: probability that a link is down at a step, in [0, 1].

    Returns:
      The (n, n) matrix.
    """
    W, p = _failure_inputs(topology, p, "link_failure_gram")
    n = W.shape[0]
    q = 1.0 - p
    off = W - np.diag(np.diag(W))  # the link weights w_e (both directions)
    L = np.diag(off.sum(axis=1)) - off
    off2 = off ** 2
    L2 = np.diag(off2.sum(axis=1)) - off2
    I_qL = np.eye(n) - q * L
    return I_qL @ I_qL + 2.0 * q * (1.0 - q) * L2


def link_failure_rate(topology, p: float) -> float:
    """The expected per-step consensus contraction under i.i.d. random link failures: the largest eigenvalue of
    ``E[W_t^T W_t]`` (:func:`link_failure_gram`) on the subspace orthogonal to the all-ones vector.

    Every W_t is doubly stochastic, so the average ``Xbar`` is kept exactly and, conditioning on the past,
    ``E||X_{t+1} - Xbar||_F^2 <= lambda E||X_t - Xbar||_F^2`` with this lambda (Boyd, Ghosh, Prabhakar, Shah 2006,
    "Randomized gossip algorithms", Sec. II: lambda_2(E[W^T W]) bounds the mean-square convergence of gossip with
    random matrices). Hence plain gossip reaches a consensus distance eps after about ``log(eps) / log(lambda)``
    steps, and D-PSGD's consensus term degrades accordingly.

    Relation to the static graph: at p = 0, E[W^T W] = W^2 and the rate is ``rho(W)^2`` with ``rho =
    max(|lambda_2|, |lambda_n|)`` = ``topology.rho`` (the per-step contraction of the distance itself, so rho^2 for its
    square). It grows with p to 1 at p = 1 (no link ever up). For links that fail in bursts (a Markov chain per link)
    with the same stationary probability p, each W_t has the same law but consecutive steps are correlated: this
    i.i.d. rate is then only the one-step quantity, not the multi-step decay.

    Args:
      topology: an undirected :class:`~jaxgossip.topology.Topology` (n <= :data:`LINK_FAILURE_MAX_N`) or a symmetric
        doubly stochastic (n, n) array.
      p: probability that a link is down at a step, in [0, 1].

    Returns:
      lambda in [0, 1]; 0.0 for n = 1.
    """
    M = link_failure_gram(topology, p)
    n = M.shape[0]
    if n == 1:
        return 0.0
    lam = np.linalg.eigvalsh(M - np.full((n, n), 1.0 / n))  # the ones vector moves from eigenvalue 1 to 0 (M >= 0)
    return float(min(max(lam[-1], 0.0), 1.0))
