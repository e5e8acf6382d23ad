"""Matplotlib figures of runs and sweeps, fit for a paper draft.

* :func:`plot_results` / :func:`plot_grid`: one or several :class:`~jaxgossip.Result` against step, simulated time or
  bits.
* :func:`plot_curves`: a tidy DataFrame (a sweep's, or :func:`jaxgossip.compare`'s curves): one curve per label, the
  mean over seeds, a band of one standard deviation around it.
* :func:`heatmap`: a final metric of a sweep over two grid keys, the best cell marked, diverged cells shown as such.
* :func:`subplots` and :func:`figure_legend`: a figure of several panels drawn by several :func:`plot_curves` calls
  (one per subset of a frame, e.g. one panel per heterogeneity or per network sweep; ``index=`` a swept parameter
  for final values against it), with one legend below them all. The reproductions (``jaxgossip reproduce``) draw
  their figures this way.

Every figure follows the same rules: a log axis for bits, and for losses, consensus distance and suboptimality where
the values span a decade, never a zero or a negative value on a log axis (those points are dropped, a band's lower edge is clipped to
the lowest positive value), one legend outside the panels, ``constrained_layout`` so labels fit, diverged runs cut at
the evaluation where they diverged (marked with an x) and left out of the y-range so they do not flatten the others.
:func:`save` writes png, pdf or svg.
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["plot_results", "plot_grid", "plot_curves", "heatmap", "save", "subplots", "figure_legend", "band_stats",
           "AXIS_LABELS", "FORMATS"]

AXIS_LABELS = {
    "step": "iteration",
    "sim_time": "simulated time (s)",
    "bits": "bits sent (all workers)",
    "loss": "loss at the average model",
    "consensus": r"consensus distance $\frac{1}{n}\sum_i\|x_i-\bar x\|^2$",
    "suboptimality": r"$f(\bar x) - f^\star$",
    "dist_to_opt": r"$\|\bar x - x^\star\|$",
    "accuracy": "test accuracy",
    "grad_norm_sq": r"$\|\nabla f(\bar x)\|^2$",
    "test_loss": "test loss",
}

_LOG_Y = {"loss", "consensus", "suboptimality", "dist_to_opt", "grad_norm_sq", "test_loss"}
_LOG_X = {"bits"}
FORMATS = ("png", "pdf", "svg")


#: Axis labels of swept hyperparameters (a heat map's ``hp.<name>`` columns).
HYPER_LABELS = {
    "lr": r"step size $\gamma$ (lr)",
    "consensus": "consensus step (consensus)",
    "compressor.bits": "bits per value (compressor.bits)",
    "compressor.k": "kept coordinates (compressor.k)",
    "compressor.p": "keep probability (compressor.p)",
    "compressor.levels": "levels (compressor.levels)",
    "topology": "topology",
}


def _label(name: str) -> str:
    if name.startswith("hp."):
        return HYPER_LABELS.get(name[3:], name[3:])
    return AXIS_LABELS.get(name, name)


def save(fig, path: str, format: str | None = None, dpi: int = 200) -> str:
    """Write ``fig`` as png, pdf or svg (``format``, else the path's extension, else png); returns the path written.

    A path without an extension gets the format's.
    """
    root, ext = os.path.splitext(str(path))
    fmt = (format or ext.lstrip(".") or "png").lower()
    if fmt not in FORMATS:
        raise ValueError(f"plots: format must be one of {FORMATS}, got {fmt!r}.")
    if ext.lstrip(".").lower() != fmt:
        path = f"{path}.{fmt}"
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fig.savefig(path, format=fmt, dpi=dpi, bbox_inches="tight")
    return path


def _positive(xs, ys, logx, logy):
    """Points that can be drawn: finite, and positive on a log axis."""
    ok = np.isfinite(xs) & np.isfinite(ys)
    if logx:
        ok &= xs > 0
    if logy:
        ok &= ys > 0
    return ok


def _spans_decades(values, decades=2.0) -> bool:
    v = np.asarray(values, float)
    v = v[np.isfinite(v) & (v > 0)]
    return len(v) > 1 and np.log10(v.max() / v.min()) >= decades


def _set_range(ax, healthy, log, axis="y"):
    """Fit the y-range to the runs that did not diverge (with a margin), so a diverged run's last values, however
    large, do not flatten the others; points outside are clipped by the axes."""
    v = np.concatenate([np.asarray(h, float).ravel() for h in healthy]) if healthy else np.array([])
    v = v[np.isfinite(v) & ((v > 0) if log else True)]
    if not len(v):
        return
    lo, hi = v.min(), v.max()
    if log:
        lo, hi = lo / 1.5, hi * 1.5
    else:
        pad = 0.05 * (hi - lo) if hi > lo else max(abs(hi), 1.0) * 0.05
        lo, hi = lo - pad, hi + pad
    (ax.set_ylim if axis == "y" else ax.set_xlim)(lo, hi)


def _minor_label(v, _pos=None) -> str:
    """Labels for the minor ticks 2 and 5 of a decade (mathtext, like the major ones), none for the others."""
    if v <= 0:
        return ""
    e = int(np.floor(np.log10(v) + 1e-9))
    m = v / 10.0**e
    return rf"${m:.0f}\times10^{{{e}}}$" if round(m) in (2, 5) and abs(m - round(m)) < 1e-6 else ""


def _minor_labels(ax, logx, logy):
    """Label the minor ticks 2 and 5 of a log axis spanning less than two decades (matplotlib labels every minor tick
    of a short log axis, and they overlap), none of a longer one; call again once the limits change."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    for on, lims, axis in ((logx, ax.get_xlim(), ax.xaxis), (logy, ax.get_ylim(), ax.yaxis)):
        if on and min(lims) > 0:
            short = np.log10(max(lims) / min(lims)) < 2.0
            axis.set_minor_formatter(FuncFormatter(_minor_label) if short else NullFormatter())


def _finish(ax, x, y, logx, logy, title=None):

    if logy:
        ax.set_yscale("log")
    if logx:
        ax.set_xscale("log")
    _minor_labels(ax, logx, logy)
    ax.set_xlabel(_label(x))
    ax.set_ylabel(_label(y))
    if title:
        ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)


