"""A run's outcome: metric arrays plus the exact configuration; to pandas, to disk (atomically) and back, to a plot."""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from typing import Any, NamedTuple

import jax
import numpy as np

__all__ = ["Result", "atomic_write", "models_path"]


def models_path(path: str) -> str:
    """Where ``Result.save(path, models=True)`` writes the final models: beside the JSON, ``run.json`` ->
    ``run.models.npz``."""
    root, ext = os.path.splitext(path)
    return (root if ext == ".json" else path) + ".models.npz"


class SavedState(NamedTuple):
    """The algorithm state of a Result loaded with its models: the (n, d) final models ``x`` only."""

    x: Any


def _tree_names(tree) -> tuple:
    """The leaves of a pytree as ``(names, leaves, nested)``: "/"-joined key names, host arrays, and whether the tree
    is nested dicts rebuilt exactly from those names (flax linen's params and collections are)."""
    from jaxgossip.problems.layout import _path_name

    flat, treedef = jax.tree_util.tree_flatten_with_path(tree)
    names = [_path_name(p) for p, _ in flat]
    leaves = [np.asarray(jax.device_get(a)) for _, a in flat]
    try:
        nested = jax.tree.structure(_nested(names, leaves)) == treedef
    except (TypeError, ValueError):
        nested = False
    return names, leaves, bool(nested)


def _nested(names, leaves):
    """Nested dicts from "/"-joined names (the inverse of :func:`_tree_names` for trees of dicts)."""
    out = {}
    for name, leaf in zip(names, leaves):
        *parents, last = name.split("/")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ValueError(name)
        if last in node:
            raise ValueError(name)
        node[last] = leaf
    return out


