"""Fair comparisons: each algorithm tuned on its own grid by a criterion averaged over seeds, reported at its best.

``jg.compare(problem, {label: (algorithm, grid)}, topology, seeds=..., criterion=...)`` runs one :func:`jaxgossip.sweep`
per label (one compiled program per algorithm: its grid x the seeds), scores every configuration by the criterion
averaged over the seeds, leaves out configurations where any seed diverged, and keeps the best one per label. It
returns a :class:`Comparison`: the table (mean and standard deviation over seeds of the final metrics and of the time
to a target in steps, bits and simulated seconds), the best configuration per label, the curves of the best
configurations (every seed), a figure (one curve per label with a band over seeds, against iterations, bits and
simulated time) and ``save(dir)`` (CSV and JSON, with the full configuration of every run).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os

import numpy as np

from jaxgossip.algorithms._base import Algorithm
from jaxgossip.result import _jsonable, atomic_write
from jaxgossip._record import plain_json
from jaxgossip.problems._base import Problem
from jaxgossip.simulate import (_hyper_summary, algorithm_record, check_callbacks, divergence_limits, prepare,
                                problem_record, reported_metrics, topology_record)
from jaxgossip.sweep import (_apply, _problems_for, check_seeds, grid_name, grid_values, hp_column, sweep,
                             validate_grid)

__all__ = ["compare", "Comparison", "CRITERIA", "best_configs", "time_to_target"]

#: ``final``: the final value of ``metric`` (lower is better; higher for accuracy). ``steps`` / ``bits`` /
#: ``sim_time``: the first evaluation at which ``metric`` reaches ``target`` (a seed that never reaches it counts as
#: infinitely slow; ties are broken by the final value).
CRITERIA = ("final", "steps", "bits", "sim_time")
_HIGHER_IS_BETTER = {"accuracy", "worker_accuracy"}
_FINAL_METRICS = ("loss", "suboptimality", "dist_to_opt", "consensus", "grad_norm_sq", "test_loss", "accuracy")


@dataclasses.dataclass
class Comparison:
    """The outcome of :func:`compare`.

    Attributes:
      table: one row per label: the best hyperparameters, the number of seeds, ``<metric>_mean`` / ``<metric>_std``
        of the final metrics over seeds, ``steps_to_target``, ``bits_to_target``, ``sim_time_to_target`` (mean and
        std over the seeds that reached the target), ``reached`` (how many seeds did), ``diverged_configs`` (of the
        label's grid).
      best: label -> the best configuration: ``algorithm``, ``hyper`` (every hyperparameter, the swept ones at their
        best values), ``grid_point``, ``score``.
      curves: the tidy rows (every seed, every evaluation) of each label's best configuration.
      tuning: one row per label x grid point: the criterion's mean and std over seeds, ``diverged``, ``best``.
      runs: every row of every sweep (all configurations, all seeds).
      config: the comparison's configuration (problem, topology, steps, seeds, grids, criterion, target, ...).
      run_configs: the full configuration of every run (a list of dicts, one per label x grid point x seed).
    """

    table: object
    best: dict
    curves: object
    tuning: object
    runs: object
    config: dict
    run_configs: list

    def plot(self, panels=None, path: str | None = None, format: str | None = None, title=None, band: str = "std"):
        """One curve per label (mean over seeds, a band of one std), against iterations, bits (log axis) and
        simulated time; returns the Figure (saved to ``path`` as png / pdf / svg when given)."""
        from jaxgossip.plots import plot_curves

        metric = self.config["metric"]
        panels = panels or (("step", metric), ("bits", metric), ("sim_time", metric))
        return plot_curves(self.curves, panels=panels, title=title, path=path, format=format, band=band)

    def save(self, directory: str, formats=("png",)) -> dict:
        """Write ``table.csv``, ``tuning.csv``, ``curves.csv``, ``runs.csv``, ``comparison.json`` (configuration, best
        settings, table, the full configuration of every run) and the figure in each of ``formats``, atomically;
        returns ``{name: path}``."""
        os.makedirs(directory, exist_ok=True)
        paths = {}
        for name in ("table", "tuning", "curves", "runs"):
            paths[name] = os.path.join(directory, f"{name}.csv")
            atomic_write(paths[name], getattr(self, name).to_csv(index=False))
        record = {"config": self.config, "best": self.best, "table": self.table.to_dict(orient="records"),
                  "tuning": self.tuning.to_dict(orient="records"), "runs": self.run_configs}
        paths["json"] = os.path.join(directory, "comparison.json")
        atomic_write(paths["json"], json.dumps(_jsonable(record), indent=1))
        if formats:
            import matplotlib.pyplot as plt

            fig = self.plot()
            for fmt in formats:
                from jaxgossip.plots import save

                paths[f"figure.{fmt}"] = save(fig, os.path.join(directory, f"comparison.{fmt}"), fmt)
            plt.close(fig)
        return paths

    def __repr__(self) -> str:
        return f"Comparison({', '.join(map(str, self.best))}; criterion {self.config['criterion']})"


def _split(label, spec):
    if isinstance(spec, Algorithm):
        return spec, {}
    if isinstance(spec, (tuple, list)) and len(spec) == 2 and isinstance(spec[0], Algorithm):
        grid = spec[1] or {}
        if not isinstance(grid, dict):
            raise ValueError(f"compare: the grid of {label!r} must be a dict of name -> values, got "
                             f"{type(grid).__name__}.")
        return spec[0], dict(grid)
    raise ValueError(f"compare: algorithms[{label!r}] must be an Algorithm or an (Algorithm, grid) pair, got "
                     f"{type(spec).__name__}.")


def time_to_target(g, metric: str, target: float, higher: bool = False) -> dict:
    """For one run's rows (sorted by step): the step, bits and simulated seconds of the first evaluation at which
    ``metric`` reaches ``target`` (<=, or >= when ``higher``); NaN where it never does."""
    v = g[metric].to_numpy(float)
    hit = np.flatnonzero(v >= target if higher else v <= target)
    if not len(hit):
        return {"steps": math.nan, "bits": math.nan, "sim_time": math.nan}
    row = g.iloc[hit[0]]
    return {"steps": float(row["step"]), "bits": float(row["bits"]), "sim_time": float(row["sim_time"])}


def _hp_cols(df):
    return [c for c in df.columns if c.startswith("hp.")]


def _per_run(df, metric, target, higher):
    """One row per (grid point, seed): final metrics, diverged, time to target."""
    import pandas as pd

    keys = _hp_cols(df)
    rows = []
    for key, g in df.groupby(keys + ["seed"], sort=False, dropna=False) if keys else df.groupby(["seed"], sort=False):
        g = g.sort_values("step")
        last = g.iloc[-1]
        row = dict(zip(keys + ["seed"], key if isinstance(key, tuple) else (key,)))
        row["diverged"] = bool(g["diverged"].any())
        for m in _FINAL_METRICS:
            if m in g:
                row[m] = float(last[m])
        if target is not None:
            row.update({f"{k}_to_target": v for k, v in time_to_target(g, metric, target, higher).items()})
        rows.append(row)
    return pd.DataFrame(rows)


def _score(runs, criterion, metric, higher):
    """The criterion per grid point: mean and std over seeds (lower is better), and whether any seed diverged."""
    keys = [c for c in runs.columns if c.startswith("hp.")]
    if criterion == "final":
        value = -runs[metric] if higher else runs[metric]
    else:
        value = runs[f"{criterion}_to_target"].fillna(math.inf)
    r = runs.assign(_v=value, _final=-runs[metric] if higher else runs[metric])
    if not keys:
        r = r.assign(_all=0)
        keys = ["_all"]
    agg = r.groupby(keys, sort=False, dropna=False).agg(score=("_v", "mean"), score_std=("_v", "std"),
                                                        tie=("_final", "mean"), diverged=("diverged", "any"))
    return agg.reset_index().drop(columns=["_all"], errors="ignore")


def best_configs(scores):
    """The index of the best row of a score table (smallest score, then smallest tie-breaker), leaving out diverged
    rows and rows without a finite score; None if every row diverged."""
    ok = scores[~scores["diverged"] & np.isfinite(scores["tie"])]
    if not len(ok):
        return None
    return ok.sort_values(["score", "tie"], kind="stable").index[0]


def compare(problem, algorithms: dict, topology=None, *, steps: int, seeds=(0, 1, 2), criterion: str = "final",
            metric: str | None = None, target: float | None = None, eval_every: int | None = None, network=None,
            compute=None, backend: str = "auto", data_seeds=None, batch_size: int | None = None,
            divergence_threshold: float | None = None, consensus_threshold: float | None = None,
            progress: bool = False, callbacks=None) -> Comparison:
    """Tune each algorithm on its own grid, by a criterion averaged over seeds, and report each at its best.

    Args:
      problem: a :class:`jaxgossip.problems.Problem`, or a factory ``seed -> Problem`` so that each seed redraws the
        data split, the partition and (where the problem draws one) the initial model (see :func:`jaxgossip.sweep`).
      algorithms: ``{label: (algorithm, grid)}`` (or ``{label: algorithm}`` for no tuning); each grid is a
        :func:`jaxgossip.sweep` grid over that algorithm's own hyperparameters (``lr``, ``consensus``,
        ``compressor.bits``, ...).
      topology: the graph.
      steps, eval_every, network, compute, backend, batch_size, divergence_threshold, consensus_threshold: as in
        :func:`jaxgossip.sweep`.
      seeds: the run seeds every configuration runs with (and, with a factory, the data seeds; see ``data_seeds``).
      criterion: one of :data:`CRITERIA`: ``"final"`` (the final ``metric``), or ``"steps"`` / ``"bits"`` /
        ``"sim_time"`` to reach ``target``; averaged over seeds; lower is better.
      metric: the metric the criterion and the figure use (default ``suboptimality`` where the problem knows its
        optimum, else ``loss``; ``accuracy`` is maximized).
      target: the level of ``metric`` for the time-to-target columns (required for the time criteria). Default for
        ``criterion="final"``: the highest of the labels' best mean final values, a level every algorithm reaches on
        average.
      callbacks: callables ``callback(step, metrics)`` passed to every label's :func:`jaxgossip.sweep`: called at
        every evaluation with ``{"<label>/<grid key>=<value>/.../seed=<s>/<metric>": value}`` (see there).

    Returns:
      A :class:`Comparison`. A configuration where any seed diverged is never chosen; a label whose every
      configuration diverged has no best setting (its table row says so).
    """
    import pandas as pd

    if criterion not in CRITERIA:
        raise ValueError(f"compare: criterion must be one of {CRITERIA}, got {criterion!r}.")
    if criterion != "final" and target is None:
        raise ValueError(f"compare: criterion {criterion!r} needs a target (the level of {metric or 'the metric'} "
                         "to reach).")
    if not isinstance(algorithms, dict) or not algorithms:
        raise ValueError("compare: algorithms must be a non-empty dict {label: (algorithm, grid)}.")
    specs = {str(label): _split(label, spec) for label, spec in algorithms.items()}
    if len(specs) != len(algorithms):
        raise ValueError(f"compare: two labels of algorithms read the same as text: {list(algorithms)}.")
    seeds = check_seeds("seeds", seeds)
    divergence_limits(divergence_threshold, consensus_threshold)
    if target is not None and (isinstance(target, (bool, str)) or not np.ndim(target) == 0
                               or not np.isfinite(float(target))):
        raise ValueError(f"compare: target must be a finite number or None, got {target!r}.")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"compare: batch_size must be a positive integer or None, got {batch_size!r}.")
    if not isinstance(progress, (bool, np.bool_)):
        raise ValueError(f"compare: progress must be True or False, got {progress!r}.")
    callbacks = check_callbacks(callbacks, "compare")
    data_of, problems = _problems_for(problem, seeds, data_seeds)
    problem0 = problems[data_of[seeds[0]]] if data_of else problem
    if not isinstance(problem0, Problem):
        raise ValueError(f"compare: problem must be a jg.problems.Problem or a factory seed -> Problem, got "
                         f"{type(problem0).__name__}.")
    if metric is None:
        metric = "suboptimality" if getattr(problem0, "f_star", None) is not None else "loss"
    measured = [m for m in _FINAL_METRICS if m in reported_metrics(problem0)]
    if metric not in measured:
        raise ValueError(f"compare: metric must be one of the metrics {problem0.name} reports, {measured}; got "
                         f"{metric!r}.")
    higher = metric in _HIGHER_IS_BETTER
    source = (lambda s: problems[s]) if data_of else problem  # the factory is called once per data seed
    kw = dict(steps=steps, eval_every=eval_every, network=network, compute=compute, backend=backend)
    preps = {}
    for label, (algo, grid) in specs.items():  # every label's grid and inputs, before any sweep compiles
        columns = {hp_column(k): grid_values(k, v) for k, v in grid.items()}
        validate_grid(algo, columns, problem0.d, problem0.n)
        topo0 = columns[hp_column("topology")][0] if hp_column("topology") in columns else topology
        preps[label] = prepare(problem0, algo, topo0, seed=0, shard=False, **kw)
    frames, scores, runs_by_label = [], [], {}
    for label, (algo, grid) in specs.items():
        df = sweep(source, {label: algo}, topology, grid=grid, seeds=seeds, batch_size=batch_size,
                   divergence_threshold=divergence_threshold, consensus_threshold=consensus_threshold,
                   progress=progress, data_seeds=[data_of[s] for s in seeds] if data_of else None,
                   callbacks=callbacks, **kw)
        if metric not in df:
            raise ValueError(f"compare: metric {metric!r} is not measured here; the sweep has {sorted(df.columns)}.")
        frames.append(df)
        runs_by_label[label] = df
    if target is None:  # every label's best final value; the target is the worst of them
        finals = []
        for label, df in runs_by_label.items():
            sc = _score(_per_run(df, metric, None, higher), "final", metric, higher)
            i = best_configs(sc)
            if i is not None:
                finals.append(-sc.loc[i, "score"] if higher else sc.loc[i, "score"])
        target = (min(finals) if higher else max(finals)) if finals else None
    tuning_rows, table_rows, best, curves, run_configs = [], [], {}, [], []
    base = dict(next(iter(preps.values())).config)
    limits = [float(v) for v in divergence_limits(divergence_threshold, consensus_threshold)]
    divergence = plain_json({"loss": limits[0], "consensus": limits[1]})
    # what made each data seed's data (a factory redraws them per seed): every run's record carries its own
    records = {ds: {"problem_spec": p.spec.record() if p.spec is not None else None,
                    "problem_data": problem_record(p)} for ds, p in problems.items()}
    for label, (algo, grid) in specs.items():
        df = runs_by_label[label]
        per_run = _per_run(df, metric, target, higher)
        crit = criterion if criterion == "final" or target is not None else "final"
        sc = _score(per_run, crit, metric, higher)
        i = best_configs(sc)
        keys = _hp_cols(df)
        sc = sc.assign(label=label, best=False)
        if i is not None:
            sc.loc[i, "best"] = True
        tuning_rows.append(sc)
        row = {"label": label, "algorithm": algo.name, "seeds": len(seeds),
               "diverged_configs": f"{int(sc['diverged'].sum())}/{len(sc)}"}
        if i is None:
            row["best"] = "all diverged"
            table_rows.append(row)
            best[label] = None
        else:
            point = {grid_name(k): _plain(sc.loc[i, k]) for k in keys}
            chosen = per_run
            mask = np.ones(len(df), bool)
            for k in keys:
                chosen = chosen[chosen[k] == sc.loc[i, k]]
                mask &= (df[k] == sc.loc[i, k]).to_numpy()
            point_obj = {hp_column(k): _grid_value(grid, k, v) for k, v in point.items()}
            applied = _apply(algo, {k: v for k, v in point_obj.items() if grid_name(k) != "topology"})
            best[label] = {"algorithm": algo.name, "grid_point": point,
                           "hyper": _hyper_summary(applied.hyper, applied.optimizer),
                           "score": float(sc.loc[i, "score"]), "criterion": crit}
            row["best"] = ", ".join(f"{k}={_fmt(v)}" for k, v in point.items()) or "(no grid)"
            for m in _FINAL_METRICS:
                if m in chosen:
                    row[f"{m}_mean"], row[f"{m}_std"] = float(chosen[m].mean()), float(chosen[m].std(ddof=1)) \
                        if len(chosen) > 1 else 0.0
            if target is not None:
                for k in ("steps", "bits", "sim_time"):
                    v = chosen[f"{k}_to_target"]
                    row[f"{k}_to_target_mean"] = float(v.mean()) if v.notna().any() else math.nan
                    row[f"{k}_to_target_std"] = float(v.std(ddof=1)) if v.notna().sum() > 1 else math.nan
                row["reached"] = f"{int(chosen['steps_to_target'].notna().sum())}/{len(chosen)}"
            table_rows.append(row)
            curves.append(df[mask])
        for _, r in per_run.iterrows():
            point = {grid_name(k): _plain(r[k]) for k in keys}
            applied = _apply(algo, {hp_column(k): _grid_value(grid, hp_column(k), v) for k, v in point.items()
                                    if k != "topology"})
            seed = int(r["seed"])
            run = {**preps[label].config, "label": label, "seed": seed, "data_seed": data_of.get(seed),
                   **(records[data_of[seed]] if data_of else {}), "algorithm": algorithm_record(applied),
                   "divergence": divergence, "grid_point": point, "diverged": bool(r["diverged"]),
                   "final": {m: r[m] for m in _FINAL_METRICS if m in r}}
            if "topology" in point:
                graph = _grid_value(grid, hp_column("topology"), point["topology"])
                run.update(topology=point["topology"], topology_weights=topology_record(graph), rho=float(graph.rho))
            run_configs.append(run)
    drop = ("algorithm", "seed", "kind") + (("problem_spec", "problem_data") if data_of else ())
    config = {**{k: v for k, v in base.items() if k not in drop}, "seeds": seeds,
              "problems": {str(ds): rec for ds, rec in records.items()} if data_of else None,
              "data_seeds": [data_of[s] for s in seeds] if data_of else None, "criterion": criterion,
              "metric": metric, "target": target,
              "grids": {label: {grid_name(k): [_plain(v) for v in np.atleast_1d(vals)] if grid_name(k) != "topology"
                                else [getattr(v, "name", str(v)) for v in vals] for k, vals in grid.items()}
                        for label, (_, grid) in specs.items()},
              "algorithms": {label: {"name": a.name, **_hyper_summary(a.hyper, a.optimizer)}
                             for label, (a, _) in specs.items()},
              "divergence": [float(v) for v in divergence_limits(divergence_threshold, consensus_threshold)]}
    table = pd.DataFrame(table_rows)
    curves_df = pd.concat(curves, ignore_index=True) if curves else frames[0].iloc[:0]
    tuning = pd.concat(tuning_rows, ignore_index=True)
    tuning = tuning[["label"] + [c for c in tuning.columns if c != "label"]]
    return Comparison(table, best, curves_df, tuning, pd.concat(frames, ignore_index=True), config, run_configs)


def _grid_value(grid, key, value):
    """The grid's own value for a column value (topologies are kept as objects in the grid, names in the frame)."""
    for k, vals in grid.items():
        if grid_name(k) == grid_name(key):
            for v in vals:
                if getattr(v, "name", None) == value or v == value:
                    return v
    return value


def _plain(v):
    if isinstance(v, np.generic):
        return v.item()
    return v


def _fmt(v):
    return f"{v:g}" if isinstance(v, (int, float)) else str(v)
