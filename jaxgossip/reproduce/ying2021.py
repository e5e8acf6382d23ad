"""Ying, Yuan, Chen, Hu, Pan, Yin (NeurIPS 2021): D-PSGD on the one-peer exponential graph nearly matches the static
exponential graph, sending one message per worker per step.

Setting: heterogeneous least squares with full local gradients (the gradient noise would hide the topology's effect:
with it all three graphs sit at the same noise floor at this size), D-PSGD with one constant step size on three graphs
of n workers: the ring, the static exponential graph (``jg.topology.exponential``: i joined to i +- 2^k, 2 log2(n) - 1
neighbours) and the one-peer exponential graph (``jg.topology.one_peer_exponential``: one peer per step, cycling
through the 2^k). D-PSGD's heterogeneity bias grows as the graph mixes worse (~ 1 / (1 - rho)^2), so its floor ranks
the graphs. The verdicts: the one-peer graph's floor is within a small factor of the static exponential graph's and
far below the ring's; it reaches a target accuracy in about as many iterations as the static graph; and it sends
log2(n) times fewer messages than Ying et al.'s static exponential graph (log2(n) out-neighbours; (2 log2(n) - 1) times
fewer than the undirected one here).
"""

from __future__ import annotations

import numpy as np

from jaxgossip.reproduce import Reproduction, register
from jaxgossip.reproduce.heterogeneity_bias import full_quadratic

__all__ = ["ying2021", "SIZES"]

SIZES = {
    "test": dict(n=16, dim=10, samples=20, heterogeneity=3.0, lr=0.05, steps=1200, eval_every=20),
    "small": dict(n=32, dim=20, samples=50, heterogeneity=3.0, lr=0.05, steps=3000, eval_every=20),
    "paper": dict(n=64, dim=50, samples=100, heterogeneity=3.0, lr=0.05, steps=10000, eval_every=50),
}
#: the one-peer graph's floor may be at most this many times the static exponential graph's ("about the loss")
FLOOR_FACTOR = 3.0
#: and it must reach the target in at most this many times the static graph's iterations ("a similar number")
ITERATION_FACTOR = 2.0


def _graphs(n):
    import jaxgossip as jg

    return {"ring": jg.topology.ring(n), "exponential (static)": jg.topology.exponential(n),
            "one-peer exponential": jg.topology.one_peer_exponential(n)}


def _runs(cfg, seeds):
    import pandas as pd

    import jaxgossip as jg

    rows = []
    for seed in seeds:
        prob = full_quadratic(n_workers=cfg["n"], dim=cfg["dim"], samples_per_worker=cfg["samples"],
                              heterogeneity=cfg["heterogeneity"], seed=int(seed))
        for name, topo in _graphs(cfg["n"]).items():
            res = jg.simulate(prob, jg.algorithms.dpsgd(lr=cfg["lr"]), topo, steps=cfg["steps"],
                              eval_every=cfg["eval_every"], seed=int(seed), shard=False)
            m = res.metrics
            for k in range(len(m["step"])):
                rows.append({"seed": int(seed), "graph": name, "step": int(m["step"][k]),
                             "suboptimality": float(m["suboptimality"][k]), "consensus": float(m["consensus"][k]),
                             "bits": float(m["bits"][k])})
    return pd.DataFrame(rows)


def _floor(g, tail=10):
    return float(g.suboptimality.to_numpy()[-tail:].mean())


def _first(g, level):
    hit = g[g.suboptimality <= level]
    return None if hit.empty else int(hit.step.iloc[0])


def _verdicts(frame, n):
    out = []

    def add(claim, measured, holds):
        out.append({"claim": claim, "measured": measured, "holds": bool(holds)})

    floors, iters, msgs = [], [], []
    for seed, f in frame.groupby("seed"):
        by = {name: g.sort_values("step") for name, g in f.groupby("graph")}
        fl = {name: _floor(g) for name, g in by.items()}
        floors.append(fl)
        target = 3.0 * fl["exponential (static)"]
        iters.append({name: _first(g, target) for name, g in by.items()})
        per_step = {name: float(np.diff(g.bits.to_numpy()[:2])[0]) for name, g in by.items()}
        msgs.append(per_step)
    tau = int(np.ceil(np.log2(n)))
    r = [f["one-peer exponential"] / f["exponential (static)"] for f in floors]
    ring = [f["ring"] / f["one-peer exponential"] for f in floors]
    add("one-peer exponential reaches about the static exponential graph's loss (D-PSGD bias floor)",
        f"floor(one-peer) / floor(static) per seed: {', '.join(f'{x:.2f}' for x in r)}; "
        f"floor(ring) / floor(one-peer): {', '.join(f'{x:.1f}' for x in ring)}",
        max(r) <= FLOOR_FACTOR and min(ring) > 1.0)
    ratios = []
    for it in iters:
        a, b = it["one-peer exponential"], it["exponential (static)"]
        ratios.append(np.nan if a is None or b is None else a / b)
    add("in a similar number of iterations (to 3x the static graph's floor)",
        f"iterations(one-peer) / iterations(static) per seed: {', '.join(f'{x:.2f}' for x in ratios)}; ring reached "
        f"it: {[it['ring'] is not None for it in iters]}", all(np.isfinite(ratios)) and max(ratios) <= ITERATION_FACTOR)
    fewer = [m["exponential (static)"] / m["one-peer exponential"] for m in msgs]
    add(f"with log2(n) = {tau} times fewer messages per step (each worker sends one)",
        f"messages per step: static {fewer[0]:.0f} per worker (undirected, 2 log2 n - 1), one-peer 1; Ying et al.'s "
        f"directed static graph sends {tau}", min(fewer) >= tau)
    return out


def _plot(frame):
    """Through :func:`jaxgossip.plots.plot_curves`: f(xbar) - f* against the step and against the bits sent (log),
    and the consensus distance against the step; the mean over seeds with the band from the lowest to the highest
    seed, one legend below."""
    from jaxgossip.plots import plot_curves

    seeds = frame.seed.nunique()
    return plot_curves(frame, panels=(("step", "suboptimality"), ("bits", "suboptimality"), ("step", "consensus")),
                       by="graph", band="range",
                       title="Ying et al. 2021: D-PSGD on ring, static and one-peer exponential graphs"
                             + (f"\n(mean over {seeds} seeds; band: min to max)" if seeds > 1 else ""))


@register("ying2021-one-peer", "Ying et al. 2021: D-PSGD on the one-peer exponential graph ~ the static exponential "
                               "graph's loss with log2(n) times fewer messages")
def ying2021(size: str = "small", seeds=(0, 1)) -> Reproduction:
    """D-PSGD on ring, static exponential and one-peer exponential graphs (Ying et al. 2021, Sec. 3, 6)."""
    import pandas as pd

    cfg = SIZES[size]
    frame = _runs(cfg, seeds)
    return Reproduction("ying2021-one-peer", frame, pd.DataFrame(_verdicts(frame, cfg["n"])), _plot(frame))
