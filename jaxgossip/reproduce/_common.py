"""Shared pieces of the reproductions on logistic regression over unreliable, uneven networks (``churn``, ``clusters``,
``link-failures``, ``local-steps``) and of the verdict tables of others (``zhao2022-beer``, ``heterogeneity-bias``).

- :func:`digits_factory`: ``seed -> problem`` for :func:`jaxgossip.sweep`, multinomial logistic regression on the
  digits data, each seed built once (its optimum f* is solved in float64, so building it twice costs twice);
- :func:`verdict_rows`: the rows of a verdict table and the ``add(claim, measured, holds)`` that appends one;
- :func:`step_at`: the last evaluated step at or before a fraction of the run (where a target level is read);
- :func:`first_reach`: a column (step, bits, simulated seconds) at the first evaluation that reaches a level;
- :func:`band_panel`: one panel of curves through :func:`jaxgossip.plots.plot_curves`, the mean over seeds with the
  band from the lowest to the highest seed, the legend left to :func:`jaxgossip.plots.figure_legend`.
"""

from __future__ import annotations

__all__ = ["digits_factory", "verdict_rows", "step_at", "first_reach", "band_panel"]


def digits_factory(cfg: dict, **kwargs):
    """``seed -> jg.problems.logistic_regression("digits", ...)`` with ``n_workers=cfg["n"]``,
    ``batch_size=cfg["batch"]``, ``reg=cfg["reg"]``, ``seed=seed`` and ``kwargs`` (e.g. ``partition="label"``); each
    seed's problem is built once and returned again on the next call (a sweep asks once per seed, and a reproduction
    asks again, e.g. for the dimension)."""
    import jaxgossip as jg

    built = {}

    def factory(seed):
        if int(seed) not in built:
            built[int(seed)] = jg.problems.logistic_regression("digits", n_workers=cfg["n"], batch_size=cfg["batch"],
                                                               reg=cfg["reg"], seed=int(seed), **kwargs)
        return built[int(seed)]

    return factory


def verdict_rows():
    """``(rows, add)``: an empty list and ``add(claim, measured, holds)``, which appends the row ``{"claim": claim,
    "measured": measured, "holds": bool(holds)}`` to it (``pd.DataFrame(rows)`` is the verdict table of
    :class:`jaxgossip.reproduce.Reproduction`)."""
    rows = []

    def add(claim, measured, holds):
        rows.append({"claim": claim, "measured": measured, "holds": bool(holds)})

    return rows, add


def step_at(frame, fraction: float):
    """The last evaluated step of ``frame`` at or before ``fraction`` of its last step (the largest ``step``)."""
    return frame.step[frame.step <= fraction * frame.step.max()].max()


def first_reach(curve, target: float, metric: str, column: str = "step") -> float:
    """``column`` (``step``, ``bits``, ``sim_time``) at the first row of ``curve`` (one run, in step order) whose
    ``metric`` is at most ``target``; inf when no row reaches it."""
    hit = curve[curve[metric] <= target]
    return float(hit[column].iloc[0]) if len(hit) else float("inf")


def band_panel(ax, rows, x: str, y: str, by: str, order, **kwargs):
    """``y`` against ``x`` on ``ax`` through :func:`jaxgossip.plots.plot_curves`: one curve per ``by`` value in
    ``order``, the mean over seeds with the band from the lowest to the highest seed (opacity 0.15, as several bands
    overlap), no legend (one :func:`jaxgossip.plots.figure_legend` for the figure); ``kwargs`` go to plot_curves
    (``logx``, ``logy``, ``ylabel``). Returns the Figure."""
    from jaxgossip.plots import plot_curves

    return plot_curves(rows, panels=((x, y),), by=by, axes=[ax], band="range", band_alpha=0.15, order=order,
                       legend=False, **kwargs)
