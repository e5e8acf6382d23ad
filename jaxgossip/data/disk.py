"""Image data sets read from files already on disk (``jg.data.load``); nothing is ever downloaded.

Supported: ``"mnist"`` and ``"fashion_mnist"`` (the four idx files, each plain or ``.gz``), ``"cifar10"`` and
``"cifar100"`` (the python pickle batches, in the directory given or in the subdirectory their archive unpacks to).
Images stay images, with exactly the pixel values of the files.
"""

from __future__ import annotations

import os

import numpy as np

from jaxgossip.data._cifar import read_batch
from jaxgossip.data._idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx

__all__ = ["DISK_DATASETS", "LABEL_MODES", "expected_files", "load"]

#: Names :func:`load` accepts.
DISK_DATASETS = ("mnist", "fashion_mnist", "cifar10", "cifar100")
#: CIFAR-100's two label sets (100 fine classes, 20 coarse superclasses).
LABEL_MODES = ("fine", "coarse")

_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
_FILES = {
    "mnist": _IDX_FILES,
    "fashion_mnist": _IDX_FILES,
    "cifar10": tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",),
    "cifar100": ("train", "test"),
}
_SUBDIRS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}


def _check_name(name) -> str:
    if name not in DISK_DATASETS:
        raise ValueError(f"name must be one of {DISK_DATASETS}, got {name!r}")
    return name


def expected_files(name: str) -> tuple[str, ...]:
    """The file names :func:`load` reads for data set ``name``.

    Args:
      name: one of :data:`DISK_DATASETS`.

    Returns:
      The names, training files first. For ``"mnist"`` and ``"fashion_mnist"`` each may also end in ``.gz``;
      CIFAR files may sit in ``path`` itself or in ``path/cifar-10-batches-py`` / ``path/cifar-100-python``.
    """
    return _FILES[_check_name(name)]


def _directory(name: str, path) -> str:
    """``path`` as a string, checked to be an existing directory."""
    path = os.path.expanduser(os.fspath(path))
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{name}: directory {path!r} does not exist (or is not a directory); "
                                f"expected it to hold {_describe(name)}")
    return path


def _describe(name: str) -> str:
    files = ", ".join(_FILES[name])
    if name in _SUBDIRS:
        return f"the files {files} (directly or in the subdirectory {_SUBDIRS[name]!r})"
    return f"the files {files} (each plain or .gz)"


def _idx_file(directory: str, base: str) -> str | None:
    """The plain or gzipped copy of ``base`` in ``directory`` (plain first), or None."""
    for file in (os.path.join(directory, base), os.path.join(directory, base + ".gz")):
        if os.path.isfile(file):
            return file
    return None


def _missing(name: str, where: list[str], missing: list[str]) -> FileNotFoundError:
    looked = " and ".join(repr(w) for w in where)
    return FileNotFoundError(f"{name}: missing {', '.join(missing)} in {looked}; expected {_describe(name)}")


def _load_idx_pair(images_file: str, labels_file: str) -> tuple[np.ndarray, np.ndarray]:
    """One split: (N, rows, cols, 1) uint8 images and (N,) int64 labels, counts checked."""
    images = read_idx(images_file, IMAGES_MAGIC)
    labels = read_idx(labels_file, LABELS_MAGIC)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{images.shape[0]} images in {images_file} but {labels.shape[0]} labels in {labels_file}")
    return images[..., None], labels.astype(np.int64)


def _load_idx(name: str, directory: str):
    files = [_idx_file(directory, base) for base in _IDX_FILES]
    missing = [base for base, file in zip(_IDX_FILES, files) if file is None]
    if missing:
        raise _missing(name, [directory], missing)
    return (*_load_idx_pair(files[0], files[1]), *_load_idx_pair(files[2], files[3]))


def _cifar_directory(name: str, directory: str) -> str:
    """``directory`` or its archive subdirectory, whichever holds every expected file."""
    candidates = [directory, os.path.join(directory, _SUBDIRS[name])]
    missing_in = {}
    for candidate in candidates:
        missing_in[candidate] = [f for f in _FILES[name] if not os.path.isfile(os.path.join(candidate, f))]
        if not missing_in[candidate]:
            return candidate
    best = min(candidates, key=lambda c: len(missing_in[c]))
    if len(missing_in[best]) == len(_FILES[name]):
        raise _missing(name, candidates, missing_in[best])
    raise _missing(name, [best], missing_in[best])


def _concat(batches):
    images, labels = zip(*batches)
    return np.concatenate(images), np.concatenate(labels)


def _load_cifar(name: str, directory: str, label_mode: str):
    directory = _cifar_directory(name, directory)
    key = b"labels" if name == "cifar10" else (b"fine_labels" if label_mode == "fine" else b"coarse_labels")
    *train_files, test_file = (os.path.join(directory, f) for f in _FILES[name])
    X_train, y_train = _concat([read_batch(f, key) for f in train_files])
    X_test, y_test = read_batch(test_file, key)
    return X_train, y_train, X_test, y_test


def load(name: str, path, *, label_mode: str = "fine"):
    """Read an image data set from files already on disk; never downloads anything.

    The pixels are returned exactly as stored in the files: uint8 in [0, 255], no scaling, no standardization. The
    caller normalizes (e.g. ``X / 255.0`` or per-channel mean and std of the training part).

    Args:
      name: one of :data:`DISK_DATASETS`: ``"mnist"``, ``"fashion_mnist"``, ``"cifar10"``, ``"cifar100"``.
      path: the directory holding the files of :func:`expected_files` (for CIFAR, it or the subdirectory the archive
        unpacks to, ``cifar-10-batches-py`` / ``cifar-100-python``).
      label_mode: ``"fine"`` (100 classes) or ``"coarse"`` (20 superclasses); only ``"cifar100"`` has coarse labels.

    Returns:
      ``(X_train, y_train, X_test, y_test)``: images (N, 28, 28, 1) for MNIST-like sets and (N, 32, 32, 3) (height,
      width, channels) for CIFAR, dtype uint8; labels (N,) int64.

    Raises:
      FileNotFoundError: when the directory or a file is missing; the message names where it looked and the files
        expected.
      ValueError: for an unknown name or label mode, or a malformed file (wrong idx magic number, truncated data,
        image and label counts that differ, a pickle without the expected keys); the message names the file.
    """
    _check_name(name)
    if label_mode not in LABEL_MODES:
        raise ValueError(f"label_mode must be one of {LABEL_MODES}, got {label_mode!r}")
    if label_mode != "fine" and name != "cifar100":
        raise ValueError(f"label_mode={label_mode!r} exists only for 'cifar100'; {name!r} has one label set ('fine')")
    directory = _directory(name, path)
    if name in _SUBDIRS:
        return _load_cifar(name, directory, label_mode)
    return _load_idx(name, directory)
