"""Sweeps: a grid of traced hyperparameters x seeds as one vmapped, compiled program; results in one DataFrame.

Every grid point changes only traced values (learning rates, consensus steps, compressor levels, deadlines, mixing
matrices of the same n), so the configurations are a stacked pytree of :class:`Algorithm` records, keys and mixings, and
one ``jax.vmap`` of the simulator's compiled chunk runs them all. Static choices (the algorithm, the topology's shape,
n) loop in Python outside. The grid is cut into batches that fit the memory (an estimate from the state's size);
finished configurations are appended to ``resume`` (a CSV, written atomically) and skipped when the sweep runs again.
"""

from __future__ import annotations

import functools
import itertools
import json
import os

import jax
import jax.numpy as jnp
import numpy as np

from jaxgossip import gossip
from jaxgossip._host import to_device
from jaxgossip._threefry_cpu import run_jit
from jaxgossip.algorithms._base import Algorithm
from jaxgossip.result import atomic_write
from jaxgossip.simulate import (_chunk_impl, _evals_per_chunk, _init_state, assemble_metrics, fresh_carry,
                                initial_models, prepare, split_entry0, state_shapes, step_unroll)

__all__ = ["sweep", "estimate_memory", "expand_grid"]

_STATE_FACTOR = 8  # live copies of the state in one step (state, new state, gradients, messages, temporaries)


def expand_grid(grid: dict) -> list[dict]:
    """The Cartesian product of ``{name: values}`` as a list of ``{name: value}`` (in the order given)."""
    if not isinstance(grid, dict):
        raise ValueError(f"sweep: grid must be a dict of name -> list of values, got {type(grid).__name__}.")
    names = list(grid)
    values = []
    for k in names:
        v = grid[k]
        v = list(v) if isinstance(v, (list, tuple, np.ndarray)) else [v]
        if not v:
            raise ValueError(f"sweep: grid[{k!r}] is empty.")
        values.append(v)
    return [dict(zip(names, combo)) for combo in itertools.product(*values)]


def _apply(algorithm: Algorithm, point: dict) -> Algorithm:
    """The algorithm with the grid point's hyperparameters (``"lr"``, ``"compressor.bits"``, ...)."""
    hyper = {}
    for name, value in point.items():
        if name == "topology":
            continue
        if "." in name:
            outer, inner = name.split(".", 1)
            comp = hyper.get(outer, algorithm.hyper.get(outer))
            if comp is None or not hasattr(comp, "params") or inner not in comp.params:
                raise ValueError(f"sweep: {name!r} is not a parameter of {algorithm.name}; it has "
                                 f"{sorted(algorithm.hyper)} (compressor parameters as 'compressor.<param>').")
            hyper[outer] = comp.replace(params={**comp.params, inner: np.asarray(value, np.float32)})
        else:
            if name not in algorithm.hyper:
                raise ValueError(f"sweep: {name!r} is not a hyperparameter of {algorithm.name}; it has "
                                 f"{sorted(algorithm.hyper)}, plus 'topology' and 'compressor.<param>'.")
            hyper[name] = np.asarray(value, np.float32)  # host values: the batch is stacked, then moved once
    return algorithm.replace(hyper={**algorithm.hyper, **hyper})


def _stack(trees):
    """Stack pytrees leaf by leaf on the host (in jax's canonical dtypes, so the device copy compiles nothing)."""
    return jax.tree.map(lambda *a: to_device(np.stack([np.asarray(x) for x in a])), *trees)


def _state_bytes(prep) -> int:
    shapes = state_shapes(prep)
    return int(sum(np.prod(s.shape) * s.dtype.itemsize for s in jax.tree.leaves(shapes)))


def _device_bytes_limit() -> int | None:
    """The first device's own memory in bytes, or None where devices do not report one (CPU: they share the RAM)."""
    try:
        stats = jax.devices()[0].memory_stats() or {}
    except Exception:  # noqa: BLE001 (CPU backends may not report)
        stats = {}
    return int(stats["bytes_limit"]) if "bytes_limit" in stats else None


