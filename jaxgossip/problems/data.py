"""Data sets and how they are split over workers.

Data sets (no download at run time): ``"digits"`` and ``"breast_cancer"`` (scikit-learn's bundled copies),
``"mnist1d"`` (generated locally by the mnist1d package), ``"synthetic"`` (a seeded linear-teacher classification set),
or a user's own arrays ``(X, y)`` / ``(X, y, X_test, y_test)``.

Partitions: ``"iid"`` (shuffled, near-equal shares), ``"label"`` (sorted by label, contiguous shares: each worker sees
few classes), ``"dirichlet"`` (per-class shares drawn from Dirichlet(alpha), so worker sizes differ). Shares are padded
to the largest one and carry per-worker counts, so unequal sizes are handled exactly.
"""

from __future__ import annotations

import functools

import numpy as np

DATASETS = ("digits", "breast_cancer", "mnist1d", "synthetic")
PARTITIONS = ("iid", "label", "dirichlet")

__all__ = ["DATASETS", "PARTITIONS", "SHAPES", "load", "partition", "Shards", "class_labels"]


def _standardize(X_train, X_test):
    """Standardize with the training part's statistics: per feature for tables (N, p), per channel (the last axis)
    for images (N, H, W, C) and sequences (N, L, C)."""
    axes = (0,) if X_train.ndim <= 2 else tuple(range(X_train.ndim - 1))
    mean = X_train.mean(axis=axes)
    std = X_train.std(axis=axes)
    std = np.where(std > 0, std, 1.0)
    return (X_train - mean) / std, (X_test - mean) / std


def _normalize(X_train, X_test, normalize):
    """``(X - mean) / std`` with given per-channel (or per-feature) ``(mean, std)``."""
    try:
        mean, std = (np.asarray(v, np.float64) for v in normalize)
    except (TypeError, ValueError):
        raise ValueError(f"normalize must be a pair (mean, std) of numbers or per-channel arrays, got {normalize!r}.") from None
    if np.any(std <= 0) or not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std))):
        raise ValueError(f"normalize: std must be positive and both finite, got mean={mean}, std={std}.")
    return (X_train - mean) / std, (X_test - mean) / std


@functools.lru_cache(maxsize=8)
def _mnist1d(num_samples: int, seed: int):
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = num_samples
    args.seed = seed
    data = make_dataset(args)
    return data["x"], data["y"], data["x_test"], data["y_test"]


def _synthetic(num_samples: int, num_features: int, num_classes: int, seed: int):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((num_samples, num_features))
    W = rng.standard_normal((num_features, num_classes))
    logits = X @ W + 0.5 * rng.standard_normal((num_samples, num_classes))
    y = logits.argmax(axis=1)
    return X, y


#: The sample shape each built-in set has: digits are 8x8 grey images, mnist1d 40-step sequences of one channel.
SHAPES = {"digits": (8, 8, 1), "breast_cancer": (30,), "mnist1d": (40, 1), "synthetic": (20,)}


