"""Matplotlib plots of one or several results against step, simulated time or bits."""

from __future__ import annotations

import numpy as np

__all__ = ["plot_results", "plot_grid", "AXIS_LABELS"]

AXIS_LABELS = {
    "step": "iteration",
    "sim_time": "simulated time (s)",
    "bits": "bits sent (all workers)",
    "loss": "loss at the average model",
    "consensus": "consensus distance (1/n) sum ||x_i - xbar||^2",
    "suboptimality": "f(xbar) - f*",
    "dist_to_opt": "||xbar - x*||",
    "accuracy": "test accuracy",
    "grad_norm_sq": "||grad f(xbar)||^2",
    "test_loss": "test loss",
}

_LOG_Y = {"loss", "consensus", "suboptimality", "dist_to_opt", "grad_norm_sq", "test_loss"}


def plot_results(results, x: str = "step", y: str = "loss", ax=None, logy: bool | None = None, labels=None, title=None):
    """Draw ``y`` against ``x`` for each result on one Axes (created if not given) and return it."""
    import matplotlib

    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6, 4))
    for i, r in enumerate(results):
        if x not in r.metrics or y not in r.metrics:
            raise ValueError(f"plot: metric {x!r} or {y!r} missing; this result has {sorted(r.metrics)}.")
        label = labels[i] if labels else r.label
        xs, ys = np.asarray(r.metrics[x], float), np.asarray(r.metrics[y], float)
        line, = ax.plot(xs, ys, label=label + (" (diverged)" if r.diverged else ""))
        if r.diverged:
            ok = np.flatnonzero(np.isfinite(ys))
            if len(ok):
                ax.plot(xs[ok[-1]], ys[ok[-1]], "x", color=line.get_color())
    if logy if logy is not None else y in _LOG_Y:
        ax.set_yscale("log")
    ax.set_xlabel(AXIS_LABELS.get(x, x))
    ax.set_ylabel(AXIS_LABELS.get(y, y))
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    del matplotlib
    return ax


def plot_grid(results, panels=(("step", "loss"), ("sim_time", "loss"), ("bits", "loss"), ("step", "consensus")),
              title=None):
    """A row of panels (x, y) for a comparison; returns the Figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6))
    for ax, (x, y) in zip(np.atleast_1d(axes), panels):
        plot_results(results, x=x, y=y, ax=ax)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
