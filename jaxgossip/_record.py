"""What made a run, as data: digests of arrays, JSON-friendly records of values and readable descriptions of callables.

``Result.config`` must say every input that changed the numbers, in a form that is the same in another process for the
same inputs (a checkpoint compares it when a run resumes): so no memory addresses, no ``repr`` of objects that print
them, and arrays as short digests of their bytes (shape and dtype included) instead of their values.
"""

from __future__ import annotations

import contextlib

import dataclasses
import functools
import hashlib
import math
import re
import weakref

import numpy as np

__all__ = ["digest", "jsonable", "describe_callable", "describe_transformation", "plain_json"]

_DIGESTS: dict = {}  # id(array) -> (weak reference, digest): a problem's data are hashed once per array object
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _host(a):
    import jax

    return np.asarray(jax.device_get(a))


def _one_digest(a, h) -> None:
    if a is None:
        h.update(b"None")
        return
    import jax

    with contextlib.suppress(Exception):  # not a jax value: hashed as it is
        if jax.dtypes.issubdtype(getattr(a, "dtype", None), jax.dtypes.prng_key):
            a = jax.random.key_data(a)
    arr = np.ascontiguousarray(_host(a))
    h.update(f"{arr.shape}|{arr.dtype.str}|".encode())
    h.update(memoryview(arr).cast("B") if arr.size else b"")


def digest(*arrays) -> str:
    """A 16-hex-digit digest of arrays (values, shapes and dtypes; NumPy, jax or nested lists/pytrees of them).

    One array object is hashed once: its digest is kept while the object lives (a problem's data set is hashed at the
    first ``simulate`` and looked up afterwards). Arrays spread over several processes that this one cannot read
    give ``"unavailable"``.
    """
    import jax

    leaves = [x for a in arrays for x in (jax.tree.leaves(a) if a is not None else [None])]
    h = hashlib.sha1()
    for leaf in leaves:
        h.update(_cached(leaf).encode())
    return h.hexdigest()[:16]


def _cached(a) -> str:
    key = id(a)
    hit = _DIGESTS.get(key)
    if hit is not None and hit[0]() is a:
        return hit[1]
    h = hashlib.sha1()
    try:
        _one_digest(a, h)
    except Exception:  # noqa: BLE001 (an array not addressable from this process)
        return "unavailable"
    value = h.hexdigest()
    try:
        ref = weakref.ref(a, lambda _, k=key: _DIGESTS.pop(k, None))
    except TypeError:  # Python scalars: not cached (cheap)
        return value
    _DIGESTS[key] = (ref, value)
    return value


def _is_array(v) -> bool:
    return hasattr(v, "shape") and hasattr(v, "dtype") and not isinstance(v, type)


def _number(v):
    f = float(v)
    return f if math.isfinite(f) else str(f)


def jsonable(v, depth: int = 0):
    """``v`` as JSON values that are the same in every process for the same input: numbers (non-finite ones as the
    strings ``"inf"``, ``"nan"``), strings, lists, dicts; an array as ``{"shape", "dtype", "digest"}`` (its values when
    it holds at most 8 numbers); a callable by :func:`describe_callable`; another object by its ``repr`` with memory
    addresses removed."""
    if depth > 12:
        return "..."
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, (np.bool_,)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return _number(v)
    if isinstance(v, dict):
        return {str(k): jsonable(x, depth + 1) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x, depth + 1) for x in v]
    if _is_array(v):
        try:
            a = _host(v)
        except Exception:  # noqa: BLE001
            return {"shape": list(np.shape(v)), "digest": "unavailable"}
        if a.dtype.kind in "biuf" and a.size <= 8:
            return {"shape": list(a.shape), "dtype": str(a.dtype), "values": [jsonable(x) for x in a.reshape(-1).tolist()]}
        return {"shape": list(a.shape), "dtype": str(a.dtype), "digest": digest(v)}
    if callable(v) and not dataclasses.is_dataclass(v) and _is_function_like(v):
        return describe_callable(v)
    return _ADDRESS.sub("", repr(v))


def _is_function_like(v) -> bool:
    return (hasattr(v, "__code__") or isinstance(v, functools.partial) or type(v).__name__ in (
        "builtin_function_or_method", "PjitFunction", "ufunc", "method") or hasattr(v, "__wrapped__"))


def _name(fn) -> str:
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__qualname__
    return name.split(".<locals>")[0] if ".<locals>." in name and not name.endswith("<lambda>") else \
        name.replace(".<locals>", "")


