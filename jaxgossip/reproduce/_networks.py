"""Shared pieces of the network reproductions (``tang2018-resnet``, ``reisizadeh2019-nn``, ``deepsqueeze-resnet``).

- :func:`paper_data`: the paper-size data sets read from ``data_dir`` (CIFAR-10, MNIST) with a clear error naming the
  expected files, raised before anything compiles;
- :func:`image_problem`: a network problem from arrays or a built-in set (``jg.problems.from_flax``);
- :func:`run_grid`: every (label, algorithm) over seeds on one network / compute model, with an ``epoch`` column;
- :func:`add_epochs`, :func:`steps_per_epoch`: epochs from steps (n workers x batch samples per step);
- :func:`reprice`: the simulated time the same runs take under other network conditions (alpha-beta model);
- :func:`estimate_seconds`: before a paper-size run, time a few compiled steps of one configuration and print the
  extrapolated wall time on this machine.
"""

from __future__ import annotations

import math
import sys
import time
import warnings

import numpy as np

__all__ = ["paper_data", "image_problem", "run_grid", "add_epochs", "steps_per_epoch", "reprice", "estimate_seconds",
           "final", "finals", "fmt", "format_duration"]


def _jg():
    import jaxgossip as jg

    return jg


# ---- data -----------------------------------------------------------------------------------------------------------
def paper_data(name: str, data_dir, reproduction: str):
    """``(X_train, y_train, X_test, y_test)`` of ``name`` ("cifar10" or "mnist") read from ``data_dir`` (or its
    subdirectory ``name``; CIFAR-10 also from ``cifar-10-batches-py``), as float32 in [0, 1] (images keep their shape).

    Raises:
      ValueError: when ``data_dir`` is not given (naming the files to put there and the CLI flag).
      FileNotFoundError: when the directory or a file is missing (the message names where it looked and the files).
    """
    jg = _jg()
    from jaxgossip.data.disk import _describe

    if data_dir is None:
        raise ValueError(f"{reproduction}: size='paper' reads {name} from disk; pass data_dir=DIR (CLI: --data-dir "
                         f"DIR), a directory holding {_describe(name)}. Nothing is downloaded.")
    import os

    sub = os.path.join(os.path.expanduser(os.fspath(data_dir)), name)
    try:
        Xtr, ytr, Xte, yte = jg.data.load(name, data_dir)
    except FileNotFoundError as err:
        if not os.path.isdir(sub):
            raise FileNotFoundError(f"{reproduction} (size='paper'): {err}") from None
        try:  # data_dir/<name>/ (e.g. data_dir/mnist/ beside data_dir/cifar-10-batches-py/)
            Xtr, ytr, Xte, yte = jg.data.load(name, sub)
        except FileNotFoundError:
            raise FileNotFoundError(f"{reproduction} (size='paper'): {err} (nor in {sub!r})") from None
    return Xtr.astype(np.float32) / 255.0, ytr, Xte.astype(np.float32) / 255.0, yte


def standardize_channels(Xtr, Xte):
    """Per-channel standardization with the training part's mean and std (the last axis is the channel)."""
    axes = tuple(range(Xtr.ndim - 1))
    mean, std = Xtr.mean(axis=axes, keepdims=True), Xtr.std(axis=axes, keepdims=True) + 1e-8
    return ((Xtr - mean) / std).astype(np.float32), ((Xte - mean) / std).astype(np.float32)


def image_problem(module, data, *, n_workers: int, batch_size: int, seed: int = 0, **kwargs):
    """``jg.problems.from_flax(module, data, ...)`` with the reproductions' defaults (iid partition)."""
    jg = _jg()
    return jg.problems.from_flax(module, data, n_workers=n_workers, batch_size=batch_size, seed=seed, **kwargs)


#: ``simulate``'s shard per size: not at "test" (tiny stacks; see :func:`run_grid`), "auto" otherwise.
SHARD = {"test": False, "small": "auto", "paper": "auto"}


# ---- epochs and runs -------------------------------------------------------------------------------------------------
def train_samples(problem) -> int:
    return int(np.asarray(problem.counts).sum())


def steps_per_epoch(problem) -> float:
    """Steps of one epoch: the training set over (n workers x the per-worker batch)."""
    n = int(problem.data_x.shape[0])
    return train_samples(problem) / (n * int(problem.batch_size))


def epochs_to_steps(problem, epochs: float) -> int:
    return int(math.ceil(epochs * steps_per_epoch(problem)))


def add_epochs(frame, problem):
    """The frame with an ``epoch`` column: step x n x batch / training samples."""
    return frame.assign(epoch=frame["step"].to_numpy(float) / steps_per_epoch(problem))