def _memory_limit() -> int:
    own = _device_bytes_limit()
    if own is not None:
        return int(0.7 * own)
    try:
        return int(0.5 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError):
        return 8 << 30


def estimate_memory(problem, algorithm, topology=None, *, configs: int = 1, **kwargs) -> int:
    """Bytes a sweep of ``configs`` configurations needs (about ``8 x`` the state per configuration, plus the data).

    Keyword arguments are those of :func:`jaxgossip.simulate` (steps defaults to 1).
    """
    kwargs.setdefault("steps", 1)
    data, per = _memory_parts(prepare(problem, algorithm, topology, shard=False, **kwargs))
    return data + configs * per


def _memory_parts(prep) -> tuple[int, int]:
    """(bytes of the problem's data, bytes per configuration)."""
    data = sum(np.prod(a.shape) * a.dtype.itemsize for a in jax.tree.leaves(prep.problem) if hasattr(a, "shape"))
    return int(data), _STATE_FACTOR * _state_bytes(prep)


def _fitting(limit, prep) -> int:
    """How many configurations fit in ``limit`` bytes (at least 1)."""
    data, per = _memory_parts(prep)
    return max(1, int((limit - data) // max(per, 1)))


def _sharing(shard_sweep: bool) -> int:
    """How many devices' memories a sharded batch spreads over: all of them where each has its own (accelerators),
    1 where they share the host's RAM (CPU devices)."""
    if not shard_sweep or _device_bytes_limit() is None:
        return 1
    return len(jax.devices())


def _batched_chunk(carry, algo, problem, mixing, pricing, key, threshold, *, evals, eval_every, period, mix_axis,
                   unroll):
    fn = lambda c, a, m, k: _chunk_impl(c, a, problem, m, pricing, k, threshold, evals=evals, eval_every=eval_every,
                                        period=period, unroll=unroll)
    return jax.vmap(fn, in_axes=(0, 0, mix_axis, 0))(carry, algo, mixing, key)


_run_batch = run_jit(_batched_chunk, static_argnames=("evals", "eval_every", "period", "mix_axis", "unroll"))


_seed_keys = jax.jit(jax.vmap(jax.random.key))  # the keys jax.random.key(s) gives, for all seeds in one call


@functools.partial(jax.jit, static_argnames=("mix_axis",))
def _init_batch(algos, problem, mixing, pricing, X0, *, mix_axis):
    return jax.vmap(lambda a, m: _init_state(a, problem, m, pricing, X0), in_axes=(0, mix_axis))(algos, mixing)


def _config_key(label, point, seed) -> str:
    parts = {k: (f"{v.name}|rho={v.rho:.12g}" if hasattr(v, "W") else v) for k, v in point.items()}
    return json.dumps({"label": label, **{k: _plain(v) for k, v in parts.items()}, "seed": int(seed)}, sort_keys=True)


def _plain(v):
    if isinstance(v, (np.generic,)):
        return v.item()
    return v if isinstance(v, (int, float, str, bool)) else str(v)


def _run_batch_of(prep, points, seeds, divergence_threshold, mix_stack, shard_sweep):
    """Run one batch of (point, seed) pairs as one vmapped program: ``(metrics, diverged, diverged_step)``, each with
    a leading axis over the pairs.

    With ``shard_sweep`` on several devices, a batch that does not divide over them is padded with copies of its last
    pair (the same numbers again), whose results are dropped."""
    B, devices = len(points), (len(jax.devices()) if shard_sweep else 1)
    pad = (-B) % devices
    if pad:
        points, seeds = list(points) + [points[-1]] * pad, list(seeds) + [seeds[-1]] * pad
        if mix_stack is not None:
            mix_stack = jax.tree.map(lambda a: np.concatenate([a, np.repeat(np.asarray(a)[-1:], pad, 0)]), mix_stack)
    algos = _stack([_apply(prep.algorithm, p) for p in points])
    X0 = initial_models(prep.problem)
    mixing = mix_stack if mix_stack is not None else prep.mixing
    states = _init_batch(algos, prep.problem, mixing, prep.pricing, X0, mix_axis=0 if mix_stack is not None else None)
    carry = fresh_carry(states, prep.problem.x0.dtype, (B + pad,))
    if max(seeds) < 2**32:
        keys = _seed_keys(np.asarray(seeds, np.uint32))
    else:  # jax.random.key's own handling of wide seeds, one call each
        keys = jax.random.wrap_key_data(np.stack([np.asarray(jax.random.key_data(jax.random.key(s))) for s in seeds]))
    if devices > 1:
        mesh = jax.sharding.Mesh(np.array(jax.devices()), ("sweep",))
        sh = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("sweep"))
        carry, algos, keys = jax.device_put((carry, algos, keys), sh)
        if mix_stack is not None:
            mixing = jax.device_put(mixing, sh)
    num_evals = prep.steps // prep.eval_every
    per_chunk = _evals_per_chunk(num_evals, prep.eval_every)
    threshold = np.float32(divergence_threshold)
    chunks, m0 = [], None
    for _ in range(num_evals // per_chunk):
        carry, m = _run_batch(carry, algos, prep.problem, mixing, prep.pricing, keys, threshold, evals=per_chunk,
                              eval_every=prep.eval_every, period=prep.period, mix_axis=0 if mix_stack is not None else None,
                              unroll=step_unroll(prep.steps))
        first, rest = split_entry0(jax.device_get(m))
        m0 = first if m0 is None else m0
        chunks.append(rest)
        if bool(np.all(chunks[-1]["stopped"][:, -1])):
            break
    metrics, diverged, step = assemble_metrics(m0, chunks, num_evals, prep.eval_every)
    return {k: v[:B] for k, v in metrics.items()}, diverged[:B], step[:B]


def sweep(problem, algorithm, topology=None, *, steps: int, grid: dict | None = None, seeds=(0,), eval_every=None,
          network=None, compute=None, backend: str = "auto", batch_size: int | None = None,
          memory_limit: int | None = None, resume: str | None = None, shard_sweep: bool = False,
          divergence_threshold: float = 1e6, progress: bool = False):
    """Run every grid point x seed as one vmapped, compiled program; return one tidy DataFrame.

    Args:
      problem: a :class:`jaxgossip.problems.Problem`.
      algorithm: an :class:`Algorithm`, or a dict ``{label: Algorithm}`` / list of them (static choices: one program
        each, looped in Python).
      topology: the graph; a list of topologies of the same n may instead be swept as ``grid["topology"]``.
      steps, eval_every, network, compute, backend, divergence_threshold: as in :func:`jaxgossip.simulate`.
      grid: ``{name: values}`` over traced hyperparameters: the algorithm's (``"lr"``, ``"gamma"``, ...), a compressor
        parameter as ``"compressor.bits"``, and ``"topology"`` (mixing matrices with the same n and structure).
      seeds: run seeds; seed s of a configuration gives the numbers ``simulate(..., seed=s)`` gives.
      batch_size: configurations per compiled batch (default: as many as fit in ``memory_limit``).
      memory_limit: bytes a batch may use on one device (default: 70% of the accelerator's memory, or half the RAM on
        CPU); with ``shard_sweep`` on accelerators, a batch holds what fits in this on every device.
      resume: a CSV path; finished configurations are appended after each batch (atomically) and skipped on rerun.
      shard_sweep: spread each batch over all devices along the sweep axis (a batch that does not divide evenly is
        padded with copies of its last configuration, whose results are dropped).
      progress: print one line per batch.

    Returns:
      A pandas DataFrame, one row per configuration x seed x evaluation, with columns ``label``, the grid names,
      ``seed``, ``diverged``, and the metrics (``step``, ``loss``, ...).
    """
    import pandas as pd

    algos = _as_algorithms(algorithm)
    grid = dict(grid or {})
    seeds = [int(s) for s in np.atleast_1d(seeds)]
    if not seeds or min(seeds) < 0:
        raise ValueError(f"sweep: seeds must be non-negative integers, got {seeds!r}.")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"sweep: batch_size must be a positive integer or None, got {batch_size!r}.")
    points = expand_grid(grid) if grid else [{}]
    topologies = grid.get("topology")
    done = pd.read_csv(resume) if resume and os.path.exists(resume) else None
    finished = set(done["config_key"]) if done is not None else set()
    frames = [done] if done is not None else []
    for label, algo in algos.items():
        topo0 = topologies[0] if topologies else topology
        prep = prepare(problem, algo, topo0, steps=steps, seed=0, eval_every=eval_every, network=network,
                       compute=compute, backend=backend, shard=False)
        for p in points:
            _apply(algo, p)  # validate names before compiling
        todo = [(p, s) for p in points for s in seeds if not finished or _config_key(label, p, s) not in finished]
        if not todo:
            continue
        B = batch_size or min(len(todo), _fitting(memory_limit or _memory_limit(), prep) * _sharing(shard_sweep))
        for start in range(0, len(todo), B):
            part = todo[start : start + B]
            mix = None
            if topologies:
                mix = _stack_mixings([p["topology"] for p, _ in part], prep.mixing.backend)
            results = _run_batch_of(prep, [p for p, _ in part], [s for _, s in part], divergence_threshold, mix,
                                    shard_sweep)
            frames.append(_frame(label, part, results))
            if resume:
                atomic_write(resume, pd.concat(frames, ignore_index=True).to_csv(index=False))
            if progress:
                print(f"sweep {label}: {min(start + B, len(todo))}/{len(todo)} configurations")
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True)


