"""Links that fail: D-PSGD on ring(16) with random link failures p = 0.1, 0.3, 0.5 (issue 23's first claim).

Setting: multinomial logistic regression on the digits data, label-sorted shares (so the workers must agree for the
average model to be good, and consensus matters), D-PSGD at a constant step on ring(16), every undirected link down
at a step with probability p, independently (``jg.faults.link_failures(p)``; a down link's weight moves to the
receiver's own model, so W_t stays symmetric and doubly stochastic, and it carries and costs nothing).

Theory (``jg.theory.link_failure_rate``): the expected per-step consensus contraction lambda_p, the largest eigenvalue
of E[W_t^T W_t] off the consensus direction (Boyd et al. 2006). D-PSGD's steps to a target split into an optimization
part that failures do not change and a consensus part that scales with 1 / (1 - lambda_p) (Lian et al. 2017, Thm. 1;
Koloskova et al. 2020, Thm. 2, where the spectral gap p of E[W^T W] enters as 1/p). So the steps to a target should
grow by a factor between 1 and the predicted ``(1 - lambda_0) / (1 - lambda_p)``.

Verdicts, over every seed: (1) every run converges: its final suboptimality is below :data:`CONVERGED` of the
initial one and it does not diverge; (2) the bits sent scale as 1 - p: bits_p / bits_0 within :data:`BITS_TOL` of
1 - p (it is the fraction of links up, a sample mean over links x steps); (3) the steps to the suboptimality the
fault-free run reaches at :data:`TARGET_AT` of the run grow monotonically with p, by at least half and at most
:data:`GROWTH_HIGH` times the predicted factor.

Measured (``jaxgossip reproduce link-failures --size small``, n = 16, 1000 steps, seeds 0 and 1, this 2-core CPU):
every verdict holds; steps to target grow 1.08, 1.28, 1.75 times at p = 0.1, 0.3, 0.5 against the predicted 1.15,
1.58, 2.38; bits ratios 0.90, 0.70, 0.50.
"""

from __future__ import annotations

from jaxgossip.reproduce import Reproduction, register
from jaxgossip.reproduce._common import band_panel, digits_factory, first_reach, step_at, verdict_rows

__all__ = ["link_failures", "SIZES", "PS", "CONVERGED", "BITS_TOL", "TARGET_AT", "GROWTH_HIGH"]

PS = (0.0, 0.1, 0.3, 0.5)
SIZES = {
    "test": dict(n=16, steps=600, eval_every=10, lr=0.1, batch=8, reg=0.01),
    "small": dict(n=16, steps=1000, eval_every=10, lr=0.1, batch=8, reg=0.01),
    "paper": dict(n=16, steps=3000, eval_every=25, lr=0.1, batch=8, reg=0.01),
}
#: a run converged when its final suboptimality is below this fraction of its initial one
CONVERGED = 0.1
#: |bits_p / bits_0 - (1 - p)| at most this (the fraction of links up is a sample mean over links x steps)
BITS_TOL = 0.03
#: the target: the fault-free run's suboptimality at this fraction of the run
TARGET_AT = 0.3
#: the steps to the target grow by at most this many times the predicted factor (and by at least half of it)
GROWTH_HIGH = 1.25


def _runs(cfg, seeds):
    import pandas as pd

    import jaxgossip as jg

    factory = digits_factory(cfg, partition="label")
    ring = jg.topology.ring(cfg["n"])
    frames = []
    for p in PS:  # one program per p (a sweep over faults.p would vmap them; here each p is its own curve)
        df = jg.sweep(factory, jg.algorithms.dpsgd(lr=cfg["lr"]), ring, steps=cfg["steps"],
                      eval_every=cfg["eval_every"], seeds=tuple(int(s) for s in seeds),
                      faults=jg.faults.link_failures(p), metrics=("loss", "suboptimality", "consensus"))
        frames.append(df.assign(p=p, method=f"p = {p:g}")[
            ["seed", "p", "method", "step", "loss", "suboptimality", "consensus", "bits", "links_up", "diverged"]])
    frame = pd.concat(frames, ignore_index=True)
    rates = {p: jg.theory.link_failure_rate(ring, p) for p in PS}
    return frame, rates


