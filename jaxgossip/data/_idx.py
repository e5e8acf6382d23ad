"""The idx format of MNIST and Fashion-MNIST, parsed with NumPy.

An idx file is a big-endian header (a 4-byte magic number whose last byte counts the dimensions, then one int32 per
dimension) followed by the raw unsigned bytes. Images: magic 0x00000803, dims (N, rows, cols). Labels: magic
0x00000801, dims (N,). Files may be plain or gzipped.
"""

from __future__ import annotations

import gzip
import os
import zlib

import numpy as np

__all__ = ["IMAGES_MAGIC", "LABELS_MAGIC", "read_idx"]

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801


def _read_bytes(file: str) -> bytes:
    """All bytes of ``file``, gunzipped when its name ends in ``.gz``."""
    if not file.endswith(".gz"):
        with open(file, "rb") as f:
            return f.read()
    try:
        with gzip.open(file, "rb") as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as err:
        raise ValueError(f"{file}: not a readable gzip file ({err})") from err


def read_idx(file: str | os.PathLike, magic: int) -> np.ndarray:
    """Read one idx file whose magic number must be ``magic``.

    Args:
      file: path of the file (plain, or gzipped when the name ends in ``.gz``).
      magic: the expected magic number, :data:`IMAGES_MAGIC` or :data:`LABELS_MAGIC`.

    Returns:
      A uint8 array of the shape the header gives: (N, rows, cols) for images, (N,) for labels.

    Raises:
      ValueError: naming the file, when the magic number is wrong or the data are truncated or too long.
    """
    file = os.fspath(file)
    raw = _read_bytes(file)
    ndim = magic & 0xFF
    header = 4 * (1 + ndim)
    if len(raw) < header:
        raise ValueError(f"{file}: truncated idx header ({len(raw)} bytes, need {header})")
    found = int(np.frombuffer(raw, dtype=">u4", count=1)[0])
    if found != magic:
        raise ValueError(f"{file}: wrong idx magic number 0x{found:08x}, expected 0x{magic:08x}")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    if any(d < 0 for d in dims):
        raise ValueError(f"{file}: negative dimension in idx header {dims}")
    size = int(np.prod(dims))
    body = len(raw) - header
    if body != size:
        what = "truncated" if body < size else "too long"
        raise ValueError(f"{file}: {what} idx data: header {dims} needs {size} bytes, file has {body}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims).copy()
