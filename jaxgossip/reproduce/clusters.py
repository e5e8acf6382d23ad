"""Two clusters joined by a slow link: gossip reaches a target sooner in simulated time than ring AllReduce (issue 23's
second claim: paper 000's high-latency argument, Tang et al. 2018, Sec. 1 and 5.3, now priced per link).

Setting: 16 workers in two clusters of 8 (``jg.Network.clusters((8, 8), inside=(0.1 ms, 10 Gbps), between=(50 ms,
100 Mbps))``), multinomial logistic regression on the digits data (iid shares), a constant step, compute at the
default 1000 samples/s. Three methods:

* ring AllReduce (C-PSGD, ``jg.algorithms.cpsgd``): the ring over workers 0..15 in index order crosses the slow link
  twice, and each of its 2 (n - 1) phases waits for its slowest link: 30 slow latencies per step;
* D-PSGD on ring(16) in the same order: it crosses the slow link twice, so each boundary worker sends one slow and
  one fast message per round (a round lasts one slow plus one fast message);
* D-PSGD on two rings of 8 joined by one crossing pair (workers 7 and 8): one slow and two fast messages per round
  for the two bridge workers, and slower mixing (a smaller spectral gap).

Verdicts, over every seed: (1) each method's simulated seconds per step equal the per-link model's hand computation
(compute plus the busiest worker's messages over its own links); (2) both decentralized runs reach the loss the
AllReduce run has at :data:`TARGET_AT` of its run in fewer simulated seconds than AllReduce takes to get there.

Measured (``jaxgossip reproduce clusters --size small``, two seeds, this 2-core CPU): every verdict holds; seconds
per step: AllReduce 1.508, D-PSGD ring 0.0584, two rings + bridge 0.0585.
"""

from __future__ import annotations

import numpy as np

from jaxgossip.reproduce import Reproduction, register
from jaxgossip.reproduce._common import band_panel, digits_factory, first_reach, step_at, verdict_rows

__all__ = ["clusters", "SIZES", "TARGET_AT", "INSIDE", "BETWEEN", "network", "bridged_rings"]

INSIDE = (0.1e-3, 10e9 / 8)  # 0.1 ms, 10 Gbps
BETWEEN = (50e-3, 100e6 / 8)  # 50 ms, 100 Mbps
SIZES = {
    "test": dict(n=16, steps=200, eval_every=10, lr=0.1, batch=8, reg=0.01),
    "small": dict(n=16, steps=1000, eval_every=10, lr=0.1, batch=8, reg=0.01),
    "paper": dict(n=16, steps=3000, eval_every=25, lr=0.1, batch=8, reg=0.01),
}
#: the target: AllReduce's loss at this fraction of its run (every run takes the same number of steps)
TARGET_AT = 0.25
ALLREDUCE, RING, BRIDGE = "ring AllReduce", "D-PSGD, ring (2 slow crossings)", "D-PSGD, two rings + 1 crossing pair"


