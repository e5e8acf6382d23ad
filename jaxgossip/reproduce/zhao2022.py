"""Zhao, Li, Li, Richtarik, Chi (2022), Fig. 1 setting at laptop size: BEER with top-k converges linearly, CHOCO-SGD
levels off.

A strongly convex, heterogeneous least-squares problem (L2 term ``reg``), full local gradients, float64, the ring
with binary-exact weights of :func:`jaxgossip.reproduce.heterogeneity_bias.lazy_ring`, and top-k keeping a few
percent of the coordinates (1% at ``size="paper"``). BEER (gradient tracking on compressed surrogates) reaches the
optimum to float64 round-off; CHOCO-SGD, on every consensus step of a small grid, stops at a floor (the
heterogeneity bias that its lack of gradient tracking leaves, amplified by its small consensus step) or diverges.
Uncompressed gradient tracking is the reference for the bits: BEER reaches the same accuracy with fewer bits sent.
"""

from __future__ import annotations

import jax
import numpy as np

from jaxgossip.reproduce import Reproduction, register
from jaxgossip.reproduce._common import step_at, verdict_rows
from jaxgossip.reproduce.heterogeneity_bias import full_quadratic, lazy_ring

__all__ = ["zhao2022", "SIZES"]

SIZES = {
    "test": dict(n=8, dim=100, samples=50, fraction=0.05, gamma=0.2, lr=0.05, steps=1500, eval_every=50),
    "small": dict(n=8, dim=200, samples=50, fraction=0.025, gamma=0.1, lr=0.02, steps=8000, eval_every=100),
    "paper": dict(n=8, dim=200, samples=50, fraction=0.01, gamma=0.05, lr=0.02, steps=20000, eval_every=200),
}
HETEROGENEITY, REG = 1.0, 0.1
#: relative suboptimality counted as the optimum (float64 round-off is ~1e-16)
EXACT = 1e-10


def _methods(cfg):
    import jaxgossip as jg

    A = jg.algorithms
    tk = jg.compressors.top_k(fraction=cfg["fraction"])
    out = {f"BEER (top-{cfg['fraction']:.1%}, gamma={cfg['gamma']:g})":
           A.beer(lr=cfg["lr"], compressor=tk, consensus=cfg["gamma"])}
    for c in (cfg["gamma"] / 4, cfg["gamma"] / 2, cfg["gamma"]):
        out[f"CHOCO-SGD (top-{cfg['fraction']:.1%}, c={c:g})"] = A.choco_sgd(lr=cfg["lr"], compressor=tk, consensus=c)
    out["gradient tracking (uncompressed)"] = A.gradient_tracking(lr=cfg["lr"])
    return out


def _runs(cfg, seeds):
    import pandas as pd

    import jaxgossip as jg

    topo = lazy_ring(cfg["n"])
    rows = []
    for seed in seeds:
        prob = jg.problems.as_float64(full_quadratic(n_workers=cfg["n"], dim=cfg["dim"],
                                                     samples_per_worker=cfg["samples"], heterogeneity=HETEROGENEITY,
                                                     reg=REG, seed=int(seed)))
        for name, algo in _methods(cfg).items():
            res = jg.simulate(prob, algo, topo, steps=cfg["steps"], eval_every=cfg["eval_every"], seed=int(seed),
                              shard=False)
            m = res.metrics
            for k in range(len(m["step"])):
                rows.append({"seed": int(seed), "method": name, "step": int(m["step"][k]),
                             "suboptimality": float(m["suboptimality"][k]), "bits": float(m["bits"][k]),
                             "diverged": bool(res.diverged)})
    return pd.DataFrame(rows)


def _first_below(g, level):
    hit = g[g.suboptimality.abs() <= level]
    return None if hit.empty else hit.iloc[0]


