"""Tang et al. (NeurIPS 2018), Fig. 3: time of one epoch against bandwidth and latency for AllReduce, decentralized
32-bit and decentralized 8-bit training.

The paper trains ResNet-20 on CIFAR-10 with 8 workers (one K80 GPU each; a ring for the decentralized runs; the default
CNTK batch per worker) and shapes the network with ``tc``: bandwidth from 1.4 Gbps down to 5 Mbps, latency from 0.13 ms
up. Here an epoch is priced with the library's own cost model (the same ``Pricing`` every algorithm's step uses): each
iteration costs the slowest worker's computation (speeds from the compute model) plus the closed-form communication,
ring AllReduce 2 (n - 1) alpha + 2 ((n - 1) / n) B beta for centralized training, and deg (alpha + B beta) on the ring for
decentralized training, B being the message of the float32 model or of the 8-bit quantized model (``quantize(8).bits``).

Assumptions (not in the paper's text): ResNet-20's 272,474 parameters, 128 samples per worker per iteration (CNTK's
ResNet-20 default), per-worker speeds Uniform(1000, 1400) images per second, and the "high latency" of
``jg.cost.HIGH_LATENCY`` (20 ms).
"""

from __future__ import annotations

import math

import numpy as np

from jaxgossip.reproduce import Reproduction, register

RESNET20_PARAMS = 272_474
CIFAR10_TRAIN = 50_000
BATCH = 128
N_WORKERS = 8
SPEEDS = (1000.0, 1400.0)
GOOD_BANDWIDTH, BAD_BANDWIDTH = 1.4e9 / 8, 5e6 / 8  # bytes per second
LOW_LATENCY = 0.13e-3

GRIDS = {
    "test": dict(bandwidths_mbps=(1400, 100, 5), latencies_ms=(0.13, 5, 20), iterations=None),
    "small": dict(bandwidths_mbps=(1400, 1000, 500, 200, 100, 50, 20, 10, 5), latencies_ms=(0.13, 0.5, 1, 2, 5, 10, 20),
                  iterations=None),
    "paper": dict(bandwidths_mbps=tuple(np.geomspace(1400, 5, 16).round(2)), latencies_ms=tuple(np.geomspace(0.13, 20, 12).round(3)),
                  iterations=None),
}

METHODS = ("AllReduce", "Decentralized 32bits", "Decentralized 8bits")


def message_bits(method: str, d: int = RESNET20_PARAMS):
    """Bits of one message: the float32 model, or the 8-bit quantized one (knob indices plus min and max)."""
    import jaxgossip as jg

    if method == "Decentralized 8bits":
        return float(jg.compressors.quantize(bits=8).bits(d))
    return float(jg.compressors.identity().bits(d))


def iterations_per_epoch(n: int = N_WORKERS, batch: int = BATCH, samples: int = CIFAR10_TRAIN) -> int:
    return math.ceil(samples / (n * batch))


def _epoch_fn():
    import jax
    import jax.numpy as jnp

    from jaxgossip.cost import Pricing

    def epoch(network, compute, degrees, key, *, method, n, bits, batch, iters):
        pricing = Pricing(network, compute, degrees, n)
        keys = jax.vmap(lambda t: jax.random.fold_in(key, t))(jnp.arange(iters))
        if method == "AllReduce":
            step = lambda k: pricing.allreduce(k, bits, batch).seconds  # noqa: E731
        else:
            step = lambda k: pricing.gossip(k, bits, batch).seconds  # noqa: E731
        return jnp.sum(jax.vmap(step)(keys))

    return jax.jit(epoch, static_argnames=("method", "n", "bits", "batch", "iters"))


def epoch_time(method: str, latency: float, bandwidth: float, seed: int = 0, n: int = N_WORKERS, batch: int = BATCH,
               d: int = RESNET20_PARAMS, speeds=SPEEDS, iters: int | None = None) -> float:
    """Simulated seconds of one epoch for ``method`` (one of METHODS) on a network of ``latency`` s and ``bandwidth``
    bytes/s; per-iteration speeds drawn from Uniform(speeds) with ``seed``."""
    import jax
    import jax.numpy as jnp

    import jaxgossip as jg

    if method not in METHODS:
        raise ValueError(f"epoch_time: method must be one of {METHODS}, got {method!r}.")
    fn = _EPOCH.get("fn") or _EPOCH.setdefault("fn", _epoch_fn())
    degrees = jnp.asarray(jg.topology.ring(n).degrees, jnp.float32)
    iters = iters or iterations_per_epoch(n, batch)
    out = fn(jg.Network(latency=latency, bandwidth=bandwidth), jg.ComputeModel.uniform(*speeds), degrees,
             jax.random.key(seed), method=method, n=n, bits=message_bits(method, d), batch=batch, iters=iters)
    return float(out)


_EPOCH: dict = {}