def atomic_write(path: str, text: str) -> None:
    """Write text to path so that a reader sees the old file or the new one, never half of it."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _jsonable(v):
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return [_jsonable(x) for x in v.tolist()]
    if isinstance(v, (np.floating, float)):
        f = float(v)
        return f if np.isfinite(f) else str(f)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (str, int, bool)) or v is None:
        return v
    try:
        return _jsonable(np.asarray(v))
    except Exception:  # noqa: BLE001
        return repr(v)


def _from_json_number(x):
    return float(x) if isinstance(x, str) else x


def _from_json_nested(v):
    """A metric from JSON: a list of numbers (or of per-worker lists), "nan"/"inf" strings back to floats."""
    return [_from_json_nested(x) if isinstance(x, list) else _from_json_number(x) for x in v]


def _atomic_savez(path: str, arrays: dict) -> None:
    """np.savez to path so that a reader sees the old file or the new one, never half of it."""
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


@dataclasses.dataclass
class Result:
    """The outcome of :func:`jaxgossip.simulate`.

    Attributes:
      metrics: name -> array over evaluations (``step``, ``loss``, ``grad_norm_sq``, ``consensus``, ``bits``,
        ``sim_time``, and ``accuracy``, ``test_loss``, ``suboptimality``, ``dist_to_opt`` where the problem has them).
        After a divergence the remaining entries are NaN. Per-worker metrics (``worker_loss``, ``worker_accuracy``
        when asked for by name) are (evaluations, n) arrays.
      config: the exact configuration of the run (JSON-serializable).
      diverged: True if the loss became non-finite or exploded.
      diverged_step: the step at which that was seen, else None.
      wall_time: seconds the run took on this machine (compile included).
      state: the final algorithm state (in memory; ``save(path, models=True)`` keeps its models only, which
        :meth:`load` restores as ``state.x``); ``state.x`` the (n, d) final models.
      model_state: the final (n, ...) per-worker model state (BatchNorm statistics), or None.
        :meth:`evaluate` evaluates the final models with it.
      layout: the problem's :class:`~jaxgossip.problems.Layout` (parameter pytree <-> flat vector) for a network, or
        None (a flat model): :meth:`average_model` and :meth:`worker_models` unflatten with it.
    """

    metrics: dict
    config: dict
    diverged: bool = False
    diverged_step: int | None = None
    wall_time: float = float("nan")
    state: Any = dataclasses.field(default=None, repr=False)
    model_state: Any = dataclasses.field(default=None, repr=False)
    layout: Any = dataclasses.field(default=None, repr=False)

    @property
    def label(self) -> str:
        return self.config.get("label") or self.config.get("algorithm", {}).get("name", "run")

    def final(self, name: str = "loss") -> float:
        """The last finite value of a metric (NaN if none).

        Raises:
          ValueError: if this result has no metric ``name`` (the message lists the ones it has).
        """
        if name not in self.metrics:
            raise ValueError(f"Result.final: no metric {name!r}; this result has {sorted(self.metrics)}.")
        v = np.asarray(self.metrics[name], dtype=float)
        if v.ndim != 1:
            raise ValueError(f"Result.final: {name!r} has one value per worker, shape {v.shape}; read its last row "
                             f"(res.metrics[{name!r}][-1]) or its mean ({name}_mean where the run reports one).")
        ok = np.flatnonzero(np.isfinite(v))
        return float(v[ok[-1]]) if len(ok) else float("nan")

    def evaluate(self, problem, X=None) -> dict:
        """The metrics of this run's final models on ``problem``, with the run's final model state (BatchNorm
        statistics): the numbers the run reported at its last evaluation (``res.evaluate(problem)["accuracy"] ==
        res.final("accuracy")``), computed again after the run.

        ``problem.evaluate(res.state.x)`` alone would use the initial statistics of a model with state (and refuses
        to); this binds the run's own. The problem must be the run's: its recorded data, initial model and settings
        (``config["problem_data"]``) are compared first.

        Args:
          problem: the :class:`jaxgossip.problems.Problem` the run used (its ``metrics`` pick which metrics).
          X: optional (n, d) models to evaluate instead of the final ones, with the run's final model state.

        Returns:
          ``{metric: float}`` (``loss``, ``consensus``, ``accuracy``, ... as the problem reports them; (n,) arrays
          for the per-worker metrics ``problem.metrics`` names).

        Raises:
          ValueError: for a result without its final state (one loaded from disk keeps the metrics only, unless
            saved with ``models=True``), another
            problem than the run's (naming what differs), or models of another shape.
        """
        from jaxgossip.problems._base import Problem
        from jaxgossip.simulate import evaluate_models, problem_record

        if not isinstance(problem, Problem):
            raise ValueError(f"Result.evaluate: problem must be a jg.problems.Problem, got {type(problem).__name__}.")
        if self.state is None:
            raise ValueError("Result.evaluate: this result holds no final state (a Result loaded from disk keeps the "
                             "metrics and the config only, unless saved with res.save(path, models=True)); evaluate "
                             "the Result that simulate returned.")
        recorded = self.config.get("problem_data")
        if recorded is not None:
            now = problem_record(problem)
            diffs = [f"{k}: run {recorded.get(k)!r}, now {now.get(k)!r}" for k in sorted(set(recorded) | set(now))
                     if recorded.get(k) != now.get(k)]
            if diffs:
                raise ValueError(f"Result.evaluate: problem is not the run's ({'; '.join(diffs[:4])}); pass the problem "
                                 "the run used, or bind a state yourself: problem.replace(worker_state=res.model_state)"
                                 ".evaluate(X).")
        X = self.state.x if X is None else X
        if tuple(np.shape(X)) != (problem.n, problem.d):
            raise ValueError(f"Result.evaluate: X must have shape (n, d) = ({problem.n}, {problem.d}), got "
                             f"{tuple(np.shape(X))}.")
        if problem.has_model_state and self.model_state is None:
            raise ValueError("Result.evaluate: the problem's model has state (BatchNorm statistics) but this result "
                             "holds none: it is not a run of this problem.")
        return evaluate_models(problem, X, self.model_state if problem.has_model_state else None)

    def to_pandas(self, long: bool = False):
        """One row per evaluation; the label and seed as columns, so results concatenate into one tidy frame.

        The per-worker metrics ((evaluations, n) arrays: ``worker_loss``, ``worker_accuracy``) are left out of this
        wide form; ``long=True`` gives them in long form instead: one row per evaluation x worker, with columns
        ``label``, ``seed``, ``step``, ``bits``, ``sim_time``, ``worker`` (0 .. n-1) and each per-worker metric (see
        :meth:`worker_frame`).

        Raises:
          ValueError: for ``long=True`` on a result without per-worker metrics.
        """
        import pandas as pd

        if not isinstance(long, (bool, np.bool_)):
            raise ValueError(f"Result.to_pandas: long must be True or False, got {long!r}.")
        if long:
            return self.worker_frame()
        df = pd.DataFrame({k: np.asarray(v) for k, v in self.metrics.items() if np.ndim(v) == 1})
        df.insert(0, "label", self.label)
        df.insert(1, "seed", self.config.get("seed"))
        return df

    def worker_frame(self):
        """The per-worker metrics in long form: one row per evaluation x worker, with columns ``label``, ``seed``,
        ``step``, ``bits``, ``sim_time`` (those of the evaluation), ``worker`` and every per-worker metric.

        Raises:
          ValueError: for a result without per-worker metrics (ask for them: ``metrics=["worker_loss", ...]``).
        """
        import pandas as pd

        per = {k: np.asarray(v) for k, v in self.metrics.items() if np.ndim(v) == 2}
        if not per:
            raise ValueError("Result.worker_frame: this result has no per-worker metrics; run with "
                             "metrics=[..., 'worker_loss', 'worker_accuracy'] to record them.")
        evals, n = next(iter(per.values())).shape
        cols = {"label": self.label, "seed": self.config.get("seed")}
        for k in ("step", "bits", "sim_time"):
            if k in self.metrics:
                cols[k] = np.repeat(np.asarray(self.metrics[k]), n)
        cols["worker"] = np.tile(np.arange(n), evals)
        cols.update({k: v.reshape(-1) for k, v in per.items()})
        return pd.DataFrame(cols)

    # ---- the final models ------------------------------------------------------------------------------------------
    def _final_x(self, who):
        if self.state is None or getattr(self.state, "x", None) is None:
            raise ValueError(f"Result.{who}: this result holds no final models (a Result loaded from disk has them "
                             "only when saved with res.save(path, models=True)).")
        return np.asarray(jax.device_get(self.state.x))

    def _unravel(self, x, layout):
        layout = self.layout if layout is None else layout
        return x if layout is None else jax.device_get(layout.unravel(x))

    def average_model(self, problem=None):
        """The average of the final models, xbar = (1/n) sum_i x_i (the model the run's ``loss``, ``accuracy`` and
        ``test_loss`` evaluate), as the user's own parameter pytree (host arrays), ready for ``module.apply``: for a
        flax linen module ``module.apply({"params": res.average_model(), **res.average_model_state()}, x)``. A flat
        model (no layout: linear models, quadratics) comes back as its (d,) vector.

        Args:
          problem: optional; the problem whose layout unflattens the vector (needed only for a Result loaded from
            disk whose parameters are not nested dicts, e.g. flax nnx models).
        """
        import jax.numpy as jnp

        X = self._final_x("average_model")
        xbar = np.asarray(jax.device_get(jnp.mean(jnp.asarray(X), axis=0)))  # as the run's evaluation averages
        return self._unravel(xbar, None if problem is None else problem.layout)

    def average_model_state(self):
        """The model state the average model is evaluated with (the workers' BatchNorm statistics averaged: floating
        leaves averaged, others from worker 0, as during the run), in the model's own form (flax linen: a dict of
        collections such as ``{"batch_stats": ...}``), or None for a model without state."""
        import jax.numpy as jnp

        if self.model_state is None:
            return None
        return jax.device_get(jax.tree.map(
            lambda a: (jnp.mean(jnp.asarray(a), 0).astype(a.dtype) if np.issubdtype(np.asarray(a).dtype, np.floating)
                       else np.asarray(a)[0]), self.model_state))

    def worker_models(self, problem=None):
        """All n final models as the user's parameter pytree with a leading worker axis (each leaf (n, ...)), or the
        (n, d) array for a flat model. Worker i's own model state is ``jax.tree.map(lambda a: a[i],
        res.model_state)``. ``problem``: as in :meth:`average_model`."""
        X = self._final_x("worker_models")
        layout = self.layout if problem is None else problem.layout
        return X if layout is None else jax.device_get(jax.vmap(layout.unravel)(X))

    def to_dict(self) -> dict:
        return {
            "config": _jsonable(self.config),
            "metrics": _jsonable(self.metrics),
            "diverged": bool(self.diverged),
            "diverged_step": self.diverged_step,
            "wall_time": _jsonable(self.wall_time),
        }

    def save(self, path: str, models: bool = False) -> None:
        """Write the result as JSON (atomically).

        Args:
          path: the JSON file.
          models: also write the final models (the (n, d) stack), the final per-worker model state and the
            parameters' layout (names, shapes, dtypes) to :func:`models_path` beside it (``run.json`` ->
            ``run.models.npz``, written first; the JSON's ``"models"`` entry names it). :meth:`load` restores them.

        Raises:
          ValueError: for ``models=True`` on a result without its final models.
        """
        if not isinstance(models, (bool, np.bool_)):
            raise ValueError(f"Result.save: models must be True or False, got {models!r}.")
        record = self.to_dict()
        if models:
            X = self._final_x("save")
            arrays = {"x": X}
            entry = {"file": os.path.basename(models_path(path)), "n": int(X.shape[0]), "d": int(X.shape[1])}
            if self.layout is not None:
                entry["layout"] = {"names": [sg.name for sg in self.layout.segments],
                                   "shapes": [list(sg.shape) for sg in self.layout.segments],
                                   "dtypes": list(self.layout.dtypes),
                                   "nested": _tree_names(self.layout.unravel(X[0]))[2]}
            if self.model_state is not None:
                names, leaves, nested = _tree_names(self.model_state)
                arrays.update({f"model_state/{i}": a for i, a in enumerate(leaves)})
                entry["model_state"] = {"names": names, "nested": nested}
            _atomic_savez(models_path(path), arrays)
            record["models"] = entry
        atomic_write(path, json.dumps(record, indent=1))

    @classmethod
    def load(cls, path: str, problem=None) -> "Result":
        """Read a result written by :meth:`save`, with its final models when they were saved.

        The parameters' pytree and the model state come back as nested dicts keyed by their names (flax linen's
        form: exact). For other pytrees (flax nnx) pass the run's ``problem``: its layout and model state give the
        structure (without it such a result restores ``state.x`` only, and ``average_model(problem)`` unflattens).
        """
        from jaxgossip.problems.layout import Layout

        with open(path) as f:
            raw = json.load(f)
        metrics = {k: np.asarray(_from_json_nested(v), dtype=float) for k, v in raw["metrics"].items()}
        if "step" in metrics:
            metrics["step"] = metrics["step"].astype(np.int64)
        res = cls(metrics, raw["config"], raw["diverged"], raw["diverged_step"], _from_json_number(raw["wall_time"]))
        entry = raw.get("models")
        if entry:
            with np.load(os.path.join(os.path.dirname(os.path.abspath(path)), entry["file"])) as z:
                X = z["x"]
                count = len(entry.get("model_state", {}).get("names", []))
                state_leaves = [z[f"model_state/{i}"] for i in range(count)]
            res.state = SavedState(X)
            lay = entry.get("layout")
            if problem is not None and problem.layout is not None:
                res.layout = problem.layout
            elif lay and lay["nested"]:
                res.layout = Layout.of(_nested(lay["names"], [np.zeros(s, dt) for s, dt in zip(lay["shapes"],
                                                                                               lay["dtypes"])]))
            ms = entry.get("model_state")
            if ms:
                if problem is not None and problem.model_state is not None:
                    res.model_state = jax.tree.unflatten(jax.tree.structure(problem.model_state), state_leaves)
                elif ms["nested"]:
                    res.model_state = _nested(ms["names"], state_leaves)
        return res

    def plot(self, x: str = "step", y: str = "loss", ax=None, **kwargs):
        """Plot one metric against ``step``, ``sim_time`` or ``bits``; returns the matplotlib Axes."""
        from jaxgossip.plots import plot_results

        return plot_results([self], x=x, y=y, ax=ax, **kwargs)

    def __repr__(self) -> str:
        status = f"diverged at step {self.diverged_step}" if self.diverged else f"final loss {self.final('loss'):.4g}"
        return f"Result({self.label}, {len(self.metrics.get('step', []))} evaluations, {status})"
