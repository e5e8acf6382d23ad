"""Workers that come and go: D-PSGD and gradient tracking under churn still reach the fault-free loss, later (issue 23's
third claim).

Setting: multinomial logistic regression on the digits data, iid shares, ring(16), a constant step. Churn
(``jg.faults.churn(p_leave, p_return)``): an on/off Markov chain per worker with p_leave = 0.05 and p_return = 0.2,
so a worker is offline 20% of the time on average (stationary fraction p_leave / (p_leave + p_return)), in runs of
1 / p_return = 5 steps on average. An offline worker computes nothing, sends and receives nothing and keeps its
model (and its tracker) until it returns; its links are down (the weight moves to its neighbours' self weights).

Verdicts, over every seed: (1) the measured fraction of workers online (``workers_online``, averaged over the run)
is within :data:`ONLINE_TOL` of 0.8; (2) for each method, the churned run reaches the loss the fault-free run has at
:data:`TARGET_AT` of the run before the end (it converges to the same level); (3) it gets there no sooner than the
fault-free run (fewer workers compute per step, so it is later).

Measured (``jaxgossip reproduce churn --size small``, two seeds, this 2-core CPU): see the verdict table; at
``size="test"`` every verdict holds.
"""

from __future__ import annotations

from jaxgossip.reproduce import Reproduction, register
from jaxgossip.reproduce._common import band_panel, digits_factory, first_reach, step_at, verdict_rows

__all__ = ["churn", "SIZES", "P_LEAVE", "P_RETURN", "ONLINE_TOL", "TARGET_AT"]

P_LEAVE, P_RETURN = 0.05, 0.2
SIZES = {
    "test": dict(n=16, steps=400, eval_every=10, lr=0.1, batch=8, reg=0.01),
    "small": dict(n=16, steps=1000, eval_every=10, lr=0.1, batch=8, reg=0.01),
    "paper": dict(n=16, steps=3000, eval_every=25, lr=0.1, batch=8, reg=0.01),
}
#: |mean workers_online - 0.8| at most this
ONLINE_TOL = 0.05
#: the target: the fault-free run's loss at this fraction of the run
TARGET_AT = 0.5
METHODS = ("D-PSGD", "gradient tracking")


def _runs(cfg, seeds):
    import pandas as pd

    import jaxgossip as jg

    factory = digits_factory(cfg)
    ring = jg.topology.ring(cfg["n"])
    algos = {"D-PSGD": jg.algorithms.dpsgd(lr=cfg["lr"]), "gradient tracking": jg.algorithms.gradient_tracking(lr=cfg["lr"])}
    frames = []
    for name, algo in algos.items():
        for churned in (False, True):
            faults = jg.faults.churn(P_LEAVE, P_RETURN) if churned else None
            df = jg.sweep(factory, algo, ring, steps=cfg["steps"], eval_every=cfg["eval_every"],
                          seeds=tuple(int(s) for s in seeds), faults=faults, metrics=("loss", "consensus"))
            if not churned:
                df = df.assign(workers_online=1.0)
            frames.append(df.assign(method=name, churn=churned,
                                    run=f"{name}, churn" if churned else f"{name}, no faults")[
                ["seed", "method", "churn", "run", "step", "loss", "consensus", "bits", "workers_online"]])
    return pd.concat(frames, ignore_index=True)


def _verdicts(frame):
    out, add = verdict_rows()
    seeds = sorted(frame.seed.unique())

    def curve(m, churned, s):
        return frame[(frame.method == m) & (frame.churn == churned) & (frame.seed == s)].sort_values("step")

    online = {(m, s): float(curve(m, True, s).workers_online.iloc[1:].mean()) for m in METHODS for s in seeds}
    expected = P_RETURN / (P_LEAVE + P_RETURN)
    add(f"{1 - expected:.0%} of the workers are offline on average",
        "mean workers_online per method and seed: " + "; ".join(f"{m}, {s}: {v:.3f}" for (m, s), v in online.items()),
        all(abs(v - expected) <= ONLINE_TOL for v in online.values()))

    at = step_at(frame, TARGET_AT)
    steps = {}
    for m in METHODS:
        for s in seeds:
            base = curve(m, False, s)
            target = float(base[base.step == at].loss.iloc[0])
            steps[m, s] = (first_reach(base, target, "loss"), first_reach(curve(m, True, s), target, "loss"))
    add("D-PSGD and gradient tracking under churn still reach the fault-free loss",
        f"steps to the fault-free loss at step {int(at)} (no faults, churn) per method and seed: "
        + "; ".join(f"{m}, {s}: {a:.0f}, {b:.0f}" for (m, s), (a, b) in steps.items()),
        all(b < float("inf") for _, b in steps.values()))
    add("... later than without faults",
        "churned steps / fault-free steps to the target: " + ", ".join(
            f"{b / a:.2f}" for a, b in steps.values()),
        all(b >= a for a, b in steps.values()))
    return out


def _plot(frame):
    """Loss against the step, and the fraction of workers online over time."""
    from jaxgossip.plots import figure_legend, subplots

    fig, axes = subplots(2, width=4.2, height=3.3)
    order = [f"{m}, {c}" for m in METHODS for c in ("no faults", "churn")]
    band_panel(axes[0], frame, "step", "loss", "run", order, logy=True)
    band_panel(axes[1], frame[frame.churn & (frame.step > 0)], "step", "workers_online", "run",
               [o for o in order if o.endswith("churn")])
    axes[1].axhline(P_RETURN / (P_LEAVE + P_RETURN), color="k", lw=0.8, ls=":")
    figure_legend(fig, axes)
    fig.suptitle(f"Churn on ring(16): p_leave = {P_LEAVE:g}, p_return = {P_RETURN:g} (20% offline on average)")
    return fig


@register("churn", "Churn with 20% of the workers offline on average: D-PSGD and gradient tracking still reach the "
                   "fault-free loss, later")
def churn(size: str = "small", seeds=(0, 1)) -> Reproduction:
    """D-PSGD and gradient tracking with and without churn (see the module docstring)."""
    import pandas as pd

    frame = _runs(SIZES[size], seeds)
    return Reproduction("churn", frame, pd.DataFrame(_verdicts(frame)), _plot(frame))