def predicted_growth(rates: dict) -> dict:
    """p -> (1 - lambda_0) / (1 - lambda_p): how many times longer the consensus part of the run takes."""
    return {p: (1.0 - rates[0.0]) / (1.0 - lam) for p, lam in rates.items()}


def _verdicts(frame, rates):
    out, add = verdict_rows()
    seeds = sorted(frame.seed.unique())

    def curve(p, s):
        return frame[(frame.p == p) & (frame.seed == s)].sort_values("step")

    ends = {(p, s): (float(curve(p, s).suboptimality.iloc[0]), float(curve(p, s).suboptimality.iloc[-1]),
                     bool(curve(p, s).diverged.iloc[-1])) for p in PS for s in seeds}
    add("D-PSGD converges under link failures p = 0.1, 0.3, 0.5",
        "final / initial suboptimality per p (max over seeds): " + ", ".join(
            f"{p:g}: {max(ends[p, s][1] / ends[p, s][0] for s in seeds):.3f}" for p in PS),
        all(e1 <= CONVERGED * e0 and not div for e0, e1, div in ends.values()))

    ratios = {(p, s): float(curve(p, s).bits.iloc[-1] / curve(0.0, s).bits.iloc[-1]) for p in PS for s in seeds}
    add("the bits sent scale as 1 - p",
        "bits_p / bits_0 per p and seed: " + "; ".join(
            f"{p:g}: " + ", ".join(f"{ratios[p, s]:.3f}" for s in seeds) for p in PS),
        all(abs(r - (1.0 - p)) <= BITS_TOL for (p, _), r in ratios.items()))

    predicted = predicted_growth(rates)
    at = step_at(frame, TARGET_AT)
    growth = {}
    for s in seeds:
        base = curve(0.0, s)
        target = float(base[base.step == at].suboptimality.iloc[0])
        steps0 = first_reach(base, target, "suboptimality")
        for p in PS:
            growth[p, s] = first_reach(curve(p, s), target, "suboptimality") / steps0
    holds = all(predicted[p] / 2 <= growth[p, s] <= GROWTH_HIGH * predicted[p] for p in PS for s in seeds)
    holds &= all(growth[a, s] <= growth[b, s] for s in seeds for a, b in zip(PS, PS[1:]))
    add("the steps to a target grow as the expected consensus rate predicts: between 1/2 and "
        f"{GROWTH_HIGH:g} x (1 - lambda_0) / (1 - lambda_p)",
        f"steps to the fault-free suboptimality at step {int(at)}, relative to p = 0 (predicted): " + "; ".join(
            f"{p:g}: " + ", ".join(f"{growth[p, s]:.2f}" for s in seeds) + f" ({predicted[p]:.2f})" for p in PS[1:]),
        holds)
    return out


def _plot(frame):
    """Suboptimality against the step and against the bits, mean over seeds with the min-max band."""
    from jaxgossip.plots import figure_legend, subplots

    fig, axes = subplots(2, width=4.2, height=3.3)
    order = [f"p = {p:g}" for p in PS]
    for ax, x in zip(axes, ("step", "bits")):
        rows = frame[frame.bits > 0] if x == "bits" else frame
        band_panel(ax, rows, x, "suboptimality", "method", order, logy=True, ylabel=r"$f(\bar x) - f^\star$")
    figure_legend(fig, axes)
    fig.suptitle("D-PSGD on ring(16) with random link failures (logistic regression, digits, label-sorted)")
    return fig


@register("link-failures", "D-PSGD on ring(16) with link failures p = 0.1, 0.3, 0.5: it converges, the bits scale as "
                           "1 - p, the steps to a target grow as the expected consensus rate predicts")
def link_failures(size: str = "small", seeds=(0, 1)) -> Reproduction:
    """D-PSGD under i.i.d. link failures against the fault-free run (see the module docstring)."""
    import pandas as pd

    frame, rates = _runs(SIZES[size], seeds)
    verdicts = pd.DataFrame(_verdicts(frame, rates))
    return Reproduction("link-failures", frame.assign(rate=frame.p.map(rates)), verdicts, _plot(frame))
