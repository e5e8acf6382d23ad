"""The python pickle batches of CIFAR-10 and CIFAR-100.

Each batch is a dict pickled by Python 2 with byte-string keys: ``b"data"`` (N x 3072 uint8, each row one image stored
channel-major, 3 x 32 x 32) and the labels (``b"labels"`` in CIFAR-10, ``b"fine_labels"`` and ``b"coarse_labels"`` in
CIFAR-100). Unpickling runs code from the file: load only files you trust.
"""

from __future__ import annotations

import os
import pickle

import numpy as np

__all__ = ["read_batch"]

_PIXELS = 3 * 32 * 32


def _unpickle(file: str) -> dict:
    """The dict in ``file``, read with ``encoding="bytes"`` as the Python 2 pickles need."""
    try:
        with open(file, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, TypeError) as err:
        raise ValueError(f"{file}: not a readable CIFAR pickle ({type(err).__name__}: {err})") from err
    if not isinstance(batch, dict):
        raise ValueError(f"{file}: expected a pickled dict, found {type(batch).__name__}")
    return batch


def _images(file: str, data) -> np.ndarray:
    """(N, 3072) channel-major rows -> (N, 32, 32, 3) uint8 images (HWC)."""
    data = np.asarray(data)
    if data.ndim != 2 or data.shape[1] != _PIXELS:
        raise ValueError(f"{file}: b'data' has shape {data.shape}, expected (N, {_PIXELS})")
    if data.dtype != np.uint8:
        if not np.issubdtype(data.dtype, np.integer) or (data.size and (data.min() < 0 or data.max() > 255)):
            raise ValueError(f"{file}: b'data' has dtype {data.dtype}, expected uint8 pixels")
        data = data.astype(np.uint8)
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()


def _labels(file: str, labels, key: bytes, n: int) -> np.ndarray:
    """The labels under ``key`` as an int64 vector of length n."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{file}: {key!r} must be a list of integer labels, found shape {labels.shape} "
                         f"dtype {labels.dtype}")
    if labels.shape[0] != n:
        raise ValueError(f"{file}: {labels.shape[0]} labels under {key!r} but {n} images under b'data'")
    return labels.astype(np.int64)


def read_batch(file: str | os.PathLike, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR pickle batch.

    Args:
      file: path of the batch (``data_batch_1``, ``test_batch``, ``train``, ``test``, ...).
      label_key: the labels' key, ``b"labels"``, ``b"fine_labels"`` or ``b"coarse_labels"``.

    Returns:
      ``(images, labels)``: (N, 32, 32, 3) uint8 with the file's pixel values, and (N,) int64.

    Raises:
      ValueError: naming the file, when it is not a pickled dict, lacks ``b"data"`` or ``label_key``, or the shapes
        or counts disagree.
    """
    file = os.fspath(file)
    batch = _unpickle(file)
    missing = [k for k in (b"data", label_key) if k not in batch]
    if missing:
        raise ValueError(f"{file}: pickle lacks key(s) {missing}; found keys {sorted(map(repr, batch))}")
    images = _images(file, batch[b"data"])
    return images, _labels(file, batch[label_key], label_key, images.shape[0])
