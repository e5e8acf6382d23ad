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

from jaxgossip.simulate import Carry, initial_model_state, prepare, run_prepared, state_shapes, step_unroll, to_host

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
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def saved_config(path: str) -> dict:
    """The configuration a checkpoint was made with (read before its arrays, so a mismatch is told plainly)."""
    with np.load(path) as z:
        return json.loads(str(z["meta"]))["config"]


def load(path: str, template):
    """Read a checkpoint; ``template`` is a carry of the right structure. Returns ``(carry, m0, chunks, config)``."""
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
    return Carry(state, jax.ShapeDtypeStruct((), np.int32), jax.ShapeDtypeStruct((), bool), loss0, model)


def simulate(problem, algorithm, topology=None, *, steps: int, path: str, every: int, stop_at: int | None = None,
             progress=None, divergence_threshold: float | None = None, label: str | None = None, **kwargs):
    """:func:`jaxgossip.simulate` with a checkpoint at ``path`` every ``every`` steps, resuming from it if it exists.

    Args:
      problem, algorithm, topology, steps, progress, divergence_threshold, label: as in :func:`jaxgossip.simulate`;
        other keyword arguments (seed, eval_every, network, compute, backend, shard) too.
      path: the checkpoint file (``.npz``). If it exists and holds the same configuration, the run continues from it.
      every: save every this many steps (a multiple of ``eval_every`` dividing ``steps``).
      stop_at: stop after this step (a multiple of ``every``), e.g. to split a long run over job slots; the Result
        has NaN after it and the checkpoint lets a later call finish the run.

    A finished run continues for more steps: call again with a larger ``steps`` (everything else the same) and the
    state, optimizer and model state, step counter, bits and simulated time carry on from the checkpoint. The
    continued run compiles its inner loop as the first run did (see ``simulate.step_unroll``), so it is bit-identical
    to one run of the longer length whenever both lengths are on the same side of ``simulate.LONG_RUN`` steps.

    Returns:
      A :class:`jaxgossip.Result`, bit-identical to an uninterrupted ``jaxgossip.simulate`` of the same arguments.
    """
    prep = prepare(problem, algorithm, topology, steps=steps, **kwargs)
    if label is not None:
        prep.config["label"] = str(label)
    if isinstance(every, bool) or not isinstance(every, int) or every < 1 or every % prep.eval_every or steps % every:
        raise ValueError(f"checkpoint: every must be a positive multiple of eval_every ({prep.eval_every}) that divides "
                         f"steps ({steps}), got {every!r}.")
    if stop_at is not None and (not isinstance(stop_at, int) or stop_at < every or stop_at % every):
        raise ValueError(f"checkpoint: stop_at must be a positive multiple of every ({every}) or None, got {stop_at!r}.")
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
                        on_chunk=on_chunk, chunk_evals=every // prep.eval_every, stop_at=stop_at, unroll=unroll)


def _longer_run_of(saved: dict, config: dict) -> bool:
    """True when ``config`` is the saved run with more steps (everything else equal)."""
    if saved.get("steps", 0) >= config.get("steps", 0):
        return False
    strip = lambda c: {k: v for k, v in c.items() if k not in ("steps", "unroll_steps")}
    return strip(saved) == strip(config)


def _difference(saved: dict, config: dict, prefix: str = "") -> str:
    """The first keys where two configurations differ, e.g. ``algorithm.optimizer: 'trace(...)' != None``."""
    diffs = []
    for k in sorted(set(saved) | set(config)):
        a, b = saved.get(k, "<missing>"), config.get(k, "<missing>")
        if isinstance(a, dict) and isinstance(b, dict):
            inner = _difference(a, b, f"{prefix}{k}.")
            if inner:
                diffs.append(inner)
        elif a != b:
            diffs.append(f"{prefix}{k}: saved {a!r}, now {b!r}")
    return "; ".join(diffs[:3])
