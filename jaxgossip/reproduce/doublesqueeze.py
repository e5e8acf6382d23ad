"""Tang et al. (2019b), DoubleSqueeze, as the slides and the survey (Sec. 3.3) present it: 1-bit compression both ways.

A non-convex problem (a flax MLP on digits, or mnist1d at paper size) is trained on a parameter server by

* SGD (C-PSGD, full-precision messages both ways: 2N full vectors per iteration),
* CSGD (survey eq. 3.2, Q(mean_i Q(g_i)), no error compensation: 2cN vectors),
* single-compression EC-SGD (workers compress with error compensation, the server replies in full: N(1 + c)),
* DoubleSqueeze (error compensation on workers and server: 2cN),

with Q the 1-bit scaled sign (c ~ 1/32), every configuration over several seeds in one vmapped program per algorithm
(:func:`jaxgossip.sweep.sweep`). The claims checked: CSGD without error compensation ends at a clearly worse loss than
SGD; DoubleSqueeze follows SGD iteration for iteration; DoubleSqueeze exchanges about 2/32 of N full vectors per
iteration (1/32 of SGD's 2N). A table repeats the three compressed schemes over several compressors
(``Reproduction.table``: final loss, accuracy and vectors per iteration per compressor x scheme).
"""

from __future__ import annotations

import numpy as np

from jaxgossip.reproduce import Reproduction, register

SIZES = {
    "test": dict(data="digits", hidden=(16,), n=4, batch=8, steps=240, eval_every=40, lr=0.1, table=("sign",)),
    "small": dict(data="digits", hidden=(32,), n=8, batch=16, steps=400, eval_every=20, lr=0.1,
                  table=("sign", "top_k", "clip_low_bits", "quantize2")),
    "paper": dict(data="mnist1d", hidden=(256, 256), n=8, batch=32, steps=5000, eval_every=100, lr=0.05,
                  table=("sign", "top_k", "clip_low_bits", "quantize2", "random_k")),
}

SCHEMES = ("csgd", "single_ec", "double_ec")

#: tolerances of the verdicts
WORSE_FACTOR = 1.5  # CSGD's final loss is at least this many times SGD's
FOLLOW_TOL = 0.15  # DoubleSqueeze's final loss is within this relative gap of SGD's
FOLLOW_SHARE = 1 / 3  # at every evaluation DoubleSqueeze's loss gap to SGD is at most this share of CSGD's


