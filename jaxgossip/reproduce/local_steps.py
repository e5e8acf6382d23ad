"""Local steps (H = 4): a quarter of the bits on iid data; client drift on label-sorted data, removed by tracking.

Decentralized local SGD (Koloskova, Loizou, Boreiri, Jaggi, Stich, ICML 2020, Alg. 1 with W^(t) = I unless
(t + 1) mod H = 0) is D-PSGD on ``jg.topology.local_steps(ring, 4)``: three local SGD steps, then one gossip step, so
it sends a quarter of D-PSGD's bits. On iid shares the local steps move every worker in about the same direction and
it keeps D-PSGD's progress per step: it reaches D-PSGD's loss with about a quarter of the bits (Koloskova et al.
2020, Sec. 6; Stich 2019 for the centralized case). On label-sorted shares the local steps pull each worker towards
its own classes' optimum (client drift; Karimireddy et al. 2020, "SCAFFOLD", Sec. 3; Koloskova et al. 2020, the
zeta^2 H^2 term of Thm. 2): it stalls at a higher loss than D-PSGD. Gradient tracking on the same topology in time
corrects every local step by the last communicated estimate of the average gradient (its tracker keeps
``y_i - g_i(x_i)`` fixed between rounds, a SCAFFOLD-like control variate) and removes the drift.

Setting: multinomial logistic regression on the digits data (``jg.problems.logistic_regression``), minibatch SGD at a
constant step, ring of n workers, iid and label-sorted (``partition="label"``) shares, one data seed per run seed (each
seed redraws the train/test split and the iid shares). ``suboptimality`` is f(xbar) - f*, with f* solved in float64;
the two partitions hold the same training set, so f* is the same.

Verdicts, for every seed: (1) iid, local D-PSGD sends exactly a quarter of D-PSGD's bits per step; (2) iid, it reaches
the suboptimality D-PSGD has at 3/4 of the run with at most :data:`QUARTER_MAX` of the bits D-PSGD needs for it;
(3) label-sorted, local D-PSGD ends at least :data:`DRIFT` times higher than D-PSGD and than itself on iid data;
(4) label-sorted, gradient tracking on local_steps(ring, 4) ends at least :data:`DRIFT` times below local D-PSGD and
below D-PSGD that gossips at every step (four times its gossip rounds); (5) it ends within :data:`REMOVED` times its
own level on iid shares (the drift is the label-sorted / iid gap, 4 to 30 times for local D-PSGD).

Measured (two seeds; ``jaxgossip reproduce local-steps --size ...``): every verdict holds at ``size="test"`` (n = 8,
400 steps). The claims are about the optimization phase; at a constant step the runs end at noise floors, and two
verdicts fail once they get there:

* ``small`` (n = 16, 1000 steps): (1)-(4) hold (bits to D-PSGD's 3/4-run level: 0.32, 0.30 of D-PSGD's; local
  D-PSGD ends 5.1x above D-PSGD on label-sorted shares; tracking 19-26x below local D-PSGD), (5) fails on seed 0:
  tracking's label-sorted / iid ratio is 2.06 (1.75 on seed 1), against 29-32 for local D-PSGD.
* ``paper`` (n = 16, 2000 steps): (1), (3), (4) hold; (2) fails: local D-PSGD never reaches D-PSGD's suboptimality
  at step 1500 (on iid shares its floor is above D-PSGD's: the models drift apart between gossip rounds, the
  H-dependent consensus term of Koloskova et al. 2020, Thm. 2); (5) fails: tracking's label-sorted / iid ratio is
  3.5 and 2.4 (local D-PSGD's: 40 and 46), while it ends 5-6x below D-PSGD gossiping every step.

So: a quarter of the bits reaches D-PSGD's loss while the optimization error dominates, not D-PSGD's final floor;
tracking removes most of the drift (a 30-46x gap down to 2-3.5x) but not all of it at its noise floor.
"""

from __future__ import annotations