def load(name="digits", test_fraction: float = 0.2, seed: int = 0, num_samples: int | None = None, *,
         standardize: bool = False, normalize=None, flatten: bool = False):
    """Return ``(X, y, X_test, y_test)`` with the samples' shapes kept: features and integer labels.

    ``name`` is one of DATASETS (digits as (N, 8, 8, 1) images, mnist1d as (N, 40, 1) sequences, breast cancer and
    synthetic as (N, p) tables), or a tuple of user arrays ``(X, y)`` or ``(X, y, X_test, y_test)``, used exactly as
    given: nothing is reshaped, standardized or relabelled unless asked.

    Args:
      name: a data set name or arrays.
      test_fraction: held-out share of a set that comes without a test part (a seeded split).
      seed: seeds that split.
      num_samples: size of the generated sets (mnist1d, synthetic).
      standardize: subtract the training part's mean and divide by its std, per feature for tables and per channel
        (last axis) for images and sequences.
      normalize: a given ``(mean, std)`` pair (per channel or per feature) to apply instead.
      flatten: return (N, p) features (for linear models and MLPs).

    Raises:
      ValueError: naming the argument, for features and labels of different lengths, non-finite features, or labels
        that are not one per sample.
    """
    if isinstance(name, (tuple, list)):
        if len(name) == 2:
            X, y = (np.asarray(a) for a in name)
            _check_arrays(X, y, "data")
            Xtr, Xte, ytr, yte = _split(X, y, test_fraction, seed)
        elif len(name) == 4:
            Xtr, ytr, Xte, yte = (np.asarray(a) for a in name)
            _check_arrays(Xtr, ytr, "data (train)")
            _check_arrays(Xte, yte, "data (test)")
            if Xte.shape[1:] != Xtr.shape[1:]:
                raise ValueError(f"data: the test samples have shape {Xte.shape[1:]} but the training samples "
                                 f"{Xtr.shape[1:]}; they must match.")
        else:
            raise ValueError("data: pass (X, y) or (X, y, X_test, y_test) as arrays.")
    elif name in ("digits", "breast_cancer"):
        X, y = _bundled(name)
        Xtr, Xte, ytr, yte = _split(X.reshape((len(X),) + SHAPES[name]), y, test_fraction, seed)
    elif name == "mnist1d":
        Xtr, ytr, Xte, yte = _mnist1d(num_samples or 4000, 42)
        Xtr, Xte = Xtr.reshape((len(Xtr),) + SHAPES[name]), Xte.reshape((len(Xte),) + SHAPES[name])
    elif name == "synthetic":
        X, y = _synthetic(num_samples or 2000, 20, 2, seed)
        Xtr, Xte, ytr, yte = _split(X, y, test_fraction, seed)
    else:
        raise ValueError(f"dataset must be one of {DATASETS} or a tuple of arrays, got {name!r}.")
    if flatten:
        p = int(np.prod(Xtr.shape[1:]))
        Xtr, Xte = Xtr.reshape(len(Xtr), p), Xte.reshape(len(Xte), p)
    if standardize and normalize is not None:
        raise ValueError("load: pass standardize=True or normalize=(mean, std), not both.")
    if standardize or normalize is not None:
        Xtr, Xte = Xtr.astype(np.float64), Xte.astype(np.float64)
        Xtr, Xte = _standardize(Xtr, Xte) if standardize else _normalize(Xtr, Xte, normalize)
    cast = (lambda a: a.astype(np.float32)) if np.issubdtype(np.asarray(Xtr).dtype, np.floating) or standardize \
        or normalize is not None else np.asarray
    return cast(Xtr), np.asarray(ytr), cast(Xte), np.asarray(yte)


def _check_arrays(X, y, arg):
    if X.ndim < 1 or (len(X) == 0 and "test" not in arg):
        raise ValueError(f"{arg}: the features must be an array with one row per sample, got shape {X.shape}.")
    if len(X) != len(y):
        raise ValueError(f"{arg}: X has {len(X)} rows but y has {len(y)}; give one label per sample.")
    if not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise ValueError(f"{arg}: the features must be numbers, got dtype {X.dtype}.")
    if np.issubdtype(X.dtype, np.floating) and not np.all(np.isfinite(X)):
        bad = int(np.sum(~np.isfinite(X)))
        raise ValueError(f"{arg}: the features hold {bad} NaN or infinite values; clean or impute them first.")


def class_labels(y, arg: str = "y", num_classes: int | None = None, nonnegative: bool = True) -> np.ndarray:
    """Labels for a classifier: one integer class per sample, shape (N,), checked (clear errors, no silent casts).

    Raises:
      ValueError: for labels of another shape (e.g. (N, 1): pass ``y.reshape(-1)``), non-integer values (continuous
        targets given to a classifier), negative classes, or classes >= ``num_classes``.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{arg}: class labels must have shape (N,), got {y.shape}; pass y.reshape(-1) if each row "
                         "holds one label.")
    if y.size and not (np.issubdtype(y.dtype, np.integer) or y.dtype == bool):
        if not np.issubdtype(y.dtype, np.floating) or not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise ValueError(f"{arg}: class labels must be integers, got {y.dtype} values such as {y[:3].tolist()}; "
                             "continuous targets need a regression loss (loss='squared_error').")
    y = y.astype(np.int64)
    if nonnegative and y.size and y.min() < 0:
        raise ValueError(f"{arg}: class labels must be >= 0, got {int(y.min())}.")
    if num_classes is not None and y.size and y.max() >= num_classes:
        raise ValueError(f"{arg}: label {int(y.max())} is out of range for a model with {num_classes} outputs.")
    return y


@functools.lru_cache(maxsize=4)
def _bundled(name):
    """scikit-learn's bundled copy of a data set, read straight from its CSV (importing sklearn.datasets takes
    seconds); falls back to sklearn's loader if the file is not where it is expected."""
    import importlib.util
    import os

    spec = importlib.util.find_spec("sklearn")
    folder = os.path.join(os.path.dirname(spec.origin), "datasets", "data") if spec and spec.origin else ""
    path = os.path.join(folder, "digits.csv.gz" if name == "digits" else "breast_cancer.csv")
    if os.path.exists(path):
        table = np.loadtxt(path, delimiter=",", skiprows=0 if name == "digits" else 1)
        return table[:, :-1], table[:, -1].astype(np.int64)
    from sklearn import datasets  # pragma: no cover

    bunch = datasets.load_digits() if name == "digits" else datasets.load_breast_cancer()  # pragma: no cover
    return bunch.data, bunch.target  # pragma: no cover


