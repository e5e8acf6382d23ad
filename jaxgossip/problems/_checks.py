"""Range checks of the problem builders' arguments: a clear ValueError naming the builder and the argument, before any
data is loaded or anything compiles."""

from __future__ import annotations

import math

import numpy as np

from jaxgossip.problems.data import DATASETS, PARTITIONS

__all__ = ["integer", "number", "flag", "seed", "partition_alpha", "num_samples", "data_name"]

#: Data sets whose size ``num_samples`` sets (the others have a fixed size).
GENERATED = ("mnist1d", "synthetic")


def integer(builder: str, arg: str, value, minimum: int = 0, allow_none: bool = False):
    """``value`` as an int ``>= minimum`` (bools and floats refused), or None where allowed."""
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{builder}: {arg} must be an integer >= {minimum}{' or None' if allow_none else ''}, got "
                         f"{value!r}.")
    return int(value)


def number(builder: str, arg: str, value, low: float = 0.0, low_open: bool = False, high: float = math.inf) -> float:
    """``value`` as a finite float in ``[low, high]`` (``(low, high]`` when ``low_open``)."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    if ok:
        v = float(value)
        ok = math.isfinite(v) and (v > low if low_open else v >= low) and v <= high
    if not ok:
        bound = f"> {low:g}" if low_open else f">= {low:g}"
        if high < math.inf:
            bound += f" and <= {high:g}"
        raise ValueError(f"{builder}: {arg} must be a finite number {bound}, got {value!r}.")
    return float(value)


def flag(builder: str, arg: str, value, allow_none: bool = False):
    """``value`` as a bool (True / False; None where allowed)."""
    if value is None and allow_none:
        return None
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{builder}: {arg} must be True or False{' or None' if allow_none else ''}, got {value!r}.")
    return bool(value)


def seed(builder: str, arg: str, value, allow_none: bool = False):
    """A seed: an integer >= 0 (or None where allowed)."""
    return integer(builder, arg, value, 0, allow_none)


def partition_alpha(builder: str, partition, alpha):
    """The Dirichlet concentration ``alpha`` for ``partition="dirichlet"`` (default 0.5); None for the other
    partitions, which refuse a given ``alpha`` (it would be ignored)."""
    if partition not in PARTITIONS:
        raise ValueError(f"{builder}: partition must be one of {PARTITIONS}, got {partition!r}.")
    if partition != "dirichlet":
        if alpha is not None:
            raise ValueError(f"{builder}: alpha={alpha!r} only acts with partition='dirichlet' (Dirichlet(alpha) shares "
                             f"per class); partition={partition!r} ignores it. Drop alpha or use partition='dirichlet'.")
        return None
    return number(builder, "alpha", 0.5 if alpha is None else alpha, 0.0, low_open=True)


def data_name(builder: str, data) -> None:
    """A built-in data set name or a tuple of arrays (refused early, before anything is loaded)."""
    if isinstance(data, str):
        if data not in DATASETS:
            raise ValueError(f"{builder}: data: dataset must be one of {DATASETS} or a tuple of arrays, got {data!r}.")
    elif not isinstance(data, (tuple, list)) or len(data) not in (2, 4):
        raise ValueError(f"{builder}: data must be one of {DATASETS} or arrays (X, y) / (X, y, X_test, y_test), got "
                         f"{type(data).__name__}.")


def num_samples(builder: str, data, value):
    """The size of a generated set (``mnist1d``, ``synthetic``), or None; refused for the other data (fixed size)."""
    value = integer(builder, "num_samples", value, 1, allow_none=True)
    if value is not None and not (isinstance(data, str) and data in GENERATED):
        name = data if isinstance(data, str) else "user arrays"
        raise ValueError(f"{builder}: num_samples sets the size of a generated set {GENERATED}; {name} has a fixed "
                         f"size and would ignore it. Drop num_samples.")
    return value


def test_fraction(builder: str, value) -> float:
    """The held-out share of a set without a test part: a number in [0, 1)."""
    v = number(builder, "test_fraction", value, 0.0)
    if v >= 1:
        raise ValueError(f"{builder}: test_fraction must be a number in [0, 1), got {value!r}.")
    return v