from jaxgossip.reproduce import Reproduction, register
from jaxgossip.reproduce._common import band_panel, digits_factory, first_reach, step_at, verdict_rows

__all__ = ["local_steps", "SIZES", "H", "QUARTER_MAX", "DRIFT", "REMOVED"]

H = 4
SIZES = {
    "test": dict(n=8, steps=400, eval_every=20, lr=0.1, batch=8, reg=0.01),
    "small": dict(n=16, steps=1000, eval_every=25, lr=0.1, batch=8, reg=0.01),
    "paper": dict(n=16, steps=2000, eval_every=50, lr=0.1, batch=8, reg=0.01),
}

#: iid: local D-PSGD's bits to D-PSGD's 3/4-run suboptimality, as a fraction of D-PSGD's own ("about a quarter")
QUARTER_MAX = 0.35
#: label-sorted: local D-PSGD ends at least this many times above D-PSGD (and above its own iid level), and gradient
#: tracking at least this many times below local D-PSGD
DRIFT = 1.5
#: gradient tracking on the local-steps topology ends on label-sorted shares within this factor of its own iid level
#: (local D-PSGD's label-sorted / iid ratio is 4 to 30 at the sizes here)
REMOVED = 2.0

DPSGD, LOCAL, TRACKING = "D-PSGD (every step)", f"local D-PSGD (H={H})", f"gradient tracking (H={H})"


def _runs(cfg, seeds):
    import pandas as pd

    import jaxgossip as jg

    A = jg.algorithms
    ring = jg.topology.ring(cfg["n"])
    local = jg.topology.local_steps(ring, H)
    methods = {
        "iid": {DPSGD: (A.dpsgd(lr=cfg["lr"]), ring), LOCAL: (A.dpsgd(lr=cfg["lr"]), local),
                TRACKING: (A.gradient_tracking(lr=cfg["lr"]), local)},
        "label": {DPSGD: (A.dpsgd(lr=cfg["lr"]), ring), LOCAL: (A.dpsgd(lr=cfg["lr"]), local),
                  TRACKING: (A.gradient_tracking(lr=cfg["lr"]), local)},
    }
    frames = []
    for partition, runs in methods.items():
        factory = digits_factory(cfg, partition=partition)  # each (partition, seed) built once: f* is solved in float64
        for name, (algo, topo) in runs.items():  # one compiled program per method: the seeds are vmapped
            df = jg.sweep(factory, algo, topo, steps=cfg["steps"], eval_every=cfg["eval_every"],
                          seeds=tuple(int(s) for s in seeds), metrics=("loss", "suboptimality", "consensus"))
            frames.append(df.assign(partition=partition, method=name)[
                ["seed", "partition", "method", "step", "loss", "suboptimality", "consensus", "bits"]])
    return pd.concat(frames, ignore_index=True)


