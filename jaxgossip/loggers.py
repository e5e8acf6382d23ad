"""Ready callbacks for live logging: ``simulate(..., callbacks=[jg.loggers.CSV("run.csv")])``.

A callback is any callable ``callback(step, metrics)``: :func:`jaxgossip.simulate` calls it at every evaluation with
the step and ``{name: value}`` (floats; (n,) arrays for per-worker metrics), the values ``Result.metrics`` holds. The
run is compiled chunks of several evaluations, so the calls come as each chunk returns to the host; they change
neither the compiled program nor the numbers. :func:`jaxgossip.sweep` and :func:`jaxgossip.compare` call it with the
metrics of every configuration of a batch, named ``"<run name>/<metric>"``.

* :class:`CSV`: a tidy file ``step,metric,value`` (one row per value, flushed at every call: ``tail -f`` works).
* :class:`TensorBoard`: event files for TensorBoard (the optional extra ``pip install jaxgossip[tensorboard]``, which
  installs tensorboardX); :func:`read_tensorboard` reads the curves back.
* Weights & Biases: a one-line callback, ``lambda step, m: wandb.log(m, step=step)`` (see the README).
"""

from __future__ import annotations

import csv
import os
import struct

import numpy as np

__all__ = ["CSV", "TensorBoard", "read_tensorboard", "scalars"]


def scalars(metrics: dict) -> dict:
    """``{name: float}`` of one evaluation's metrics, a per-worker (n,) array split into ``name[0]``, ...,
    ``name[n-1]``."""
    out = {}
    for k, v in metrics.items():
        if np.ndim(v) == 0:
            out[k] = float(v)
        else:
            out.update({f"{k}[{i}]": float(x) for i, x in enumerate(np.ravel(v))})
    return out


class CSV:
    """Append every evaluation to a CSV file as tidy rows ``step,metric,value`` (per-worker metrics as
    ``worker_loss[i]``); ``pandas.read_csv(path).pivot(index="step", columns="metric", values="value")`` gives the
    wide table. The file is created (with its header) or truncated when the logger is built; every call appends and
    flushes, so the file follows the run.

    Args:
      path: the CSV file (its folder is created).
    """

    def __init__(self, path: str):
        if not isinstance(path, (str, os.PathLike)):
            raise ValueError(f"jg.loggers.CSV: path must be a file path, got {type(path).__name__}.")
        self.path = os.fspath(path)
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        with open(self.path, "w", newline="") as f:
            csv.writer(f).writerow(["step", "metric", "value"])

    def __call__(self, step: int, metrics: dict) -> None:
        with open(self.path, "a", newline="") as f:
            w = csv.writer(f)
            for k, v in scalars(metrics).items():
                w.writerow([int(step), k, repr(v)])  # repr: the float64 value exactly

    def __repr__(self) -> str:
        return f"CSV({self.path!r})"


class TensorBoard:
    """Write every evaluation's metrics as TensorBoard scalars (tag = metric name; a per-worker metric as
    ``worker_loss/<i>``, one curve per worker), flushed at every call. Needs ``tensorboardX`` (the optional extra
    ``jaxgossip[tensorboard]``). TensorBoard stores scalars as float32.

    Args:
      logdir: the run's folder (``tensorboard --logdir`` on it or its parent).
      **kwargs: passed to ``tensorboardX.SummaryWriter`` (e.g. ``flush_secs``).

    Raises:
      ImportError: without tensorboardX, saying how to install it.
    """

    def __init__(self, logdir: str, **kwargs):
        try:
            from tensorboardX import SummaryWriter
        except ImportError as e:
            raise ImportError("jg.loggers.TensorBoard needs tensorboardX: pip install 'jaxgossip[tensorboard]' (or "
                              "pip install tensorboardX).") from e
        self.logdir = os.fspath(logdir)
        self.writer = SummaryWriter(self.logdir, **kwargs)

    def __call__(self, step: int, metrics: dict) -> None:
        for k, v in metrics.items():
            if np.ndim(v) == 0:
                self.writer.add_scalar(k, float(v), int(step))
            else:
                for i, x in enumerate(np.ravel(v)):
                    self.writer.add_scalar(f"{k}/{i}", float(x), int(step))
        self.writer.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        self.writer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        return f"TensorBoard({self.logdir!r})"


def read_tensorboard(logdir: str) -> dict:
    """The scalar curves of every event file under ``logdir``: ``{tag: (steps, values)}`` (int64 and float64
    arrays, in the order written). Reads the TFRecord framing directly (8-byte length, 4-byte CRC, the ``Event``
    protobuf, 4-byte CRC) with tensorboardX's protobuf classes; no TensorFlow needed.

    Raises:
      ImportError: without tensorboardX.
      ValueError: when ``logdir`` holds no event file.
    """
    from tensorboardX.proto import event_pb2

    files = sorted(os.path.join(root, f) for root, _, names in os.walk(logdir) for f in names
                   if "tfevents" in f)
    if not files:
        raise ValueError(f"read_tensorboard: no event file under {logdir!r}.")
    curves: dict = {}
    for path in files:
        with open(path, "rb") as f:
            data = f.read()
        pos = 0
        while pos + 12 <= len(data):
            (length,) = struct.unpack("<Q", data[pos : pos + 8])
            record = data[pos + 12 : pos + 12 + length]
            pos += 12 + length + 4
            event = event_pb2.Event.FromString(record)
            for value in event.summary.value:
                if value.HasField("simple_value"):
                    curves.setdefault(value.tag, ([], []))
                    curves[value.tag][0].append(event.step)
                    curves[value.tag][1].append(value.simple_value)
    return {k: (np.asarray(s, np.int64), np.asarray(v, np.float64)) for k, (s, v) in curves.items()}