def compressor(name: str, d: int):
    """The compressors of the table: 1-bit scaled sign, top-k and random-k (unscaled) at 1/32 of the values, clipping
    of 20 low mantissa bits, 2-bit randomized quantization."""
    import jaxgossip as jg

    C = jg.compressors
    k = max(1, d // 32)
    return {"sign": C.sign, "top_k": lambda: C.top_k(k=k), "random_k": lambda: C.random_k(k=k, scaled=False),
            "clip_low_bits": lambda: C.clip_low_bits(20), "quantize2": lambda: C.quantize(bits=2)}[name]()


def _algorithms(cfg, names, d):
    import jaxgossip as jg

    A = jg.algorithms
    lr = cfg["lr"]
    algos = {"sgd": A.cpsgd(lr, pattern="parameter_server")}
    for cname in names:
        comp = compressor(cname, d)
        algos[f"csgd/{cname}"] = A.csgd(lr, comp, servers="single")  # the slides' one-server PS (2cN)
        algos[f"single_ec/{cname}"] = A.ec_sgd(lr, comp, compression="single")
        algos[f"double_ec/{cname}"] = A.doublesqueeze(lr, comp)
    return algos


def _final(frame, label):
    rows = frame[frame["label"] == label]
    last = rows[rows["step"] == rows["step"].max()].sort_values("seed")
    return last["loss"].to_numpy(), last


def make_table(frame, n, d, vectors):
    """Final loss / accuracy (mean over seeds) and vectors per iteration, one row per compressor x scheme."""
    import pandas as pd

    rows = []
    for label in frame["label"].unique():
        loss, last = _final(frame, label)
        scheme, cname = (label.split("/") + ["none"])[:2]
        rows.append({"compressor": cname, "scheme": scheme, "final_loss": float(np.mean(loss)),
                     "final_accuracy": float(last["accuracy"].mean()), "vectors_per_iteration": vectors[label],
                     "vectors_over_N": vectors[label] / n, "diverged": bool(last["diverged"].any())})
    return pd.DataFrame(rows)


def _verdicts(frame, vectors, n):
    import pandas as pd

    sgd, _ = _final(frame, "sgd")
    cs, _ = _final(frame, "csgd/sign")
    ds, _ = _final(frame, "double_ec/sign")
    out = []

    def add(claim, measured, holds):
        out.append({"claim": claim, "measured": measured, "holds": bool(holds)})

    add(f"CSGD with 1-bit sign (no error compensation) ends worse than SGD (final loss >= {WORSE_FACTOR}x SGD's, "
        "every seed)", f"CSGD {np.round(cs, 3).tolist()} vs SGD {np.round(sgd, 3).tolist()}",
        np.all(cs >= WORSE_FACTOR * sgd))

    def curve(label):
        rows = frame[frame["label"] == label].sort_values(["seed", "step"])
        return rows.pivot(index="seed", columns="step", values="loss").to_numpy()

    c_sgd, c_ds, c_cs = curve("sgd")[:, 1:], curve("double_ec/sign")[:, 1:], curve("csgd/sign")[:, 1:]
    share = np.abs(c_ds - c_sgd) / np.abs(c_cs - c_sgd)
    final_gap = np.abs(c_ds[:, -1] - c_sgd[:, -1]) / c_sgd[:, -1]
    add(f"DoubleSqueeze (1-bit sign) follows SGD per iteration: at every evaluation its loss gap to SGD is at most "
        f"{FOLLOW_SHARE:.2f} of CSGD's, and its final loss is within {FOLLOW_TOL:.0%} of SGD's (every seed)",
        f"max gap share {share.max():.3f}, final relative gaps {np.round(final_gap, 3).tolist()}",
        share.max() <= FOLLOW_SHARE and final_gap.max() <= FOLLOW_TOL)
    add("DoubleSqueeze ends far below CSGD (final loss <= CSGD's / 1.5, every seed)",
        f"DoubleSqueeze {np.round(ds, 3).tolist()}", np.all(ds * WORSE_FACTOR <= cs))
    ratio = vectors["double_ec/sign"] / vectors["sgd"]
    per_n = vectors["double_ec/sign"] / n
    add("DoubleSqueeze exchanges about 2/32 of N full vectors per iteration (2cN, c ~ 1/32), i.e. ~1/32 of SGD's 2N",
        f"2cN / N = {per_n:.4f} (2/32 = {2 / 32:.4f}); bits vs SGD {ratio:.4f}",
        2 / 32 <= per_n <= 1.1 * 2 / 32)
    bits_ds = frame[frame["label"] == "double_ec/sign"]["bits"].max()
    bits_sgd = frame[frame["label"] == "sgd"]["bits"].max()
    add("measured bits agree with the count: DoubleSqueeze's total bits / SGD's = c",
        f"{bits_ds / bits_sgd:.4f}", abs(bits_ds / bits_sgd - ratio) <= 1e-6 * ratio)
    return pd.DataFrame(out)


def _plot(frame, vectors):
    """Loss against iterations and against bits (log axis) through :func:`jaxgossip.plots.plot_curves`: the mean over
    seeds with the band from the lowest to the highest seed, one legend below."""
    from jaxgossip.plots import plot_curves

    names = {"sgd": "SGD (2N vectors)", "csgd/sign": "CSGD, 1-bit (2cN)", "single_ec/sign": "single EC, 1-bit (N(1+c))",
             "double_ec/sign": "DoubleSqueeze, 1-bit (2cN)"}
    rows = frame[frame["label"].isin(list(names))].assign(label=lambda f: f["label"].map(names))
    seeds = rows["seed"].nunique()
    return plot_curves(rows, panels=(("step", "loss"), ("bits", "loss")), band="range", order=list(names.values()),
                       title="DoubleSqueeze (Tang et al. 2019b): 1-bit compression with error compensation on both "
                             f"sides\n(mean over {seeds} seeds; band: min to max)")


@register("tang2019-doublesqueeze", "DoubleSqueeze: 1-bit double compression with error compensation follows SGD; "
          "CSGD without it does not (survey Sec. 3.3, slides)")
def tang2019_doublesqueeze(size: str = "small", seeds=(0, 1, 2)) -> Reproduction:
    """Run the DoubleSqueeze comparison at ``size`` over ``seeds``; the table lands in ``Reproduction.table``."""
    import jaxgossip as jg
    from jaxgossip.sweep import sweep

    cfg = SIZES[size]
    problem = jg.problems.mlp(cfg["data"], n_workers=cfg["n"], hidden=cfg["hidden"], batch_size=cfg["batch"], seed=0)
    names = tuple(dict.fromkeys(("sign",) + tuple(cfg["table"])))
    algos = _algorithms(cfg, names, problem.d)
    frame = sweep(problem, algos, steps=cfg["steps"], eval_every=cfg["eval_every"], seeds=tuple(seeds))
    vectors = {label: jg.algorithms.vectors_exchanged(a, problem.n, problem.d) for label, a in algos.items()}
    frame["vectors_per_iteration"] = frame["label"].map(vectors)
    rep = Reproduction("tang2019-doublesqueeze", frame, _verdicts(frame, vectors, problem.n), _plot(frame, vectors))
    rep.table = make_table(frame[frame["label"].isin([k for k in algos if k.split("/")[-1] in cfg["table"]] + ["sgd"])],
                           problem.n, problem.d, vectors)
    return rep
