"""Sweeps: a grid of traced hyperparameters x seeds as one vmapped, compiled program; results in one DataFrame.

Every grid point changes only traced values (learning rates, consensus steps, compressor levels, deadlines, mixing
matrices of the same n), so the configurations are a stacked pytree of :class:`Algorithm` records, keys and mixings, and
one ``jax.vmap`` of the simulator's compiled chunk runs them all. Static choices (the algorithm, the topology's shape,
n) loop in Python outside. The grid is cut into batches that fit the memory (an estimate from the state's size);
finished configurations are appended to ``resume`` (a CSV, written atomically) and skipped when the sweep runs again.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import json
import os
import tempfile

import jax
import jax.numpy as jnp
import numpy as np

from jaxgossip import faults as fault_lib
from jaxgossip import gossip
from jaxgossip._host import to_device
from jaxgossip._threefry_cpu import run_jit
from jaxgossip.algorithms._base import Algorithm
from jaxgossip.result import atomic_write
from jaxgossip.simulate import (CONSENSUS_THRESHOLD, DIVERGENCE_THRESHOLD, _chunk_impl, _evals_per_chunk, _init_state,
                                assemble_metrics, divergence_limits, fresh_carry, initial_model_state, initial_models,
                                prepare, split_entry0, state_shapes, step_unroll)
from jaxgossip.simulate import _with_metrics, call_callbacks, check_callbacks

__all__ = ["sweep", "estimate_memory", "expand_grid", "validate_grid", "hp_column", "grid_name", "HP_PREFIX"]

_STATE_FACTOR = 8  # live copies of the state in one step (state, new state, gradients, messages, temporaries)


def grid_values(key, values) -> list:
    """One grid key's values as a list: a list, tuple, range or 1-D array of them. A single value (``{"lr": 0.1}``)
    is refused: it is not a sweep, and a string would otherwise be swept letter by letter; write ``{"lr": [0.1]}`` or
    set the value on the algorithm.

    Raises:
      ValueError: naming the grid key.
    """
    if isinstance(values, np.ndarray) and values.ndim == 1:
        values = values.tolist()
    if not isinstance(values, (list, tuple, range)):
        raise ValueError(f"sweep: grid[{key!r}] must be a list of values, got {values!r} ({type(values).__name__}); "
                         f"write grid={{{key!r}: [{values!r}]}} for one value, or set it on the algorithm.")
    values = list(values)
    if not values:
        raise ValueError(f"sweep: grid[{key!r}] is empty.")
    return values


def expand_grid(grid: dict) -> list[dict]:
    """The Cartesian product of ``{name: values}`` as a list of ``{name: value}`` (in the order given); every value
    list checked by :func:`grid_values` (a single value that is not in a list is refused)."""
    if not isinstance(grid, dict):
        raise ValueError(f"sweep: grid must be a dict of name -> list of values, got {type(grid).__name__}.")
    names = list(grid)
    values = [grid_values(k, grid[k]) for k in names]
    return [dict(zip(names, combo)) for combo in itertools.product(*values)]


#: Prefix of the hyperparameter columns of a sweep's DataFrame: ``hp.lr``, ``hp.compressor.bits``, ``hp.topology``.
#: Metrics never start with it, so a swept value and a metric can never share a column.
HP_PREFIX = "hp."


def hp_column(name: str) -> str:
    """The DataFrame column of grid key ``name`` (``"lr"`` or ``"hp.lr"`` -> ``"hp.lr"``)."""
    return HP_PREFIX + grid_name(name)


def grid_name(key: str) -> str:
    """A grid key without the column prefix (``"hp.compressor.bits"`` -> ``"compressor.bits"``)."""
    key = str(key)
    return key[len(HP_PREFIX):] if key.startswith(HP_PREFIX) else key


def _apply(algorithm: Algorithm, point: dict) -> Algorithm:
    """The algorithm with the grid point's hyperparameters (``"lr"``, ``"compressor.bits"``, ...)."""
    hyper = {}
    for key, value in point.items():
        name = grid_name(key)
        if name == "topology" or name.startswith("faults."):  # the graph and the faults are not the algorithm's
            continue
        if "." in name:
            outer, inner = name.split(".", 1)
            comp = hyper.get(outer, algorithm.hyper.get(outer))
            if comp is None or not hasattr(comp, "params") or inner not in comp.params:
                raise ValueError(f"sweep: {key!r} is not a parameter of {algorithm.name}; it has "
                                 f"{sorted(algorithm.hyper)} (compressor parameters as 'compressor.<param>').")
            hyper[outer] = comp.replace(params={**comp.params, inner: np.asarray(value, np.float32)})
        else:
            if name not in algorithm.hyper:
                raise ValueError(f"sweep: {key!r} is not a hyperparameter of {algorithm.name}; it has "
                                 f"{sorted(algorithm.hyper)}, plus 'topology' and 'compressor.<param>'.")
            current = algorithm.hyper[name]
            if hasattr(current, "with_value"):  # a schedule: "lr" sweeps its peak value, the shape stays
                hyper[name] = current.with_value(np.asarray(value, np.float32))
            else:
                hyper[name] = np.asarray(value, np.float32)  # host values: the batch is stacked, then moved once
    return algorithm.replace(hyper={**algorithm.hyper, **hyper})


