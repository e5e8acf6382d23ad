"""Reisizadeh et al. (NeurIPS 2019), Sec. 5: QuanTimed-DSGD against DSGD and Q-DSGD in simulated time (Fig. 2-4).

Setup of the paper (MNIST rows): n = 50 workers on an Erdos-Renyi graph (p = 0.4) with W = I - L / kappa, m = 200
samples per worker, a one-hidden-layer MLP (50 hidden units), speeds V ~ Uniform(10, 90) samples per second, the deadline
T_d = b / E[V] for a target mean batch b (so QuanTimed's mean batch equals the fixed batch b of DSGD and Q-DSGD), and a
communication time T_c for one unquantized exchange, a quantized one costing in proportion to its bits. Step sizes as
in Sec. 5: (alpha, eps) = (0.3 / T^(1/6), 15 / T^(1/2)) for the quantized methods, alpha = 0.2 for DSGD.

What differs here: MNIST is replaced by mnist1d (generated offline; ``size="test"`` uses scikit-learn's digits on 10
workers so the test suite runs in seconds); our unquantized message is float32 (the paper's was 16-bit), so T_c is the
time of DSGD's float32 exchange and the 8-bit low-precision quantizer sends a quarter of it (the paper's ratio for 4
bits); eps is capped at 1. Each iteration's price comes from the library's own pricing (gossip over the busiest
worker's degree, latency 0, the bandwidth set so that DSGD's exchange takes T_c).
"""

from __future__ import annotations

import math

import numpy as np

from jaxgossip.reproduce import Reproduction, register

CONFIGS = {
    "test": dict(data="digits", num_samples=None, n=8, p=0.5, hidden=(8,), m=100, b=10, steps=160, eval_every=8,
                 t_c=3.0, sweep=(0.05, 0.25, 1.0, 4.0), sweep_t_c=1.0),
    "small": dict(data="mnist1d", num_samples=12500, n=50, p=0.4, hidden=(50,), m=200, b=20, steps=600, eval_every=20,
                  t_c=3.0, sweep=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0), sweep_t_c=1.0),
    "paper": dict(data="mnist1d", num_samples=12500, n=50, p=0.4, hidden=(50,), m=200, b=20, steps=3000, eval_every=50,
                  t_c=3.0, sweep=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0), sweep_t_c=1.0),
}

LABELS = {"dsgd": "DSGD", "q_dsgd": "Q-DSGD", "quantimed_dsgd": "QuanTimed-DSGD", "async_dsgd": "Asynchronous DSGD"}


def _jg():
    import jaxgossip as jg

    return jg


def setup(size: str = "small"):
    """The problem (fixed batch b), its copy with the cap m, the topology and the compute model of one size."""
    jg = _jg()
    cfg = CONFIGS[size]
    problem = jg.problems.mlp(cfg["data"], n_workers=cfg["n"], hidden=cfg["hidden"], batch_size=cfg["b"], seed=0,
                              num_samples=cfg["num_samples"])
    capped = problem.replace(batch_size=cfg["m"])
    topology = jg.topology.erdos_renyi(cfg["n"], cfg["p"], seed=0, weights="laplacian")
    compute = jg.ComputeModel.uniform(10.0, 90.0)
    return problem, capped, topology, compute


def calibrated_network(topology, d: int, t_c: float):
    """A latency-free network on which one float32 gossip exchange (the busiest worker's) takes ``t_c`` seconds."""
    jg = _jg()
    bits = 32.0 * d * topology.max_degree
    return jg.Network(latency=0.0, bandwidth=bits / 8.0 / t_c)


def algorithms(steps: int, deadline: float, include_async: bool = True) -> dict:
    """The compared algorithms with Sec. 5's step sizes; asynchronous DSGD when jaxgossip provides it."""
    jg = _jg()
    from jaxgossip.algorithms.quantimed import paper_step_sizes

    alpha, eps = paper_step_sizes(steps, 0.3, 15.0)
    eps = min(eps, 1.0)
    algos = {
        "dsgd": jg.algorithms.dpsgd(lr=0.2),
        "q_dsgd": jg.algorithms.q_dsgd(alpha=alpha, eps=eps),
        "quantimed_dsgd": jg.algorithms.quantimed_dsgd(alpha=alpha, eps=eps, deadline=deadline),
    }
    factory = _async_factory() if include_async else None
    if factory is not None:
        algos["async_dsgd"] = factory(lr=0.2)
    return algos


