"""Checkpoints: a long run saves its state every k steps and resumes bit-identically.

The simulator's carry (algorithm state, step counter, divergence flag, initial loss) plus the metrics so far are written
to one ``.npz`` file, atomically (a temporary file, then ``os.replace``), after every k steps. Step t's key is
``fold_in(key(seed), t)``, so a resumed run draws the same numbers as an uninterrupted one: running 1000 steps equals
running 500, stopping, and resuming for the other 500, bit for bit.
"""

from __future__ import annotations

import json
import os
import tempfile

import jax
import numpy as np

from jaxgossip.result import _atomic_savez
from jaxgossip.simulate import (Carry, initial_model_state, prepare, record_run_inputs, run_prepared, state_shapes,
                                step_unroll, to_host)

__all__ = ["simulate", "save", "load"]


def save(path: str, carry, m0: dict, chunks: list, config: dict) -> None:
    """Write the carry, the metrics so far and the config to ``path`` atomically."""
    leaves = jax.tree.leaves(carry)
    keys = {i: str(jax.random.key_impl(a)) for i, a in enumerate(leaves) if _is_key(a)}  # typed PRNG keys: raw data
    leaves = to_host([jax.random.key_data(a) if i in keys else a for i, a in enumerate(leaves)])
    arrays = {f"leaf{i}": np.asarray(a) for i, a in enumerate(leaves)}
    arrays.update({f"m0/{k}": np.asarray(v) for k, v in m0.items()})
    for j, c in enumerate(chunks):
        arrays.update({f"chunk{j}/{k}": np.asarray(v) for k, v in c.items()})
    meta = {"config": config, "leaves": len(leaves), "chunks": len(chunks), "keys": keys}
    arrays["meta"] = np.asarray(json.dumps(meta))
    _atomic_savez(path, arrays)


def check_path(path, write: bool = True) -> str:
    """A checkpoint path checked before any step runs: a file path (not a directory, not below a file) in a folder
    this process can write (``write``: a temporary file is made there and removed; the folder is created if needed),
    and, when the file exists, a jaxgossip checkpoint. Returns the path as a string.

    Raises:
      ValueError: naming ``path`` and what is wrong with it.
    """
    if isinstance(path, bool) or not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise ValueError(f"checkpoint: path must be a file path (a str or os.PathLike such as 'run.npz'), got {path!r}.")
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"checkpoint: path {path!r} is a directory; give a file in it, e.g. "
                         f"{os.path.join(path, 'checkpoint.npz')!r}.")
    if os.path.lexists(path) and not os.path.isfile(path):
        raise ValueError(f"checkpoint: path {path!r} exists and is not a regular file.")
    folder = os.path.dirname(os.path.abspath(path))
    probe = folder
    while not os.path.exists(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise ValueError(f"checkpoint: path {path!r} lies below {probe!r}, which is a file, not a folder.")
    if os.path.isfile(path):
        if not os.access(path, os.R_OK):
            raise ValueError(f"checkpoint: path {path!r} exists but cannot be read (permission denied).")
        try:
            saved_config(path)
        except Exception as e:  # noqa: BLE001 (numpy, zipfile or json errors: not a checkpoint)
            raise ValueError(f"checkpoint: path {path!r} exists but is not a jaxgossip checkpoint ({type(e).__name__}: "
                             f"{e}); delete it or choose another path.") from None
    if write:
        try:
            os.makedirs(folder, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".npz")
            os.close(fd)
            os.unlink(tmp)
        except OSError as e:
            raise ValueError(f"checkpoint: path {path!r}: cannot write in {folder!r} ({e.strerror or e}); choose a "
                             "folder this process can write.") from None
    return path


def saved_config(path: str) -> dict:
    """The configuration a checkpoint was made with (read before its arrays, so a mismatch is told plainly)."""
    with np.load(path) as z:
        return json.loads(str(z["meta"]))["config"]


def load(path: str, template):
    """Read a checkpoint; ``template`` is a carry of the right structure. Returns ``(carry, m0, chunks, config)``."""
    if isinstance(path, bool) or not isinstance(path, (str, os.PathLike)) or not os.path.isfile(path):
        raise ValueError(f"checkpoint: path {path!r} is not a checkpoint file.")
    with np.load(path) as z:
        meta = json.loads(str(z["meta"]))
        if meta["leaves"] != len(jax.tree.leaves(template)):
            raise ValueError(f"checkpoint: {path} holds a state of {meta['leaves']} arrays where this configuration "
                             f"has {len(jax.tree.leaves(template))}: it was made with another configuration.")
        leaves = [z[f"leaf{i}"] for i in range(meta["leaves"])]
        m0 = {k[3:]: z[k] for k in z.files if k.startswith("m0/")}
        chunks = [{k.split("/", 1)[1]: z[k] for k in z.files if k.startswith(f"chunk{j}/")} for j in range(meta["chunks"])]
    keys = {int(i): impl for i, impl in meta.get("keys", {}).items()}
    leaves = [jax.random.wrap_key_data(a, impl=keys[i]) if i in keys else jax.numpy.asarray(a)
              for i, a in enumerate(leaves)]
    return jax.tree.unflatten(jax.tree.structure(template), leaves), m0, chunks, meta["config"]


def _is_key(a) -> bool:
    return jax.dtypes.issubdtype(getattr(a, "dtype", None), jax.dtypes.prng_key)


def _template(prep):
    state = state_shapes(prep)
    loss0 = jax.ShapeDtypeStruct((), prep.problem.x0.dtype)
    model = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), initial_model_state(prep.problem))
    from jaxgossip.faults import init_state  # the fault chains' states (jg.faults), None without faults

    faults = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), init_state(prep.faults))
    return Carry(state, jax.ShapeDtypeStruct((), np.int32), jax.ShapeDtypeStruct((), bool), loss0, model, faults)