def network(n: int = 16):
    """The two-cluster per-link network of the claim."""
    import jaxgossip as jg

    return jg.Network.clusters((n // 2, n - n // 2), inside=INSIDE, between=BETWEEN)


def bridged_rings(n: int = 16):
    """Two rings of n/2 workers (0..n/2-1 and n/2..n-1) joined by one edge (n/2 - 1, n/2); Metropolis weights."""
    import jaxgossip as jg

    h = n // 2
    A = np.zeros((n, n), int)
    for lo, size in ((0, h), (h, n - h)):
        for k in range(size):
            i, j = lo + k, lo + (k + 1) % size
            A[i, j] = A[j, i] = 1
    A[h - 1, h] = A[h, h - 1] = 1
    return jg.topology.from_adjacency(A, name=f"bridged_rings({n})")


def _expected_seconds(cfg, d):
    """Hand computation of one step's simulated seconds for each method (the per-link model, see the module
    docstring): compute (batch / 1000 samples/s), then the busiest worker's messages over its own links."""
    bits = 32.0 * d
    msg = lambda link: link[0] + bits / 8.0 / link[1]  # noqa: E731
    compute = cfg["batch"] / 1000.0
    n = cfg["n"]
    chunk = lambda link: link[0] + bits / n / 8.0 / link[1]  # noqa: E731
    return {ALLREDUCE: compute + 2 * (n - 1) * chunk(BETWEEN),
            RING: compute + msg(BETWEEN) + msg(INSIDE),
            BRIDGE: compute + msg(BETWEEN) + 2 * msg(INSIDE)}


def _runs(cfg, seeds):
    import pandas as pd

    import jaxgossip as jg

    factory = digits_factory(cfg)
    n = cfg["n"]
    A = jg.algorithms
    methods = {ALLREDUCE: (A.cpsgd(lr=cfg["lr"]), None), RING: (A.dpsgd(lr=cfg["lr"]), jg.topology.ring(n)),
               BRIDGE: (A.dpsgd(lr=cfg["lr"]), bridged_rings(n))}
    frames = []
    for name, (algo, topo) in methods.items():
        df = jg.sweep(factory, algo, topo, steps=cfg["steps"], eval_every=cfg["eval_every"],
                      seeds=tuple(int(s) for s in seeds), network=network(n), metrics=("loss", "consensus"))
        frames.append(df.assign(method=name)[["seed", "method", "step", "loss", "consensus", "bits", "sim_time"]])
    return pd.concat(frames, ignore_index=True), factory(seeds[0]).d


def _verdicts(frame, cfg, d):
    out, add = verdict_rows()
    seeds = sorted(frame.seed.unique())
    expected = _expected_seconds(cfg, d)

    def curve(m, s):
        return frame[(frame.method == m) & (frame.seed == s)].sort_values("step")

    per_step = {(m, s): float(curve(m, s).sim_time.iloc[-1] / curve(m, s).step.iloc[-1]) for m in expected
                for s in seeds}
    add("each step is priced per link: compute, then the busiest worker's messages over its own links",
        "seconds per step measured (hand-computed): " + "; ".join(
            f"{m}: {per_step[m, seeds[0]]:.4f} ({expected[m]:.4f})" for m in expected),
        all(np.isclose(v, expected[m], rtol=1e-4) for (m, _), v in per_step.items()))

    rows = []
    at = step_at(frame, TARGET_AT)
    for s in seeds:
        base = curve(ALLREDUCE, s)
        target = float(base[base.step == at].loss.iloc[0])
        rows.append({m: first_reach(curve(m, s), target, "loss", "sim_time") for m in expected})
    add("the decentralized runs reach a target loss sooner in simulated seconds than ring AllReduce",
        f"simulated seconds to AllReduce's loss at step {int(at)}, per seed: " + "; ".join(
            ", ".join(f"{m}: {r[m]:.1f}" for m in expected) for r in rows),
        all(r[RING] < r[ALLREDUCE] and r[BRIDGE] < r[ALLREDUCE] for r in rows))
    return out


def _plot(frame):
    """Loss against simulated seconds (log) and against the step."""
    from jaxgossip.plots import figure_legend, subplots

    fig, axes = subplots(2, width=4.2, height=3.3)
    order = [ALLREDUCE, RING, BRIDGE]
    band_panel(axes[0], frame[frame.sim_time > 0], "sim_time", "loss", "method", order, logx=True)
    band_panel(axes[1], frame, "step", "loss", "method", order)
    figure_legend(fig, axes)
    fig.suptitle("Two clusters of 8 (0.1 ms / 10 Gbps inside, 50 ms / 100 Mbps between)")
    return fig


@register("clusters", "Two clusters of 8 joined by a slow link: D-PSGD (ring, or two rings with one crossing pair) "
                      "reaches ring AllReduce's loss sooner in simulated seconds")
def clusters(size: str = "small", seeds=(0, 1)) -> Reproduction:
    """Ring AllReduce against D-PSGD on two graphs over a two-cluster network (see the module docstring)."""
    import pandas as pd

    cfg = SIZES[size]
    frame, d = _runs(cfg, seeds)
    return Reproduction("clusters", frame, pd.DataFrame(_verdicts(frame, cfg, d)), _plot(frame))
