"""A run's outcome: metric arrays plus the exact configuration; to pandas, to disk (atomically) and back, to a plot."""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from typing import Any

import numpy as np

__all__ = ["Result", "atomic_write"]


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


@dataclasses.dataclass
class Result:
    """The outcome of :func:`jaxgossip.simulate`.

    Attributes:
      metrics: name -> array over evaluations (``step``, ``loss``, ``grad_norm_sq``, ``consensus``, ``bits``,
        ``sim_time``, and ``accuracy``, ``test_loss``, ``suboptimality``, ``dist_to_opt`` where the problem has them).
        After a divergence the remaining entries are NaN.
      config: the exact configuration of the run (JSON-serializable).
      diverged: True if the loss became non-finite or exploded.
      diverged_step: the step at which that was seen, else None.
      wall_time: seconds the run took on this machine (compile included).
      state: the final algorithm state (kept in memory, not saved); ``state.x`` the (n, d) final models.
      model_state: the final (n, ...) per-worker model state (BatchNorm statistics), or None (kept in memory).
        :meth:`evaluate` evaluates the final models with it.
    """

    metrics: dict
    config: dict
    diverged: bool = False
    diverged_step: int | None = None
    wall_time: float = float("nan")
    state: Any = dataclasses.field(default=None, repr=False)
    model_state: Any = dataclasses.field(default=None, repr=False)

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
          ``{metric: float}`` (``loss``, ``consensus``, ``accuracy``, ... as the problem reports them).

        Raises:
          ValueError: for a result without its final state (one loaded from disk keeps the metrics only), another
            problem than the run's (naming what differs), or models of another shape.
        """
        from jaxgossip.problems._base import Problem
        from jaxgossip.simulate import evaluate_models, problem_record

        if not isinstance(problem, Problem):
            raise ValueError(f"Result.evaluate: problem must be a jg.problems.Problem, got {type(problem).__name__}.")
        if self.state is None:
            raise ValueError("Result.evaluate: this result holds no final state (a Result loaded from disk keeps the "
                             "metrics and the config only); evaluate the Result that simulate returned.")
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

    def to_pandas(self):
        """One row per evaluation; the label and seed as columns, so results concatenate into one tidy frame."""
        import pandas as pd

        df = pd.DataFrame({k: np.asarray(v) for k, v in self.metrics.items()})
        df.insert(0, "label", self.label)
        df.insert(1, "seed", self.config.get("seed"))
        return df

    def to_dict(self) -> dict:
        return {
            "config": _jsonable(self.config),
            "metrics": _jsonable(self.metrics),
            "diverged": bool(self.diverged),
            "diverged_step": self.diverged_step,
            "wall_time": _jsonable(self.wall_time),
        }

    def save(self, path: str) -> None:
        """Write the result as JSON (atomically)."""
        atomic_write(path, json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: str) -> "Result":
        with open(path) as f:
            raw = json.load(f)
        metrics = {k: np.asarray([_from_json_number(x) for x in v], dtype=float) for k, v in raw["metrics"].items()}
        if "step" in metrics:
            metrics["step"] = metrics["step"].astype(np.int64)
        return cls(metrics, raw["config"], raw["diverged"], raw["diverged_step"], _from_json_number(raw["wall_time"]))

    def plot(self, x: str = "step", y: str = "loss", ax=None, **kwargs):
        """Plot one metric against ``step``, ``sim_time`` or ``bits``; returns the matplotlib Axes."""
        from jaxgossip.plots import plot_results

        return plot_results([self], x=x, y=y, ax=ax, **kwargs)

    def __repr__(self) -> str:
        status = f"diverged at step {self.diverged_step}" if self.diverged else f"final loss {self.final('loss'):.4g}"
        return f"Result({self.label}, {len(self.metrics.get('step', []))} evaluations, {status})"