def simulate(problem, algorithm, topology=None, *, steps: int, path: str, every: int, stop_at: int | None = None,
             progress=None, divergence_threshold: float | None = None, label: str | None = None,
             consensus_threshold: float | None = None, x0=None, **kwargs):
    """:func:`jaxgossip.simulate` with a checkpoint at ``path`` every ``every`` steps, resuming from it if it exists.

    Args:
      problem, algorithm, topology, steps, progress, divergence_threshold, consensus_threshold, label, x0: as in
        :func:`jaxgossip.simulate`; other keyword arguments (seed, eval_every, network, compute, backend, shard,
        metrics) too.
      path: the checkpoint file (``.npz``). If it exists and holds the same configuration, the run continues from it.
        It is checked before any step runs: a file path (not a directory, not below a file) in a folder this process
        can write, and an existing file must be a checkpoint.
      every: save every this many steps (a multiple of ``eval_every`` dividing ``steps``).
      stop_at: stop after this step (a multiple of ``every``), e.g. to split a long run over job slots; the Result
        has NaN after it and the checkpoint lets a later call finish the run.

    A finished run continues for more steps: call again with a larger ``steps`` (everything else the same) and the
    state, optimizer and model state, step counter, bits and simulated time carry on from the checkpoint. The
    continued run compiles its inner loop as the first run did (see ``simulate.step_unroll``), so it is bit-identical
    to one run of the longer length whenever both lengths are on the same side of ``simulate.LONG_RUN`` steps.

    A checkpoint made with other inputs (another problem, data seed, partition, schedule, optimizer, graph weights,
    initial models, divergence limits: everything ``Result.config`` records) is refused, naming what differs.

    Returns:
      A :class:`jaxgossip.Result`, bit-identical to an uninterrupted ``jaxgossip.simulate`` of the same arguments.
    """
    path = check_path(path)
    prep = prepare(problem, algorithm, topology, steps=steps, **kwargs)
    if label is not None:
        prep.config["label"] = str(label)
    if isinstance(every, bool) or not isinstance(every, int) or every < 1 or every % prep.eval_every or steps % every:
        raise ValueError(f"checkpoint: every must be a positive multiple of eval_every ({prep.eval_every}) that divides "
                         f"steps ({steps}), got {every!r}.")
    if stop_at is not None and (isinstance(stop_at, bool) or not isinstance(stop_at, int) or stop_at < every
                                or stop_at % every):
        raise ValueError(f"checkpoint: stop_at must be a positive multiple of every ({every}) or None, got {stop_at!r}.")
    if progress is not None and not isinstance(progress, bool):
        raise ValueError(f"checkpoint: progress must be True, False or None (the default), got {progress!r}.")
    record_run_inputs(prep, x0, divergence_threshold, consensus_threshold)
    config = json.loads(json.dumps(prep.config, default=str))
    resume, unroll = None, None
    if os.path.exists(path):
        saved = saved_config(path)
        if "unroll_steps" in saved:  # a continued run keeps its first part's compiled loop
            config["unroll_steps"] = saved["unroll_steps"]
        if _longer_run_of(saved, config):  # a finished (or shorter) run continued for more steps
            config["unroll_steps"] = saved.get("unroll_steps", saved["steps"])
        elif saved != config:
            raise ValueError(f"checkpoint: {path} holds another configuration ({_difference(saved, config)}); delete "
                             "it or choose another path.")
        carry, m0, chunks, _ = load(path, _template(prep))
        resume = (carry, m0, chunks)
        unroll = step_unroll(config["unroll_steps"]) if "unroll_steps" in config else None

    def on_chunk(carry, m0, chunks):
        save(path, carry, m0, chunks, config)

    return run_prepared(prep, progress=progress, divergence_threshold=divergence_threshold, resume=resume,
                        on_chunk=on_chunk, chunk_evals=every // prep.eval_every, stop_at=stop_at, unroll=unroll,
                        consensus_threshold=consensus_threshold, x0=x0)


def _longer_run_of(saved: dict, config: dict) -> bool:
    """True when ``config`` is the saved run with more steps (everything else equal)."""
    if saved.get("steps", 0) >= config.get("steps", 0):
        return False
    strip = lambda c: {k: v for k, v in c.items() if k not in ("steps", "unroll_steps")}
    return strip(saved) == strip(config)


def _difference(saved: dict, config: dict, prefix: str = "", limit: int = 6) -> str:
    """The keys where two configurations differ (the first ``limit``), e.g. ``problem_spec.alpha: saved 0.5, now
    0.1``."""
    diffs = []
    for k in sorted(set(saved) | set(config)):
        a, b = saved.get(k, "<missing>"), config.get(k, "<missing>")
        if isinstance(a, dict) and isinstance(b, dict):
            inner = _difference(a, b, f"{prefix}{k}.", limit)
            if inner:
                diffs.append(inner)
        elif a != b:
            diffs.append(f"{prefix}{k}: saved {a!r}, now {b!r}")
    return "; ".join(diffs[:limit])