def plot_results(results, x: str = "step", y: str = "loss", ax=None, logy: bool | None = None, labels=None, title=None,
                 logx: bool | None = None, legend: bool = True, band: str | None = None):
    """Draw ``y`` against ``x`` for each result on one Axes (created if not given) and return it.

    ``band="workers"`` draws a per-worker metric (``worker_loss``, ``worker_accuracy``: run with
    ``metrics=[...]`` naming it) as its mean over the workers with a shaded band from the lowest to the highest
    worker at each evaluation.

    Log axes by default for bits (x) and for losses, consensus and suboptimality (y) where the values span a decade;
    non-positive values are not drawn on a log axis. A diverged run is drawn up to its last finite value,
    marked with an x, and kept out of the y-range. ``legend=False`` leaves the legend to the caller (plot_grid draws
    one for the whole figure).
    """
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(5, 3.6), constrained_layout=True)
    if band not in (None, "workers"):
        raise ValueError(f"plot: band must be None or 'workers', got {band!r}.")
    series, bands = [], []
    for i, r in enumerate(results):
        if x not in r.metrics or y not in r.metrics:
            raise ValueError(f"plot: metric {x!r} or {y!r} missing; this result has {sorted(r.metrics)}.")
        ys = np.asarray(r.metrics[y], float)
        if band == "workers":
            if ys.ndim != 2:
                per = sorted(k for k, v in r.metrics.items() if np.ndim(v) == 2)
                raise ValueError(f"plot: band='workers' needs a per-worker metric as y (this result has {per}; run "
                                 f"with metrics=['worker_loss', ...]); {y!r} has one value per evaluation.")
            with np.errstate(all="ignore"):
                bands.append((np.min(ys, axis=1), np.max(ys, axis=1)))  # NaN rows (after a divergence) stay NaN
            ys = np.mean(ys, axis=1)
        elif ys.ndim != 1:
            raise ValueError(f"plot: {y!r} has one value per worker; plot it with band='workers' (its mean and "
                             "spread over workers).")
        series.append((labels[i] if labels else r.label, np.asarray(r.metrics[x], float), ys, bool(r.diverged)))
    ys_all = [s[2] for s in series]
    logy = (y in _LOG_Y and _spans_decades(np.concatenate(ys_all), 1.0)) if logy is None else logy
    logx = (x in _LOG_X and any((s[1] > 0).any() for s in series)) if logx is None else logx
    healthy = []
    for i, (label, xs, ys, diverged) in enumerate(series):
        ok = _positive(xs, ys, logx, logy)
        line, = ax.plot(xs[ok], ys[ok], label=label + (" (diverged)" if diverged else ""), lw=1.6)
        if bands:
            lo, hi = bands[i]
            keep = ok & _positive(xs, lo, logx, logy)
            ax.fill_between(xs[keep], lo[keep], hi[keep], color=line.get_color(), alpha=0.2, lw=0)
        if diverged and ok.any():
            last = np.flatnonzero(ok)[-1]
            ax.plot(xs[last], ys[last], "x", color=line.get_color(), ms=8, mew=2)
        else:
            healthy.append(ys[ok])
    _finish(ax, x, y, logx, logy, title)
    if len(healthy) < len(series):
        _set_range(ax, healthy, logy)
        _minor_labels(ax, False, logy)
    if legend:
        ax.legend(fontsize=8, frameon=False)
    return ax


