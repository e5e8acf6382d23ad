"""Problem builders: least squares (exact optimum), L2 logistic regression (binary / multinomial), a flax MLP."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from jaxgossip._host import to_device
from jaxgossip.problems import _checks as checks
from jaxgossip.problems import data as data_lib
from jaxgossip.problems._base import Problem, ProblemSpec

__all__ = ["quadratic", "logistic_regression", "mlp", "Linear", "MLP"]


# ---- models: frozen dataclasses, so equal configurations are equal static fields (one compile) -------------------------
@dataclasses.dataclass(frozen=True)
class Linear:
    """``X @ W + b`` with W (p, k), b (k,) read from a flat vector (k = 1: a scalar output per sample)."""

    p: int
    k: int
    bias: bool = True

    @property
    def d(self) -> int:
        return self.p * self.k + self.k * self.bias

    def __call__(self, x, X):
        W = x[: self.p * self.k].reshape(self.p, self.k)
        out = X.reshape(X.shape[0], -1) @ W
        if self.bias:
            out = out + x[self.p * self.k :]
        return out[:, 0] if self.k == 1 else out


@dataclasses.dataclass(frozen=True)
class MLP:
    """A flax MLP (ReLU hidden layers) applied from a flat parameter vector."""

    p: int
    hidden: tuple
    out: int

    @property
    def module(self):
        from jaxgossip.problems._flax_mlp import MLPModule

        return MLPModule(self.hidden, self.out)

    def init(self, key):
        params = self.module.init(key, jnp.zeros((1, self.p)))
        flat, _ = ravel_pytree(params)
        return flat

    @functools.cached_property
    def _unravel(self):
        shapes = jax.eval_shape(self.module.init, jax.random.key(0), jnp.zeros((1, self.p)))
        zeros = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes)
        return ravel_pytree(zeros)[1]

    def __call__(self, x, X):
        return self.module.apply(self._unravel(x), X.reshape(X.shape[0], -1))


def squared_loss(out, y):
    return 0.5 * (out - y) ** 2


def logistic_loss(out, y):
    """Binary (out a scalar logit, y in {0, 1}) or multinomial (out logits, y an integer class)."""
    if out.ndim == 1:
        return jnp.logaddexp(0.0, out) - y * out
    return -jnp.take_along_axis(jax.nn.log_softmax(out), y[:, None].astype(jnp.int32), axis=1)[:, 0]


# ---- checks --------------------------------------------------------------------------------------------------------
def _check_batch(batch_size, counts):
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer or 'full', got {batch_size!r}.")
    if batch_size > counts.min():
        raise ValueError(
            f"batch_size={batch_size} is larger than the smallest worker's data ({int(counts.min())} samples); "
            f"use batch_size <= {int(counts.min())} or fewer workers."
        )


def _problem(shards, test, x0, model, loss, batch_size, name, reg, grad_noise=0.0, x_star=None, f_star=None,
             classification=False, L=None, mu=None, spec=None):
    X, y, counts = shards
    full = batch_size == "full"
    if full:  # every gradient the exact local gradient of the worker's whole share
        batch_size = int(np.max(counts))
    else:
        _check_batch(batch_size, counts)
    reg = checks.number(name, "reg", reg)
    grad_noise = checks.number(name, "grad_noise", grad_noise)
    return Problem(
        data_x=to_device(X, np.float32), data_y=to_device(y), counts=to_device(counts, np.int32),
        test_x=to_device(test[0], np.float32), test_y=to_device(test[1]),
        x0=to_device(x0, np.float32), reg=to_device(reg, np.float32), grad_noise=float(grad_noise),
        x_star=None if x_star is None else to_device(x_star, np.float32),
        f_star=None if f_star is None else to_device(f_star, np.float32),
        model=model, loss=loss, batch_size=int(batch_size), name=name, classification=classification,
        L=None if L is None else float(L), mu=None if mu is None else float(mu), full_batch=full, spec=spec,
    )


# ---- least squares -------------------------------------------------------------------------------------------------
def quadratic(n_workers: int = 16, dim: int = 20, samples_per_worker: int = 50, heterogeneity: float = 1.0,
              noise: float = 0.1, condition_number: float = 10.0, reg: float = 0.0, batch_size: int = 1,
              grad_noise: float = 0.0, seed: int = 0, solve_optimum: bool = True) -> Problem:
    """Least squares ``f_i(x) = (1 / 2m) ||A_i x - b_i||^2`` with a known optimum (computed exactly, float64).

    Features have covariance eigenvalues log-spaced over [1 / condition_number, 1]; worker i's targets come from its own
    teacher ``x_true + heterogeneity * u_i`` plus label noise, so ``heterogeneity`` sets how far the local optima sit
    from the global one. ``grad_noise`` adds Gaussian noise to every stochastic gradient.

    ``solve_optimum=False`` skips the d x d Hessian (O(n m d^2) to form, O(d^3) to solve), for large d: the problem then
    has no ``x_star`` / ``f_star``, ``L`` comes from Lanczos iterations on ``A`` and ``mu`` is ``reg`` (or unknown).
    """
    spec = ProblemSpec("quadratic", dict(n_workers=n_workers, dim=dim, samples_per_worker=samples_per_worker,
                                         heterogeneity=heterogeneity, noise=noise, condition_number=condition_number,
                                         reg=reg, batch_size=batch_size, grad_noise=grad_noise, seed=seed,
                                         solve_optimum=solve_optimum))
    n_workers = checks.integer("quadratic", "n_workers", n_workers, 1)
    dim = checks.integer("quadratic", "dim", dim, 1)
    samples_per_worker = checks.integer("quadratic", "samples_per_worker", samples_per_worker, 1)
    heterogeneity = checks.number("quadratic", "heterogeneity", heterogeneity)
    noise = checks.number("quadratic", "noise", noise)
    condition_number = checks.number("quadratic", "condition_number", condition_number, 1.0)
    reg = checks.number("quadratic", "reg", reg)
    seed = checks.seed("quadratic", "seed", seed)
    solve_optimum = checks.flag("quadratic", "solve_optimum", solve_optimum)
    rng = np.random.default_rng(seed)
    scales = np.sqrt(np.logspace(0, -np.log10(condition_number), dim))
    A = rng.standard_normal((n_workers, samples_per_worker, dim)) * scales
    x_true = rng.standard_normal(dim)
    teachers = x_true + heterogeneity * rng.standard_normal((n_workers, dim))
    b = np.einsum("nmd,nd->nm", A, teachers) + noise * rng.standard_normal((n_workers, samples_per_worker))
    m = samples_per_worker
    counts = np.full(n_workers, m)
    x_star = f_star = None
    if solve_optimum:
        H = np.einsum("nmd,nme->de", A, A) / (n_workers * m) + reg * np.eye(dim)
        rhs = np.einsum("nmd,nm->d", A, b) / (n_workers * m)
        x_star = np.linalg.solve(H, rhs)
        f_star = np.mean(0.5 * (np.einsum("nmd,d->nm", A, x_star) - b) ** 2) + 0.5 * reg * x_star @ x_star
        eig = np.linalg.eigvalsh(H)
        L, mu = eig.max(), eig.min()
    else:
        L, mu = _gram_top_eigenvalue(A.reshape(-1, dim)) + reg, (reg if reg > 0 else None)
    return _problem((A, b, counts), (A[0, :0], b[0, :0]), np.zeros(dim), Linear(dim, 1, bias=False), squared_loss, batch_size,
                    f"quadratic(d={dim})", reg, grad_noise, x_star, f_star, False, L, mu, spec)


def _gram_top_eigenvalue(A: np.ndarray) -> float:
    """The largest eigenvalue of ``A^T A / len(A)``: dense for small d, else Lanczos on ``A`` (never the d x d Gram)."""
    N, d = A.shape
    if d <= 1024:
        return float(np.linalg.eigvalsh(A.T @ A / N).max())
    from scipy.sparse.linalg import LinearOperator, eigsh

    gram = LinearOperator((d, d), matvec=lambda v: A.T @ (A @ v) / N, dtype=np.float64)
    return float(eigsh(gram, k=1, which="LA", tol=1e-6, return_eigenvectors=False)[0])


# ---- logistic regression -------------------------------------------------------------------------------------------
def _newton_cg(fun, hessp, x, tol=1e-12, max_newton=100, max_cg=500):
    """Minimize a smooth strongly convex function by inexact Newton: CG on H p = -g, then Armijo backtracking.

    Nocedal & Wright, Alg. 7.1 (line-search Newton-CG, forcing term min(0.5, sqrt|g|)). ``fun(x) -> (f, g)``,
    ``hessp(x, v) -> H v``. Written out in NumPy because importing ``scipy.optimize`` takes ~0.9 s, more than the
    solve; on digits it agrees with scipy's Newton-CG to 1e-9 (tests/test_problems.py checks the gradient at x*).
    """
    f, g = fun(x)
    stop = tol * max(1.0, float(np.linalg.norm(g)))
    for _ in range(max_newton):
        gnorm = float(np.linalg.norm(g))
        if gnorm <= stop:
            break
        p, r = np.zeros_like(x), -g
        d, rr = r.copy(), r @ r
        for _ in range(max_cg):  # CG from p = 0 until |H p + g| <= min(0.5, sqrt|g|) |g|
            Hd = hessp(x, d)
            alpha = rr / (d @ Hd)
            p, r = p + alpha * d, r - alpha * Hd
            rr_new = r @ r
            if np.sqrt(rr_new) <= min(0.5, np.sqrt(gnorm)) * gnorm:
                break
            d, rr = r + (rr_new / rr) * d, rr_new
        t, slope = 1.0, g @ p
        while True:
            f_new, g_new = fun(x + t * p)
            if f_new <= f + 1e-4 * t * slope or t < 1e-12:
                break
            t *= 0.5
        x, f, g = x + t * p, f_new, g_new
    return x, f


def _logistic_optimum(X, y, counts, k, reg):
    """Minimize the global objective in float64 by Newton-CG with exact Hessian-vector products; returns (x*, f*).

    Each worker's samples carry weight 1 / (n counts_i), so this is the optimum of the average of local objectives.
    """
    n, m, p = X.shape
    w = ((np.arange(m)[None, :] < counts[:, None]) / counts[:, None] / n).reshape(-1)  # sample weights, sum to 1
    A = np.concatenate([X.reshape(-1, p).astype(np.float64), np.ones((n * m, 1))], axis=1)  # features + bias column
    yf = y.reshape(-1)
    rows = np.arange(len(yf))

    def weights(x):  # flat [W (p, k), b (k)] -> (p + 1, k)
        return x.reshape(p + 1, k)

    def probs(x):
        z = A @ weights(x)
        if k == 1:
            return z[:, 0], 1 / (1 + np.exp(-z[:, 0]))
        z = z - z.max(axis=1, keepdims=True)
        P = np.exp(z)
        return z, P / P.sum(axis=1, keepdims=True)

    def f(x):
        z, P = probs(x)
        if k == 1:
            per = np.logaddexp(0, z) - yf * z
            dz = (P - yf)[:, None]
        else:
            per = np.log(np.exp(z).sum(axis=1)) - z[rows, yf]
            dz = P.copy()
            dz[rows, yf] -= 1
        return w @ per + 0.5 * reg * x @ x, (A.T @ (w[:, None] * dz)).ravel() + reg * x

    def hessp(x, v):
        _, P = probs(x)
        u = A @ weights(v)
        if k == 1:
            hz = (P * (1 - P))[:, None] * u
        else:
            hz = P * u - P * np.sum(P * u, axis=1, keepdims=True)
        return (A.T @ (w[:, None] * hz)).ravel() + reg * v

    x, fx = _newton_cg(f, hessp, np.zeros((p + 1) * k))
    return x, float(fx)


def logistic_regression(data="digits", n_workers: int = 16, partition: str = "iid", batch_size: int = 8,
                        reg: float = 1e-3, alpha: float | None = None, seed: int = 0, solve_optimum: bool = True,
                        num_samples: int | None = None, standardize: bool | None = None) -> Problem:
    """L2-regularized logistic regression, binary (sigmoid) for two classes, multinomial (softmax) otherwise.

    Strongly convex with mu = reg; L <= lambda_max(sum of sample outer products) / 4 + reg (binary) or / 2 (multinomial).
    With ``solve_optimum`` the optimum is found in float64 (Newton-CG), so ``suboptimality`` and ``dist_to_opt`` are
    reported. The model is ``[X, 1] @ [W; b]``: ``data_x`` and ``test_x`` hold the p features and a last column of ones,
    and ``x`` is W (p, k) row-major followed by b (k).

    Args:
      data: a data set name from ``jg.problems.DATASETS`` or user arrays ``(X, y)`` / ``(X, y, X_test, y_test)``.
      n_workers: number of workers n.
      partition: ``"iid"``, ``"label"`` or ``"dirichlet"`` (with ``alpha``).
      batch_size: per-worker minibatch size; must not exceed the smallest worker's share.
      reg: L2 coefficient (> 0 for strong convexity).
      alpha: the Dirichlet concentration of ``partition="dirichlet"`` (default 0.5); refused with other partitions.
      seed: seeds the train/test split and the partition.
      num_samples: the size of a generated set (``"mnist1d"``, ``"synthetic"``); refused for the others.
      standardize: standardize the (flattened) features with the training part's per-feature mean and std. Default:
        True for the built-in data sets, False for user arrays (used as given).

    The arguments are recorded on the problem (``problem.spec``) and in every run's ``Result.config``.
    """
    alpha, num_samples, standardize, solve_optimum = _check_flat_args("logistic_regression", data, n_workers, partition,
                                                                      alpha, seed, num_samples, standardize, reg,
                                                                      solve_optimum)
    spec = ProblemSpec("logistic_regression", dict(data=data, n_workers=n_workers, partition=partition,
                                                   batch_size=batch_size, reg=reg, alpha=alpha, seed=seed,
                                                   solve_optimum=solve_optimum, num_samples=num_samples,
                                                   standardize=standardize))
    Xtr, ytr, Xte, yte = _load_flat(data, seed, num_samples, standardize)
    classes, ytr, yte = _remap_classes(ytr, yte, "logistic_regression")
    if len(classes) < 2:
        raise ValueError("logistic_regression: the labels must hold at least two classes.")
    k = 1 if len(classes) == 2 else len(classes)
    shards = data_lib.partition(Xtr, ytr, n_workers, partition, alpha, seed)
    p = Xtr.shape[1]
    x_star = f_star = None
    if solve_optimum:
        x_star, f_star = _logistic_optimum(shards[0], shards[1], shards[2], k, reg)
    L = _gram_top_eigenvalue(_with_ones(Xtr)) * (0.25 if k == 1 else 0.5) + reg
    name = data if isinstance(data, str) else "arrays"
    # the bias as a constant feature: [X, 1] @ [W; b] is one product with no slice of x (x's layout, W row-major then
    # b, is the (p + 1, k) matrix's); 1.2-1.4x more D-PSGD steps per second at n = 64, d = 1000, batch 1
    shards = (_with_ones(shards[0]), *shards[1:])
    return _problem(shards, (_with_ones(Xte), yte), np.zeros(p * k + k), Linear(p + 1, k, bias=False), logistic_loss,
                    batch_size, f"logistic({name}, {partition})", reg, 0.0, x_star, f_star, True, L,
                    reg if reg > 0 else None, spec)


def _check_flat_args(builder, data, n_workers, partition, alpha, seed, num_samples, standardize, reg, solve_optimum):
    """The checks logistic_regression and mlp share (before any data is loaded); returns the resolved
    ``(alpha, num_samples, standardize, solve_optimum)``."""
    checks.data_name(builder, data)
    checks.integer(builder, "n_workers", n_workers, 1)
    alpha = checks.partition_alpha(builder, partition, alpha)
    checks.seed(builder, "seed", seed)
    num_samples = checks.num_samples(builder, data, num_samples)
    standardize = checks.flag(builder, "standardize", standardize, allow_none=True)
    checks.number(builder, "reg", reg)
    solve_optimum = checks.flag(builder, "solve_optimum", solve_optimum)
    return alpha, num_samples, standardize, solve_optimum


def _load_flat(data, seed, num_samples, standardize):
    """(X, y, X_test, y_test) with flattened features, standardized per feature if asked (default: built-in sets)."""
    if standardize is None:
        standardize = isinstance(data, str)
    return data_lib.load(data, seed=seed, num_samples=num_samples, flatten=True, standardize=bool(standardize))


def _remap_classes(ytr, yte, name):
    """Integer labels 0..K-1 in the order of the sorted training classes (any integer labels, e.g. -1 / +1)."""
    ytr = data_lib.class_labels(ytr, f"{name}: y", nonnegative=False)
    yte = data_lib.class_labels(yte, f"{name}: y_test", nonnegative=False)
    classes = np.unique(ytr)
    unseen = np.setdiff1d(np.unique(yte), classes)
    if unseen.size:
        raise ValueError(f"{name}: the test labels hold classes {unseen.tolist()} that no training sample has.")
    return classes, np.searchsorted(classes, ytr), np.searchsorted(classes, yte)


def _with_ones(X):
    """X with a trailing feature of ones (the bias's)."""
    return np.concatenate([X, np.ones(X.shape[:-1] + (1,), X.dtype)], axis=-1)


# ---- MLP -------------------------------------------------------------------------------------------------------------
def mlp(data="mnist1d", n_workers: int = 16, hidden=(64,), partition: str = "iid", batch_size: int = 16,
        reg: float = 0.0, alpha: float | None = None, seed: int = 0, num_samples: int | None = None,
        standardize: bool | None = None) -> Problem:
    """A flax MLP with ReLU hidden layers and softmax cross-entropy (non-convex), on the flattened samples.

    ``standardize`` (per feature, training statistics) defaults to True for the built-in data sets and False for user
    arrays, which are used as given. ``alpha`` and ``num_samples`` as in :func:`logistic_regression`; ``seed`` also
    draws the initial model. For other networks use :func:`jaxgossip.problems.from_flax`.
    """
    alpha, num_samples, standardize, _ = _check_flat_args("mlp", data, n_workers, partition, alpha, seed, num_samples,
                                                          standardize, reg, True)
    spec = ProblemSpec("mlp", dict(data=data, n_workers=n_workers, hidden=hidden, partition=partition,
                                   batch_size=batch_size, reg=reg, alpha=alpha, seed=seed, num_samples=num_samples,
                                   standardize=standardize))
    hidden_list = list(np.atleast_1d(hidden)) if not isinstance(hidden, (str, bytes)) else [hidden]
    if not all(isinstance(h, (int, np.integer)) and not isinstance(h, (bool, np.bool_)) and h >= 1
                                  for h in hidden_list):
        raise ValueError(f"mlp: hidden must be positive integers (the width of each hidden layer), got {hidden!r}.")
    Xtr, ytr, Xte, yte = _load_flat(data, seed, num_samples, standardize)
    classes, ytr, yte = _remap_classes(ytr, yte, "mlp")
    hidden = tuple(int(h) for h in hidden_list)
    model = MLP(Xtr.shape[1], hidden, len(classes))
    shards = data_lib.partition(Xtr, ytr, n_workers, partition, alpha, seed)
    x0 = model.init(jax.random.key(seed))
    name = data if isinstance(data, str) else "arrays"
    return _problem(shards, (Xte, yte), x0, model, logistic_loss, batch_size, f"mlp({name}, {hidden})", reg,
                    classification=True, spec=spec)