def _value(v, depth, seen) -> str | None:
    """One closure value in a description, or None to leave it out."""
    if v is None or isinstance(v, (bool, int, float, str, np.number, np.bool_)):
        return repr(v.item() if isinstance(v, (np.number, np.bool_)) else v)
    if _is_array(v):
        j = jsonable(v)
        return str(j.get("values", j.get("digest"))) if isinstance(j, dict) else str(j)
    if isinstance(v, (tuple, list)):
        inner = [_value(x, depth + 1, seen) for x in v]
        return "(" + ", ".join(x for x in inner if x is not None) + ")"
    if isinstance(v, dict):
        inner = {k: _value(x, depth + 1, seen) for k, x in v.items()}
        return "{" + ", ".join(f"{k}: {x}" for k, x in inner.items() if x is not None) + "}"
    if hasattr(v, "update") and callable(getattr(v, "update")) and hasattr(v, "init"):  # an optax transformation
        return describe_transformation(v, depth + 1, seen)
    if callable(v):
        return describe_callable(v, depth + 1, seen)
    if isinstance(v, type):
        return v.__qualname__
    return _ADDRESS.sub("", repr(v))


def describe_callable(fn, depth: int = 0, seen=None) -> str:
    """A description of a callable with every number it closes over, read recursively through closures, default
    arguments, ``functools.partial`` arguments and the attributes of callable objects, e.g.
    ``cosine_decay_schedule(init_value=0.001, decay_steps=100, alpha=0.0, exponent=1.0)``: two schedules or optimizers
    with other numbers get other descriptions. Module globals a function reads are not seen (evaluate a schedule to
    catch those: :func:`jaxgossip.schedules.from_callable` records values at a few steps)."""
    seen = set() if seen is None else seen
    if depth > 12 or id(fn) in seen:
        return _name(fn)
    seen = seen | {id(fn)}
    if isinstance(fn, functools.partial):
        parts = [describe_callable(fn.func, depth + 1, seen)]
        parts += [_value(a, depth + 1, seen) or "?" for a in fn.args]
        parts += [f"{k}={_value(a, depth + 1, seen)}" for k, a in (fn.keywords or {}).items()]
        return f"partial({', '.join(parts)})"
    code = getattr(fn, "__code__", None)
    parts = []
    if code is not None:
        cells = zip(code.co_freevars, getattr(fn, "__closure__", None) or ())
        for var, cell in cells:
            try:
                v = cell.cell_contents
            except ValueError:
                continue
            if isinstance(v, type) or (callable(v) and getattr(v, "__module__", "") in ("builtins",)):
                continue
            text = _value(v, depth, seen)
            if text is not None:
                parts.append(f"{var}={text}" if not (callable(v) or hasattr(v, "update")) else text)
        defaults = getattr(fn, "__defaults__", None) or ()
        names = code.co_varnames[code.co_argcount - len(defaults):code.co_argcount]
        parts += [f"{k}={_value(v, depth, seen)}" for k, v in zip(names, defaults)
                  if isinstance(v, (bool, int, float, str, np.number)) or _is_array(v)]
        for k, v in sorted((getattr(fn, "__kwdefaults__", None) or {}).items()):
            if isinstance(v, (bool, int, float, str, np.number)) or _is_array(v):
                parts.append(f"{k}={_value(v, depth, seen)}")
    elif callable(fn) and not isinstance(fn, type) and hasattr(fn, "__dict__") and not _is_function_like(fn):
        fields = dataclasses.fields(fn) if dataclasses.is_dataclass(fn) else ()
        attrs = {f.name: getattr(fn, f.name) for f in fields} if fields else dict(vars(fn))
        for k, v in attrs.items():
            if k.startswith("__"):
                continue
            text = _value(v, depth, seen)
            if text is not None:
                parts.append(f"{k}={text}")
        return f"{type(fn).__qualname__}({', '.join(parts)})"
    wrapped = getattr(fn, "__wrapped__", None)
    if wrapped is not None and code is None:
        return describe_callable(wrapped, depth + 1, seen)
    return f"{_name(fn)}({', '.join(parts)})"


def describe_transformation(tx, depth: int = 0, seen=None) -> str:
    """An optax transformation: its ``update`` described, plus what its ``init`` closes over where that adds numbers
    (``optax.inject_hyperparams`` keeps its numeric hyperparameters in ``init``'s closure)."""
    update = describe_callable(tx.update, depth, seen)
    init = describe_callable(tx.init, depth, seen) if callable(getattr(tx, "init", None)) else ""
    extra = init[init.find("(") + 1:-1] if "(" in init else ""
    if not re.search(r"\d", extra) or extra in update:  # init holds no numbers of its own
        return update
    return f"{update[:-1]}, init=({extra}))" if update.endswith(")") else f"{update}, init=({extra})"


def plain_json(config):
    """A record as plain JSON values (a dict of str keys, lists, finite floats, ints, strings, bools, None), so that
    it equals itself after a round trip through a JSON file (``Result.save`` / ``load``, checkpoints)."""
    return jsonable(config)