def run_grid(problem, topology, configs, steps, eval_every, seeds, *, network=None, compute=None, metrics=None,
             per_step=None, extra=None, shard="auto"):
    """Run every ``(label, algorithm)`` over seeds; returns (tidy frame with ``epoch``, {label: [Result per seed]}).

    ``per_step``: {label: k} for event-driven algorithms whose step is one worker's event (k = n steps per round);
    their ``step`` column is divided by k so epochs compare. ``extra``: {label: problem} to run a label on another
    problem (e.g. QuanTimed-DSGD's copy with the cap m). ``topology`` may be {label: topology}.
    """
    import pandas as pd

    jg = _jg()
    per_step, extra = per_step or {}, extra or {}
    results, frames = {}, []
    for label, algo in configs:
        k = int(per_step.get(label, 1))
        prob = extra.get(label, problem)
        topo = topology[label] if isinstance(topology, dict) else topology
        for seed in seeds:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # DCD's Thm. 1 warning: part of the study
                r = jg.simulate(prob, algo, topo, steps=k * steps, eval_every=k * eval_every, seed=seed, label=label,
                                progress=False, shard=shard, network=network, compute=compute, metrics=metrics)
            results.setdefault(label, []).append(r)
            df = r.to_pandas()
            if k != 1:
                df = df.assign(step=df["step"] / k)
            dstep = int(r.diverged_step) if r.diverged and r.diverged_step is not None else -1
            frames.append(add_epochs(df, problem).assign(diverged=bool(r.diverged), diverged_step=dstep // k))
    return pd.concat(frames, ignore_index=True), results


def reprice(frame, topology, networks: dict, run_network, allreduce_labels=()):
    """Columns ``sim_time_<name>``: the simulated time of the same runs under each network of ``networks``.

    The trajectory of a synchronous algorithm does not depend on the network; only the price of its messages does. Per
    evaluation interval the bits sent give the message size (gossip: bits / (messages sent, the sum of the out-degrees)
    per message, the busiest worker sending or receiving max(max out-degree, max in-degree) of them one at a time, on
    each step's own graph for a time-varying sequence, as ``simulate`` prices them; AllReduce: bits / (2 (n - 1)) per
    vector), and the alpha-beta model of :class:`jaxgossip.Network` gives its seconds; the computation time (what the
    run's simulated time holds beyond its own network's price) is kept.
    """
    n = topology.n
    sends, receives = _jg().topology.step_degrees(topology)  # (K, n): step t is priced on graph t % K
    graph_msgs, graph_busy = sends.sum(1), np.maximum(sends.max(1), receives.max(1))
    out = frame.copy()
    for name in networks:
        out[f"sim_time_{name}"] = np.nan
    for (label, seed), g in frame.groupby(["label", "seed"], sort=False):
        g = g.sort_values("step")
        steps = g["step"].to_numpy(float)
        dsteps = np.diff(steps, prepend=steps[0])
        dbits = np.diff(g["bits"].to_numpy(float), prepend=g["bits"].to_numpy(float)[0])
        dtime = np.diff(g["sim_time"].to_numpy(float), prepend=g["sim_time"].to_numpy(float)[0])
        if len(graph_msgs) == 1:
            msgs, busiest = graph_msgs[0], graph_busy[0]
        else:  # the per-step averages over each interval's graphs
            msgs, busiest = (_over_steps(graph_msgs, steps) / np.maximum(dsteps, 1),
                             _over_steps(graph_busy, steps) / np.maximum(dsteps, 1))
        with np.errstate(invalid="ignore", divide="ignore"):
            if label in allreduce_labels:
                msg = np.where(dsteps > 0, dbits / np.maximum(dsteps, 1) / (2 * (n - 1)), 0.0)

                def comm(net, msg=msg):
                    return float(net.latency) * 2 * (n - 1) + 2 * (n - 1) / n * msg / 8 / float(net.bandwidth)
            else:
                msg = np.where(dsteps > 0, dbits / np.maximum(dsteps, 1) / msgs, 0.0)

                def comm(net, msg=msg, busiest=busiest):
                    return busiest * (float(net.latency) + msg / 8 / float(net.bandwidth))
        compute = dtime - dsteps * comm(run_network)
        for name, net in networks.items():
            out.loc[g.index, f"sim_time_{name}"] = np.cumsum(compute + dsteps * comm(net))
    return out


def _over_steps(per_graph, steps):
    """Per evaluation interval ending at ``steps[k]`` (the first from itself), the sum of ``per_graph[t % K]`` over
    its steps t = steps[k-1] .. steps[k] - 1."""
    K = len(per_graph)
    before = np.concatenate([[0.0], np.cumsum(per_graph)])  # before[r]: the sum over graphs 0 .. r - 1

    def upto(s):  # sum over steps 0 .. s - 1
        s = np.asarray(s).astype(np.int64)
        return (s // K) * before[K] + before[s % K]

    total = upto(steps)
    return np.diff(total, prepend=total[0])


def figure(frame, title, panels, order=None, xlabel=None):
    """Curves of a :func:`run_grid` frame through :func:`jaxgossip.plots.plot_curves`: mean over seeds, the band from
    the lowest to the highest seed, diverged runs cut where they diverged, one legend below."""
    from jaxgossip.plots import plot_curves

    seeds = frame["seed"].nunique()
    title = f"{title}\n(mean over {seeds} seeds; band: min to max)" if seeds > 1 else title
    fig = plot_curves(frame, panels=panels, band="range", order=order or list(dict.fromkeys(frame["label"])),
                      title=title, logx=False)
    for ax, (x, _) in zip(fig.axes, panels):
        if x in XLABELS:
            ax.set_xlabel(XLABELS[x])
    return fig


XLABELS = {"epoch": "epoch", "sim_time_best": "simulated time (s), 1.4 Gbps, 0.13 ms",
           "sim_time_low_bandwidth": "simulated time (s), 5 Mbps, 0.13 ms",
           "sim_time_high_latency": "simulated time (s), 1.4 Gbps, 20 ms",
           "sim_time_high_latency_low_bandwidth": "simulated time (s), 5 Mbps, 20 ms"}


# ---- summaries ----------------------------------------------------------------------------------------------------
def final(run, metric="loss", last=3) -> float:
    """The mean of the last ``last`` evaluations of one run (inf if it diverged or is not finite)."""
    v = np.asarray(run.metrics[metric], float)[-last:]
    return math.inf if run.diverged or not np.all(np.isfinite(v)) else float(np.mean(v))


def finals(runs, metric="loss", last=3) -> list:
    return [final(r, metric, last) for r in runs]


def fmt(vals) -> str:
    return ", ".join("diverged" if not np.isfinite(v) else f"{v:.3g}" for v in vals)


def format_duration(seconds: float) -> str:
    seconds = max(0.0, float(seconds))
    h, m = int(seconds // 3600), int(round((seconds % 3600) / 60))
    if m == 60:
        h, m = h + 1, 0
    if h:
        return f"{h} h {m} min"
    if seconds >= 60:
        return f"{m} min"
    return f"{seconds:.0f} s"


# ---- time estimate ------------------------------------------------------------------------------------------------
def estimate_seconds(problem, algorithm, topology=None, *, steps: int, runs: int, configurations: int = 1,
                     evals: int | None = None, metrics=None, probe_steps: int = 4, network=None, compute=None,
                     name: str = "", file=None) -> float:
    """The wall time, on this machine, of ``runs`` runs of ``steps`` steps (over ``configurations`` compiled programs),
    from timing ``probe_steps`` compiled steps of ``algorithm`` on ``problem``; prints the estimate and returns it.

    The probe compiles once (its compile time is counted once per configuration), then runs the same program again
    (another seed) to time ``probe_steps`` steps. With ``evals`` (the planned evaluations per run) one evaluation of
    ``metrics`` is timed on its own and the two the probe run holds (the initial one and one at its end) are taken out
    of the per-step time, then ``evals + 1`` are added per run; without it they stay in the per-step time (an
    upper-side estimate).

    Args:
      problem, algorithm, topology, network, compute, metrics: one configuration of the planned runs.
      steps: steps of each planned run. runs: planned runs (configurations x seeds).
      configurations: distinct compiled programs among them. evals: evaluations per planned run (optional).
      probe_steps: steps to time. name: printed before the estimate. file: where to print (default: standard error).
    """
    import jax
    import jax.numpy as jnp

    jg = _jg()
    file = sys.stderr if file is None else file
    kw = dict(steps=probe_steps, eval_every=probe_steps, network=network, compute=compute, progress=False,
              metrics=metrics)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        t0 = time.perf_counter()
        jg.simulate(problem, algorithm, topology, seed=0, **kw)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        jg.simulate(problem, algorithm, topology, seed=1, **kw)
        second = time.perf_counter() - t0
    t_eval = 0.0
    if evals is not None:
        prob = problem.replace(metrics=("loss",) + tuple(m for m in (metrics or ()) if m != "loss"))
        prob = prob.replace(worker_state=prob.stacked_state())  # timing only: the initial statistics will do
        X = jnp.broadcast_to(prob.x0, (int(prob.data_x.shape[0]), prob.d))
        evaluate = jax.jit(lambda p, X: p.evaluate(X))
        jax.block_until_ready(evaluate(prob, X))
        t0 = time.perf_counter()
        jax.block_until_ready(evaluate(prob, X))
        t_eval = time.perf_counter() - t0
    per_step = max(second - 2 * t_eval, 0.0) / probe_steps if evals is not None else second / probe_steps
    compile_s = max(first - second, 0.0)
    per_run = steps * per_step + ((evals + 1) * t_eval if evals is not None else 0.0)
    total = runs * per_run + configurations * compile_s
    prefix = f"{name}: " if name else ""
    ev = f", {t_eval:.3g} s per evaluation x {evals + 1}" if evals is not None else ""
    print(f"{prefix}estimated: ~{format_duration(total)} on this machine ({runs} runs of {steps} steps, "
          f"{per_step:.3g} s/step{ev}, ~{compile_s:.0f} s to compile each of {configurations} configurations)",
          file=file, flush=True)
    return float(max(total, 1e-9))