def validate_grid(algorithm: Algorithm, grid: dict, d: int, n: int | None = None) -> None:
    """Check every value of every grid key as the factory checks its argument, before anything compiles.

    A hyperparameter goes through :meth:`Algorithm.replace_hyper` (which calls the algorithm's factory again with
    the value); a compressor parameter ``compressor.<p>`` through the compressor's factory
    (``jaxgossip.compressors.REGISTRY[name]``, with ``d=`` where it takes one, so top-k's ``k <= d`` is checked) and
    the compressor's ``check(d)`` where it has one; ``topology`` values must be topologies of n workers. Raises a
    ValueError naming the grid key and the value (a single value not in a list included: :func:`grid_values`). A key
    that cannot change the run is refused too (:func:`_check_effect`): no grid key is accepted and then ignored.
    """
    if not isinstance(grid, dict):
        raise ValueError(f"sweep: grid must be a dict of name -> list of values, got {type(grid).__name__}.")
    for key, values in grid.items():
        name = grid_name(key)
        if name in ("seed", "data_seed"):
            raise ValueError(f"sweep: {key!r} cannot be a grid key; pass seeds=[...] (and data_seeds=) instead.")
        values = grid_values(key, values)
        if name.startswith("faults."):  # checked against the run's faults (jg.faults.validate_grid)
            continue
        _apply(algorithm, {key: 0.0 if name != "topology" else None})  # the name exists (clear error otherwise)
        for value in values:
            try:
                _check_value(algorithm, name, value, d, n)
            except ValueError as e:
                raise ValueError(f"sweep: grid[{key!r}] value {value!r} is not allowed: {e}") from None
    _check_effect(algorithm, grid)


def _check_effect(algorithm: Algorithm, grid: dict) -> None:
    """Refuse a grid key that cannot change the run (every row would be the same run under another label): a
    ``topology`` for an algorithm that never gossips, and the hyperparameters the algorithm, with the grid's keys set,
    only range-checks (:func:`jaxgossip.algorithms._base.inert_hyperparameters`)."""
    from jaxgossip.algorithms._base import inert_hyperparameters

    names = {grid_name(k): k for k in grid}
    if "topology" in names and algorithm.kind != "decentralized":
        raise ValueError(f"sweep: grid[{names['topology']!r}] would not change the run: {algorithm.name} is "
                         f"{algorithm.kind} (it averages exactly and never mixes over a graph); remove it from the "
                         f"grid.")
    first = {k: np.atleast_1d(v)[0] for k, v in grid.items() if grid_name(k) != "topology" and "." not in grid_name(k)}
    inert = inert_hyperparameters(_apply(algorithm, first) if first else algorithm)
    for name, key in names.items():
        if name in inert:
            raise ValueError(f"sweep: grid[{key!r}] would not change the run of {algorithm.name}: {inert[name]}.")


def _check_value(algorithm, name, value, d, n):
    from jaxgossip.topology import TimeVarying, Topology

    if name == "topology":
        if not isinstance(value, (Topology, TimeVarying)):
            raise ValueError(f"a topology value must be a jg.topology.Topology, got {type(value).__name__}.")
        if n is not None and value.n != n:
            raise ValueError(f"the graph has n={value.n} workers but the problem has n={n}.")
        return
    if isinstance(value, (str, bytes, bool)) or not np.isscalar(value) and np.ndim(value) != 0:
        raise ValueError(f"values must be numbers, got {type(value).__name__}.")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"values must be numbers, got {type(value).__name__}.") from None
    if "." not in name:
        algorithm.replace_hyper(**{name: number})
        return
    outer, inner = name.split(".", 1)
    comp = algorithm.hyper[outer]
    from jaxgossip.compressors import REGISTRY

    factory = REGISTRY.get(comp.name)
    if factory is not None:
        accepted = inspect.signature(factory).parameters
        kwargs = {k: float(v) for k, v in comp.params.items() if k in accepted}
        kwargs[inner] = number
        if "d" in accepted:
            kwargs["d"] = d
        factory(**kwargs)
    elif not np.isfinite(number):
        raise ValueError(f"{comp.name}: {inner} must be a finite number, got {value!r}.")
    check = getattr(comp.replace(params={**comp.params, inner: np.float32(number)}), "check", None)
    if callable(check):
        check(d)


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