def _verdicts(frame):
    out, add = verdict_rows()
    late = step_at(frame, 0.75)
    seeds = sorted(frame.seed.unique())

    def curve(partition, method, seed):
        return frame[(frame.partition == partition) & (frame.method == method) & (frame.seed == seed)].sort_values(
            "step")

    def final(partition, method, seed):
        return float(curve(partition, method, seed).suboptimality.iloc[-1])

    ratios = [float(curve("iid", LOCAL, s).bits.iloc[-1] / curve("iid", DPSGD, s).bits.iloc[-1]) for s in seeds]
    add(f"iid: local D-PSGD (H={H}) sends 1/{H} of D-PSGD's bits",
        f"bits ratio at the end: {', '.join(f'{r:.4f}' for r in ratios)}",
        all(abs(r - 1.0 / H) < 1e-9 for r in ratios))

    quarter = []
    for s in seeds:
        d = curve("iid", DPSGD, s)
        target = float(d[d.step == late].suboptimality.iloc[0])
        quarter.append(first_reach(curve("iid", LOCAL, s), target, "suboptimality", "bits")
                       / first_reach(d, target, "suboptimality", "bits"))
    add(f"iid: local D-PSGD reaches D-PSGD's loss with about 1/{H} of the bits",
        f"bits to D-PSGD's suboptimality at step {int(late)}, local / D-PSGD per seed: "
        f"{', '.join(f'{q:.3f}' for q in quarter)}",
        all(q <= QUARTER_MAX for q in quarter))

    drift = [(final("label", LOCAL, s) / final("label", DPSGD, s), final("label", LOCAL, s) / final("iid", LOCAL, s))
             for s in seeds]
    add("label-sorted: local D-PSGD stalls higher (client drift): it ends above D-PSGD and above its own iid level",
        "final suboptimality of local D-PSGD / D-PSGD, / local D-PSGD on iid, per seed: "
        + "; ".join(f"{a:.2f}, {b:.2f}" for a, b in drift),
        all(a >= DRIFT and b >= DRIFT for a, b in drift))

    fixed = [(final("label", LOCAL, s) / final("label", TRACKING, s), final("label", TRACKING, s) / final("label", DPSGD, s))
             for s in seeds]
    add(f"label-sorted: gradient tracking on local_steps(ring, {H}) removes the drift",
        "final suboptimality of local D-PSGD / tracking, tracking / D-PSGD (every step), per seed: "
        + "; ".join(f"{a:.2f}, {b:.2f}" for a, b in fixed),
        all(a >= DRIFT and b <= 1.0 for a, b in fixed))
    gaps = [(final("label", TRACKING, s) / final("iid", TRACKING, s), final("label", LOCAL, s) / final("iid", LOCAL, s))
            for s in seeds]
    add(f"label-sorted: gradient tracking on local_steps(ring, {H}) ends within {REMOVED:g}x of its iid level",
        "final suboptimality label-sorted / iid, tracking and local D-PSGD, per seed: "
        + "; ".join(f"{a:.2f}, {b:.2f}" for a, b in gaps),
        all(a <= REMOVED for a, _ in gaps))
    return out


def _plot(frame):
    """Three panels through :mod:`jaxgossip.plots`: iid suboptimality against bits (log), label-sorted against bits,
    label-sorted against the step; the mean over seeds with the band from the lowest to the highest seed."""
    from jaxgossip.plots import figure_legend, subplots

    methods = [DPSGD, LOCAL, TRACKING]
    fig, axes = subplots(3, width=3.8, height=3.3)
    panels = (("iid", ("bits", "suboptimality"), "iid shares"),
              ("label", ("bits", "suboptimality"), "label-sorted shares"),
              ("label", ("step", "suboptimality"), "label-sorted shares"))
    for ax, (partition, panel, title) in zip(axes, panels):
        rows = frame[frame.partition == partition]
        if panel[0] == "bits":
            rows = rows[rows.bits > 0]
        band_panel(ax, rows, *panel, "method", [m for m in methods if m in set(rows.method)], logy=True,
                   ylabel=r"$f(\bar x) - f^\star$")
        ax.set_title(title, fontsize=10)
    figure_legend(fig, axes)
    seeds = frame.seed.nunique()
    fig.suptitle(f"Local steps (H = {H}) on a ring: logistic regression on digits"
                 + (f"\n(mean over {seeds} seeds; band: min to max)" if seeds > 1 else ""))
    return fig


@register("local-steps", f"H = {H}: decentralized local SGD reaches D-PSGD's loss with a quarter of the bits on iid "
                         "data, drifts on label-sorted data; gradient tracking removes the drift")
def local_steps(size: str = "small", seeds=(0, 1)) -> Reproduction:
    """Decentralized local SGD (D-PSGD on ``jg.topology.local_steps(ring, 4)``) against D-PSGD, iid and label-sorted,
    and gradient tracking on the same topology in time (see the module docstring)."""
    import pandas as pd

    cfg = SIZES[size]
    frame = _runs(cfg, seeds)
    return Reproduction("local-steps", frame, pd.DataFrame(_verdicts(frame)), _plot(frame))