def _split(X, y, test_fraction, seed):
    """A seeded random split: the last ``round(test_fraction * N)`` of a permutation are held out."""
    if isinstance(test_fraction, (bool, np.bool_)) or not isinstance(test_fraction, (int, float, np.integer, np.floating)) \
            or not 0 <= test_fraction < 1:
        raise ValueError(f"test_fraction must lie in [0, 1), got {test_fraction!r}.")
    if test_fraction == 0:
        return X, X[:0], y, y[:0]
    order = np.random.default_rng(seed).permutation(len(X))
    n_test = int(round(test_fraction * len(X)))
    train, test = order[: len(X) - n_test], order[len(X) - n_test :]
    return X[train], X[test], y[train], y[test]


class Shards(tuple):
    """``(X, y, counts)``: X (n, m, ...) and y (n, m) padded to the largest share, counts (n,) the true sizes."""

    __slots__ = ()

    def __new__(cls, X, y, counts):
        return super().__new__(cls, (X, y, counts))


def partition(X, y, n_workers: int, how: str = "iid", alpha: float = 0.5, seed: int = 0) -> Shards:
    """Split (X, y) over n_workers; returns padded :class:`Shards`.

    Raises ValueError naming the argument for fewer samples than workers or an unknown partition.
    """
    N = len(X)
    if how not in PARTITIONS:
        raise ValueError(f"partition must be one of {PARTITIONS}, got {how!r}.")
    if isinstance(n_workers, (bool, np.bool_)) or not isinstance(n_workers, (int, np.integer)) or n_workers < 1:
        raise ValueError(f"n_workers must be a positive integer, got {n_workers!r}.")
    if N < n_workers:
        raise ValueError(f"n_workers={n_workers} is more than the {N} training samples: every worker needs data.")
    rng = np.random.default_rng(seed)
    if how == "iid":
        parts = np.array_split(rng.permutation(N), n_workers)
    elif how == "label":
        order = np.lexsort((rng.random(N), y))
        parts = np.array_split(order, n_workers)
    else:
        if isinstance(alpha, (bool, np.bool_)) or not isinstance(alpha, (int, float, np.integer, np.floating)) \
                or not 0 < alpha < np.inf:
            raise ValueError(f"partition='dirichlet': alpha must be a finite number > 0, got {alpha!r}.")
        parts = _dirichlet(y, n_workers, alpha, rng)
    counts = np.array([len(p) for p in parts])
    m = counts.max()
    idx = np.stack([np.concatenate([p, np.full(m - len(p), p[0])]) for p in parts])
    return Shards(X[idx], y[idx], counts)


def _dirichlet(y, n_workers, alpha, rng):
    """Per-class shares from Dirichlet(alpha), then every worker topped up to at least one sample."""
    buckets = [[] for _ in range(n_workers)]
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        shares = rng.dirichlet(alpha * np.ones(n_workers))
        cuts = (np.cumsum(shares) * len(members)).astype(int)[:-1]
        for w, part in enumerate(np.split(members, cuts)):
            buckets[w].extend(part.tolist())
    parts = [np.array(b, dtype=np.int64) for b in buckets]
    for w in range(n_workers):  # no empty worker: move one sample from the largest
        if len(parts[w]) == 0:
            big = int(np.argmax([len(p) for p in parts]))
            parts[w], parts[big] = parts[big][:1], parts[big][1:]
    return [rng.permutation(p) for p in parts]