def run_grid(size: str = "small", seeds=(0, 1, 2)):
    """Epoch times over the four sweeps of Fig. 3 (a: bandwidth at low latency, b: bandwidth at high latency,
    c: latency at 1.4 Gbps, d: latency at 5 Mbps), for every method and seed; a tidy DataFrame."""
    import pandas as pd

    from jaxgossip.cost import HIGH_LATENCY

    g = GRIDS[size]
    panels = []
    for mbps in g["bandwidths_mbps"]:
        panels.append(("a", "bandwidth", LOW_LATENCY, mbps * 1e6 / 8))
        panels.append(("b", "bandwidth", HIGH_LATENCY, mbps * 1e6 / 8))
    for ms in g["latencies_ms"]:
        panels.append(("c", "latency", ms * 1e-3, GOOD_BANDWIDTH))
        panels.append(("d", "latency", ms * 1e-3, BAD_BANDWIDTH))
    rows = []
    for panel, swept, lat, bw in panels:
        for method in METHODS:
            for seed in seeds:
                rows.append({"panel": panel, "swept": swept, "latency_ms": lat * 1e3, "bandwidth_mbps": bw * 8 / 1e6,
                             "method": method, "seed": seed,
                             "epoch_time": epoch_time(method, lat, bw, seed, iters=g["iterations"])})
    return pd.DataFrame(rows)


def _at(frame, latency, bandwidth):
    sel = frame[np.isclose(frame["latency_ms"], latency * 1e3) & np.isclose(frame["bandwidth_mbps"], bandwidth * 8 / 1e6)]
    return sel.groupby(["seed", "method"])["epoch_time"].first().unstack("method")


def verdicts(frame):
    """The paper's Sec. 5.3 claims, checked per seed."""
    import pandas as pd

    from jaxgossip.cost import HIGH_LATENCY

    out = []
    worst = _at(frame, HIGH_LATENCY, BAD_BANDWIDTH)
    fastest = worst.idxmin(axis=1)
    out.append({"claim": "at high latency and low bandwidth decentralized 8-bit is fastest per epoch",
                "measured": "; ".join(f"{m}: {worst[m].mean():.1f}s" for m in METHODS),
                "holds": bool((fastest == "Decentralized 8bits").all())})
    best = _at(frame, LOW_LATENCY, GOOD_BANDWIDTH)
    spread = best.max(axis=1) / best.min(axis=1)
    out.append({"claim": "with the best network (1.4 Gbps, 0.13 ms) all methods are close (within 15%)",
                "measured": f"max / min epoch time {spread.max():.3f}; " + "; ".join(f"{m}: {best[m].mean():.2f}s" for m in METHODS),
                "holds": bool((spread < 1.15).all())})
    low_bw = _at(frame, LOW_LATENCY, BAD_BANDWIDTH)
    ratio = low_bw["Decentralized 32bits"] / low_bw["AllReduce"]
    out.append({"claim": "at low latency and low bandwidth 8-bit beats 32-bit, and decentralized 32-bit is no better "
                         "than AllReduce (same data volume)",
                "measured": f"dec32 / allreduce {ratio.mean():.3f}; dec8 / dec32 "
                            f"{(low_bw['Decentralized 8bits'] / low_bw['Decentralized 32bits']).mean():.3f}",
                "holds": bool(((low_bw["Decentralized 8bits"] < low_bw["Decentralized 32bits"]) & (ratio >= 1.0)).all())})
    hl = _at(frame, HIGH_LATENCY, GOOD_BANDWIDTH)
    out.append({"claim": "at high latency and high bandwidth both decentralized variants beat AllReduce",
                "measured": "; ".join(f"{m}: {hl[m].mean():.2f}s" for m in METHODS),
                "holds": bool(((hl["Decentralized 32bits"] < hl["AllReduce"]) & (hl["Decentralized 8bits"] < hl["AllReduce"])).all())})
    return pd.DataFrame(out)


def _figure(frame):
    """The four panels of Fig. 3 through :mod:`jaxgossip.plots`: time per epoch (mean over seeds, band from the lowest
    to the highest seed) against bandwidth or latency on a log axis, the time on a log axis where it spans a decade,
    one legend below."""
    from jaxgossip.plots import figure_legend, plot_curves, subplots

    titles = {"a": "(a) latency 0.13 ms", "b": "(b) high latency (20 ms)", "c": "(c) bandwidth 1.4 Gbps",
              "d": "(d) bandwidth 5 Mbps"}
    fig, axes = subplots(4, width=3.4, height=3.0)
    for ax, panel in zip(axes, "abcd"):
        x = "bandwidth_mbps" if panel in "ab" else "latency_ms"
        plot_curves(frame[frame["panel"] == panel], panels=((x, "epoch_time"),), by="method", index=x, axes=[ax],
                    band="range", logx=True, logy="auto", order=METHODS, legend=False, marker="o",
                    xlabel="bandwidth (Mbps)" if panel in "ab" else "latency (ms)", ylabel="time per epoch (s)")
        ax.set_title(titles[panel], fontsize=10)
    figure_legend(fig, axes, ncol=3)
    seeds = frame["seed"].nunique()
    fig.suptitle(f"Tang et al. 2018 Fig. 3: ResNet-20 epoch on {N_WORKERS} workers, priced by the cost model"
                 + (f" (mean over {seeds} seeds)" if seeds > 1 else ""))
    return fig


@register("tang2018-fig3", "Tang et al. 2018 Fig. 3: time per epoch vs bandwidth and latency for AllReduce, "
          "decentralized 32-bit and 8-bit (alpha-beta network + compute model)")
def reproduce(size: str = "small", seeds=(0, 1, 2)) -> Reproduction:
    frame = run_grid(size, seeds)
    return Reproduction("tang2018-fig3", frame, verdicts(frame), _figure(frame))