def _async_factory():
    """``async_dsgd`` from jaxgossip.algorithms.asynchronous (event-driven on the simulated clock), or None without it."""
    try:
        from jaxgossip.algorithms.asynchronous import async_dsgd
    except ImportError:
        return None
    return async_dsgd


def time_to_target(sim_time, loss, target) -> float:
    """The first simulated time at which the loss is <= target (inf if never)."""
    loss = np.asarray(loss, float)
    hit = np.flatnonzero(np.isfinite(loss) & (loss <= target))
    return float(np.asarray(sim_time, float)[hit[0]]) if len(hit) else math.inf


def loss_at_time(sim_time, loss, budget) -> float:
    """The loss at simulated time ``budget``, linearly interpolated between evaluations (NaN past the run's end)."""
    t, v = np.asarray(sim_time, float), np.asarray(loss, float)
    if budget > t[-1]:
        return math.nan
    return float(np.interp(budget, t, v))


def run_curves(size: str = "small", seeds=(0, 1, 2), include_async: bool = True):
    """Loss against simulated time for each algorithm and seed, as a tidy DataFrame."""
    import pandas as pd

    jg = _jg()
    cfg = CONFIGS[size]
    problem, capped, topology, compute = setup(size)
    network = calibrated_network(topology, problem.d, cfg["t_c"])
    deadline = cfg["b"] / 50.0  # T_d = b / E[V], E[V] = 50 for Uniform(10, 90)
    frames = []
    for seed in seeds:
        for key, algo in algorithms(cfg["steps"], deadline, include_async).items():
            prob = capped if key == "quantimed_dsgd" else problem
            per = cfg["n"] if key == "async_dsgd" else 1  # an asynchronous step is one worker's event, not a round
            res = jg.simulate(prob, algo, topology, steps=per * cfg["steps"], eval_every=per * cfg["eval_every"],
                              seed=seed, network=network, compute=compute, label=LABELS[key])
            df = res.to_pandas()[["label", "seed", "step", "sim_time", "loss", "bits"]]
            frames.append(df.assign(algorithm=key))
    return pd.concat(frames, ignore_index=True)


def speedups(frame) -> "pd.DataFrame":  # noqa: F821
    """Per seed: the target loss (the highest of the synchronous methods' best losses, so DSGD, Q-DSGD and
    QuanTimed-DSGD all reach it), each method's time to reach it (inf if never), and QuanTimed-DSGD's speedup."""
    import pandas as pd

    rows = []
    for seed, g in frame.groupby("seed"):
        best = g[g["algorithm"] != "async_dsgd"].groupby("algorithm")["loss"].min()
        target = float(best.max())
        times = {a: time_to_target(h["sim_time"], h["loss"], target) for a, h in g.groupby("algorithm")}
        for a, t in times.items():
            rows.append({"seed": seed, "algorithm": a, "target": target, "time_to_target": t,
                         "quantimed_speedup": t / times["quantimed_dsgd"]})
    return pd.DataFrame(rows)


def deadline_sweep(size: str = "small", seed: int = 0):
    """Fig. 4 right: the loss QuanTimed-DSGD reaches within a fixed simulated-time budget, for several deadlines.

    Deadlines are multiples of b / E[V]; T_c = ``sweep_t_c``. Every run takes the same number of iterations as the
    curves (so the sweep reuses their compiled program: the deadline is traced); the budget is 90% of the time the
    shortest deadline needs for them, so every run covers it.
    """
    import pandas as pd

    jg = _jg()
    cfg = CONFIGS[size]
    problem, capped, topology, compute = setup(size)
    network = calibrated_network(topology, problem.d, cfg["sweep_t_c"])
    base = cfg["b"] / 50.0
    comm = cfg["sweep_t_c"] * 8.0 / 32.0  # the 8-bit message: a quarter of the float32 exchange
    steps = cfg["steps"]
    budget = 0.9 * steps * (base * min(cfg["sweep"]) + comm)
    algo = algorithms(steps, base, include_async=False)["quantimed_dsgd"]
    rows = []
    for mult in cfg["sweep"]:
        deadline = base * mult
        res = jg.simulate(capped, algo.replace_hyper(deadline=deadline), topology, steps=steps,
                          eval_every=cfg["eval_every"], seed=seed, network=network, compute=compute)
        rows.append({"deadline": deadline, "deadline_over_base": mult, "mean_batch": min(cfg["m"], 50.0 * deadline),
                     "iterations": int(budget / (deadline + comm)), "budget": budget,
                     "loss_at_budget": loss_at_time(res.metrics["sim_time"], res.metrics["loss"], budget)})
    return pd.DataFrame(rows)