def _stack_mixings(topologies, backend):
    mixes = [gossip.make_mixing(t, backend) for t in topologies]
    shapes = {tuple(a.shape for a in jax.tree.leaves(m)) for m in mixes}
    if len(shapes) > 1 or any(t.n != topologies[0].n for t in topologies):
        raise ValueError("sweep: grid['topology'] must hold graphs with the same n and the same structure for the "
                         f"{backend!r} backend (use backend='dense' to sweep any graphs of the same n).")
    return _stack(mixes)


def _as_algorithms(algorithm) -> dict:
    if isinstance(algorithm, Algorithm):
        return {algorithm.name: algorithm}
    if isinstance(algorithm, dict):
        items = algorithm
    elif isinstance(algorithm, (list, tuple)):
        items = {}
        for a in algorithm:
            items[a.name if a.name not in items else f"{a.name}-{len(items)}"] = a
    else:
        raise ValueError(f"sweep: algorithm must be an Algorithm, a dict {{label: Algorithm}} or a list, got "
                         f"{type(algorithm).__name__}.")
    for k, a in items.items():
        if not isinstance(a, Algorithm):
            raise ValueError(f"sweep: algorithm {k!r} must be a jg.algorithms.Algorithm, got {type(a).__name__}.")
    return dict(items)


def _frame(label, part, results):
    """One tidy DataFrame for a batch: a row per (configuration, evaluation), built column by column (one pandas
    call per batch: a frame per configuration and a concat took longer than the 500-step sweep they described)."""
    import pandas as pd

    metrics, diverged, _ = results
    evals = metrics["step"].shape[-1]

    def per_config(values):
        return np.repeat(np.asarray(values), evals)

    cols = {"label": per_config([label] * len(part))}
    for k in part[0][0]:
        cols[k] = per_config([p[k].name if hasattr(p[k], "W") else _plain(p[k]) for p, _ in part])
    cols["seed"] = per_config([s for _, s in part])
    for k, v in metrics.items():
        cols[k] = v.reshape(-1)  # configuration-major, as the columns above
    cols["diverged"] = per_config(diverged)
    cols["config_key"] = per_config([_config_key(label, p, s) for p, s in part])
    return pd.DataFrame(cols)