def _fitting(limit, prep, stacked: bool = False) -> int:
    """How many configurations fit in ``limit`` bytes (at least 1); with ``stacked`` problems each configuration
    holds its own copy of the data."""
    data, per = _memory_parts(prep)
    if stacked:
        return max(1, int(limit // max(per + data, 1)))
    return max(1, int((limit - data) // max(per, 1)))


def _sharing(shard_sweep: bool) -> int:
    """How many devices' memories a sharded batch spreads over: all of them where each has its own (accelerators),
    1 where they share the host's RAM (CPU devices)."""
    if not shard_sweep or _device_bytes_limit() is None:
        return 1
    return len(jax.devices())


def _batched_chunk(carry, algo, problem, mixing, pricing, key, threshold, *, evals, eval_every, period, mix_axis,
                   unroll, prob_axis=None, faults=None, fault_params=None):
    fn = lambda c, a, p, m, k, fp: _chunk_impl(c, a, p, m, pricing, k, threshold, evals=evals, eval_every=eval_every,
                                               period=period, unroll=unroll, faults=faults, fault_params=fp)
    return jax.vmap(fn, in_axes=(0, 0, prob_axis, mix_axis, 0, 0))(carry, algo, problem, mixing, key, fault_params)


_run_batch = run_jit(_batched_chunk, static_argnames=("evals", "eval_every", "period", "mix_axis", "unroll",
                                                      "prob_axis"))


_seed_keys = jax.jit(jax.vmap(jax.random.key))  # the keys jax.random.key(s) gives, for all seeds in one call


@functools.partial(jax.jit, static_argnames=("mix_axis", "prob_axis"))
def _init_batch(algos, problem, mixing, pricing, X0, *, mix_axis, prob_axis=None):
    return jax.vmap(lambda a, p, m, x: _init_state(a, p, m, pricing, x),
                    in_axes=(0, prob_axis, mix_axis, prob_axis))(algos, problem, mixing, X0)


def _config_key(label, point, seed, data_seed=None) -> str:
    parts = {grid_name(k): (f"{v.name}|rho={v.rho:.12g}" if hasattr(v, "W") else v) for k, v in point.items()}
    extra = {} if data_seed is None else {"data_seed": int(data_seed)}
    return json.dumps({"label": label, **{k: _plain(v) for k, v in parts.items()}, "seed": int(seed), **extra},
                      sort_keys=True)


def _plain(v):
    if isinstance(v, (np.generic,)):
        return v.item()
    return v if isinstance(v, (int, float, str, bool)) else str(v)


def run_name(label, point, seed, data_seed=None) -> str:
    """A sweep configuration's name for the callbacks: ``label/<grid key>=<value>/.../seed=<s>`` (and
    ``/data_seed=<s>`` with a problem factory whose data seed differs)."""
    parts = [str(label)] + [f"{grid_name(k)}={v.name if hasattr(v, 'W') else _plain(v)}" for k, v in point.items()]
    parts.append(f"seed={int(seed)}")
    if data_seed is not None and int(data_seed) != int(seed):
        parts.append(f"data_seed={int(data_seed)}")
    return "/".join(parts)


def _batch_rows(so_far, names, start):
    """``(step, {f"{name}/{metric}": value})`` for every evaluation from ``start`` of a batch's metrics so far."""
    for j in range(start, so_far["step"].shape[-1]):
        row = {}
        for b, name in enumerate(names):
            for k, v in so_far.items():
                if k != "step":
                    row[f"{name}/{k}"] = float(v[b, j]) if v.ndim == 2 else np.array(v[b, j])
        yield int(so_far["step"][0, j]), row


def _run_batch_of(prep, points, seeds, divergence_threshold, mix_stack, shard_sweep, problems=None, callbacks=(),
                  names=None):
    """Run one batch of (point, seed) pairs as one vmapped program: ``(metrics, diverged, diverged_step)``, each with
    a leading axis over the pairs.

    ``problems``: None (every pair runs ``prep.problem``) or one problem per pair (same leaf shapes, see
    :func:`_signature`), stacked along the batch axis. ``divergence_threshold``: a number (the loss multiple) or the
    ``(loss multiple, consensus multiple)`` pair :func:`jaxgossip.simulate.divergence_limits` gives.

    With ``shard_sweep`` on several devices, a batch that does not divide over them is padded with copies of its last
    pair (the same numbers again), whose results are dropped. ``callbacks`` (with ``names``, one per pair) are called
    at every evaluation of the batch with every pair's metrics (see :func:`sweep`)."""
    B, devices = len(points), (len(jax.devices()) if shard_sweep else 1)
    pad = (-B) % devices
    if pad:
        points, seeds = list(points) + [points[-1]] * pad, list(seeds) + [seeds[-1]] * pad
        problems = None if problems is None else list(problems) + [problems[-1]] * pad
        if mix_stack is not None:
            mix_stack = jax.tree.map(lambda a: np.concatenate([a, np.repeat(np.asarray(a)[-1:], pad, 0)]), mix_stack)
    algos = _stack([_apply(prep.algorithm, p) for p in points])
    prob_axis = None if problems is None else 0
    problem = prep.problem if problems is None else _stack_problems(problems)
    X0 = initial_models(prep.problem) if problems is None else np.stack([initial_models(p) for p in problems])
    mixing = mix_stack if mix_stack is not None else prep.mixing
    states = _init_batch(algos, problem, mixing, prep.pricing, X0, mix_axis=0 if mix_stack is not None else None,
                         prob_axis=prob_axis)
    carry = fresh_carry(states, prep.problem.x0.dtype, (B + pad,), model=initial_model_state(prep.problem),
                        faults=fault_lib.init_state(prep.faults))
    fault_params = None  # each configuration's fault parameters (a swept "faults.p"), stacked along the batch
    if prep.faults is not None:
        fault_params = _stack([fault_lib.params_at(prep.fault_params, p, grid_name) for p in points])
    if max(seeds) < 2**32:
        keys = _seed_keys(np.asarray(seeds, np.uint32))
    else:  # jax.random.key's own handling of wide seeds, one call each
        keys = jax.random.wrap_key_data(np.stack([np.asarray(jax.random.key_data(jax.random.key(s))) for s in seeds]))
    if devices > 1:
        mesh = jax.sharding.Mesh(np.array(jax.devices()), ("sweep",))
        sh = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("sweep"))
        carry, algos, keys, fault_params = jax.device_put((carry, algos, keys, fault_params), sh)
        if mix_stack is not None:
            mixing = jax.device_put(mixing, sh)
        if problems is not None:
            problem = jax.device_put(problem, sh)
    num_evals = prep.steps // prep.eval_every
    per_chunk = _evals_per_chunk(num_evals, prep.eval_every)
    threshold = divergence_limits(*np.atleast_1d(divergence_threshold)[:2])
    chunks, m0, emitted = [], None, 0
    for _ in range(num_evals // per_chunk):
        carry, m = _run_batch(carry, algos, problem, mixing, prep.pricing, keys, threshold, evals=per_chunk,
                              eval_every=prep.eval_every, period=prep.period, mix_axis=0 if mix_stack is not None else None,
                              unroll=step_unroll(prep.steps), prob_axis=prob_axis, faults=prep.faults,
                              fault_params=fault_params)
        first, rest = split_entry0(jax.device_get(m))
        m0 = first if m0 is None else m0
        chunks.append(rest)
        if callbacks:  # the evaluations so far, as the frame will hold them (same float64 values)
            so_far = {k: v[:B] for k, v in assemble_metrics(m0, chunks, len(chunks) * per_chunk,
                                                             prep.eval_every)[0].items()}
            for step, row in _batch_rows(so_far, names, emitted):
                call_callbacks(callbacks, step, row, "sweep")
            emitted = so_far["step"].shape[-1]
        if bool(np.all(chunks[-1]["stopped"][:, -1])):
            break
    metrics, diverged, step = assemble_metrics(m0, chunks, num_evals, prep.eval_every)
    return {k: v[:B] for k, v in metrics.items()}, diverged[:B], step[:B]


def sweep(problem, algorithm, topology=None, *, steps: int, grid: dict | None = None, seeds=(0,), eval_every=None,
          network=None, compute=None, backend: str = "auto", batch_size: int | None = None,
          memory_limit: int | None = None, resume: str | None = None, shard_sweep: bool = False,
          divergence_threshold: float = DIVERGENCE_THRESHOLD, consensus_threshold: float = CONSENSUS_THRESHOLD,
          progress: bool = False, data_seeds=None, metrics=None, callbacks=None, faults=None):
    """Run every grid point x seed as one vmapped, compiled program; return one tidy DataFrame.

    Args:
      problem: a :class:`jaxgossip.problems.Problem`, or a problem factory ``seed -> Problem`` (e.g.
        ``lambda s: jg.problems.logistic_regression("digits", n_workers=16, seed=s)``): each run then gets the problem
        of its data seed, so the seeds redraw the data split, the partition over workers and (for problems that draw
        one) the initial model. Problems with the same leaf shapes run stacked in one vmapped program; others loop.
      algorithm: an :class:`Algorithm`, or a dict ``{label: Algorithm}`` / list of them (static choices: one program
        each, looped in Python).
      topology: the graph; a list of topologies of the same n may instead be swept as ``grid["topology"]``.
      steps, eval_every, network, compute, backend, divergence_threshold, consensus_threshold: as in
        :func:`jaxgossip.simulate`.
      grid: ``{name: values}`` over traced hyperparameters: the algorithm's (``"lr"``, ``"consensus"``, ...), a
        compressor parameter as ``"compressor.bits"``, and ``"topology"`` (mixing matrices with the same n and
        structure). Every value is checked as the factory checks its argument, before anything compiles (see
        :func:`validate_grid`); a key may also be written with its column prefix (``"hp.lr"``). A key that would not
        change the run is refused (``topology`` for a centralized or star algorithm; IADE's ``L`` once ``eta`` is
        given). With an optax optimizer that holds its own learning rate, ``"lr"`` multiplies its update, so
        sweeping it sweeps the effective step.
      seeds: run seeds: the keys of every random draw inside a run (minibatches, stochastic compressors, gradient
        noise, compute times).
      data_seeds: with a problem factory: the seed the factory is called with for each run seed (a list as long as
        ``seeds``; default: the run seed itself). Not allowed with a plain Problem.
      batch_size: configurations per compiled batch (default: as many as fit in ``memory_limit``).
      memory_limit: bytes a batch may use on one device (default: 70% of the accelerator's memory, or half the RAM on
        CPU); with ``shard_sweep`` on accelerators, a batch holds what fits in this on every device.
      resume: a CSV path; finished configurations are appended after each batch (atomically) and skipped on rerun.
      shard_sweep: spread each batch over all devices along the sweep axis (a batch that does not divide evenly is
        padded with copies of its last configuration, whose results are dropped).
      progress: print one line per batch.
      metrics: the metrics to evaluate, as in :func:`jaxgossip.simulate` (default: the problem's). A per-worker
        metric (``worker_loss``, ``worker_accuracy``) gives one column per worker, ``worker_loss[0]``, ...,
        ``worker_loss[n-1]``.
      callbacks: callables ``callback(step, metrics)`` called at every evaluation of every compiled batch (as each
        chunk returns to the host, see :func:`jaxgossip.simulate`), with one dict for all the batch's configurations:
        ``{"<run name>/<metric>": value}``, the run name being ``label/<grid key>=<value>/.../seed=<s>`` (e.g.
        ``"choco/lr=0.1/seed=0/loss"``; TensorBoard groups the runs by label). Batches run one after another, so
        ``step`` starts again at 0 for each batch (other names). The values equal the returned frame's.
      faults: as in :func:`jaxgossip.simulate` (``jg.faults``); their parameters are grid keys ``"faults.p"``,
        ``"faults.burst"``, ``"faults.p_leave"``, ``"faults.p_return"`` (``"faults.<j>.<param>"`` for the j-th of a
        list, required where two faults share the name): one vmapped program over them.

    Returns:
      A pandas DataFrame, one row per configuration x seed x evaluation, with columns ``label``, one ``hp.<name>``
      column per grid key (``hp.lr``, ``hp.compressor.bits``, ``hp.topology``: the prefix keeps swept values apart from
      the metrics, so ``grid={"consensus": ...}`` and the ``consensus`` metric are two columns), ``seed``,
      ``data_seed`` (with a problem factory), the metrics (``step``, ``loss``, ``consensus``, ...), ``diverged``,
      ``diverged_step`` (-1 where the run did not diverge) and ``config_key``. A diverged configuration is frozen at
      the evaluation where it diverged and has NaN metrics after it.

    Sweep and simulate: the configuration with seed s runs the same algorithm, data and random draws as
    ``simulate(..., seed=s)``, but as a different compiled program (vmapped over the configurations, with its own
    fusion and reduction order), so the numbers agree to float32 rounding, not bitwise: the first evaluation (step 0,
    before any step) already differs by an ulp. Without stochastic rounding (D-PSGD, top-k) the metrics stay equal to a
    relative 2e-6 over short runs; a stochastic quantizer turns an ulp of difference into a different rounding
    decision of one coordinate, after which the two runs are two draws of the same random process: on the issue's 45
    CHOCO configurations (digits, ring(16), 1000 steps) the final f - f* differed by a median relative 1e-5, at most
    9e-5 with 8 bits, 2.4e-3 with 4 bits and 5e-2 with 2 bits, the spread of a change of seed
    (``tests/test_sweep.py`` checks these bounds).
    """
    import pandas as pd

    algos = _as_algorithms(algorithm)
    if grid is not None and not isinstance(grid, dict):
        raise ValueError(f"sweep: grid must be a dict of name -> list of values, got {type(grid).__name__}.")
    grid = dict(grid or {})
    seeds = check_seeds("seeds", seeds)
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"sweep: batch_size must be a positive integer or None, got {batch_size!r}.")
    if memory_limit is not None and (isinstance(memory_limit, bool) or not isinstance(memory_limit, (int, np.integer))
                                     or memory_limit < 1):
        raise ValueError(f"sweep: memory_limit must be a positive number of bytes or None, got {memory_limit!r}.")
    for name, flag in (("shard_sweep", shard_sweep), ("progress", progress)):
        if not isinstance(flag, (bool, np.bool_)):
            raise ValueError(f"sweep: {name} must be True or False, got {flag!r}.")
    limits = divergence_limits(divergence_threshold, consensus_threshold)
    resume = _check_resume(resume)
    callbacks = check_callbacks(callbacks, "sweep")
    data_of, problems = _problems_for(problem, seeds, data_seeds)
    if metrics is not None:
        try:
            if data_of:
                problems = {k: _with_metrics(p, metrics) for k, p in problems.items()}
            else:
                problem = _with_metrics(problem, metrics)
        except ValueError as e:
            raise ValueError(str(e).replace("simulate:", "sweep:", 1)) from None
    problem0 = problems[data_of[seeds[0]]] if data_of else problem
    names = [hp_column(k) for k in grid]
    if len(names) != len(set(names)):
        raise ValueError(f"sweep: grid keys name the same hyperparameter twice: {sorted(map(str, grid))}.")
    grid = {hp_column(k): grid_values(k, v) for k, v in grid.items()}
    points = expand_grid(grid) if grid else [{}]
    topologies = grid.get(hp_column("topology"))
    topo0 = topologies[0] if topologies else topology
    preps = {}
    for label, algo in algos.items():  # every algorithm's grid and inputs, before anything compiles
        validate_grid(algo, grid, problem0.d, problem0.n)
        preps[label] = prepare(problem0, algo, topo0, steps=steps, seed=0, eval_every=eval_every, network=network,
                               compute=compute, backend=backend, shard=False, faults=faults)
        fault_keys = [k for k in grid if grid_name(k).startswith("faults.")]
        if fault_keys:
            fault_lib.validate_grid(fault_lib.as_faults(faults), {grid_name(k): grid[k] for k in fault_keys},
                                    [grid_name(k) for k in fault_keys])
    done = pd.read_csv(resume) if resume and os.path.exists(resume) else None
    finished = set(done["config_key"]) if done is not None else set()
    frames = [done] if done is not None else []
    if resume:  # the inputs that make the rows, beside the CSV: a resume with other inputs is refused, naming them
        inputs = _resume_inputs(resume, preps, problems, limits, done)
        atomic_write(inputs_path(resume), json.dumps(inputs, indent=1))
    for label, algo in algos.items():
        prep = preps[label]
        todo = [(p, s) for p in points for s in seeds
                if not finished or _config_key(label, p, s, data_of.get(s)) not in finished]
        for group in _groups(todo, data_of, problems, algo):
            stacked = len({data_of.get(s) for _, s in group}) > 1
            B = batch_size or min(len(group), _fitting(memory_limit or _memory_limit(), prep, stacked)
                                  * _sharing(shard_sweep))
            for start in range(0, len(group), B):
                part = group[start : start + B]
                mix = None
                if topologies:
                    mix = _stack_mixings([p[hp_column("topology")] for p, _ in part], prep.mixing.backend)
                probs = [problems[data_of[s]] for _, s in part] if stacked else None
                if not stacked and data_of:
                    prep.problem = problems[data_of[part[0][1]]]
                live = dict(callbacks=callbacks, names=[run_name(label, p, s, data_of.get(s)) for p, s in part])
                results = _run_batch_of(prep, [p for p, _ in part], [s for _, s in part], limits, mix, shard_sweep,
                                        *([probs] if probs is not None else []), **(live if callbacks else {}))
                frames.append(_frame(label, part, results, data_of))
                if resume:
                    atomic_write(resume, pd.concat(frames, ignore_index=True).to_csv(index=False))
                if progress:
                    print(f"sweep {label}: {min(start + B, len(group))}/{len(group)} configurations")
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True)


def check_seeds(name: str, seeds) -> list[int]:
    """Seeds as a non-empty list of integers >= 0 (one integer is a list of one); floats, bools and strings are
    refused (``int(1.5)`` would silently run seed 1).

    Raises:
      ValueError: naming the argument.
    """
    values = np.atleast_1d(np.asarray(seeds, dtype=object)).reshape(-1).tolist() if not isinstance(seeds, str) \
        else [seeds]
    bad = [s for s in values if isinstance(s, (bool, np.bool_)) or not isinstance(s, (int, np.integer)) or s < 0]
    if not values or bad:
        raise ValueError(f"sweep: {name} must be non-negative integers, got {seeds!r}"
                         f"{f' ({bad[0]!r} is not one)' if bad else ''}.")
    return [int(s) for s in values]


def _check_resume(resume):
    """The resume CSV path, checked before any configuration runs: a file path (not a directory, not below a file)
    in a folder this process can write; an existing file must be a sweep's CSV (a ``config_key`` column)."""
    if resume is None:
        return None
    from jaxgossip.checkpoint import check_path

    if isinstance(resume, bool) or not isinstance(resume, (str, os.PathLike)) or not os.fspath(resume):
        raise ValueError(f"sweep: resume must be a CSV file path or None, got {resume!r}.")
    resume = os.fspath(resume)
    if os.path.isfile(resume):
        import pandas as pd

        try:
            columns = pd.read_csv(resume, nrows=1).columns
        except Exception as e:  # noqa: BLE001 (pandas parser errors: not a sweep's CSV)
            raise ValueError(f"sweep: resume {resume!r} exists but is not a sweep's CSV ({type(e).__name__}: {e}).") \
                from None
        if "config_key" not in columns:
            raise ValueError(f"sweep: resume {resume!r} exists but is not a sweep's CSV (no config_key column); delete "
                             "it or choose another path.")
        folder = os.path.dirname(os.path.abspath(resume))
        try:  # the CSV is replaced atomically: a temporary file in its folder, then a rename
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".csv")
            os.close(fd)
            os.unlink(tmp)
        except OSError as e:
            raise ValueError(f"sweep: resume {resume!r}: cannot write in {folder!r} ({e.strerror or e}).") from None
        return resume
    try:
        check_path(resume)
    except ValueError as e:
        raise ValueError(f"sweep: resume: {str(e).replace('checkpoint: ', '')}") from None
    return resume


def inputs_path(resume: str) -> str:
    """The file beside a sweep's resume CSV that records the inputs of its rows (``<resume>.inputs.json``)."""
    return f"{resume}.inputs.json"


def _resume_inputs(resume, preps, problems, limits, done) -> dict:
    """What made a sweep's rows: per label its run configuration (``Result.config`` without the seed), per data seed
    its problem's record (a factory's), the divergence limits; merged with the record of the rows already in
    ``resume``, which must agree where both say something.

    Raises:
      ValueError: naming ``resume`` and the keys that differ, or for rows that no record describes.
    """
    from jaxgossip._record import plain_json
    from jaxgossip.checkpoint import _difference
    from jaxgossip.simulate import problem_record

    drop = ("seed",) + (("problem_spec", "problem_data") if problems else ())
    now = {"labels": {label: {k: v for k, v in prep.config.items() if k not in drop} for label, prep in preps.items()},
           "problems": {str(ds): {"problem_spec": p.spec.record() if p.spec is not None else None,
                                  "problem_data": problem_record(p)} for ds, p in problems.items()},
           "divergence": [float(v) for v in np.atleast_1d(limits)]}
    now = json.loads(json.dumps(plain_json(now)))
    if done is None or not len(done):
        return now
    path = inputs_path(resume)
    if not os.path.isfile(path):
        raise ValueError(f"sweep: resume {resume!r} holds rows but no record of the inputs that made them ({path}); it "
                         "was written by hand or by an older jaxgossip: delete it or choose another path.")
    with open(path) as f:
        saved = json.load(f)
    diffs = []
    for label in sorted(set(map(str, done["label"].unique())) - set(saved.get("labels", {}))):
        diffs.append(f"label {label!r}: no record")
    for label, config in now["labels"].items():
        if label in saved.get("labels", {}) and saved["labels"][label] != config:
            diffs.append(f"{label}: {_difference(saved['labels'][label], config)}")
    for ds, record in now["problems"].items():
        if ds in saved.get("problems", {}) and saved["problems"][ds] != record:
            diffs.append(f"data seed {ds}: {_difference(saved['problems'][ds], record)}")
    if saved.get("divergence") != now["divergence"] and len(done):
        diffs.append(f"divergence limits: saved {saved.get('divergence')}, now {now['divergence']}")
    if diffs:
        raise ValueError(f"sweep: resume {resume!r} holds rows made with other inputs ({'; '.join(diffs[:4])}); delete "
                         "it or choose another path.")
    return {"labels": {**saved.get("labels", {}), **now["labels"]},
            "problems": {**saved.get("problems", {}), **now["problems"]}, "divergence": now["divergence"]}


def _problems_for(problem, seeds, data_seeds):
    """``(run seed -> data seed, data seed -> Problem)``; both empty for a plain Problem. A factory's problems must
    agree in n, d and the samples' shape (only the largest share may differ, e.g. Dirichlet partitions)."""
    from jaxgossip.problems._base import Problem

    if isinstance(problem, Problem):
        if data_seeds is not None:
            raise ValueError("sweep: data_seeds needs a problem factory (problem=lambda seed: jg.problems....(seed="
                             "seed)); a Problem's data are fixed.")
        return {}, {}
    if not callable(problem):
        raise ValueError(f"sweep: problem must be a jg.problems.Problem or a factory seed -> Problem, got "
                         f"{type(problem).__name__}.")
    given = data_seeds
    data_seeds = seeds if data_seeds is None else check_seeds("data_seeds", data_seeds)
    if len(data_seeds) != len(seeds):
        raise ValueError(f"sweep: data_seeds must be non-negative integers, one per run seed ({len(seeds)}), got "
                         f"{given!r}.")
    data_of = dict(zip(seeds, data_seeds))
    problems = {}
    for ds in dict.fromkeys(data_seeds):
        p = problem(ds)
        if not isinstance(p, Problem):
            raise ValueError(f"sweep: the problem factory must return a jg.problems.Problem, got {type(p).__name__} "
                             f"for seed {ds}.")
        problems[ds] = p
    _check_same_shapes(problems)
    return data_of, problems


def _check_same_shapes(problems: dict) -> None:
    """Refuse a factory whose problems differ in what the sweep builds once for all of them: the workers n (the
    topology, the pricing), the parameters d (the grid's checks, the compressors), the samples' and labels' shapes."""
    def shape(p):
        return {"n": p.n, "d": p.d, "sample shape": tuple(p.data_x.shape[2:]), "label shape": tuple(p.data_y.shape[2:]),
                "model state": jax.tree.structure(p.model_state) if p.has_model_state else None}

    items = list(problems.items())
    first_seed, first = items[0][0], shape(items[0][1])
    for seed, p in items[1:]:
        other = shape(p)
        diff = [k for k in first if first[k] != other[k]]
        if diff:
            what = "; ".join(f"{k}: {first[k]} for data seed {first_seed}, {other[k]} for data seed {seed}"
                             for k in diff)
            raise ValueError(f"sweep: problem: the factory's problems differ in shape ({what}); a sweep runs one "
                             "topology, grid and algorithm on them all, so n, d and the samples' shape must not depend "
                             "on the seed (only the shares' sizes may).")


#: Static fields of a Problem that may differ between the problems of one vmapped program: descriptions, and the
#: smoothness constants where the algorithm does not read them (then the stack keeps None).
_LOOSE_STATICS = ("name", "L", "mu", "slot")


def _signature(problem, algo):
    """What must agree for problems to run stacked: leaf shapes and dtypes, and every static field but the loose ones
    (``L`` and ``mu`` stay strict for algorithms with ``L`` / ``mu`` hyperparameters, which fall back on the
    problem's)."""
    import dataclasses

    loose = _LOOSE_STATICS if not ({"L", "mu"} & set(algo.hyper)) else ("name", "slot")
    statics = tuple((f.name, repr(getattr(problem, f.name))) for f in dataclasses.fields(problem)
                    if f.metadata.get("static") and f.name not in loose)
    leaves, treedef = jax.tree.flatten(_loosened(problem, ()))
    return statics, treedef.num_leaves, tuple((np.shape(x), str(np.asarray(x).dtype) if not hasattr(x, "dtype")
                                               else str(x.dtype)) for x in leaves)


def _loosened(problem, names):
    """The problem with its loose static fields replaced (so the treedefs of several problems agree)."""
    import dataclasses

    changes = {f.name: None for f in dataclasses.fields(problem) if f.name in names and f.name != "name"}
    if "name" in names:
        changes["name"] = "problem"
    return problem.replace(**changes)


def _groups(todo, data_of, problems, algo):
    """The (point, seed) pairs cut into groups that run as one program each: all of them for a plain Problem, else
    the pairs whose problems share a :func:`_signature`."""
    if not data_of:
        return [todo] if todo else []
    groups = {}
    for pair in todo:
        groups.setdefault(_signature(problems[data_of[pair[1]]], algo), []).append(pair)
    return list(groups.values())


def _stack_problems(problems):
    """One Problem whose leaves have a leading batch axis (one entry per configuration); loose static fields that
    differ are dropped (None), the others are the first problem's."""
    import dataclasses

    first = problems[0]
    differ = tuple(f.name for f in dataclasses.fields(first) if f.name in _LOOSE_STATICS
                   and any(repr(getattr(p, f.name)) != repr(getattr(first, f.name)) for p in problems))
    keep = {name: getattr(first, name) for name in ("name", "slot") if name in differ}
    same = [_loosened(p, differ) for p in problems]
    leaves = [jax.tree.leaves(p) for p in same]
    stacked = [to_device(np.stack([np.asarray(x) for x in col])) for col in zip(*leaves)]
    out = jax.tree.unflatten(jax.tree.structure(same[0]), stacked)
    return out.replace(**keep) if keep else out


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


def _frame(label, part, results, data_of=None):
    """One tidy DataFrame for a batch: a row per (configuration, evaluation), built column by column (one pandas
    call per batch: a frame per configuration and a concat took longer than the 500-step sweep they described)."""
    import pandas as pd

    metrics, diverged, div_step = results
    evals = metrics["step"].shape[-1]

    def per_config(values):
        return np.repeat(np.asarray(values), evals)

    cols = {"label": per_config([label] * len(part))}
    for k in part[0][0]:
        cols[k] = per_config([p[k].name if hasattr(p[k], "W") else _plain(p[k]) for p, _ in part])
    cols["seed"] = per_config([s for _, s in part])
    if data_of:
        cols["data_seed"] = per_config([data_of[s] for _, s in part])
    for k, v in metrics.items():
        if k.startswith(HP_PREFIX):
            raise ValueError(f"sweep: metric {k!r} starts with the hyperparameter prefix {HP_PREFIX!r}.")
        if v.ndim == 3:  # a per-worker metric (configurations, evaluations, n): one column per worker
            for i in range(v.shape[-1]):
                cols[f"{k}[{i}]"] = v[..., i].reshape(-1)
            continue
        cols[k] = v.reshape(-1)  # configuration-major, as the columns above
    cols["diverged"] = per_config(diverged)
    cols["diverged_step"] = per_config(div_step)
    cols["config_key"] = per_config([_config_key(label, p, s, (data_of or {}).get(s)) for p, s in part])
    return pd.DataFrame(cols)