def _figure(frame, sweep):
    """Through :mod:`jaxgossip.plots`: loss against simulated time (mean over seeds, band from the lowest to the highest
    seed) and, for QuanTimed-DSGD, the loss within the time budget against the deadline (log axis); one legend."""
    from jaxgossip.plots import figure_legend, plot_curves, subplots

    order = [v for k, v in LABELS.items() if k in set(frame["algorithm"])]
    fig, (ax0, ax1) = subplots(2, width=4.2, height=3.4)
    seeds = frame["seed"].nunique()
    plot_curves(frame, panels=(("sim_time", "loss"),), axes=[ax0], band="range", order=order, legend=False)
    ax0.set_title("loss vs simulated time (Fig. 3-4 left)" + (f"\nmean over {seeds} seeds, band: min to max"
                                                               if seeds > 1 else ""), fontsize=10)
    points = sweep.assign(label=LABELS["quantimed_dsgd"], step=0)
    plot_curves(points, panels=(("deadline", "loss_at_budget"),), index="deadline", axes=[ax1], band=None,
                order=order, legend=False, logx=True, marker="o", xlabel=r"deadline $T_d$ (s)",
                ylabel=f"loss at the time budget ({float(sweep['budget'].iloc[0]):.3g} s)")
    ax1.set_title(f"effect of $T_d$ (Fig. 4 right), seed {int(frame['seed'].min())}", fontsize=10)
    figure_legend(fig, [ax0, ax1])
    fig.suptitle("Reisizadeh et al. 2019: QuanTimed-DSGD vs DSGD and Q-DSGD in simulated time")
    return fig


@register("reisizadeh2019", "Reisizadeh et al. 2019 Sec. 5: QuanTimed-DSGD vs DSGD, Q-DSGD (and asynchronous DSGD) in "
          "simulated time; speedup to a target loss; deadline sweep (Fig. 2-4)")
def reproduce(size: str = "small", seeds=(0, 1, 2), include_async: bool = True) -> Reproduction:
    """Run the comparison and the deadline sweep; print QuanTimed-DSGD's speedups to the target loss."""
    import pandas as pd

    frame = run_curves(size, seeds, include_async)
    sp = speedups(frame)
    sweep = deadline_sweep(size, seeds[0])
    verdicts = []
    for other in [a for a in sp["algorithm"].unique() if a != "quantimed_dsgd"]:
        s = sp[sp["algorithm"] == other]["quantimed_speedup"].to_numpy()
        claim = f"QuanTimed-DSGD reaches the target loss sooner in simulated time than {LABELS[other]}"
        verdicts.append({"claim": claim, "measured": "speedup per seed " + ", ".join(f"{v:.2f}x" for v in s),
                         "holds": bool(np.all(s > 1.0))})
        print(f"reisizadeh2019: QuanTimed-DSGD speedup to the target loss over {LABELS[other]}: "
              + ", ".join(f"{v:.2f}x" for v in s))
    finite = sweep.dropna(subset=["loss_at_budget"])
    best = finite.loc[finite["loss_at_budget"].idxmin()]
    interior = finite["deadline"].min() < best["deadline"] < finite["deadline"].max()
    verdicts.append({"claim": "an intermediate deadline T_d gives the lowest loss within a fixed time budget (Fig. 4 right)",
                     "measured": f"best T_d = {best['deadline']:.3g} s of {list(np.round(finite['deadline'], 3))}",
                     "holds": bool(interior)})
    frame = pd.concat([frame.assign(kind="curve"), sweep.assign(kind="deadline_sweep")], ignore_index=True)
    return Reproduction("reisizadeh2019", frame, pd.DataFrame(verdicts), _figure(frame[frame["kind"] == "curve"], sweep))