def _verdicts(frame):
    out, add = verdict_rows()
    last = frame.step.max()
    late = step_at(frame, 0.75)
    beer = [m for m in frame.method.unique() if m.startswith("BEER")][0]
    chocos = [m for m in frame.method.unique() if m.startswith("CHOCO")]
    rel, slopes, bits_ratio = [], [], []
    for seed, f in frame.groupby("seed"):
        g = f[f.method == beer].set_index("step").suboptimality
        s0 = float(g[0])
        rel.append(abs(float(g[last])) / s0)
        live = g[(g.abs() > 1e3 * EXACT * s0) & (g.index > 0)]
        slopes.append(float(np.polyfit(live.index, np.log(live.to_numpy()), 1)[0]) if len(live) >= 5 else np.nan)
        b, t = _first_below(f[f.method == beer], EXACT * s0), _first_below(f[f.method.str.startswith("gradient")],
                                                                             EXACT * s0)
        bits_ratio.append(np.nan if b is None or t is None else float(b.bits / t.bits))
    add("BEER with top-k reaches the optimum (full gradients, strongly convex)",
        f"final / initial suboptimality per seed: {', '.join(f'{r:.1e}' for r in rel)}", max(rel) <= EXACT)
    add("BEER converges linearly", f"log-suboptimality slope per step, per seed: "
        f"{', '.join(f'{s:.2e}' for s in slopes)}", all(np.isfinite(slopes)) and max(slopes) < 0)
    floors, stalled, diverged = [], [], 0
    for (seed, name), g in frame[frame.method.isin(chocos)].groupby(["seed", "method"]):
        if g.diverged.any():
            diverged += 1
            continue
        s = g.set_index("step").suboptimality
        floors.append(float(s[last] / s[0]))
        stalled.append(float(s[last] / s[late]))
    add("CHOCO-SGD with the same top-k levels off (every consensus step tried)",
        f"{len(floors)} runs level off at final / initial {min(floors, default=np.nan):.1e} .. "
        f"{max(floors, default=np.nan):.1e} (last / 3/4-run {min(stalled, default=np.nan):.3f} .. "
        f"{max(stalled, default=np.nan):.3f}); {diverged} diverged",
        len(floors) > 0 and min(floors) > 1e3 * EXACT and min(stalled) > 0.9)
    add("BEER needs fewer bits than uncompressed gradient tracking to reach the optimum",
        f"bits(BEER) / bits(GT) to reach {EXACT:g} of the initial suboptimality, per seed: "
        f"{', '.join(f'{r:.2f}' for r in bits_ratio)}", all(np.isfinite(bits_ratio)) and max(bits_ratio) < 1)
    return out


def _plot(frame):
    """|f(xbar) - f*| against the step and against the bits sent (both log) through
    :func:`jaxgossip.plots.plot_curves`: the mean over seeds with the band from the lowest to the highest seed,
    diverged runs marked and kept out of the y-range, one legend below."""
    from jaxgossip.plots import plot_curves

    rows = frame.assign(suboptimality=frame.suboptimality.abs())
    seeds = frame.seed.nunique()
    fig = plot_curves(rows, panels=(("step", "suboptimality"), ("bits", "suboptimality")), by="method",
                      band="range", logy=True, ylabel=r"$|f(\bar x) - f^\star|$ (float64)",
                      title="Zhao et al. 2022: BEER vs CHOCO-SGD with top-k, full gradients"
                            + (f"\n(mean over {seeds} seeds; band: min to max)" if seeds > 1 else ""))
    fig.axes[1].sharey(fig.axes[0])
    fig.axes[1].set_ylabel("")
    return fig


@register("zhao2022-beer", "Zhao et al. 2022 (BEER): with top-k and full gradients BEER converges linearly where "
                           "CHOCO-SGD levels off")
def zhao2022(size: str = "small", seeds=(0, 1)) -> Reproduction:
    """BEER vs CHOCO-SGD with top-k on a strongly convex heterogeneous problem (Zhao et al. 2022, Fig. 1 setting)."""
    import pandas as pd

    cfg = SIZES[size]
    with jax.enable_x64(True):
        frame = _runs(cfg, seeds)
    return Reproduction("zhao2022-beer", frame, pd.DataFrame(_verdicts(frame)), _plot(frame))