def _figure_legend(fig, axes, ncol=None):
    handles, labels = [], []
    for ax in np.ravel(axes):
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels and not lab.startswith("_"):
                handles.append(h)
                labels.append(lab)
    if handles:
        if ncol is None:  # as many columns as fit the figure's width (about 0.075 in per character at 9 pt)
            item = 0.6 + 0.075 * max(len(lab) for lab in labels)
            ncol = int(max(1, min(len(labels), 4, fig.get_figwidth() // item)))
        fig.legend(handles, labels, loc="outside lower center", ncol=ncol, frameon=False, fontsize=9)


def plot_grid(results, panels=(("step", "loss"), ("sim_time", "loss"), ("bits", "loss"), ("step", "consensus")),
              title=None, path: str | None = None, format: str | None = None):
    """A row of panels (x, y) for a comparison, one legend below them; returns the Figure (also saved to ``path``
    as png / pdf / svg when given, see :func:`save`)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.4), constrained_layout=True, squeeze=False)
    for ax, (x, y) in zip(axes[0], panels):
        plot_results(results, x=x, y=y, ax=ax, legend=False)
    _figure_legend(fig, axes)
    if title:
        fig.suptitle(title)
    if path is not None:
        save(fig, path, format)
    return fig


# ---- tidy frames: mean over seeds with a band ---------------------------------------------------------------------------
def _cut_at_divergence(g):
    """The rows of one label up to (and including) the first evaluation at which any of its seeds diverged."""
    if "diverged_step" in g and "step" in g and (g["diverged_step"] >= 0).any():
        first = g.loc[g["diverged_step"] >= 0, "diverged_step"].min()
        return g[g["step"] <= first], True
    if "diverged" in g and g["diverged"].any():
        return g, True
    return g, False


def band_stats(df, x: str, y: str, by: str = "label", index: str = "step"):
    """Per ``by`` value: the mean of ``x``, the mean, std, min and max of ``y`` over seeds at each ``index`` value
    (the step, or a swept parameter such as the bandwidth), cut at the first divergence; returns
    ``{label: (DataFrame with x, mean, std, lo, hi, count; diverged flag)}``."""
    out = {}
    for label, g in df.groupby(by, sort=False):
        g, diverged = _cut_at_divergence(g)
        if x == index:  # a swept parameter on the x axis: the group key is the x value
            g = g.assign(_x=g[x])
            xs = "_x"
        else:
            xs = x
        s = g.groupby(index).agg(x=(xs, "mean"), mean=(y, "mean"), std=(y, "std"), lo=(y, "min"), hi=(y, "max"),
                                 count=(y, "count"))
        s["std"] = s["std"].fillna(0.0)
        out[label] = (s.reset_index(), diverged)
    return out


def subplots(n: int, ncols: int | None = None, width: float = 3.7, height: float = 3.3, sharey: bool = False):
    """``n`` panels in rows of ``ncols`` (default: all in one row) with constrained layout, so labels fit and a
    figure legend (:func:`figure_legend`) goes below them; returns (Figure, 1-D array of Axes)."""
    import matplotlib.pyplot as plt

    ncols = ncols or n
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), constrained_layout=True,
                             squeeze=False, sharey=sharey)
    axes = axes.ravel()
    for ax in axes[n:]:
        ax.remove()
    return fig, axes[:n]


def figure_legend(fig, axes=None, ncol: int | None = None):
    """One legend for the whole figure, below the panels: every label of ``axes`` (default: all the figure's), once."""
    _figure_legend(fig, fig.axes if axes is None else axes, ncol)


def _log_x_default(x, xs_all) -> bool:
    """Bits: log whenever positive; step and simulated time: linear; any other x (a swept parameter: bandwidth,
    latency, step size, deadline): log when its positive values span two decades."""
    if x in _LOG_X:
        return any((v > 0).any() for v in xs_all)
    if x in ("step", "sim_time"):
        return False
    return _spans_decades(np.concatenate(xs_all) if xs_all else [], 2.0)


def plot_curves(df, panels=(("step", "loss"), ("bits", "loss"), ("sim_time", "loss")), by: str = "label",
                title=None, path: str | None = None, format: str | None = None, band: str = "std", axes=None,
                logy: bool | str | None = None, logx: bool | None = None, index: str = "step", order=None,
                legend: bool = True, marker: str | None = None, xlabel: str | None = None, ylabel: str | None = None,
                band_alpha: float = 0.2):
    """One panel per (x, y): one curve per ``by`` value, the mean over seeds, with a band (``"std"``: mean +- one
    standard deviation, ``"range"``: min to max over seeds, ``None``: no band).

    Args:
      df: a tidy frame with columns ``by``, ``index`` (``step``), ``seed`` and the metrics (a sweep's rows of one configuration
        per label, e.g. :attr:`jaxgossip.compare.Comparison.curves`).
      panels: (x, y) metric names; x is ``step``, ``bits`` (log axis) or ``sim_time``.
      path, format: save the figure (png / pdf / svg, see :func:`save`).
      axes: optional Axes to draw into (one per panel).
      logy: force the y scale (default: log for losses, consensus, suboptimality when they span a decade;
        ``"auto"``: log for any column whose values are positive and span a decade).
      logx: force the x scale (default: log for bits; linear for step and simulated time; log for any other column,
        e.g. a swept bandwidth or step size, when it spans two decades).
      index: the column the seeds are averaged at (``step``; or the swept parameter when x is one, e.g.
        ``index="lr"`` with panel ``("lr", "dist_to_opt")`` for final values against the step size).
      order: the ``by`` values to draw, in this order; a value keeps its colour across calls (so several calls on
        panels of different subsets colour the same label alike). Default: every value, in order of appearance.
      legend: draw the figure legend (False: leave it to the caller, e.g. :func:`figure_legend` after several calls).
      marker: a marker for the points (e.g. ``"o"`` for a sweep of a few values).
      xlabel, ylabel: axis labels (default: :data:`AXIS_LABELS` of the columns).
      band_alpha: the bands' opacity (lower it where several bands overlap).

    A label whose seeds diverged is drawn up to the first evaluation at which one of them diverged, marked with an
    x and "(diverged)", and kept out of the y-range. Returns the Figure.
    """
    import matplotlib.pyplot as plt

    if band not in ("std", "range", None):
        raise ValueError(f"plot_curves: band must be 'std', 'range' or None, got {band!r}.")
    for x, y in panels:
        for c in (x, y, by, index):
            if c not in df:
                raise ValueError(f"plot_curves: column {c!r} missing; the frame has {sorted(df.columns)}.")
    if axes is None:
        fig, axes = plt.subplots(1, len(panels), figsize=(3.7 * len(panels), 3.3), constrained_layout=True,
                                 squeeze=False)
        axes = axes[0]
    else:
        axes = np.ravel(axes)
        fig = axes[0].figure
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    present = list(dict.fromkeys(df[by]))
    order = present if order is None else list(order)
    labels = [lab for lab in order if lab in present]
    for ax, (x, y) in zip(axes, panels):
        stats = band_stats(df, x, y, by, index)
        means = np.concatenate([s["mean"].to_numpy(float) for s, _ in stats.values()])
        if logy == "auto":  # any column: log when its positive means span a decade
            ly = bool((means[np.isfinite(means)] > 0).all()) and _spans_decades(means, 1.0)
        else:
            ly = (y in _LOG_Y and _spans_decades(means, 1.0)) if logy is None else bool(logy)
        lx = _log_x_default(x, [s["x"].to_numpy(float) for s, _ in stats.values()]) if logx is None else logx
        healthy = []
        for label in labels:
            s, diverged = stats[label]
            color = colors[order.index(label) % len(colors)]
            xs, m = s["x"].to_numpy(float), s["mean"].to_numpy(float)
            lo, hi = _band(s, band)
            ok = _positive(xs, m, lx, ly)
            ax.plot(xs[ok], m[ok], color=color, lw=1.6, marker=marker, ms=4,
                    label=str(label) + (" (diverged)" if diverged else ""))
            if band is not None and len(s) and s["count"].max() > 1:
                if ly:  # a band edge at or below zero is clipped to the lowest positive value of the curve
                    floor = np.nanmin(np.where(s["lo"] > 0, s["lo"], np.nan)) if (s["lo"] > 0).any() else np.nan
                    lo = np.where(lo > 0, lo, floor)
                fill = ok & np.isfinite(lo) & np.isfinite(hi)
                ax.fill_between(xs[fill], lo[fill], hi[fill], color=color, alpha=band_alpha, lw=0)
            if diverged and ok.any():
                last = np.flatnonzero(ok)[-1]
                ax.plot(xs[last], m[last], "x", color=color, ms=8, mew=2)
            elif ok.any():
                healthy.append(np.concatenate([m[ok], hi[ok] if band else m[ok]]))
        _finish(ax, x, y, lx, ly)
        if x == index and lx:  # a sweep of a few values on a log axis: tick the swept values themselves
            swept = np.unique(np.concatenate([s["x"].to_numpy(float) for s, _ in stats.values()]))
            swept = swept[np.isfinite(swept) & (swept > 0)]
            if 1 < len(swept) <= 6:
                from matplotlib.ticker import NullFormatter, NullLocator

                ax.xaxis.set_minor_locator(NullLocator())
                ax.xaxis.set_minor_formatter(NullFormatter())
                ax.set_xticks(swept, [f"{v:g}" for v in swept])
        if xlabel is not None:
            ax.set_xlabel(xlabel)
        if ylabel is not None:
            ax.set_ylabel(ylabel)
        if len(healthy) < len(labels) and healthy:
            _set_range(ax, healthy, ly)
            _minor_labels(ax, False, ly)
    if legend:
        _figure_legend(fig, axes)
    if title:
        fig.suptitle(title)
    if path is not None:
        save(fig, path, format)
    return fig


def _band(s, band):
    if band == "range":
        return s["lo"].to_numpy(float), s["hi"].to_numpy(float)
    m, sd = s["mean"].to_numpy(float), s["std"].to_numpy(float)
    return m - sd, m + sd


# ---- heat map of a sweep ------------------------------------------------------------------------------------------------
def _column(df, name):
    """A grid key's column: ``hp.<name>`` first (``consensus`` is a grid key and a metric), else the name itself."""
    if f"hp.{name}" in df:
        return f"hp.{name}"
    if name in df:
        return name
    raise ValueError(f"heatmap: no column {name!r} (nor 'hp.{name}'); the frame has {sorted(df.columns)}.")


def heatmap(df, x: str, y: str, metric: str = "loss", ax=None, log: bool | None = None, minimize: bool = True,
            title=None, path: str | None = None, format: str | None = None, fmt: str = "{:.3g}"):
    """A final metric of a sweep over two grid keys: mean over seeds at the last evaluation.

    Args:
      df: a :func:`jaxgossip.sweep` frame (columns ``hp.<x>``, ``hp.<y>``, ``step``, ``diverged``, the metric).
      x, y: grid keys for the columns and rows (``"compressor.bits"`` or ``"hp.compressor.bits"``).
      metric: the metric to show.
      log: colour on a log scale (default: when the values span a decade and are positive).
      minimize: the best cell is the smallest mean (False: the largest, e.g. for accuracy).
      path, format: save the figure (png / pdf / svg).

    A cell where any seed diverged is hatched grey and reads "diverged"; the best cell among the others is framed
    and starred. Other filters (a third grid key, a label) are the caller's: pass the rows to show. Returns the Axes.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm, Normalize
    from matplotlib.patches import Rectangle

    xc, yc = _column(df, x), _column(df, y)
    if metric not in df:
        raise ValueError(f"heatmap: no metric {metric!r}; the frame has {sorted(df.columns)}.")
    last = df[df["step"] == df["step"].max()] if "step" in df else df
    diverged_rows = df["diverged"] if "diverged" in df else np.zeros(len(df), bool)
    div = df.assign(_d=diverged_rows).groupby([yc, xc])["_d"].any().unstack()
    mean = last.groupby([yc, xc])[metric].mean().unstack().reindex(index=div.index, columns=div.columns)
    values = mean.to_numpy(float)
    bad = div.to_numpy(bool) | ~np.isfinite(values)
    shown = np.where(bad, np.nan, values)
    finite = shown[np.isfinite(shown)]
    if log is None:
        log = len(finite) > 1 and finite.min() > 0 and finite.max() / finite.min() >= 10
    if ax is None:
        _, ax = plt.subplots(figsize=(1.0 + 0.9 * shown.shape[1], 0.8 + 0.6 * shown.shape[0]), constrained_layout=True)
    norm = (LogNorm(finite.min(), finite.max()) if log else Normalize(finite.min(), finite.max())) if len(finite) else None
    cmap = plt.get_cmap("viridis_r" if minimize else "viridis").with_extremes(bad="0.85")
    im = ax.imshow(np.ma.masked_invalid(shown), cmap=cmap, norm=norm, origin="lower", aspect="auto")
    ax.set_xticks(range(shown.shape[1]), [f"{v:g}" if isinstance(v, (int, float, np.number)) else str(v)
                                          for v in mean.columns])
    ax.set_yticks(range(shown.shape[0]), [f"{v:g}" if isinstance(v, (int, float, np.number)) else str(v)
                                          for v in mean.index])
    ax.set_xlabel(_label(xc))
    ax.set_ylabel(_label(yc))
    best = None
    if len(finite):
        best = np.unravel_index(np.nanargmin(shown) if minimize else np.nanargmax(shown), shown.shape)
    for i in range(shown.shape[0]):
        for j in range(shown.shape[1]):
            if bad[i, j]:
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="///", ec="0.55", lw=0))
                ax.text(j, i, "diverged", ha="center", va="center", fontsize=7, color="0.25")
            else:
                v = shown[i, j]
                dark = norm is not None and norm(v) > 0.5 if minimize else norm is not None and norm(v) < 0.5
                ax.text(j, i, fmt.format(v) + (" *" if best == (i, j) else ""), ha="center", va="center", fontsize=7,
                        color="w" if dark else "k", fontweight="bold" if best == (i, j) else None)
    if best is not None:
        ax.add_patch(Rectangle((best[1] - 0.5, best[0] - 0.5), 1, 1, fill=False, ec="red", lw=2))
    seeds = last["seed"].nunique() if "seed" in last else 1
    ax.figure.colorbar(im, ax=ax, label=f"{_label(metric)} (mean of {seeds} seed{'s' if seeds > 1 else ''})")
    if title:
        ax.set_title(title)
    if path is not None:
        save(ax.figure, path, format)
    return ax
