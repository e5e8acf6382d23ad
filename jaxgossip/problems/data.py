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

__all__ = ["DATASETS", "PARTITIONS", "load", "partition", "Shards"]


def _standardize(X_train, X_test):
    mean = X_train.mean(axis=0)
    std = X_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
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


def load(name="digits", test_fraction: float = 0.2, seed: int = 0, num_samples: int | None = None):
    """Return ``(X, y, X_test, y_test)`` as float32 features (standardized on the training part) and int labels.

    ``name`` is one of DATASETS, or a tuple of user arrays ``(X, y)`` or ``(X, y, X_test, y_test)``.
    """
    if isinstance(name, (tuple, list)):
        if len(name) == 2:
            X, y = (np.asarray(a) for a in name)
            Xtr, Xte, ytr, yte = _split(X, y, test_fraction, seed)
        elif len(name) == 4:
            Xtr, ytr, Xte, yte = (np.asarray(a) for a in name)
        else:
            raise ValueError("data: pass (X, y) or (X, y, X_test, y_test) as arrays.")
        if len(Xtr) != len(ytr):
            raise ValueError(f"data: X has {len(Xtr)} rows but y has {len(ytr)}.")
    elif name in ("digits", "breast_cancer"):
        X, y = _bundled(name)
        Xtr, Xte, ytr, yte = _split(X, y, test_fraction, seed)
    elif name == "mnist1d":
        Xtr, ytr, Xte, yte = _mnist1d(num_samples or 4000, 42)
    elif name == "synthetic":
        X, y = _synthetic(num_samples or 2000, 20, 2, seed)
        Xtr, Xte, ytr, yte = _split(X, y, test_fraction, seed)
    else:
        raise ValueError(f"dataset must be one of {DATASETS} or a tuple of arrays, got {name!r}.")
    Xtr = Xtr.reshape(len(Xtr), -1).astype(np.float64)
    Xte = Xte.reshape(len(Xte), Xtr.shape[1]).astype(np.float64)
    Xtr, Xte = _standardize(Xtr, Xte)
    return Xtr.astype(np.float32), np.asarray(ytr), Xte.astype(np.float32), np.asarray(yte)


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
    if test_fraction <= 0:
        return X, X[:0], y, y[:0]
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie in [0, 1), got {test_fraction}.")
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
    if not isinstance(n_workers, (int, np.integer)) or n_workers < 1:
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
        if not alpha > 0:
            raise ValueError(f"partition='dirichlet': alpha must be > 0, got {alpha}.")
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
